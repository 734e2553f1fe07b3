//! The live writer's rows, column by column.
//!
//! The gateway queues every stored event; a flush turns the queue into one column list per
//! DuckDB table and inserts each table in one statement. Building those columns is per-row
//! work, so it lives here rather than in Python, where it held the interpreter for
//! 7–20 ms per flush on the DuckDB thread while the event loop waited for it.
//!
//! The layout is the one imports store (see `cif.store.schema`): a depth event's levels are
//! its bids then its asks, `pos` counting across both; a ticker without an exchange time
//! stores `event_ts` −1 (the writer turns it into NULL). Short texts (symbols, sides,
//! sources) are codes into a per-column list of values, in first-seen order.

use crate::codec::BookEntry;
use crate::ingest::batch::Column;
use crate::ingest::{BookTicker, DepthSnapshot, DepthUpdate, Level, Trade};

/// One column of a table, ready to become a NumPy array.
#[derive(Debug, Clone, PartialEq)]
pub enum TableColumn {
    /// Numbers (ids, times, `seq`, level positions, prices, quantities, flags).
    Num(Column),
    /// Texts as `codes` into `values` (each value once).
    Text {
        /// One code per row: an index into `values`.
        codes: Vec<u32>,
        /// The distinct texts, in first-seen order.
        values: Vec<String>,
    },
}

/// A text column under construction: a few distinct values, many rows.
#[derive(Debug, Default, Clone)]
struct Texts {
    codes: Vec<u32>,
    values: Vec<String>,
    last: Option<u32>,
}

impl Texts {
    /// Appends `text`; `upper` compares and stores it in ASCII upper case (book events
    /// carry the symbol in lower case, the tables store it in upper case).
    fn push(&mut self, text: &str, upper: bool) {
        let same = |v: &String| {
            if upper {
                v.eq_ignore_ascii_case(text)
            } else {
                v == text
            }
        };
        // Rows come in runs of one value (one symbol per gateway shard, one side per
        // level list): the last value is tried first.
        let code = match self.last {
            Some(c) if same(&self.values[c as usize]) => c,
            _ => {
                let c = match self.values.iter().position(same) {
                    Some(i) => i as u32,
                    None => {
                        self.values.push(if upper {
                            text.to_ascii_uppercase()
                        } else {
                            text.to_string()
                        });
                        (self.values.len() - 1) as u32
                    }
                };
                self.last = Some(c);
                c
            }
        };
        self.codes.push(code);
    }

