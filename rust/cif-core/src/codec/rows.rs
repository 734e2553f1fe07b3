//! Feature rows as the field / value pairs of a `features:{symbol}` `XADD`, pre-packed as
//! RESP bulk strings.
//!
//! A row's fields are `seq`, `ts`, `recv_ts_ns`, `kind` (written `%d`), then one field per
//! feature (written as Python's `repr` of the double, see [`py_repr_f64`]): byte for byte
//! what the Python publisher stores, so consumers and the digest of the output see the same
//! entries whichever side encoded them.

use std::fmt;

use super::repr::{py_repr_f64, write_i64};

/// The integer fields every feature row starts with, in order.
pub const ROW_FIELDS: [&str; 4] = ["seq", "ts", "recv_ts_ns", "kind"];

/// The columns of a batch of rows (all of one length).
#[derive(Debug, Clone, Copy)]
pub struct RowColumns<'a> {
    /// Ingest sequence number of the event each row was computed after.
    pub seq: &'a [i64],
    /// Engine clock (exchange ms).
    pub ts: &'a [i64],
    /// Local receive time (ns).
    pub recv_ts_ns: &'a [i64],
    /// 0 trade, 1 book event.
    pub kind: &'a [i64],
    /// One column per feature, in the packer's name order.
    pub features: &'a [&'a [f64]],
}

/// Columns that do not fit the packer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowsError {
    /// The number of feature columns differs from the number of names.
    FeatureCount {
        /// Feature names the packer was made with.
        names: usize,
        /// Feature columns given.
        columns: usize,
    },
    /// A column's length differs from `seq`'s.
    Length {
        /// The column's field name.
        column: String,
        /// Its length.
        len: usize,
        /// `seq`'s length.
        expected: usize,
    },
}

impl fmt::Display for RowsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowsError::FeatureCount { names, columns } => {
                write!(f, "{names} feature names but {columns} feature columns")
            }
            RowsError::Length {
                column,
                len,
                expected,
            } => write!(f, "column {column:?} has {len} rows, seq has {expected}"),
        }
    }
}

impl std::error::Error for RowsError {}

/// Packed rows: row `i` is `data[ends[i - 1]..ends[i]]` (from 0 for the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedRows {
    /// Every row's bulk strings, back to back.
    pub data: Vec<u8>,
    /// End offset of each row in `data`.
    pub ends: Vec<usize>,
}

