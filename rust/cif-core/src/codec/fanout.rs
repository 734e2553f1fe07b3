//! The gateway's stream entries (`trades:{symbol}`, `book:{symbol}`) pre-packed as RESP.
//!
//! An entry is packed as the arguments of one `XADD` inside the gateway's batch script:
//! the entry ID, the field count, then `name value` pairs, each a RESP bulk string. Values
//! follow the Python encoder's rules (`%d` for integers, `repr` for doubles, text as is), so
//! the stored bytes are exactly those of the field-by-field encoder this replaces: every
//! consumer (feature processor, API, replay) reads the same entries.
//!
//! Why in Rust: the gateway builds one entry per trade and per book event on the event loop
//! that also runs the rest of the pipeline; a dict per entry and a Python loop over its
//! fields were the largest single cost of ingest.

use crate::ingest::Trade;

use super::repr::{py_repr_f64, write_i64};

/// Field names of a `trades:{symbol}` entry, in order.
pub const TRADE_FIELDS: [&str; 9] = [
    "seq",
    "trade_id",
    "ts",
    "event_ts",
    "recv_ts_ns",
    "price",
    "qty",
    "side",
    "backfilled",
];

/// Field names of a `book:{symbol}` entry, in order.
pub const BOOK_FIELDS: [&str; 12] = [
    "seq",
    "update_id",
    "event_ts",
    "recv_ts_ns",
    "source",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "book_update_id",
    "bids",
    "asks",
];

/// One book event's fields (the depth sides already as their JSON text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookEntry<'a> {
    /// Ingest sequence number (also the entry ID: `<seq>-0`).
    pub seq: i64,
    /// Order-book update id the L1 is at.
    pub update_id: i64,
    /// Exchange time (ms) the event is stamped with.
    pub event_ts: i64,
    /// Local receive time (ns since the epoch).
    pub recv_ts_ns: i64,
    /// `ticker`, `depth` or `snapshot`.
    pub source: &'a str,
    /// Best bid price.
    pub bid_price: f64,
    /// Best bid size.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask_price: f64,
    /// Best ask size.
    pub ask_qty: f64,
    /// Update id of the attached depth (0 while the book is not synced).
    pub book_update_id: i64,
    /// Top bids as JSON `[[price,qty],...]`.
    pub bids_json: &'a str,
    /// Top asks as JSON `[[price,qty],...]`.
    pub asks_json: &'a str,
}

/// Appends `$<len>\r\n<data>\r\n`.
pub fn write_bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    write_i64(data.len() as i64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends one `XADD` in RESP: the array header, `head` (`XADD <key> MAXLEN ~ <n>` as bulk
/// strings), then the entry `body` (`<id> <n> <name> <value>...` bulk strings, as the
/// packers here and the services build it) less its field count, which `XADD` does not
/// take. `body` must hold exactly `n_fields` pairs after that count; an error otherwise,
/// with nothing appended.
pub fn pack_xadd(
    out: &mut Vec<u8>,
    head: &[u8],
    body: &[u8],
    n_fields: usize,
) -> Result<(), XaddBodyError> {
    let (id_end, count_end) = split_body(body, n_fields).ok_or(XaddBodyError { n_fields })?;
    out.push(b'*');
    write_i64(6 + 2 * n_fields as i64, out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(head);
    out.extend_from_slice(&body[..id_end]);
    out.extend_from_slice(&body[count_end..]);
    Ok(())
}

/// A body that does not start with an ID bulk and the field count `n_fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XaddBodyError {
    /// The field count the caller gave.
    pub n_fields: usize,
}

impl std::fmt::Display for XaddBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an entry body must start with an ID bulk string and the field count {}",
            self.n_fields
        )
    }
}

impl std::error::Error for XaddBodyError {}

/// The ends of the ID bulk and of the count bulk at the start of `body`, if the count is
/// `n_fields`.
fn split_body(body: &[u8], n_fields: usize) -> Option<(usize, usize)> {
    let (_, id_end) = read_bulk(body, 0)?;
    let (count, count_end) = read_bulk(body, id_end)?;
    // `%d` of the count: digits only, no leading zero (no allocation: this runs per entry)
    let canonical = count.len() == 1 || count.first() != Some(&b'0');
    let value: usize = std::str::from_utf8(count).ok()?.parse().ok()?;
    (canonical && count.iter().all(u8::is_ascii_digit) && value == n_fields)
        .then_some((id_end, count_end))
}

/// The bulk string at `at`: its data and the offset after it.
fn read_bulk(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?.strip_prefix(b"$")?;
    let digits_len = rest.iter().position(|&c| c == b'\r')?;
    let digits = &rest[..digits_len];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let start = at + 1 + digits_len + 2;
    let end = start.checked_add(len)?;
    if b.get(start - 2..start)? != b"\r\n" || b.get(end..end + 2)? != b"\r\n" {
        return None;
    }
    Some((&b[start..end], end + 2))
}

/// Builds one entry: ID, field count, then the fields in the order they are added.
struct EntryPacker<'a> {
    out: &'a mut Vec<u8>,
    scratch: Vec<u8>,
}

impl<'a> EntryPacker<'a> {
    fn start(out: &'a mut Vec<u8>, id: i64, n_fields: usize) -> Self {
        let mut scratch = Vec::with_capacity(32);
        write_i64(id, &mut scratch);
        scratch.extend_from_slice(b"-0");
        write_bulk(out, &scratch);
        scratch.clear();
        write_i64(n_fields as i64, &mut scratch);
        write_bulk(out, &scratch);
        Self { out, scratch }
    }

    fn text(&mut self, name: &str, value: &[u8]) {
        write_bulk(self.out, name.as_bytes());
        write_bulk(self.out, value);
    }

