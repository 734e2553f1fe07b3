//! The forecaster's read of `features:{symbol}` entries: the header integers, the values
//! its model uses out of the one features field (by position), and the order checks a row
//! must pass before it is scored.
//!
//! This is the fast path of `cif.forecast.service._Session._decode`: numbers are read with
//! Python's `int()` / `float()` rules ([`super::text`]), so a row read here has the bits the
//! Python code gives it. A row this path cannot read (a value that is not a number, a
//! features field of another layout) is left to the Python code, which reports it.

use super::repr::EntryId;
use super::text::{parse_py_float, parse_py_int};

/// Where the values the model reads sit in the features field (`"v0,v1,..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLayout {
    /// How many comma-separated values the field holds.
    pub n_values: usize,
    /// The position of each of the model's features, in model order.
    pub idx: Vec<usize>,
    /// The position of the mid price.
    pub i_mid: usize,
}

/// The header integers of a row (its `kind` is read, to be a number, and not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowHeader {
    /// The feature row's `seq` (its entry ID is `<seq>-0`).
    pub seq: i64,
    /// Its event time, ms.
    pub ts: i64,
    /// The local receive time of the tick that triggered it, ns.
    pub recv_ts_ns: i64,
}

/// The header of a row from its four texts, `None` when one is not an `i64` to Python's
/// `int()`.
pub fn read_header(seq: &[u8], ts: &[u8], recv_ts_ns: &[u8], kind: &[u8]) -> Option<RowHeader> {
    let header = RowHeader {
        seq: parse_py_int(seq).ok()?,
        ts: parse_py_int(ts).ok()?,
        recv_ts_ns: parse_py_int(recv_ts_ns).ok()?,
    };
    parse_py_int(kind).ok()?;
    Some(header)
}

/// The model's inputs (appended to `x`, in model order) and the mid out of a features
/// field; `None` (and `x` as it was) when the field does not have the layout's number of
/// values or a value read is not a float to Python's `float()`. `starts` is scratch space
/// (a caller reading many rows passes the same one).
pub fn read_values(
    field: &[u8],
    layout: &FeatureLayout,
    x: &mut Vec<f64>,
    starts: &mut Vec<usize>,
) -> Option<f64> {
    starts.clear();
    starts.push(0);
    starts.extend(
        field
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c == b',')
            .map(|(i, _)| i + 1),
    );
    if starts.len() != layout.n_values {
        return None;
    }
    let value = |i: usize| -> Option<f64> {
        let start = *starts.get(i)?;
        let end = starts.get(i + 1).map_or(field.len(), |next| next - 1);
        parse_py_float(&field[start..end]).ok()
    };
    let at = x.len();
    for &i in &layout.idx {
        match value(i) {
            Some(v) => x.push(v),
            None => {
                x.truncate(at);
                return None;
            }
        }
    }
    match value(layout.i_mid) {
        Some(mid) => Some(mid),
        None => {
            x.truncate(at);
            None
        }
    }
}

/// What the order checks say of a decoded row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowVerdict {
    /// In order: it is scored.
    Keep,
    /// At or below the last row taken (`last_seq`): already scored.
    Seen {
        /// The last `seq` taken when the row came.
        last_seq: i64,
    },
    /// Its entry ID is not `<seq>-0`.
    IdMismatch,
    /// Its event time is before the last row's (`last_ts`).
    TsDecreasing {
        /// The last event time taken when the row came.
        last_ts: i64,
    },
}

/// The order of the rows taken so far: the last `seq` and event time (`None`: none yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowOrder {
    /// The last row's `seq`.
    pub last_seq: Option<i64>,
    /// The last row's event time.
    pub last_ts: Option<i64>,
}

