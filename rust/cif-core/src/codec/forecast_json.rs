//! A `forecasts:{symbol}` entry as the JSON record the API sends to WebSocket clients.
//!
//! The API forwards every forecast; building the record in Python (`int()` / `float()` of
//! each field, `repr` of each probability) was most of its per-batch cost. This writes the
//! same text, byte for byte, as `cif.api.streams.forecast_json` for the entries it is sure
//! about, and declines (returns `false`) for every other one, which then takes the Python
//! path and its errors: a field set other than the documented layouts, a text that is not
//! printable ASCII, a number outside what [`parse_py_int`] / [`parse_py_float`] read.

use super::repr::{py_repr_f64, write_i64};
use super::text::{parse_py_float, parse_py_int};

/// Text fields, in record order.
const STRS: [&str; 3] = ["symbol", "horizon", "model"];
/// Integer fields, in record order.
const INTS: [&str; 6] = [
    "seq",
    "ts",
    "recv_ts_ns",
    "horizon_ms",
    "model_version",
    "published_ns",
];
/// Probability fields always present, in record order (then `prob_flat`, if any).
const PROBS: [&str; 2] = ["prob_up", "prob_down"];
const FLAT: &str = "prob_flat";
/// Every known field: the three lists and `prob_flat`.
const KNOWN: usize = STRS.len() + INTS.len() + PROBS.len() + 1;

fn slot(name: &[u8]) -> Option<usize> {
    STRS.iter()
        .chain(INTS.iter())
        .chain(PROBS.iter())
        .chain(std::iter::once(&FLAT))
        .position(|known| known.as_bytes() == name)
}

/// `json.encoder.encode_basestring_ascii(text)` for printable ASCII without `"` and `\`
/// (the only texts a forecaster writes there); `false` for anything else.
fn quote(text: &[u8], out: &mut Vec<u8>) -> bool {
    if !text
        .iter()
        .all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
    {
        return false;
    }
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
    true
}

/// A probability as `_number(float(text))`: `repr`, non-finite as `null`.
fn number(text: &[u8], out: &mut Vec<u8>) -> bool {
    match parse_py_float(text) {
        Ok(x) if x.is_finite() => py_repr_f64(x, out),
        Ok(_) => out.extend_from_slice(b"null"),
        Err(_) => return false,
    }
    true
}

/// Append the record of one entry (its fields as name/value pairs, in any order) to
/// `out` and return `true`; or return `false`, with `out` as it was, when the entry is not
/// one this function is sure about (see the module doc).
pub fn forecast_record_json(fields: &[(&[u8], &[u8])], out: &mut Vec<u8>) -> bool {
    let mut values: [Option<&[u8]>; KNOWN] = [None; KNOWN];
    for &(name, value) in fields {
        match slot(name) {
            Some(i) if values[i].is_none() => values[i] = Some(value),
            _ => return false, // a field of no layout, or one given twice
        }
    }
    if values[..KNOWN - 1].iter().any(Option::is_none) {
        return false;
    }
    let start = out.len();
    let ok = write_record(&values, out);
    if !ok {
        out.truncate(start);
    }
    ok
}

fn write_record(values: &[Option<&[u8]>; KNOWN], out: &mut Vec<u8>) -> bool {
    let get = |i: usize| values[i].unwrap_or_default();
    let mut i = 0;
    for (k, name) in STRS.iter().enumerate() {
        out.extend_from_slice(if k == 0 { b"{\"" } else { b",\"" });
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        if !quote(get(i), out) {
            return false;
        }
        i += 1;
    }
    for name in INTS {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match parse_py_int(get(i)) {
            Ok(v) => write_i64(v, out),
            Err(_) => return false,
        }
        i += 1;
    }
    for name in PROBS {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        if !number(get(i), out) {
            return false;
        }
        i += 1;
    }
    out.extend_from_slice(b",\"prob_flat\":");
    match values[i] {
        None => out.extend_from_slice(b"null"),
        Some(text) => {
            if !number(text, out) {
                return false;
            }
        }
    }
    out.push(b'}');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(extra: &[(&'static str, &'static str)]) -> Vec<(&'static [u8], &'static [u8])> {
        let base: &[(&str, &str)] = &[
            ("symbol", "btcusdt"),
            ("seq", "750"),
            ("ts", "1796065045482"),
            ("recv_ts_ns", "1796065045501148701"),
            ("horizon", "10s"),
            ("horizon_ms", "10000"),
            ("model", "heuristic_ofi"),
            ("model_version", "1"),
            ("prob_up", "0.25"),
            ("prob_down", "0.75"),
            ("published_ns", "1796065045503000000"),
        ];
        base.iter()
            .chain(extra.iter())
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect()
    }

    fn record(f: &[(&[u8], &[u8])]) -> Option<String> {
        let mut out = b"x".to_vec();
        let ok = forecast_record_json(f, &mut out);
        assert_eq!(out.len() > 1, ok, "out is left as it was when declining");
        ok.then(|| String::from_utf8(out[1..].to_vec()).unwrap())
    }

    #[test]
    fn writes_the_record_in_its_field_order() {
        assert_eq!(
            record(&fields(&[])).unwrap(),
            "{\"symbol\":\"btcusdt\",\"horizon\":\"10s\",\"model\":\"heuristic_ofi\",\
             \"seq\":750,\"ts\":1796065045482,\"recv_ts_ns\":1796065045501148701,\
             \"horizon_ms\":10000,\"model_version\":1,\"published_ns\":1796065045503000000,\
             \"prob_up\":0.25,\"prob_down\":0.75,\"prob_flat\":null}"
        );
        let three = record(&fields(&[("prob_flat", "1e-05")])).unwrap();
        assert!(three.ends_with(",\"prob_flat\":1e-05}"), "{three}");
        let nan = record(&fields(&[("prob_flat", "nan")])).unwrap();
        assert!(nan.ends_with(",\"prob_flat\":null}"), "{nan}");
    }

    #[test]
    fn declines_what_it_is_not_sure_about() {
        let mut missing = fields(&[]);
        missing.retain(|(k, _)| *k != b"seq");
        assert_eq!(record(&missing), None);
        assert_eq!(record(&fields(&[("extra", "1")])), None);
        assert_eq!(record(&fields(&[("seq", "751")])), None); // twice
        let mut bad = fields(&[]);
        for (k, v) in bad.iter_mut() {
            if *k == b"symbol" {
                *v = b"btc\"usdt";
            }
        }
        assert_eq!(record(&bad), None);
        let mut big = fields(&[]);
        for (k, v) in big.iter_mut() {
            if *k == b"seq" {
                *v = b"99999999999999999999";
            }
        }
        assert_eq!(record(&big), None);
        assert_eq!(record(&fields(&[("prob_flat", "x")])), None);
    }
}
