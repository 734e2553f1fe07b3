//! Many frames in, columnar tables out: the batch form of [`parse_frame`].
//!
//! Every frame goes through the same [`parse_frame`] as the live path, so a batch row equals
//! the event the single-frame call returns. A bad frame becomes a row of `errors` (frame
//! index, reason, message) and never stops the batch.

use std::collections::HashMap;

use super::error::ParseError;
use super::events::{Event, Level};
use super::frame::parse_frame;
use super::symbol::Symbol;

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// 64-bit integers (ids, times, frame indices).
    I64(Vec<i64>),
    /// 32-bit integers (symbol codes).
    I32(Vec<i32>),
    /// 8-bit integers (sides, reason codes).
    I8(Vec<i8>),
    /// Doubles (prices, quantities).
    F64(Vec<f64>),
    /// Booleans.
    Bool(Vec<bool>),
}

/// A named column list, in a stable order.
pub type Columns = Vec<(&'static str, Column)>;

/// Trades, one row per trade.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TradeColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Symbol code (index into [`FrameBatch::symbols`]).
    pub symbol: Vec<i32>,
    /// Trade id.
    pub trade_id: Vec<i64>,
    /// Exchange event time (ms).
    pub event_time_ms: Vec<i64>,
    /// Trade time (ms).
    pub trade_time_ms: Vec<i64>,
    /// Price.
    pub price: Vec<f64>,
    /// Quantity.
    pub qty: Vec<f64>,
    /// +1 buy, -1 sell (aggressor).
    pub side: Vec<i8>,
    /// Binance `m`.
    pub is_buyer_maker: Vec<bool>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
}

/// Aggregate trades.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AggTradeColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Symbol code.
    pub symbol: Vec<i32>,
    /// Aggregate trade id.
    pub agg_trade_id: Vec<i64>,
    /// First trade id.
    pub first_trade_id: Vec<i64>,
    /// Last trade id.
    pub last_trade_id: Vec<i64>,
    /// Exchange event time (ms).
    pub event_time_ms: Vec<i64>,
    /// Trade time (ms).
    pub trade_time_ms: Vec<i64>,
    /// Price.
    pub price: Vec<f64>,
    /// Quantity.
    pub qty: Vec<f64>,
    /// +1 buy, -1 sell.
    pub side: Vec<i8>,
    /// Binance `m`.
    pub is_buyer_maker: Vec<bool>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
}

/// Diff-depth events; their levels are rows `[level_start, level_end)` of the level table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DepthUpdateColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Symbol code.
    pub symbol: Vec<i32>,
    /// Exchange event time (ms).
    pub event_time_ms: Vec<i64>,
    /// First update id `U`.
    pub first_update_id: Vec<i64>,
    /// Final update id `u`.
    pub final_update_id: Vec<i64>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
    /// First level row.
    pub level_start: Vec<i64>,
    /// One past the last level row.
    pub level_end: Vec<i64>,
}

/// Snapshots; levels as for depth updates.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DepthSnapshotColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Symbol code.
    pub symbol: Vec<i32>,
    /// `lastUpdateId`.
    pub last_update_id: Vec<i64>,
    /// Exchange time (ms), -1 when the source has none.
    pub event_time_ms: Vec<i64>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
    /// First level row.
    pub level_start: Vec<i64>,
    /// One past the last level row.
    pub level_end: Vec<i64>,
}

/// Price levels of depth updates and snapshots, bids before asks within each event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LevelColumns {
    /// +1 bid, -1 ask.
    pub side: Vec<i8>,
    /// Price.
    pub price: Vec<f64>,
    /// Quantity (0 removes the level in a diff).
    pub qty: Vec<f64>,
}

/// Best bid/ask events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BookTickerColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Symbol code.
    pub symbol: Vec<i32>,
    /// Update id `u`.
    pub update_id: Vec<i64>,
    /// Exchange time (ms), -1 when absent (spot).
    pub event_time_ms: Vec<i64>,
    /// Best bid price.
    pub bid_price: Vec<f64>,
    /// Best bid quantity.
    pub bid_qty: Vec<f64>,
    /// Best ask price.
    pub ask_price: Vec<f64>,
    /// Best ask quantity.
    pub ask_qty: Vec<f64>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
}

