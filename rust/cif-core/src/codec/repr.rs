//! Python's `repr(float)` and `%d`, as bytes.

use std::fmt::{self, Write as _};

/// Room for any `{:e}` rendering of a positive `f64`: 17 digits, the point, `e-324`.
const EXP_CAP: usize = 32;

/// A stack buffer for one `{:e}` rendering, so formatting a value allocates nothing.
struct ExpBuf {
    bytes: [u8; EXP_CAP],
    len: usize,
}

impl ExpBuf {
    fn new() -> Self {
        ExpBuf {
            bytes: [0; EXP_CAP],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for ExpBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Append `repr(x)` as Python writes it: the shortest decimal that reads back as `x`.
///
/// `nan` (whatever the sign or payload), `inf`, `-inf`, `0.0`, `-0.0`. Otherwise the
/// digits are laid out in positional notation when the decimal exponent `e` (of
/// `d.ddd × 10^e`) is in `-4..16`, with `.0` appended to an integral value (`123.0`,
/// `1e15` → `1000000000000000.0`), and in scientific notation outside it, with a signed
/// exponent of at least two digits (`1e-05`, `1e+16`, `1.5e+300`, `5e-324`).
pub fn py_repr_f64(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let a = x.abs();
    if a.is_infinite() {
        out.extend_from_slice(b"inf");
        return;
    }
    if a == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    // Rust's `{:e}` without a precision prints the shortest round-trip digits closest to
    // the exact value — the digits of Python's repr, except when the value lies exactly
    // halfway between two such candidates (see `tie_to_even`); only the layout differs.
    let mut buf = ExpBuf::new();
    if write!(buf, "{a:e}").is_err() {
        // Unreachable (the longest rendering is 23 bytes); a visible fallback beats a panic.
        out.extend_from_slice(b"nan");
        return;
    }
    let mut even = ExpBuf::new();
    let s = if tie_to_even(a, buf.as_bytes(), &mut even) {
        even.as_bytes()
    } else {
        buf.as_bytes()
    };
    let e_at = s.iter().position(|&c| c == b'e').unwrap_or(s.len());
    // `d` or `d.ddd`: the first digit and the rest.
    let mantissa = &s[..e_at];
    let (first, rest) = (mantissa[0], mantissa.get(2..).unwrap_or(&[]));
    let n_digits = 1 + rest.len();
    let exp = parse_exp(s.get(e_at + 1..).unwrap_or(&[]));
    // Python's decpt: the value is 0.ddd × 10^decpt.
    let decpt = exp + 1;
    if decpt <= -4 || decpt > 16 {
        out.extend_from_slice(mantissa);
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = u64::from(exp.unsigned_abs());
        if e < 10 {
            out.push(b'0');
        }
        write_u64(e, out);
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + decpt.unsigned_abs() as usize, b'0');
        out.push(first);
        out.extend_from_slice(rest);
    } else {
        let point = decpt as usize;
        out.push(first);
        if point >= n_digits {
            out.extend_from_slice(rest);
            out.resize(out.len() + (point - n_digits), b'0');
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&rest[..point - 1]);
            out.push(b'.');
            out.extend_from_slice(&rest[point - 1..]);
        }
    }
}

/// Python breaks a tie between the two closest shortest candidates (the value exactly
/// halfway between them, e.g. 873832213815244.25 between …244.2 and …244.3) towards the
/// even last digit; Rust's shortest formatting may pick the other one. If `rendered` (a
/// `{:e}` rendering of `a` > 0) is the odd candidate of such a tie, write the even one, in
/// the same form, into `even` and return true.
///
/// With `D` the rendered digits as an integer and `s` the exponent of the last one, the
/// value is halfway between `D` and `D ± 1` iff `2a = (2D ± 1)·10^s`. Writing
/// `2a = m'·2^E` with `m'` odd, and `2D ± 1` being odd, that needs `E = s` and
/// `m'·5^-s = 2D ± 1`: two integer checks, the first of which rules out nearly every value.
fn tie_to_even(a: f64, rendered: &[u8], even: &mut ExpBuf) -> bool {
    let e_at = rendered
        .iter()
        .position(|&c| c == b'e')
        .unwrap_or(rendered.len());
    let mut d: u64 = 0;
    let mut n: i32 = 0;
    for &c in rendered[..e_at].iter().filter(|c| c.is_ascii_digit()) {
        d = d * 10 + u64::from(c - b'0');
        n += 1;
    }
    let s = parse_exp(rendered.get(e_at + 1..).unwrap_or(&[])) - (n - 1);
    let bits = a.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (m, q) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    let t = m.trailing_zeros() as i32;
    let (odd, e2) = (u128::from(m >> t), q + 1 + t);
    if e2 != s {
        return false;
    }
    // 2D ± 1 < 2·10^17, so larger powers of five cannot match.
    let twice_mid = if s <= 0 {
        match 5u128.checked_pow(s.unsigned_abs()) {
            Some(p) if s >= -30 => odd * p,
            _ => return false,
        }
    } else {
        let p = 5u128.pow(s.unsigned_abs().min(30));
        if s > 30 || odd % p != 0 {
            return false;
        }
        odd / p
    };
    let d2 = u128::from(d) * 2;
    let (lo, hi) = if twice_mid + 1 == d2 {
        (d - 1, d)
    } else if twice_mid == d2 + 1 {
        (d, d + 1)
    } else {
        return false;
    };
    let pick = if lo % 2 == 0 { lo } else { hi };
    if pick == d {
        return false;
    }
    // The pick as `d.ddde<exp>`, trailing zeros dropped (…9 + 1 carries).
    let mut digits = ExpBuf::new();
    if write!(digits, "{pick}").is_err() {
        return false;
    }
    let all = digits.as_bytes();
    let kept = all.iter().rposition(|&c| c != b'0').map_or(1, |i| i + 1);
    let exp = s + all.len() as i32 - 1;
    let wrote = (|| -> fmt::Result {
        even.write_str(std::str::from_utf8(&all[..1]).map_err(|_| fmt::Error)?)?;
        if kept > 1 {
            even.write_str(".")?;
            even.write_str(std::str::from_utf8(&all[1..kept]).map_err(|_| fmt::Error)?)?;
        }
        write!(even, "e{exp}")
    })();
    // Both candidates read back as `a` (they are equally close to it); check anyway, so a
    // wrong pick can only ever leave Rust's own digits.
    let reads_back = std::str::from_utf8(even.as_bytes())
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        == Some(a);
    wrote.is_ok() && reads_back
}

/// The exponent after `e` in a `{:e}` rendering (`-7`, `300`).
fn parse_exp(s: &[u8]) -> i32 {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let v = digits
        .iter()
        .fold(0i32, |acc, &c| acc * 10 + i32::from(c.wrapping_sub(b'0')));
    if neg {
        -v
    } else {
        v
    }
}

/// Append `b"%d" % v`.
pub fn write_i64(v: i64, out: &mut Vec<u8>) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(v.unsigned_abs(), out);
}