impl PackedRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of row `i` (`name value name value ...` as RESP bulk strings).
    pub fn row(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// Packs rows of a fixed set of feature names.
#[derive(Debug, Clone)]
pub struct RowPacker {
    /// `bulk(name)` of every field, the four row fields first.
    heads: Vec<Vec<u8>>,
    names: Vec<String>,
}

impl RowPacker {
    /// A packer for rows with these feature columns (after the four [`ROW_FIELDS`]).
    pub fn new<S: AsRef<str>>(feature_names: &[S]) -> Self {
        let names: Vec<String> = feature_names
            .iter()
            .map(|n| n.as_ref().to_owned())
            .collect();
        let heads = ROW_FIELDS
            .iter()
            .copied()
            .chain(names.iter().map(String::as_str))
            .map(|name| {
                let mut head = Vec::with_capacity(name.len() + 8);
                put_bulk(&mut head, name.as_bytes());
                head
            })
            .collect();
        RowPacker { heads, names }
    }

    /// Fields per row: the four row fields plus one per feature.
    pub fn n_fields(&self) -> usize {
        self.heads.len()
    }

    /// Every row of `cols`, packed.
    pub fn pack(&self, cols: &RowColumns<'_>) -> Result<PackedRows, RowsError> {
        self.check(cols)?;
        let n = cols.seq.len();
        let head_bytes: usize = self.heads.iter().map(Vec::len).sum();
        // ~24 bytes per value with its bulk framing, plus the names.
        let mut out = PackedRows {
            data: Vec::with_capacity(n * (head_bytes + 24 * self.heads.len())),
            ends: Vec::with_capacity(n),
        };
        let mut value = Vec::with_capacity(32);
        for i in 0..n {
            let ints = [cols.seq[i], cols.ts[i], cols.recv_ts_ns[i], cols.kind[i]];
            for (head, v) in self.heads.iter().zip(ints) {
                out.data.extend_from_slice(head);
                value.clear();
                write_i64(v, &mut value);
                put_bulk(&mut out.data, &value);
            }
            for (head, col) in self.heads[ROW_FIELDS.len()..].iter().zip(cols.features) {
                out.data.extend_from_slice(head);
                value.clear();
                py_repr_f64(col[i], &mut value);
                put_bulk(&mut out.data, &value);
            }
            out.ends.push(out.data.len());
        }
        Ok(out)
    }

    fn check(&self, cols: &RowColumns<'_>) -> Result<(), RowsError> {
        if cols.features.len() != self.names.len() {
            return Err(RowsError::FeatureCount {
                names: self.names.len(),
                columns: cols.features.len(),
            });
        }
        let expected = cols.seq.len();
        let ints = [cols.ts, cols.recv_ts_ns, cols.kind];
        let lens = ROW_FIELDS[1..]
            .iter()
            .copied()
            .zip(ints.iter().map(|c| c.len()))
            .chain(
                self.names
                    .iter()
                    .map(String::as_str)
                    .zip(cols.features.iter().map(|c| c.len())),
            );
        for (column, len) in lens {
            if len != expected {
                return Err(RowsError::Length {
                    column: column.to_owned(),
                    len,
                    expected,
                });
            }
        }
        Ok(())
    }
}

/// Append one RESP bulk string: `$<len>\r\n<data>\r\n`.
fn put_bulk(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len();
    if len < 10 {
        // Every value and name is this short: frame it without the general integer writer.
        out.extend_from_slice(&[b'$', b'0' + len as u8, b'\r', b'\n']);
    } else if len < 100 {
        let (tens, ones) = ((len / 10) as u8, (len % 10) as u8);
        out.extend_from_slice(&[b'$', b'0' + tens, b'0' + ones, b'\r', b'\n']);
    } else {
        out.push(b'$');
        write_i64(len as i64, out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_fields_as_bulk_strings_in_order() {
        let packer = RowPacker::new(&["mid", "ofi_1s"]);
        assert_eq!(packer.n_fields(), 6);
        let features: [&[f64]; 2] = [&[61837.635, 1.0], &[f64::NAN, -1e-5]];
        let rows = packer
            .pack(&RowColumns {
                seq: &[42, 43],
                ts: &[1723161255308, 1723161255309],
                recv_ts_ns: &[17, -3],
                kind: &[0, 1],
                features: &features,
            })
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows.row(0),
            &b"$3\r\nseq\r\n$2\r\n42\r\n$2\r\nts\r\n$13\r\n1723161255308\r\n\
               $10\r\nrecv_ts_ns\r\n$2\r\n17\r\n$4\r\nkind\r\n$1\r\n0\r\n\
               $3\r\nmid\r\n$9\r\n61837.635\r\n$6\r\nofi_1s\r\n$3\r\nnan\r\n"[..]
        );
        assert!(rows
            .row(1)
            .ends_with(b"$3\r\nmid\r\n$3\r\n1.0\r\n$6\r\nofi_1s\r\n$6\r\n-1e-05\r\n"));
        assert!(rows.row(1).starts_with(b"$3\r\nseq\r\n$2\r\n43\r\n"));
    }

    #[test]
    fn refuses_ragged_columns() {
        let packer = RowPacker::new(&["x"]);
        let features: [&[f64]; 1] = [&[1.0]];
        let err = packer
            .pack(&RowColumns {
                seq: &[1, 2],
                ts: &[1, 2],
                recv_ts_ns: &[1, 2],
                kind: &[0, 0],
                features: &features,
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "column \"x\" has 1 rows, seq has 2");
        let err = packer
            .pack(&RowColumns {
                seq: &[],
                ts: &[],
                recv_ts_ns: &[],
                kind: &[],
                features: &[],
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "1 feature names but 0 feature columns");
    }
}