/// Server shutdown notices.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ShutdownColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// Exchange event time (ms).
    pub event_time_ms: Vec<i64>,
    /// Local receive time (ns).
    pub recv_time_ns: Vec<i64>,
}

/// Rejected frames.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorColumns {
    /// Source frame index.
    pub frame: Vec<i64>,
    /// [`super::ErrorKind`] as its `reason_code`.
    pub reason_code: Vec<i8>,
    /// The error message.
    pub message: Vec<String>,
}

/// The columnar result of a batch parse.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameBatch {
    /// Frames (or capture lines) consumed, including bad ones.
    pub n_frames: usize,
    /// Symbol table: codes in the tables index into it, in order of first appearance.
    pub symbols: Vec<Symbol>,
    /// Trades.
    pub trades: TradeColumns,
    /// Aggregate trades.
    pub agg_trades: AggTradeColumns,
    /// Diff-depth events.
    pub depth_updates: DepthUpdateColumns,
    /// Snapshots.
    pub depth_snapshots: DepthSnapshotColumns,
    /// Levels of depth updates and snapshots.
    pub levels: LevelColumns,
    /// Best bid/ask events.
    pub book_tickers: BookTickerColumns,
    /// Server shutdown notices.
    pub shutdowns: ShutdownColumns,
    /// Rejected frames.
    pub errors: ErrorColumns,
    symbol_codes: HashMap<Symbol, i32>,
    last_symbol: Option<(Symbol, i32)>,
}

impl FrameBatch {
    fn code(&mut self, s: Symbol) -> i32 {
        // Consecutive frames are mostly the same symbol: skip the map then.
        if let Some((last, code)) = self.last_symbol {
            if last == s {
                return code;
            }
        }
        let next = self.symbols.len() as i32;
        let code = *self.symbol_codes.entry(s).or_insert(next);
        if code == next {
            self.symbols.push(s);
        }
        self.last_symbol = Some((s, code));
        code
    }

    fn push_levels(&mut self, bids: &[Level], asks: &[Level]) -> (i64, i64) {
        let start = self.levels.price.len() as i64;
        for (sign, side) in [(1i8, bids), (-1i8, asks)] {
            for l in side {
                self.levels.side.push(sign);
                self.levels.price.push(l.price);
                self.levels.qty.push(l.qty);
            }
        }
        (start, self.levels.price.len() as i64)
    }

    /// Append one parse result for frame `frame`.
    pub fn push(&mut self, frame: usize, result: Result<Event, ParseError>) {
        let fr = frame as i64;
        match result {
            Ok(Event::Trade(t)) => {
                let sym = self.code(t.symbol);
                let c = &mut self.trades;
                c.frame.push(fr);
                c.symbol.push(sym);
                c.trade_id.push(t.trade_id);
                c.event_time_ms.push(t.event_time_ms);
                c.trade_time_ms.push(t.trade_time_ms);
                c.price.push(t.price);
                c.qty.push(t.qty);
                c.side.push(t.side.sign());
                c.is_buyer_maker.push(t.is_buyer_maker);
                c.recv_time_ns.push(t.recv_time_ns);
            }
            Ok(Event::AggTrade(t)) => {
                let sym = self.code(t.symbol);
                let c = &mut self.agg_trades;
                c.frame.push(fr);
                c.symbol.push(sym);
                c.agg_trade_id.push(t.agg_trade_id);
                c.first_trade_id.push(t.first_trade_id);
                c.last_trade_id.push(t.last_trade_id);
                c.event_time_ms.push(t.event_time_ms);
                c.trade_time_ms.push(t.trade_time_ms);
                c.price.push(t.price);
                c.qty.push(t.qty);
                c.side.push(t.side.sign());
                c.is_buyer_maker.push(t.is_buyer_maker);
                c.recv_time_ns.push(t.recv_time_ns);
            }
            Ok(Event::DepthUpdate(d)) => {
                let sym = self.code(d.symbol);
                let (start, end) = self.push_levels(&d.bids, &d.asks);
                let c = &mut self.depth_updates;
                c.frame.push(fr);
                c.symbol.push(sym);
                c.event_time_ms.push(d.event_time_ms);
                c.first_update_id.push(d.first_update_id);
                c.final_update_id.push(d.final_update_id);
                c.recv_time_ns.push(d.recv_time_ns);
                c.level_start.push(start);
                c.level_end.push(end);
            }
            Ok(Event::DepthSnapshot(s)) => {
                let sym = self.code(s.symbol);
                let (start, end) = self.push_levels(&s.bids, &s.asks);
                let c = &mut self.depth_snapshots;
                c.frame.push(fr);
                c.symbol.push(sym);
                c.last_update_id.push(s.last_update_id);
                c.event_time_ms.push(s.event_time_ms.unwrap_or(-1));
                c.recv_time_ns.push(s.recv_time_ns);
                c.level_start.push(start);
                c.level_end.push(end);
            }
            Ok(Event::BookTicker(b)) => {
                let sym = self.code(b.symbol);
                let c = &mut self.book_tickers;
                c.frame.push(fr);
                c.symbol.push(sym);
                c.update_id.push(b.update_id);
                c.event_time_ms.push(b.event_time_ms.unwrap_or(-1));
                c.bid_price.push(b.bid_price);
                c.bid_qty.push(b.bid_qty);
                c.ask_price.push(b.ask_price);
                c.ask_qty.push(b.ask_qty);
                c.recv_time_ns.push(b.recv_time_ns);
            }
            Ok(Event::ServerShutdown(s)) => {
                let c = &mut self.shutdowns;
                c.frame.push(fr);
                c.event_time_ms.push(s.event_time_ms);
                c.recv_time_ns.push(s.recv_time_ns);
            }
            Err(e) => {
                self.errors.frame.push(fr);
                self.errors.reason_code.push(e.kind as i8);
                self.errors.message.push(e.message.into_owned());
            }
        }
    }