impl RowOrder {
    /// Check a row (seen, then its ID, then its time) and take it when it passes.
    pub fn check(&mut self, entry_id: &[u8], header: &RowHeader) -> RowVerdict {
        if let Some(last_seq) = self.last_seq {
            if header.seq <= last_seq {
                return RowVerdict::Seen { last_seq };
            }
        }
        if !is_entry_id_of(entry_id, header.seq) {
            return RowVerdict::IdMismatch;
        }
        if let Some(last_ts) = self.last_ts {
            if header.ts < last_ts {
                return RowVerdict::TsDecreasing { last_ts };
            }
        }
        self.last_seq = Some(header.seq);
        self.last_ts = Some(header.ts);
        RowVerdict::Keep
    }
}

/// Whether `entry_id` is `<seq>-0` (`b"%d-0" % seq`).
fn is_entry_id_of(entry_id: &[u8], seq: i64) -> bool {
    entry_id == EntryId::new(seq).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> FeatureLayout {
        FeatureLayout {
            n_values: 4,
            idx: vec![2, 0],
            i_mid: 3,
        }
    }

    #[test]
    fn reads_the_used_values_by_position() {
        let mut x = vec![9.0];
        let mid = read_values(b"1.5,x,-2e-05,100.25", &layout(), &mut x, &mut Vec::new());
        assert_eq!(mid, Some(100.25));
        assert_eq!(x, vec![9.0, -2e-05, 1.5]);
        let mut x = Vec::new();
        assert_eq!(
            read_values(b"nan,1,inf, 7 ", &layout(), &mut x, &mut Vec::new()),
            Some(7.0)
        );
        assert!(x[1].is_nan() && x[0].is_infinite());
    }

    #[test]
    fn leaves_a_field_it_cannot_read_as_it_was() {
        for field in [
            &b"1,2,3"[..],
            b"1,2,3,4,5",
            b"1,2,abc,4",
            b"1,2,3,--4",
            b"",
            b"1,2,3,",
        ] {
            let mut x = vec![1.0];
            assert_eq!(
                read_values(field, &layout(), &mut x, &mut Vec::new()),
                None,
                "{field:?}"
            );
            assert_eq!(x, vec![1.0]);
        }
        // an unused value that is not a number does not matter
        let mut x = Vec::new();
        assert_eq!(
            read_values(b"1,junk,3,4", &layout(), &mut x, &mut Vec::new()),
            Some(4.0)
        );
    }

    #[test]
    fn reads_headers_like_python_int() {
        assert_eq!(
            read_header(b"0012", b" 5 ", b"1_000", b"+1"),
            Some(RowHeader {
                seq: 12,
                ts: 5,
                recv_ts_ns: 1000
            })
        );
        assert_eq!(read_header(b"1", b"2", b"3", b"trade"), None);
        assert_eq!(read_header(b"1.5", b"2", b"3", b"0"), None);
        assert_eq!(read_header(b"99999999999999999999", b"2", b"3", b"0"), None);
    }

    #[test]
    fn checks_seen_then_id_then_time() {
        let h = |seq, ts| RowHeader {
            seq,
            ts,
            recv_ts_ns: 0,
        };
        let mut order = RowOrder::default();
        assert_eq!(order.check(b"10-0", &h(10, 100)), RowVerdict::Keep);
        assert_eq!(
            order.check(b"9-1", &h(9, 50)),
            RowVerdict::Seen { last_seq: 10 }
        );
        assert_eq!(order.check(b"11-1", &h(11, 50)), RowVerdict::IdMismatch);
        assert_eq!(order.check(b"011-0", &h(11, 200)), RowVerdict::IdMismatch);
        assert_eq!(
            order.check(b"11-0", &h(11, 99)),
            RowVerdict::TsDecreasing { last_ts: 100 }
        );
        assert_eq!(
            order.check(b"-3-0", &h(-3, 100)),
            RowVerdict::Seen { last_seq: 10 }
        );
        assert_eq!(order.check(b"12-0", &h(12, 100)), RowVerdict::Keep);
        assert_eq!(
            order,
            RowOrder {
                last_seq: Some(12),
                last_ts: Some(100)
            }
        );
        let mut fresh = RowOrder::default();
        assert_eq!(fresh.check(b"-3-0", &h(-3, -5)), RowVerdict::Keep);
    }
}
