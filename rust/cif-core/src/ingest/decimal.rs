//! Binance decimal strings ("61837.63000000") to `f64`, correctly rounded.
//!
//! Binance sends prices and quantities as plain decimals. Anything else (sign, exponent,
//! `NaN`, `inf`, empty) is rejected rather than guessed at, so a corrupted field can never
//! become a plausible-looking number. The result equals Python's `float(s)` bit for bit.

/// Why a decimal string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// A leading minus sign: Binance prices and quantities are never negative.
    Negative,
    /// Not of the form `digits[.digits]`.
    NotPlainDecimal,
    /// Too large to be a finite `f64`.
    Overflow,
}

// Powers of ten that are exact in f64 (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const MAX_EXACT_INT: u64 = 1 << 53;

/// Eight ASCII digits (little-endian word) to their value, or None if any byte is not a
/// digit. Three multiply-adds instead of eight.
#[inline]
fn eight_digits(word: u64) -> Option<u64> {
    let v = word.wrapping_sub(0x3030_3030_3030_3030);
    // Every byte must be 0..=9: no borrow above, and adding 6 must not carry past 15.
    if (word & 0xF0F0_F0F0_F0F0_F0F0) != 0x3030_3030_3030_3030
        || (v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) != 0
    {
        return None;
    }
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    Some((v * 10000 + (v >> 32)) & 0xFFFF_FFFF)
}

/// Parse a plain non-negative decimal: one or more digits, optionally `.` and one or more
/// digits. Correctly rounded to the nearest `f64`.
#[inline]
pub fn parse_decimal(s: &[u8]) -> Result<f64, DecimalError> {
    let mut i = 0;
    let mut m: u64 = 0;
    // Integer part: Binance prices have at most a handful of digits here.
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() || i >= 19 {
            break;
        }
        m = m * 10 + u64::from(c - b'0');
        i += 1;
    }
    let int_len = i;
    if int_len == 0 || int_len >= 19 {
        return parse_slow(s);
    }
    let mut k = 0usize;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while int_len + (i - frac_start) + 8 <= 19 {
            let Some(chunk) = s.get(i..i + 8) else { break };
            let Some(d) = eight_digits(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])))
            else {
                break;
            };
            m = m * 100_000_000 + d;
            i += 8;
        }
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() || int_len + (i - frac_start) >= 19 {
                break;
            }
            m = m * 10 + u64::from(c - b'0');
            i += 1;
        }
        k = i - frac_start;
        if k == 0 {
            return Err(DecimalError::NotPlainDecimal);
        }
    }
    if i != s.len() {
        return parse_slow(s);
    }
    if m <= MAX_EXACT_INT && k < POW10.len() {
        // m and 10^k are exact, and IEEE division rounds correctly: the quotient is the
        // correctly rounded value of the decimal.
        return Ok(m as f64 / POW10[k]);
    }
    parse_slow(s)
}

/// Everything the fast path does not cover: signs, long mantissas, invalid text.
#[cold]
fn parse_slow(s: &[u8]) -> Result<f64, DecimalError> {
    if s.first() == Some(&b'-') {
        return Err(DecimalError::Negative);
    }
    let (int_part, frac_part) = match s.iter().position(|&c| c == b'.') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let digits = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
        return Err(DecimalError::NotPlainDecimal);
    }
    let text = std::str::from_utf8(s).map_err(|_| DecimalError::NotPlainDecimal)?;
    let v: f64 = text.parse().map_err(|_| DecimalError::NotPlainDecimal)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DecimalError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digit_words() {
        let w = |s: &[u8; 8]| u64::from_le_bytes(*s);
        assert_eq!(eight_digits(w(b"12345678")), Some(12345678));
        assert_eq!(eight_digits(w(b"00000000")), Some(0));
        assert_eq!(eight_digits(w(b"99999999")), Some(99999999));
        for bad in [
            b"1234567a",
            b"/2345678",
            b":2345678",
            b"1234 678",
            b"12345.78",
        ] {
            assert_eq!(eight_digits(w(bad)), None, "{bad:?}");
        }
    }

    fn std_parse(s: &str) -> f64 {
        s.parse().unwrap()
    }

    #[test]
    fn matches_std_on_binance_shapes() {
        for s in [
            "61837.63000000",
            "0.00000000",
            "0.00100000",
            "3.78826000",
            "1.54698000",
            "0.1",
            "0.3",
            "123456789.12345678",
            "99999999999999999999.99999999",
            "0.000000000000000000000000123",
            "7",
            "007.50",
            "1.7976931348623157e308".split('e').next().unwrap(),
        ] {
            assert_eq!(
                parse_decimal(s.as_bytes()).unwrap().to_bits(),
                std_parse(s).to_bits(),
                "{s}"
            );
        }
    }

    #[test]
    fn rejects_non_plain_forms() {
        for s in [
            "", ".", "1.", ".5", "1e5", "NaN", "inf", "+1", "1.2.3", " 1", "1,5", "0x10",
        ] {
            assert_eq!(
                parse_decimal(s.as_bytes()),
                Err(DecimalError::NotPlainDecimal),
                "{s}"
            );
        }
        assert_eq!(parse_decimal(b"-1.0"), Err(DecimalError::Negative));
    }

    #[test]
    fn huge_values_overflow_instead_of_becoming_infinite() {
        let huge = "9".repeat(400);
        assert_eq!(parse_decimal(huge.as_bytes()), Err(DecimalError::Overflow));
    }

    #[test]
    fn many_random_decimals_match_std() {
        // A fixed LCG keeps the test deterministic without a dependency.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let int_part = (x >> 33) % 1_000_000_000;
            let frac_len = ((x >> 20) % 12) as usize;
            let frac = x % 10u64.pow(frac_len as u32).max(1);
            let s = if frac_len == 0 {
                format!("{int_part}")
            } else {
                format!("{int_part}.{frac:0width$}", width = frac_len)
            };
            assert_eq!(
                parse_decimal(s.as_bytes()).unwrap().to_bits(),
                std_parse(&s).to_bits(),
                "{s}"
            );
        }
    }
}