    /// Rows per table, named as in the Python API.
    pub fn counts(&self) -> [(&'static str, usize); 8] {
        [
            ("trades", self.trades.frame.len()),
            ("agg_trades", self.agg_trades.frame.len()),
            ("depth_updates", self.depth_updates.frame.len()),
            ("depth_snapshots", self.depth_snapshots.frame.len()),
            ("levels", self.levels.price.len()),
            ("book_tickers", self.book_tickers.frame.len()),
            ("shutdowns", self.shutdowns.frame.len()),
            ("errors", self.errors.frame.len()),
        ]
    }
}

macro_rules! columns {
    ($ty:ty { $($field:ident : $variant:ident),* $(,)? }) => {
        impl $ty {
            /// The columns, named and ordered as in the Python API.
            pub fn into_columns(self) -> Columns {
                vec![$((stringify!($field), Column::$variant(self.$field))),*]
            }
        }
    };
}

columns!(TradeColumns {
    frame: I64,
    symbol: I32,
    trade_id: I64,
    event_time_ms: I64,
    trade_time_ms: I64,
    price: F64,
    qty: F64,
    side: I8,
    is_buyer_maker: Bool,
    recv_time_ns: I64,
});
columns!(AggTradeColumns {
    frame: I64,
    symbol: I32,
    agg_trade_id: I64,
    first_trade_id: I64,
    last_trade_id: I64,
    event_time_ms: I64,
    trade_time_ms: I64,
    price: F64,
    qty: F64,
    side: I8,
    is_buyer_maker: Bool,
    recv_time_ns: I64,
});
columns!(DepthUpdateColumns {
    frame: I64,
    symbol: I32,
    event_time_ms: I64,
    first_update_id: I64,
    final_update_id: I64,
    recv_time_ns: I64,
    level_start: I64,
    level_end: I64,
});
columns!(DepthSnapshotColumns {
    frame: I64,
    symbol: I32,
    last_update_id: I64,
    event_time_ms: I64,
    recv_time_ns: I64,
    level_start: I64,
    level_end: I64,
});
columns!(LevelColumns {
    side: I8,
    price: F64,
    qty: F64
});
columns!(BookTickerColumns {
    frame: I64,
    symbol: I32,
    update_id: I64,
    event_time_ms: I64,
    bid_price: F64,
    bid_qty: F64,
    ask_price: F64,
    ask_qty: F64,
    recv_time_ns: I64,
});
columns!(ShutdownColumns {
    frame: I64,
    event_time_ms: I64,
    recv_time_ns: I64
});

/// Parse `frames[i]` received at `recv_time_ns[i]`, exactly as [`parse_frame`] would.
///
/// # Panics
/// Never on frame content; the two slices must have the same length (checked by callers,
/// asserted here).
pub fn parse_frames(
    frames: &[&[u8]],
    recv_time_ns: &[i64],
    symbol_hint: Option<Symbol>,
) -> FrameBatch {
    assert_eq!(
        frames.len(),
        recv_time_ns.len(),
        "one receive time per frame"
    );
    let mut batch = FrameBatch {
        n_frames: frames.len(),
        ..FrameBatch::default()
    };
    for (i, (frame, &recv)) in frames.iter().zip(recv_time_ns).enumerate() {
        batch.push(i, parse_frame(frame, recv, symbol_hint));
    }
    batch
}

/// Parse a capture file's text: one `<recv ns> <json>` message per line. The frame index is
/// the 0-based line index; blank lines are counted but produce no row. A REST snapshot line
/// (no symbol of its own) takes the symbol of the last stream frame before it.
pub fn parse_capture(text: &[u8]) -> FrameBatch {
    let mut batch = FrameBatch::default();
    let mut hint: Option<Symbol> = None;
    let mut n_lines = 0;
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        n_lines = i + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result =
            split_capture_line(line).and_then(|(recv, payload)| parse_frame(payload, recv, hint));
        if let Ok(ev) = &result {
            if let Some(s) = ev.symbol() {
                hint = Some(s);
            }
        }
        batch.push(i, result);
    }
    // A trailing newline does not make another line.
    if text.is_empty() || text.ends_with(b"\n") {
        n_lines = n_lines.saturating_sub(1);
    }
    batch.n_frames = n_lines;
    batch
}

