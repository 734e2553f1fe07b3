//! The bytes the output digest (`cif.digest`) hashes for a batch of feature rows.
//!
//! Row layout, little-endian: `seq` int64, `ts` int64, then each feature value's float64
//! bits in column order, every NaN written as the canonical quiet NaN
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
            let x = col[i];
            let bits = if x.is_nan() {
                CANONICAL_NAN_BITS
            } else {
                x.to_bits()
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
    }
    Ok(out)
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
