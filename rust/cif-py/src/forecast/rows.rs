//! The forecaster's per-row work on its input and output entries: reading a batch of
//! `features:{symbol}` entries into columns, and packing the forecasts' `XADD` bodies.

use cif_core::codec::{
    py_repr_f64, read_header, read_values, write_i64, FeatureLayout, RowOrder, RowVerdict,
};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// A row set aside by the order checks (or trimmed), for the caller to count and log:
/// `(index, reason, value, reference)`.
type Issue = (usize, &'static str, i64, Option<i64>);

/// The columns of the rows kept.
#[derive(Default)]
struct Kept<'py> {
    seqs: Vec<i64>,
    ts: Vec<i64>,
    recv: Vec<i64>,
    xs: Vec<f64>,
    mids: Vec<f64>,
    ids: Vec<Bound<'py, PyAny>>,
}

/// The four header texts and the features field of an entry's fields, when every one is
/// `bytes` and the entry has `n_fields` fields (`None`: not this path's to read).
fn entry_texts<'py>(
    fields: &Bound<'py, PyDict>,
    header_keys: &[Bound<'py, PyBytes>; 4],
    layout_key: &Bound<'py, PyBytes>,
    n_fields: usize,
) -> PyResult<Option<[Bound<'py, PyBytes>; 5]>> {
    if fields.len() != n_fields {
        return Ok(None);
    }
    let get = |key: &Bound<'py, PyBytes>| -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(fields
            .get_item(key)?
            .and_then(|v| v.cast_into::<PyBytes>().ok()))
    };
    let (Some(a), Some(b), Some(c), Some(d), Some(e)) = (
        get(&header_keys[0])?,
        get(&header_keys[1])?,
        get(&header_keys[2])?,
        get(&header_keys[3])?,
        get(layout_key)?,
    ) else {
        return Ok(None);
    };
    Ok(Some([a, b, c, d, e]))
}

/// Read `entries[start:]` (`(entry_id, {field: value})` pairs, as `stream_entries` gives
/// them) in order, as the forecaster's `_decode` does, until an entry this path cannot
/// read: a features field other than `layout_key` (of `n_values` values; the model's
/// features at `idx`, the mid at `i_mid`), a value Python's `int()`/`float()` would refuse
/// or read otherwise, an entry with other than `n_fields` fields or with values that are
/// not `bytes`.
///
/// Returns `(stop, issues, seqs, ts, recv_ts_ns, xs, mids, ids, last_seq, last_ts)`: the
/// index of the first entry left to the caller (`len(entries)` when none), the entries
/// before it that were trimmed or set aside by the order checks as `(index, reason,
/// value, reference)` with reason `"trimmed"`, `"seen"` (seq, last seq),
/// `"id_mismatch"` (seq) or `"ts_decreasing"` (ts, last ts), the kept rows' columns (`xs`
/// one list per row, in model order), and the order after them.
#[pyfunction]
#[pyo3(name = "decode_feature_rows")]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn decode_feature_rows<'py>(
    py: Python<'py>,
    entries: &Bound<'py, PyList>,
    start: usize,
    header_keys: [Bound<'py, PyBytes>; 4],
    layout_key: Bound<'py, PyBytes>,
    n_values: usize,
    idx: Vec<usize>,
    i_mid: usize,
    n_fields: usize,
    last_seq: Option<i64>,
    last_ts: Option<i64>,
) -> PyResult<(
    usize,
    Vec<Issue>,
    Vec<i64>,
    Vec<i64>,
    Vec<i64>,
    Bound<'py, PyList>,
    Vec<f64>,
    Vec<Bound<'py, PyAny>>,
    Option<i64>,
    Option<i64>,
)> {
    if idx.iter().chain([&i_mid]).any(|&i| i >= n_values) {
        return Err(PyValueError::new_err(
            "feature positions must be below n_values",
        ));
    }
    let layout = FeatureLayout {
        n_values,
        idx,
        i_mid,
    };
    let width = layout.idx.len();
    let mut order = RowOrder { last_seq, last_ts };
    let mut kept = Kept::default();
    let mut issues: Vec<Issue> = Vec::new();
    let mut starts: Vec<usize> = Vec::with_capacity(n_values + 1);
    let n = entries.len();
    let mut stop = start.min(n);
    while stop < n {
        let item = entries.get_item(stop)?;
        let Ok(pair) = item.cast::<PyTuple>() else {
            break;
        };
        if pair.len() != 2 {
            break;
        }
        let entry_id = pair.get_item(0)?;
        let fields = pair.get_item(1)?;
        let Ok(fields) = fields.cast::<PyDict>() else {
            break;
        };
        if fields.is_empty() {
            issues.push((stop, "trimmed", 0, None));
            stop += 1;
            continue;
        }
        let Ok(id_bytes) = entry_id.cast::<PyBytes>() else {
            break;
        };
        let Some(texts) = entry_texts(fields, &header_keys, &layout_key, n_fields)? else {
            break;
        };
        let Some(header) = read_header(
            texts[0].as_bytes(),
            texts[1].as_bytes(),
            texts[2].as_bytes(),
            texts[3].as_bytes(),
        ) else {
            break;
        };
        let Some(mid) = read_values(texts[4].as_bytes(), &layout, &mut kept.xs, &mut starts) else {
            break;
        };
        match order.check(id_bytes.as_bytes(), &header) {
            RowVerdict::Keep => {
                kept.seqs.push(header.seq);
                kept.ts.push(header.ts);
                kept.recv.push(header.recv_ts_ns);
                kept.mids.push(mid);
                kept.ids.push(entry_id);
            }
            verdict => {
                kept.xs.truncate(kept.xs.len() - width);
                issues.push(match verdict {
                    RowVerdict::Seen { last_seq } => (stop, "seen", header.seq, Some(last_seq)),
                    RowVerdict::TsDecreasing { last_ts } => {
                        (stop, "ts_decreasing", header.ts, Some(last_ts))
                    }
                    _ => (stop, "id_mismatch", header.seq, None),
                });
            }
        }
        stop += 1;
    }
    let xs = PyList::empty(py);
    for row in 0..kept.seqs.len() {
        xs.append(PyList::new(py, &kept.xs[row * width..(row + 1) * width])?)?;
    }
    Ok((
        stop,
        issues,
        kept.seqs,
        kept.ts,
        kept.recv,
        xs,
        kept.mids,
        kept.ids,
        order.last_seq,
        order.last_ts,
    ))
}

