//! Python's `repr(float)` and `%d`, as bytes.

/// Most significant digits a shortest round-trip `f64` needs.
const MAX_DIGITS: usize = 17;

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
    // Ryū yields the shortest digits that read back as `a`, the closest to it when several
    // do and the even one when two are equally close: the digits of Python's repr (David
    // Gay's dtoa, mode 0). Only its layout can differ (`1e-5`, `1e16`, `0.00001`).
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(a).as_bytes();
    match split_python_layout(text) {
        Some((mantissa, None)) => out.extend_from_slice(mantissa),
        Some((mantissa, Some(exp))) => {
            out.extend_from_slice(mantissa);
            write_exponent(exp, out);
        }
        None => Decimal::parse(text).write_python_layout(out),
    }
}

/// Ryū's text of a positive finite value as Python's layout, when it already is one up to
/// the form of the exponent: the part before any `e` and the exponent's value. That is
/// nearly every value the feature rows carry, and the copy is then the whole cost.
///
/// Both write positional notation with only the significant digits (or the integral value
/// and `.0`), Ryū for decimal exponents `-5..16`, Python for `-4..16`: a text starting
/// `0.0000` (exponent -5) is left to the general path. Both write `d.ddd` before an
/// exponent. The trailing-zero tests never fail on Ryū's shortest digits; they keep
/// anything unexpected on the general path, which does not rely on its layout.
fn split_python_layout(text: &[u8]) -> Option<(&[u8], Option<i32>)> {
    // An exponent is at most `e-324`: only the tail needs looking at.
    let tail = text.len().saturating_sub(5);
    match text[tail..]
        .iter()
        .position(|&c| c == b'e')
        .map(|i| tail + i)
    {
        Some(e_at) => {
            let mantissa = &text[..e_at];
            (mantissa.last() != Some(&b'0')).then(|| (mantissa, Some(parse_exp(&text[e_at + 1..]))))
        }
        None => {
            let padded = matches!(text, [.., before, b'0'] if *before != b'.');
            (!padded && !text.starts_with(b"0.0000")).then_some((text, None))
        }
    }
}

/// A positive finite `f64` as significant decimal digits and the position of the point.
struct Decimal {
    /// ASCII digits, the first nonzero; only `digits[..len]` are significant.
    digits: [u8; MAX_DIGITS],
    /// Number of significant digits, trailing zeros excluded.
    len: usize,
    /// Python's `decpt`: the value is `0.d₁d₂… × 10^decpt`.
    decpt: i32,
}

impl Decimal {
    /// Read Ryū's text of a positive, nonzero finite value, whichever of its layouts it
    /// uses: `123.0`, `12.34`, `0.001234`, `1e30`, `1.234e-7`, `12340000000.0`.
    fn parse(text: &[u8]) -> Decimal {
        let mut digits = [b'0'; MAX_DIGITS];
        let (mut stored, mut len) = (0usize, 0usize);
        // Digits before the point, less the leading zeros anywhere (each moves the first
        // significant digit one place right).
        let mut decpt = 0i32;
        let mut after_point = false;
        for (i, &c) in text.iter().enumerate() {
            match c {
                b'.' => after_point = true,
                b'e' => {
                    decpt += parse_exp(&text[i + 1..]);
                    break;
                }
                _ => {
                    if !after_point {
                        decpt += 1;
                    }
                    if stored == 0 && c == b'0' {
                        decpt -= 1;
                    } else if stored < MAX_DIGITS {
                        // Zeros past the 17th digit can only be the integral layout's
                        // padding, which carries no information.
                        digits[stored] = c;
                        stored += 1;
                        if c != b'0' {
                            len = stored;
                        }
                    }
                }
            }
        }
        Decimal {
            digits,
            len: len.max(1),
            decpt,
        }
    }

    /// Append the digits as CPython's `float_repr_style = 'short'` lays them out.
    fn write_python_layout(&self, out: &mut Vec<u8>) {
        let digits = &self.digits[..self.len];
        let decpt = self.decpt;
        if decpt <= -4 || decpt > 16 {
            out.push(digits[0]);
            if digits.len() > 1 {
                out.push(b'.');
                out.extend_from_slice(&digits[1..]);
            }
            write_exponent(decpt - 1, out);
        } else if decpt <= 0 {
            out.extend_from_slice(b"0.");
            // decpt is -3..=0 here.
            out.extend_from_slice(&b"000"[..decpt.unsigned_abs() as usize]);
            out.extend_from_slice(digits);
        } else {
            let point = decpt as usize;
            if point >= digits.len() {
                out.extend_from_slice(digits);
                out.resize(out.len() + (point - digits.len()), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits[point..]);
            }
        }
    }
}

/// Append Python's form of a decimal exponent: `e`, its sign, at least two digits.
fn write_exponent(exp: i32, out: &mut Vec<u8>) {
    out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push(b'0');
    }
    write_i64(i64::from(e), out);
}

/// The exponent after `e` (`-7`, `300`, `+16`).
fn parse_exp(s: &[u8]) -> i32 {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
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
    let mut buf = [0u8; 20];
    let start = signed_digits(v, &mut buf, 20);
    out.extend_from_slice(&buf[start..]);
}

/// Write `b"%d" % v` so that it ends before `buf[end]`; returns where it starts.
fn signed_digits(v: i64, buf: &mut [u8], end: usize) -> usize {
    let mut m = v.unsigned_abs();
    let mut i = end;
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    i
}