    fn int(&mut self, name: &str, value: i64) {
        self.scratch.clear();
        write_i64(value, &mut self.scratch);
        write_bulk(self.out, name.as_bytes());
        write_bulk(self.out, &self.scratch);
    }

    fn float(&mut self, name: &str, value: f64) {
        self.scratch.clear();
        py_repr_f64(value, &mut self.scratch);
        write_bulk(self.out, name.as_bytes());
        write_bulk(self.out, &self.scratch);
    }
}

/// Appends the `trades:{symbol}` entry of a released trade (ID `<trade id>-0`).
pub fn pack_trade_entry(out: &mut Vec<u8>, trade: &Trade, seq: i64, backfilled: bool) {
    let f = &TRADE_FIELDS;
    let mut p = EntryPacker::start(out, trade.trade_id, f.len());
    p.int(f[0], seq);
    p.int(f[1], trade.trade_id);
    p.int(f[2], trade.trade_time_ms);
    p.int(f[3], trade.event_time_ms);
    p.int(f[4], trade.recv_time_ns);
    p.float(f[5], trade.price);
    p.float(f[6], trade.qty);
    p.text(f[7], trade.side.as_str().as_bytes());
    p.int(f[8], i64::from(backfilled));
}

/// Appends the `book:{symbol}` entry of a book event (ID `<seq>-0`).
pub fn pack_book_entry(out: &mut Vec<u8>, e: &BookEntry<'_>) {
    let f = &BOOK_FIELDS;
    let mut p = EntryPacker::start(out, e.seq, f.len());
    p.int(f[0], e.seq);
    p.int(f[1], e.update_id);
    p.int(f[2], e.event_ts);
    p.int(f[3], e.recv_ts_ns);
    p.text(f[4], e.source.as_bytes());
    p.float(f[5], e.bid_price);
    p.float(f[6], e.bid_qty);
    p.float(f[7], e.ask_price);
    p.float(f[8], e.ask_qty);
    p.int(f[9], e.book_update_id);
    p.text(f[10], e.bids_json.as_bytes());
    p.text(f[11], e.asks_json.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Side, Symbol};

    fn bulks(parts: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            write_bulk(&mut out, p.as_bytes());
        }
        out
    }

    #[test]
    fn trade_entry_matches_the_field_encoder() {
        let trade = Trade {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            trade_id: 12345,
            event_time_ms: 1_700_000_000_001,
            trade_time_ms: 1_700_000_000_000,
            price: 43_250.1,
            qty: 0.00012,
            side: Side::Sell,
            is_buyer_maker: true,
            recv_time_ns: 1_700_000_000_002_000_123,
        };
        let mut out = Vec::new();
        pack_trade_entry(&mut out, &trade, 77, true);
        let want = bulks(&[
            "12345-0",
            "9",
            "seq",
            "77",
            "trade_id",
            "12345",
            "ts",
            "1700000000000",
            "event_ts",
            "1700000000001",
            "recv_ts_ns",
            "1700000000002000123",
            "price",
            "43250.1",
            "qty",
            "0.00012",
            "side",
            "sell",
            "backfilled",
            "1",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn book_entry_matches_the_field_encoder() {
        let e = BookEntry {
            seq: 9,
            update_id: 100,
            event_ts: -1,
            recv_ts_ns: 5,
            source: "ticker",
            bid_price: 1.0,
            bid_qty: 1e-05,
            ask_price: 2.5,
            ask_qty: 1e16,
            book_update_id: 0,
            bids_json: "[]",
            asks_json: "[[2.5,1.0]]",
        };
        let mut out = Vec::new();
        pack_book_entry(&mut out, &e);
        let want = bulks(&[
            "9-0",
            "12",
            "seq",
            "9",
            "update_id",
            "100",
            "event_ts",
            "-1",
            "recv_ts_ns",
            "5",
            "source",
            "ticker",
            "bid_price",
            "1.0",
            "bid_qty",
            "1e-05",
            "ask_price",
            "2.5",
            "ask_qty",
            "1e+16",
            "book_update_id",
            "0",
            "bids",
            "[]",
            "asks",
            "[[2.5,1.0]]",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
    }

    #[test]
    fn an_xadd_is_the_head_then_the_body_without_its_count() {
        let body = bulks(&["7-0", "2", "a", "1", "b", "xy"]);
        let head = bulks(&["XADD", "k", "MAXLEN", "~", "100"]);
        let mut out = b"junk".to_vec();
        pack_xadd(&mut out, &head, &body, 2).unwrap();
        let mut want = b"junk*10\r\n".to_vec();
        want.extend(bulks(&[
            "XADD", "k", "MAXLEN", "~", "100", "7-0", "a", "1", "b", "xy",
        ]));
        assert_eq!(out, want);
    }

    #[test]
    fn a_body_without_its_count_is_refused_and_nothing_appended() {
        let mut out = Vec::new();
        for (body, n) in [
            (bulks(&["7-0", "3", "a", "1"]), 2),
            (bulks(&["7-0"]), 0),
            (b"$3\r\n7-0\r\n$1\r\n2".to_vec(), 2),
            (b"$9\r\n7-0\r\n$1\r\n2\r\n".to_vec(), 2),
            (b"7-0".to_vec(), 2),
            (bulks(&["7-0", "02", "a", "1", "b", "2"]), 2),
            (bulks(&["7-0", "+2", "a", "1", "b", "2"]), 2),
            (Vec::new(), 0),
        ] {
            assert_eq!(
                pack_xadd(&mut out, b"H", &body, n),
                Err(XaddBodyError { n_fields: n })
            );
        }
        assert!(out.is_empty());
    }
}
