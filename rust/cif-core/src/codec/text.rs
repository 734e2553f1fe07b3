//! Python's `int(text)` and `float(text)` on ASCII text (`str` or `bytes` alike).
//!
//! Both strip leading and trailing whitespace (space, `\t`, `\n`, `\v`, `\f`, `\r`) and
//! accept single underscores between digits (`1_000`). `int` takes an optional sign and
//! decimal digits (leading zeros included); `float` additionally a fraction and an
//! exponent (`1.`, `.5`, `1e-05`), and `nan` / `inf` / `infinity` in any case, signed.
//! Rounding is correct in both languages, so the same text gives the same bits. Python
//! also accepts non-ASCII digits and whitespace; nothing that writes these entries does.

use std::borrow::Cow;

use crate::ingest::decimal::parse_decimal;

/// Why a text is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Not of the form Python accepts.
    Invalid,
    /// An integer Python accepts that does not fit an `i64`.
    OutOfRange,
}

fn is_py_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn trim(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&c| !is_py_space(c))
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|&c| !is_py_space(c))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

/// `text` without its underscores, if every one sits between two digits (else None).
fn without_underscores(text: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !text.contains(&b'_') {
        return Some(Cow::Borrowed(text));
    }
    let mut out = Vec::with_capacity(text.len());
    for (i, &c) in text.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).and_then(|j| text.get(j));
            let after = text.get(i + 1);
            if !(before.is_some_and(u8::is_ascii_digit) && after.is_some_and(u8::is_ascii_digit)) {
                return None;
            }
        } else {
            out.push(c);
        }
    }
    Some(Cow::Owned(out))
}

/// Python's `int(text)` (base 10), for values that fit an `i64`.
pub fn parse_py_int(text: &[u8]) -> Result<i64, NumberError> {
    // What the gateway writes: up to 18 plain digits, which cannot overflow.
    if !text.is_empty() && text.len() <= 18 && text.iter().all(u8::is_ascii_digit) {
        let v = text
            .iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
        return Ok(v);
    }
    let t = trim(text);
    let (neg, digits) = match t.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, t),
    };
    let digits = without_underscores(digits).ok_or(NumberError::Invalid)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::Invalid);
    }
    let mut magnitude: u64 = 0;
    for &c in digits.iter() {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(c - b'0')))
            .ok_or(NumberError::OutOfRange)?;
    }
    if neg {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or(NumberError::OutOfRange)
    } else {
        i64::try_from(magnitude).map_err(|_| NumberError::OutOfRange)
    }
}

/// Python's `float(text)`.
pub fn parse_py_float(text: &[u8]) -> Result<f64, NumberError> {
    // What the gateway writes for prices and sizes: a plain decimal, which Python reads as
    // the correctly rounded value too.
    if let Ok(x) = parse_decimal(text) {
        return Ok(x);
    }
    let t = trim(text);
    let t = without_underscores(t).ok_or(NumberError::Invalid)?;
    // Rust's grammar is Python's once whitespace and underscores are gone: optional sign,
    // `digits[.digits]` / `.digits` with an optional exponent, or inf / infinity / nan in
    // any case; correctly rounded, and `-nan` keeps its sign bit as in CPython.
    let s = std::str::from_utf8(&t).map_err(|_| NumberError::Invalid)?;
    s.parse::<f64>().map_err(|_| NumberError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_python() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("42", 42),
            ("-42", -42),
            ("+42", 42),
            (" 42\n", 42),
            ("\t-0\r", 0),
            ("007", 7),
            ("1_000", 1000),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for &(s, want) in ok {
            assert_eq!(parse_py_int(s.as_bytes()), Ok(want), "{s:?}");
        }
        for s in [
            "", " ", "-", "+-1", "1.0", "1e5", "0x10", "_1", "1_", "1__0", "1 0", "abc", "nan",
        ] {
            assert_eq!(
                parse_py_int(s.as_bytes()),
                Err(NumberError::Invalid),
                "{s:?}"
            );
        }
        for s in [
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_py_int(s.as_bytes()),
                Err(NumberError::OutOfRange),
                "{s:?}"
            );
        }
    }

    #[test]
    fn floats_follow_python() {
        let ok: &[(&str, f64)] = &[
            ("61837.63", 61837.63),
            ("-1.5", -1.5),
            ("+1.5", 1.5),
            (" 1.5 ", 1.5),
            ("1.", 1.0),
            (".5", 0.5),
            ("1e-05", 1e-5),
            ("1E+16", 1e16),
            ("1_000.000_1", 1000.0001),
            ("1e1_0", 1e10),
            ("inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("1e400", f64::INFINITY),
            ("5e-324", 5e-324),
            ("-0", -0.0),
        ];
        for &(s, want) in ok {
            let got = parse_py_float(s.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{s:?}");
        }
        assert!(parse_py_float(b"nan").unwrap().is_nan());
        assert_eq!(
            parse_py_float(b"NaN").unwrap().to_bits(),
            0x7ff8_0000_0000_0000
        );
        assert_eq!(
            parse_py_float(b"-nan").unwrap().to_bits(),
            0xfff8_0000_0000_0000
        );
        for s in [
            "", ".", "e5", "1e", "1e+", "0x10", "_1", "1_", "1._5", "1_.5", "garbage", "1.5x",
            "in f", "nan_",
        ] {
            assert_eq!(
                parse_py_float(s.as_bytes()),
                Err(NumberError::Invalid),
                "{s:?}"
            );
        }
    }
}