/// Append `$<len>\r\n<text>\r\n` of the integer `value` (`str(value)`: any Python int).
fn write_int_bulk(value: &Bound<'_, PyAny>, out: &mut Vec<u8>, text: &mut Vec<u8>) -> PyResult<()> {
    text.clear();
    match value.extract::<i64>() {
        Ok(v) => write_i64(v, text),
        Err(_) => text.extend_from_slice(value.str()?.to_str()?.as_bytes()),
    }
    write_slot(text, out);
    Ok(())
}

fn write_slot(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'$');
    write_i64(text.len() as i64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// The `XADD` bodies (entry ID, field count, fields: RESP bulk strings) of the rows with
/// `ok` set: per row the ID `<seq>-0`, then `fixed[0]`, `seq`, `fixed[1]`, `ts`,
/// `fixed[2]`, `recv_ts_ns`, then for each class column `c` of `columns`, `fixed[3 + j]`
/// and `repr(probs[row, c])`, and `suffix` last. Integers are written as `str()` writes
/// them, probabilities as `repr()`.
#[pyfunction]
#[pyo3(name = "pack_forecast_entries")]
#[allow(clippy::too_many_arguments)]
fn pack_forecast_entries<'py>(
    py: Python<'py>,
    fixed: Vec<Bound<'py, PyBytes>>,
    seqs: &Bound<'py, PyAny>,
    ts: &Bound<'py, PyAny>,
    recv_ts_ns: &Bound<'py, PyAny>,
    probs: PyReadonlyArray2<'py, f64>,
    ok: PyReadonlyArray1<'py, bool>,
    columns: Vec<usize>,
    suffix: &[u8],
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let probs = probs.as_array();
    let ok = ok.as_array();
    let (n, k) = probs.dim();
    if fixed.len() != 3 + columns.len() {
        return Err(PyValueError::new_err(format!(
            "{} fixed parts for {} columns: expected {}",
            fixed.len(),
            columns.len(),
            3 + columns.len()
        )));
    }
    if let Some(&c) = columns.iter().find(|&&c| c >= k) {
        return Err(PyValueError::new_err(format!(
            "column {c} is not one of the {k} classes"
        )));
    }
    let ints = [seqs, ts, recv_ts_ns];
    for (name, col) in ["seqs", "ts", "recv_ts_ns"].iter().zip(ints) {
        if col.len()? != n {
            return Err(PyValueError::new_err(format!(
                "{name} has {} rows, probs {n}",
                col.len()?
            )));
        }
    }
    if ok.len() != n {
        return Err(PyValueError::new_err(format!(
            "ok has {} rows, probs {n}",
            ok.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(512);
    let mut text = Vec::with_capacity(32);
    for row in 0..n {
        if !ok[row] {
            continue;
        }
        body.clear();
        let seq = seqs.get_item(row)?;
        text.clear();
        match seq.extract::<i64>() {
            Ok(v) => write_i64(v, &mut text),
            Err(_) => text.extend_from_slice(seq.str()?.to_str()?.as_bytes()),
        }
        text.extend_from_slice(b"-0");
        write_slot(&text, &mut body);
        for (j, col) in ints.iter().enumerate() {
            body.extend_from_slice(fixed[j].as_bytes());
            write_int_bulk(&col.get_item(row)?, &mut body, &mut text)?;
        }
        for (j, &c) in columns.iter().enumerate() {
            body.extend_from_slice(fixed[3 + j].as_bytes());
            text.clear();
            py_repr_f64(probs[[row, c]], &mut text);
            write_slot(&text, &mut body);
        }
        body.extend_from_slice(suffix);
        out.push(PyBytes::new(py, &body));
    }
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_feature_rows, m)?)?;
    m.add_function(wrap_pyfunction!(pack_forecast_entries, m)?)?;
    Ok(())
}
