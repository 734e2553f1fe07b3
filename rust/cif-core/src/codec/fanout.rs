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
}