    fn into_column(self) -> TableColumn {
        TableColumn::Text {
            codes: self.codes,
            values: self.values,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct TradeRows {
    symbol: Texts,
    trade_id: Vec<i64>,
    ts: Vec<i64>,
    event_ts: Vec<i64>,
    recv_ts_ns: Vec<i64>,
    price: Vec<f64>,
    qty: Vec<f64>,
    side: Texts,
    backfilled: Vec<bool>,
    seq: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct TickerRows {
    symbol: Texts,
    update_id: Vec<i64>,
    event_ts: Vec<i64>,
    recv_ts_ns: Vec<i64>,
    bid_price: Vec<f64>,
    bid_qty: Vec<f64>,
    ask_price: Vec<f64>,
    ask_qty: Vec<f64>,
    seq: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct UpdateRows {
    symbol: Texts,
    first_update_id: Vec<i64>,
    final_update_id: Vec<i64>,
    event_ts: Vec<i64>,
    recv_ts_ns: Vec<i64>,
    seq: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct SnapshotRows {
    symbol: Texts,
    last_update_id: Vec<i64>,
    recv_ts_ns: Vec<i64>,
    seq: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct LevelRows {
    symbol: Texts,
    source: Texts,
    update_id: Vec<i64>,
    pos: Vec<i32>,
    side: Texts,
    price: Vec<f64>,
    qty: Vec<f64>,
    seq: Vec<i64>,
}

#[derive(Debug, Default, Clone)]
struct BookEventRows {
    symbol: Texts,
    seq: Vec<i64>,
    update_id: Vec<i64>,
    event_ts: Vec<i64>,
    recv_ts_ns: Vec<i64>,
    source: Texts,
    bid_price: Vec<f64>,
    bid_qty: Vec<f64>,
    ask_price: Vec<f64>,
    ask_qty: Vec<f64>,
    book_update_id: Vec<i64>,
}

/// The rows of one flush, per table.
#[derive(Debug, Default, Clone)]
pub struct LiveRows {
    trades: TradeRows,
    tickers: TickerRows,
    updates: UpdateRows,
    snapshots: SnapshotRows,
    levels: LevelRows,
    book_events: BookEventRows,
}

impl LiveRows {
    /// No rows yet.
    pub fn new() -> LiveRows {
        LiveRows::default()
    }

    /// A trade (`backfilled`: it came from REST to fill a gap).
    pub fn push_trade(&mut self, t: &Trade, seq: i64, backfilled: bool) {
        let r = &mut self.trades;
        r.symbol.push(t.symbol.as_str(), false);
        r.trade_id.push(t.trade_id);
        r.ts.push(t.trade_time_ms);
        r.event_ts.push(t.event_time_ms);
        r.recv_ts_ns.push(t.recv_time_ns);
        r.price.push(t.price);
        r.qty.push(t.qty);
        r.side.push(t.side.as_str(), false);
        r.backfilled.push(backfilled);
        r.seq.push(seq);
    }

    /// A best bid/ask update.
    pub fn push_book_ticker(&mut self, t: &BookTicker, seq: i64) {
        let r = &mut self.tickers;
        r.symbol.push(t.symbol.as_str(), false);
        r.update_id.push(t.update_id);
        r.event_ts.push(t.event_time_ms.unwrap_or(-1));
        r.recv_ts_ns.push(t.recv_time_ns);
        r.bid_price.push(t.bid_price);
        r.bid_qty.push(t.bid_qty);
        r.ask_price.push(t.ask_price);
        r.ask_qty.push(t.ask_qty);
        r.seq.push(seq);
    }

    /// A diff-depth event and its levels.
    pub fn push_depth_update(&mut self, u: &DepthUpdate, seq: i64) {
        let r = &mut self.updates;
        r.symbol.push(u.symbol.as_str(), false);
        r.first_update_id.push(u.first_update_id);
        r.final_update_id.push(u.final_update_id);
        r.event_ts.push(u.event_time_ms);
        r.recv_ts_ns.push(u.recv_time_ns);
        r.seq.push(seq);
        self.push_levels(
            u.symbol.as_str(),
            "diff",
            u.final_update_id,
            &u.bids,
            &u.asks,
            seq,
        );
    }

    /// A depth snapshot and its levels.
    pub fn push_depth_snapshot(&mut self, s: &DepthSnapshot, seq: i64) {
        let r = &mut self.snapshots;
        r.symbol.push(s.symbol.as_str(), false);
        r.last_update_id.push(s.last_update_id);
        r.recv_ts_ns.push(s.recv_time_ns);
        r.seq.push(seq);
        self.push_levels(
            s.symbol.as_str(),
            "snapshot",
            s.last_update_id,
            &s.bids,
            &s.asks,
            seq,
        );
    }

    fn push_levels(
        &mut self,
        symbol: &str,
        source: &str,
        update_id: i64,
        bids: &[Level],
        asks: &[Level],
        seq: i64,
    ) {
        let r = &mut self.levels;
        let sides = bids
            .iter()
            .map(|l| ("bid", l))
            .chain(asks.iter().map(|l| ("ask", l)));
        for (pos, (side, level)) in sides.enumerate() {
            r.symbol.push(symbol, false);
            r.source.push(source, false);
            r.update_id.push(update_id);
            // A depth event has at most a few thousand levels (the REST limit is 5,000).
            r.pos.push(i32::try_from(pos).unwrap_or(i32::MAX));
            r.side.push(side, false);
            r.price.push(level.price);
            r.qty.push(level.qty);
            r.seq.push(seq);
        }
    }

    /// A derived book event of `symbol` (any case; stored upper case). Its depth sides'
    /// JSON columns are the caller's: they are already texts, shared between events and
    /// sinks, so the caller hands them over as they are.
    pub fn push_book_event(&mut self, symbol: &str, e: &BookEntry<'_>) {
        let r = &mut self.book_events;
        r.symbol.push(symbol, true);
        r.seq.push(e.seq);
        r.update_id.push(e.update_id);
        r.event_ts.push(e.event_ts);
        r.recv_ts_ns.push(e.recv_ts_ns);
        r.source.push(e.source, false);
        r.bid_price.push(e.bid_price);
        r.bid_qty.push(e.bid_qty);
        r.ask_price.push(e.ask_price);
        r.ask_qty.push(e.ask_qty);
        r.book_update_id.push(e.book_update_id);
    }

    /// Rows per table, in [`LiveRows::into_tables`] order (levels count one row each).
    pub fn counts(&self) -> [usize; 6] {
        [
            self.trades.seq.len(),
            self.tickers.seq.len(),
            self.updates.seq.len(),
            self.snapshots.seq.len(),
            self.levels.seq.len(),
            self.book_events.seq.len(),
        ]
    }

    /// Every table's columns (name, column): `trades`, `book_tickers`, `depth_updates`,
    /// `depth_snapshots`, `depth_levels` and `book_events` (the order of
    /// `cif.store.schema.TABLES`), columns in each table's order. `book_events` lacks its
    /// last two columns, `bids` and `asks`.
    pub fn into_tables(self) -> Vec<(&'static str, Vec<(&'static str, TableColumn)>)> {
        fn int64(v: Vec<i64>) -> TableColumn {
            TableColumn::Num(Column::I64(v))
        }
        fn float64(v: Vec<f64>) -> TableColumn {
            TableColumn::Num(Column::F64(v))
        }
        let t = self.trades;
        let k = self.tickers;
        let u = self.updates;
        let s = self.snapshots;
        let l = self.levels;
        let b = self.book_events;
        vec![
            (
                "trades",
                vec![
                    ("symbol", t.symbol.into_column()),
                    ("trade_id", int64(t.trade_id)),
                    ("ts", int64(t.ts)),
                    ("event_ts", int64(t.event_ts)),
                    ("recv_ts_ns", int64(t.recv_ts_ns)),
                    ("price", float64(t.price)),
                    ("qty", float64(t.qty)),
                    ("side", t.side.into_column()),
                    ("backfilled", TableColumn::Num(Column::Bool(t.backfilled))),
                    ("seq", int64(t.seq)),
                ],
            ),
            (
                "book_tickers",
                vec![
                    ("symbol", k.symbol.into_column()),
                    ("update_id", int64(k.update_id)),
                    ("event_ts", int64(k.event_ts)),
                    ("recv_ts_ns", int64(k.recv_ts_ns)),
                    ("bid_price", float64(k.bid_price)),
                    ("bid_qty", float64(k.bid_qty)),
                    ("ask_price", float64(k.ask_price)),
                    ("ask_qty", float64(k.ask_qty)),
                    ("seq", int64(k.seq)),
                ],
            ),
            (
                "depth_updates",
                vec![
                    ("symbol", u.symbol.into_column()),
                    ("first_update_id", int64(u.first_update_id)),
                    ("final_update_id", int64(u.final_update_id)),
                    ("event_ts", int64(u.event_ts)),
                    ("recv_ts_ns", int64(u.recv_ts_ns)),
                    ("seq", int64(u.seq)),
                ],
            ),
            (
                "depth_snapshots",
                vec![
                    ("symbol", s.symbol.into_column()),
                    ("last_update_id", int64(s.last_update_id)),
                    ("recv_ts_ns", int64(s.recv_ts_ns)),
                    ("seq", int64(s.seq)),
                ],
            ),
            (
                "depth_levels",
                vec![
                    ("symbol", l.symbol.into_column()),
                    ("source", l.source.into_column()),
                    ("update_id", int64(l.update_id)),
                    ("pos", TableColumn::Num(Column::I32(l.pos))),
                    ("side", l.side.into_column()),
                    ("price", float64(l.price)),
                    ("qty", float64(l.qty)),
                    ("seq", int64(l.seq)),
                ],
            ),
            (
                "book_events",
                vec![
                    ("symbol", b.symbol.into_column()),
                    ("seq", int64(b.seq)),
                    ("update_id", int64(b.update_id)),
                    ("event_ts", int64(b.event_ts)),
                    ("recv_ts_ns", int64(b.recv_ts_ns)),
                    ("source", b.source.into_column()),
                    ("bid_price", float64(b.bid_price)),
                    ("bid_qty", float64(b.bid_qty)),
                    ("ask_price", float64(b.ask_price)),
                    ("ask_qty", float64(b.ask_qty)),
                    ("book_update_id", int64(b.book_update_id)),
                ],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Side, Symbol};

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    fn column<'a>(
        tables: &'a [(&'static str, Vec<(&'static str, TableColumn)>)],
        table: &str,
        name: &str,
    ) -> &'a TableColumn {
        let (_, cols) = tables.iter().find(|(t, _)| *t == table).unwrap();
        &cols.iter().find(|(n, _)| *n == name).unwrap().1
    }

    fn texts(col: &TableColumn) -> Vec<String> {
        match col {
            TableColumn::Text { codes, values } => {
                codes.iter().map(|&c| values[c as usize].clone()).collect()
            }
            other => panic!("not a text column: {other:?}"),
        }
    }

    #[test]
    fn levels_are_bids_then_asks_with_pos_counting_across_both() {
        let mut rows = LiveRows::new();
        let update = DepthUpdate {
            symbol: sym("BTCUSDT"),
            event_time_ms: 7,
            first_update_id: 10,
            final_update_id: 12,
            bids: vec![
                Level {
                    price: 2.0,
                    qty: 1.0,
                },
                Level {
                    price: 1.5,
                    qty: 0.0,
                },
            ],
            asks: vec![Level {
                price: 3.0,
                qty: 4.0,
            }],
            recv_time_ns: 99,
        };
        rows.push_depth_update(&update, 5);
        assert_eq!(rows.counts(), [0, 0, 1, 0, 3, 0]);
        let tables = rows.into_tables();
        assert_eq!(
            column(&tables, "depth_levels", "pos"),
            &TableColumn::Num(Column::I32(vec![0, 1, 2]))
        );
        assert_eq!(
            texts(column(&tables, "depth_levels", "side")),
            ["bid", "bid", "ask"]
        );
        assert_eq!(
            texts(column(&tables, "depth_levels", "source")),
            ["diff"; 3]
        );
        assert_eq!(
            column(&tables, "depth_levels", "update_id"),
            &TableColumn::Num(Column::I64(vec![12; 3]))
        );
        assert_eq!(
            column(&tables, "depth_levels", "price"),
            &TableColumn::Num(Column::F64(vec![2.0, 1.5, 3.0]))
        );
        assert_eq!(
            column(&tables, "depth_updates", "seq"),
            &TableColumn::Num(Column::I64(vec![5]))
        );
    }

    #[test]
    fn a_ticker_without_exchange_time_stores_minus_one() {
        let mut rows = LiveRows::new();
        let mut ticker = BookTicker {
            symbol: sym("ETHUSDT"),
            update_id: 3,
            bid_price: 1.0,
            bid_qty: 2.0,
            ask_price: 1.1,
            ask_qty: 3.0,
            event_time_ms: None,
            recv_time_ns: 4,
        };
        rows.push_book_ticker(&ticker, 1);
        ticker.event_time_ms = Some(8);
        rows.push_book_ticker(&ticker, 2);
        let tables = rows.into_tables();
        let event_ts = column(&tables, "book_tickers", "event_ts");
        assert_eq!(event_ts, &TableColumn::Num(Column::I64(vec![-1, 8])));
    }

    #[test]
    fn texts_keep_each_value_once_and_rows_in_order() {
        let mut rows = LiveRows::new();
        for (i, (s, side)) in [
            ("BTCUSDT", Side::Buy),
            ("ETHUSDT", Side::Sell),
            ("BTCUSDT", Side::Sell),
        ]
        .into_iter()
        .enumerate()
        {
            let trade = Trade {
                symbol: sym(s),
                trade_id: i as i64,
                event_time_ms: 1,
                trade_time_ms: 1,
                price: 1.0,
                qty: 1.0,
                side,
                is_buyer_maker: side == Side::Sell,
                recv_time_ns: 1,
            };
            rows.push_trade(&trade, i as i64 + 1, i == 2);
        }
        let event = BookEntry {
            seq: 9,
            update_id: 1,
            event_ts: 1,
            recv_ts_ns: 1,
            source: "ticker",
            bid_price: 1.0,
            bid_qty: 1.0,
            ask_price: 2.0,
            ask_qty: 1.0,
            book_update_id: 0,
            bids_json: "[]",
            asks_json: "[]",
        };
        rows.push_book_event("btcusdt", &event);
        let tables = rows.into_tables();
        let symbols = column(&tables, "trades", "symbol");
        assert_eq!(
            symbols,
            &TableColumn::Text {
                codes: vec![0, 1, 0],
                values: vec!["BTCUSDT".into(), "ETHUSDT".into()]
            }
        );
        assert_eq!(
            texts(column(&tables, "trades", "side")),
            ["buy", "sell", "sell"]
        );
        assert_eq!(
            column(&tables, "trades", "backfilled"),
            &TableColumn::Num(Column::Bool(vec![false, false, true]))
        );
        assert_eq!(texts(column(&tables, "book_events", "symbol")), ["BTCUSDT"]);
        let names: Vec<&str> = tables.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            names,
            [
                "trades",
                "book_tickers",
                "depth_updates",
                "depth_snapshots",
                "depth_levels",
                "book_events"
            ]
        );
    }
}