/// A stream entry ID `<id>-0` (`b"%d-0" % id`), written on the stack: one is needed per
/// tick, and a heap buffer for each was the larger part of the work.
pub struct EntryId {
    buf: [u8; 22],
    start: usize,
}

impl EntryId {
    /// The ID of `id`.
    pub fn new(id: i64) -> Self {
        let mut buf = [0u8; 22];
        buf[20] = b'-';
        buf[21] = b'0';
        let start = signed_digits(id, &mut buf, 20);
        Self { buf, start }
    }

    /// Its text (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-' and "-0" were written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_and_ints_are_percent_d() {
        for v in [0, 7, -7, 10, 1_723_161_255_208, i64::MAX, i64::MIN] {
            assert_eq!(EntryId::new(v).as_str(), format!("{v}-0"));
            let mut out = b"x".to_vec();
            write_i64(v, &mut out);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }

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
    // Values as CPython prints them, which is more digits than clippy likes.
    #[allow(clippy::excessive_precision)]
    fn matches_python_repr_on_subnormals_extremes_and_layout_edges() {
        // Each right-hand side is what CPython 3.11 prints for repr(x). Between them they
        // take every path: Ryū's text copied, its exponent rewritten, and its `0.0000…`
        // (exponent -5) laid out again.
        let cases: &[(f64, &str)] = &[
            (f64::from_bits(1), "5e-324"),
            (f64::from_bits(2), "1e-323"),
            (f64::from_bits(3), "1.5e-323"),
            (f64::from_bits(12345), "6.099e-320"),
            (
                f64::from_bits(0x0008_0000_0000_0000),
                "1.1125369292536007e-308",
            ),
            (
                f64::from_bits(0x000F_FFFF_FFFF_FFFF),
                "2.225073858507201e-308",
            ),
            (-1e-310, "-1e-310"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (2f64.powi(-1022) * 3.0, "6.675221575521604e-308"),
            (4.4501477170144023e-308, "4.4501477170144023e-308"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN, "-1.7976931348623157e+308"),
            (-0.0, "-0.0"),
            // The positional / scientific boundaries, with their neighbours.
            (1e16, "1e+16"),
            (1.0000000000000002e16, "1.0000000000000002e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (9.5e15, "9500000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (1e20, "1e+20"),
            (1e22, "1e+22"),
            (1e23, "1e+23"),
            (0.0001, "0.0001"),
            (0.00010000000000000002, "0.00010000000000000002"),
            (0.00012345678901234567, "0.00012345678901234567"),
            (3e-4, "0.0003"),
            (1e-4 * 3.0, "0.00030000000000000003"),
            (1e-5, "1e-05"),
            (5e-5, "5e-05"),
            (1.234e-5, "1.234e-05"),
            (-1.5e-5, "-1.5e-05"),
            (9.999999999999999e-6, "9.999999999999999e-06"),
            // Seventeen significant digits.
            (1.0000000000000002, "1.0000000000000002"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1234567890123.4568, "1234567890123.4568"),
        ];
        for &(x, want) in cases {
            assert_eq!(repr(x), want, "repr of {x:e}");
        }
    }

    /// The digits of a repr as an integer `D` and the exponent `t` of its last one
    /// (`D × 10^t` is the printed value, without trailing zeros).
    fn digits_and_last_exponent(text: &str) -> (u128, i32) {
        let text = text.trim_start_matches('-');
        let (mantissa, exp) = match text.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().unwrap()),
            None => (text, 0),
        };
        let frac_len = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
        let all: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let kept = all.trim_end_matches('0');
        let dropped = (all.len() - kept.len()) as i32;
        (kept.parse().unwrap(), exp - frac_len + dropped)
    }

    #[test]
    fn exact_halfway_values_get_the_even_last_digit() {
        // x = j·2^(s-1), j odd, is exactly halfway between two decimals whose last digit is
        // at 10^s: 2x·10^-s = j·5^-s is odd. When both neighbours read back as x, Python
        // prints the even one (…244.25 -> '…244.2'); Rust's own `{:e}` did not always.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut ties = 0;
        for i in 0..200_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let s = -1 - (i % 20) as i32;
            // Both neighbours read back as x only if doubles around x are spaced more than
            // 10^s apart: j gets l + 1 bits, l the least (or one more) for which the
            // spacing 2^(l + s - 53) is.
            let l = (53.0 + f64::from(s) * (std::f64::consts::LOG2_10 - 1.0)).floor() as u32
                + 1
                + (i / 20) % 2;
            let j = (state >> (63 - l)) | (1 << l) | 1;
            let x = j as f64 * 2f64.powi(s - 1);
            let text = repr(x);
            assert_eq!(text.parse::<f64>().unwrap(), x, "{text}");
            let (d, t) = digits_and_last_exponent(&text);
            let twice_x_scaled = u128::from(j) * 5u128.pow(s.unsigned_abs());
            if t == s && (2 * d).abs_diff(twice_x_scaled) == 1 {
                ties += 1;
                assert_eq!(d % 2, 0, "{text} is the odd neighbour of an exact tie");
            }
        }
        // The construction must actually produce ties, or this test proves nothing.
        assert!(ties > 50_000, "only {ties} ties");
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
