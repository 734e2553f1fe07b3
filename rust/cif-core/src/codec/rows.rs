//! Feature rows as the field / value pairs of a `features:{symbol}` `XADD`, pre-packed as
//! RESP bulk strings.
//!
//! A row's fields are `seq`, `ts`, `recv_ts_ns`, `kind` (written `%d`), then one field for
//! all the features: its name is the feature names joined by `,`, its value the features'
//! values joined by `,`, each written as Python's `repr` of the double (see
//! [`py_repr_f64`]). One field instead of one per feature: every field is an object to
//! build, send, parse and store on both sides of Redis, and the row has ~40 features.
//! The field's name is the same for every row, so Redis stores it once per stream node.

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
    /// A feature name contains the separator `,` (or is empty).
    BadName {
        /// The name.
        name: String,
    },
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
            RowsError::BadName { name } => {
                write!(f, "feature name {name:?} is empty or contains ','")
            }
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

/// The separator of the feature names in the values field's name and of the values in its
/// value.
pub const SEPARATOR: u8 = b',';

/// Packs rows of a fixed set of feature names.
#[derive(Debug, Clone)]
pub struct RowPacker {
    /// `bulk(name)` of every field: the four row fields, then the joined feature names.
    heads: Vec<Vec<u8>>,
    names: Vec<String>,
}

impl RowPacker {
    /// A packer for rows with these feature columns (after the four [`ROW_FIELDS`]); a
    /// name that is empty or contains [`SEPARATOR`] is refused.
    pub fn new<S: AsRef<str>>(feature_names: &[S]) -> Result<Self, RowsError> {
        let names: Vec<String> = feature_names
            .iter()
            .map(|n| n.as_ref().to_owned())
            .collect();
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.as_bytes().contains(&SEPARATOR))
        {
            return Err(RowsError::BadName { name: bad.clone() });
        }
        let joined = names.join(",");
        let mut heads: Vec<Vec<u8>> = ROW_FIELDS
            .iter()
            .map(|name| {
                let mut head = Vec::with_capacity(name.len() + 8);
                put_bulk(&mut head, name.as_bytes());
                head
            })
            .collect();
        if !names.is_empty() {
            let mut head = Vec::with_capacity(joined.len() + 8);
            put_bulk(&mut head, joined.as_bytes());
            heads.push(head);
        }
        Ok(RowPacker { heads, names })
    }

    /// Fields per row: the four row fields plus the features' field (none without
    /// features).
    pub fn n_fields(&self) -> usize {
        self.heads.len()
    }

    /// Every row of `cols`, packed.
    pub fn pack(&self, cols: &RowColumns<'_>) -> Result<PackedRows, RowsError> {
        self.check(cols)?;
        let n = cols.seq.len();
        let head_bytes: usize = self.heads.iter().map(Vec::len).sum();
        // ~20 bytes per value, plus the names.
        let mut out = PackedRows {
            data: Vec::with_capacity(n * (head_bytes + 64 + 20 * self.names.len())),
            ends: Vec::with_capacity(n),
        };
        let mut value = Vec::with_capacity(32 + 20 * self.names.len());
        for i in 0..n {
            let ints = [cols.seq[i], cols.ts[i], cols.recv_ts_ns[i], cols.kind[i]];
            for (head, v) in self.heads.iter().zip(ints) {
                out.data.extend_from_slice(head);
                value.clear();
                write_i64(v, &mut value);
                put_bulk(&mut out.data, &value);
            }
            if let Some(head) = self.heads.get(ROW_FIELDS.len()) {
                out.data.extend_from_slice(head);
                value.clear();
                for (j, col) in cols.features.iter().enumerate() {
                    if j > 0 {
                        value.push(SEPARATOR);
                    }
                    py_repr_f64(col[i], &mut value);
                }
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
        let packer = RowPacker::new(&["mid", "ofi_1s"]).unwrap();
        assert_eq!(packer.n_fields(), 5);
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
               $10\r\nmid,ofi_1s\r\n$13\r\n61837.635,nan\r\n"[..]
        );
        assert!(rows
            .row(1)
            .ends_with(b"$10\r\nmid,ofi_1s\r\n$10\r\n1.0,-1e-05\r\n"));
        assert!(rows.row(1).starts_with(b"$3\r\nseq\r\n$2\r\n43\r\n"));
    }

    #[test]
    fn long_values_get_a_multi_digit_length() {
        let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let packer = RowPacker::new(&names).unwrap();
        let col: &[f64] = &[0.123456789];
        let features: Vec<&[f64]> = vec![col; 20];
        let rows = packer
            .pack(&RowColumns {
                seq: &[1],
                ts: &[2],
                recv_ts_ns: &[3],
                kind: &[0],
                features: &features,
            })
            .unwrap();
        let value = vec!["0.123456789"; 20].join(",");
        let want = format!("${}\r\n{}\r\n", value.len(), value);
        assert!(rows.row(0).ends_with(want.as_bytes()));
    }

    #[test]
    fn no_features_is_the_four_row_fields() {
        let packer = RowPacker::new::<&str>(&[]).unwrap();
        assert_eq!(packer.n_fields(), 4);
        let rows = packer
            .pack(&RowColumns {
                seq: &[7],
                ts: &[8],
                recv_ts_ns: &[9],
                kind: &[1],
                features: &[],
            })
            .unwrap();
        assert!(rows.row(0).ends_with(b"$4\r\nkind\r\n$1\r\n1\r\n"));
    }

    #[test]
    fn refuses_names_with_the_separator() {
        let err = RowPacker::new(&["a", "b,c"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "feature name \"b,c\" is empty or contains ','"
        );
        assert!(RowPacker::new(&[""]).is_err());
    }

    #[test]
    fn refuses_ragged_columns() {
        let packer = RowPacker::new(&["x"]).unwrap();
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
