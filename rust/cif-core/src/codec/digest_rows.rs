//! The bytes the output digest (`cif.digest`) hashes for a batch of feature rows or of
//! forecasts.
//!
//! Row layout, little-endian: `seq` int64, `ts` int64, then each feature value's float64
//! bits in column order (forecasts: `seq`, then the probabilities in class order), every
//! NaN written as the canonical quiet NaN
//! (`0x7ff8000000000000`): a NaN's payload does not survive the stream's text, so it must
//! not make two identical runs differ. The Python reference is `cif.digest._row_matrix`.

use std::fmt;

/// The bit pattern every NaN is hashed as.
pub const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// Columns whose lengths differ from `seq`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowLengthError {
    /// Position of the column: 0 is `ts`, 1.. the features.
    pub column: usize,
    /// Its length.
    pub len: usize,
    /// `seq`'s length.
    pub expected: usize,
}

impl fmt::Display for RowLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {} has {} rows, seq has {}",
            self.column, self.len, self.expected
        )
    }
}

impl std::error::Error for RowLengthError {}

/// The digest bytes of every row: `(2 + features.len()) * 8` bytes per row.
pub fn digest_row_bytes(
    seq: &[i64],
    ts: &[i64],
    features: &[&[f64]],
) -> Result<Vec<u8>, RowLengthError> {
    let n = seq.len();
    let lens = std::iter::once(ts.len()).chain(features.iter().map(|c| c.len()));
    for (column, len) in lens.enumerate() {
        if len != n {
            return Err(RowLengthError {
                column,
                len,
                expected: n,
            });
        }
    }
    let mut out = Vec::with_capacity(n * (2 + features.len()) * 8);
    for i in 0..n {
        out.extend_from_slice(&seq[i].to_le_bytes());
        out.extend_from_slice(&ts[i].to_le_bytes());
        for col in features {
            out.extend_from_slice(&canonical_bits(col[i]).to_le_bytes());
        }
    }
    Ok(out)
}

/// The digest bytes of forecasts: row `i` is `seq[i]`, then `probs[i*k..(i+1)*k]`'s bits.
/// An error when `probs` does not hold `k` values for every `seq`.
pub fn forecast_digest_row_bytes(
    seq: &[i64],
    probs: &[f64],
    k: usize,
) -> Result<Vec<u8>, RowLengthError> {
    let n = seq.len();
    if probs.len() != n * k {
        return Err(RowLengthError {
            column: 1,
            len: probs.len().checked_div(k).unwrap_or(probs.len()),
            expected: n,
        });
    }
    let mut out = Vec::with_capacity(n * (1 + k) * 8);
    for (i, &s) in seq.iter().enumerate() {
        out.extend_from_slice(&s.to_le_bytes());
        for &x in &probs[i * k..(i + 1) * k] {
            out.extend_from_slice(&canonical_bits(x).to_le_bytes());
        }
    }
    Ok(out)
}

#[inline]
fn canonical_bits(x: f64) -> u64 {
    if x.is_nan() {
        CANONICAL_NAN_BITS
    } else {
        x.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_seq_ts_then_feature_bits_with_one_nan() {
        let weird_nan = f64::from_bits(0x7ff8_dead_beef_0001);
        let a = [1.5, f64::NAN];
        let b = [-0.0, weird_nan];
        let out = digest_row_bytes(&[7, 8], &[100, 101], &[&a, &b]).unwrap();
        let words: Vec<u64> = out
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            words,
            vec![
                7,
                100,
                1.5f64.to_bits(),
                (-0.0f64).to_bits(),
                8,
                101,
                CANONICAL_NAN_BITS,
                CANONICAL_NAN_BITS
            ]
        );
    }

    #[test]
    fn forecast_rows_are_seq_then_the_probabilities() {
        let probs = [0.25, 0.75, f64::from_bits(0x7ff8_0000_0000_0bad), 1.0];
        let out = forecast_digest_row_bytes(&[3, 9], &probs, 2).unwrap();
        let words: Vec<u64> = out
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let bits = |x: f64| x.to_bits();
        assert_eq!(
            words,
            vec![3, bits(0.25), bits(0.75), 9, CANONICAL_NAN_BITS, bits(1.0)]
        );
        assert!(forecast_digest_row_bytes(&[3], &probs, 2).is_err());
        assert!(forecast_digest_row_bytes(&[], &[], 3).unwrap().is_empty());
    }

    #[test]
    fn a_short_column_is_an_error() {
        let a = [1.0];
        let err = digest_row_bytes(&[1, 2], &[1, 2], &[&a]).unwrap_err();
        assert_eq!(
            err,
            RowLengthError {
                column: 1,
                len: 1,
                expected: 2
            }
        );
        assert!(digest_row_bytes(&[1], &[], &[]).is_err());
        assert!(digest_row_bytes(&[], &[], &[]).unwrap().is_empty());
    }
}