fn split_capture_line(line: &[u8]) -> Result<(i64, &[u8]), ParseError> {
    let space = line.iter().position(|&c| c == b' ');
    let bad = || {
        ParseError::malformed(format!(
            "capture line must be '<recv ns> <json>', got {:?}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        ))
    };
    let space = space.ok_or_else(bad)?;
    let ts = &line[..space];
    if ts.is_empty() || !ts.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let recv = std::str::from_utf8(ts)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(bad)?;
    Ok((recv, &line[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::error::ErrorKind;

    #[test]
    fn capture_lines_and_errors() {
        let text = b"1 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":2,\"s\":\"BTCUSDT\",\"t\":10,\"p\":\"1.5\",\"q\":\"2\",\"T\":2,\"m\":false,\"M\":true}}\n\
                     \n\
                     2 {\"lastUpdateId\":4,\"bids\":[[\"1.4\",\"1\"]],\"asks\":[[\"1.6\",\"1\"]]}\n\
                     garbage\n\
                     3 {\"u\":5,\"s\":\"BTCUSDT\",\"b\":\"1.4\",\"B\":\"1\",\"a\":\"1.6\",\"A\":\"2\"}\n";
        let b = parse_capture(text);
        assert_eq!(b.n_frames, 5);
        assert_eq!(b.trades.trade_id, vec![10]);
        assert_eq!(b.trades.side, vec![1]);
        assert_eq!(b.depth_snapshots.frame, vec![2]);
        assert_eq!(b.depth_snapshots.symbol, vec![0]);
        assert_eq!(b.levels.side, vec![1, -1]);
        assert_eq!(b.book_tickers.frame, vec![4]);
        assert_eq!(b.book_tickers.event_time_ms, vec![-1]);
        assert_eq!(b.errors.frame, vec![3]);
        assert_eq!(b.errors.reason_code, vec![ErrorKind::MalformedFrame as i8]);
        assert_eq!(b.symbols.len(), 1);
    }

    #[test]
    fn symbol_codes_follow_first_appearance() {
        let mk = |s: &str, t: i64| {
            format!(r#"{{"e":"trade","E":1,"s":"{s}","t":{t},"p":"1","q":"1","T":1,"m":true}}"#)
        };
        let frames = [mk("ETHUSDT", 1), mk("BTCUSDT", 2), mk("ETHUSDT", 3)];
        let refs: Vec<&[u8]> = frames.iter().map(|f| f.as_bytes()).collect();
        let b = parse_frames(&refs, &[0, 0, 0], None);
        assert_eq!(b.trades.symbol, vec![0, 1, 0]);
        assert_eq!(b.symbols[0].as_str(), "ETHUSDT");
    }
}