fn write_u64(mut v: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(x: f64) -> String {
        let mut out = Vec::new();
        py_repr_f64(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    // The tie cases are exact binary values, written out in full on purpose.
    #[allow(clippy::excessive_precision)]
    fn matches_python_repr_on_a_table_of_cases() {
        // Each right-hand side is what CPython 3.11 prints for repr(x).
        let cases: &[(f64, &str)] = &[
            (f64::NAN, "nan"),
            (-f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.1, "0.1"),
            (0.5, "0.5"),
            (123.0, "123.0"),
            (61837.635, "61837.635"),
            (-61837.63, "-61837.63"),
            (1e-4, "0.0001"),
            (1.5e-4, "0.00015"),
            (1e-5, "1e-05"),
            (-1e-5, "-1e-05"),
            (1.5e-5, "1.5e-05"),
            (9.999999999999999e-5, "9.999999999999999e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1e17, "1e+17"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (1.5e300, "1.5e+300"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (5e-324, "5e-324"),
            (-5e-324, "-5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (2.225073858507201e-308, "2.225073858507201e-308"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
            (2f64.powi(60), "1.152921504606847e+18"),
            (2f64.powi(53), "9007199254740992.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (123456.789e-10, "1.23456789e-05"),
            // Exactly halfway between the two closest shortest candidates: the even one.
            (-873832213815244.25, "-873832213815244.2"),
            (210424066062375.125, "210424066062375.12"),
            (120349055642672.625, "120349055642672.62"),
        ];
        for &(x, want) in cases {
            assert_eq!(repr(x), want, "repr of {x:e}");
        }
    }

    #[test]
    fn every_repr_reads_back_exactly() {
        // A cheap xorshift over bit patterns: any finite double must round-trip.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            let s = repr(x);
            let back: f64 = s.parse().unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{s}");
        }
    }

    #[test]
    fn integers_print_like_percent_d() {
        for (v, want) in [
            (0i64, "0"),
            (7, "7"),
            (-7, "-7"),
            (1723161255308, "1723161255308"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut out = Vec::new();
            write_i64(v, &mut out);
            assert_eq!(out, want.as_bytes());
        }
    }
}
