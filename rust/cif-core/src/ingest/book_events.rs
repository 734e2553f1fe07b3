//! Book events: the L1 changes of a symbol, each with the local book's top-k depth, and the
//! check that the local book agrees with the ticker stream.
//!
//! Two sources describe the top of the book: `@bookTicker` (every L1 change, in real time)
//! and the local book rebuilt from `@depth@100ms` (every level, every 100 ms). A book event
//! is emitted when the best bid/ask price or size changes, from whichever source reports a
//! *newer* order-book update id first; a report at or below the last emitted update id is
//! already known and emits nothing. Everything here is a pure function of the order the
//! reports come in, so replay derives the same events as the live gateway.
//!
//! This is the gateway's hot path (one call per ticker); the Python reference it replaced
//! is kept in the tests (`tests/ingest_reference.py`), which compare the two on the real
//! captures.

use std::collections::VecDeque;

use crate::book::LocalBook;
use crate::codec::py_repr_f64;

use super::events::Level;

/// Best bid price and size, best ask price and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L1 {
    /// Best bid price.
    pub bid_price: f64,
    /// Best bid size.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask_price: f64,
    /// Best ask size.
    pub ask_qty: f64,
}

impl L1 {
    /// The four values in field order.
    pub fn values(&self) -> [f64; 4] {
        [self.bid_price, self.bid_qty, self.ask_price, self.ask_qty]
    }
}

/// A book event the deriver decided to emit (its depth is the deriver's current top).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derived {
    /// The update id the event is at.
    pub update_id: i64,
    /// Its best bid/ask.
    pub l1: L1,
    /// The update id of the attached depth (0 while the book is not synced).
    pub book_update_id: i64,
    /// Whether depth is attached (the book is synced).
    pub with_depth: bool,
    /// Whether the attached depth was read from the book for this event (it changed since
    /// the last event that carried depth).
    pub depth_changed: bool,
}

/// Turns tickers and local-book updates of one symbol into L1-change events.
#[derive(Debug, Clone)]
pub struct BookEventDeriver {
    top_k: usize,
    last_l1: Option<L1>,
    last_update_id: i64,
    // The top-k of the book at one update id: between depth diffs (100 ms) every ticker
    // event carries the same depth, so it is read from the book once.
    top_at: i64,
    top_bids: Vec<Level>,
    top_asks: Vec<Level>,
    bids_json: String,
    asks_json: String,
}

impl BookEventDeriver {
    /// A deriver attaching `top_k` levels per side (at least 1).
    pub fn new(top_k: usize) -> Self {
        Self {
            top_k: top_k.max(1),
            last_l1: None,
            last_update_id: -1,
            top_at: -1,
            top_bids: Vec::new(),
            top_asks: Vec::new(),
            bids_json: "[]".to_owned(),
            asks_json: "[]".to_owned(),
        }
    }

    /// Levels attached per side.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// The event for a ticker at `update_id`, or `None` when it is not newer or changes
    /// nothing.
    pub fn on_ticker(&mut self, l1: L1, update_id: i64, book: &LocalBook) -> Option<Derived> {
        self.maybe(l1, update_id, book)
    }

    /// The event after the local book changed (a diff applied or a snapshot synced).
    pub fn on_book(&mut self, book: &LocalBook) -> Option<Derived> {
        let (Some(bid), Some(ask)) = book.best()? else {
            return None;
        };
        let l1 = L1 {
            bid_price: bid.price,
            bid_qty: bid.qty,
            ask_price: ask.price,
            ask_qty: ask.qty,
        };
        self.maybe(l1, book.last_update_id(), book)
    }

    fn maybe(&mut self, l1: L1, update_id: i64, book: &LocalBook) -> Option<Derived> {
        if update_id <= self.last_update_id {
            return None;
        }
        self.last_update_id = update_id;
        if self.last_l1 == Some(l1) {
            return None;
        }
        self.last_l1 = Some(l1);
        if book.best().is_none() {
            return Some(Derived {
                update_id,
                l1,
                book_update_id: 0,
                with_depth: false,
                depth_changed: false,
            });
        }
        let book_u = book.last_update_id();
        let depth_changed = book_u != self.top_at;
        if depth_changed {
            self.top_bids = book.bids().top(self.top_k);
            self.top_asks = book.asks().top(self.top_k);
            self.bids_json = levels_json(&self.top_bids);
            self.asks_json = levels_json(&self.top_asks);
            self.top_at = book_u;
        }
        Some(Derived {
            update_id,
            l1,
            book_update_id: book_u,
            with_depth: true,
            depth_changed,
        })
    }

    /// The attached depth: bids and asks, best first.
    pub fn top(&self) -> (&[Level], &[Level]) {
        (&self.top_bids, &self.top_asks)
    }

    /// The attached depth as published and stored: JSON `[[price,qty],...]` per side.
    pub fn top_json(&self) -> (&str, &str) {
        (&self.bids_json, &self.asks_json)
    }
}

/// A depth side as Python's `json.dumps(levels, separators=(",", ":"))` writes it.
pub fn levels_json(levels: &[Level]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(2 + levels.len() * 24);
    out.push(b'[');
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_float(l.price, &mut out);
        out.push(b',');
        json_float(l.qty, &mut out);
        out.push(b']');
    }
    out.push(b']');
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// A float as `json.dumps` writes it: `repr`, and `NaN` / `Infinity` / `-Infinity`.
fn json_float(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        py_repr_f64(x, out);
    }
}

/// Bounds of the agreement check's queues: tickers ahead of the book, book states waiting
/// for the ticker stream to pass them.
pub const MAX_PENDING_TICKERS: usize = 50_000;
/// See [`MAX_PENDING_TICKERS`].
pub const MAX_PENDING_STATES: usize = 10_000;

/// A disagreement: the book at update id `at` had `book`, the latest ticker at or below it
/// (`ticker_u`) said `ticker`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disagreement {
    /// The book state's update id.
    pub at: i64,
    /// The book's best bid/ask there.
    pub book: L1,
    /// The ticker's update id.
    pub ticker_u: i64,
    /// The ticker's best bid/ask.
    pub ticker: L1,
}

/// The book agreement check: at every book state L the best bid/ask must equal the latest
/// ticker with `u <= L` (a ticker is pushed on every L1 change). That ticker is known once
/// the ticker stream has passed L, so both sides wait in queues until then.
#[derive(Debug, Clone, Default)]
pub struct AgreementCheck {
    tickers: VecDeque<(i64, L1)>,
    ticker_at: Option<(i64, L1)>,
    states: VecDeque<(i64, L1)>,
    /// Book states checked.
    pub checks: u64,
    /// Book states that agreed.
    pub agree: u64,
}

impl AgreementCheck {
    /// A ticker at `u`; returns the disagreements it resolves.
    pub fn push_ticker(&mut self, u: i64, l1: L1, out: &mut Vec<Disagreement>) {
        if self.tickers.len() >= MAX_PENDING_TICKERS {
            self.tickers.pop_front();
            self.ticker_at = None; // unknown until the queue catches up
        }
        self.tickers.push_back((u, l1));
        self.resolve(out);
    }

    /// A book state at `u`; returns the disagreements it resolves.
    pub fn push_state(&mut self, u: i64, l1: L1, out: &mut Vec<Disagreement>) {
        if self.states.len() >= MAX_PENDING_STATES {
            self.states.pop_front();
        }
        self.states.push_back((u, l1));
        self.resolve(out);
    }

    fn resolve(&mut self, out: &mut Vec<Disagreement>) {
        while let (Some(&(at, book)), Some(&(last_u, _))) =
            (self.states.front(), self.tickers.back())
        {
            if last_u <= at {
                break;
            }
            self.states.pop_front();
            while let Some(&(u, l1)) = self.tickers.front() {
                if u > at {
                    break;
                }
                self.ticker_at = Some((u, l1));
                self.tickers.pop_front();
            }
            let Some((ticker_u, ticker)) = self.ticker_at else {
                continue;
            };
            self.checks += 1;
            if ticker == book {
                self.agree += 1;
            } else {
                out.push(Disagreement {
                    at,
                    book,
                    ticker_u,
                    ticker,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l1(b: f64, a: f64) -> L1 {
        L1 {
            bid_price: b,
            bid_qty: 1.0,
            ask_price: a,
            ask_qty: 2.0,
        }
    }

    #[test]
    fn levels_are_written_like_json_dumps() {
        let levels = [
            Level {
                price: 61737.63,
                qty: 0.0,
            },
            Level {
                price: 1e-05,
                qty: 1e16,
            },
        ];
        assert_eq!(levels_json(&levels), "[[61737.63,0.0],[1e-05,1e+16]]");
        assert_eq!(levels_json(&[]), "[]");
        let odd = [Level {
            price: f64::NAN,
            qty: f64::NEG_INFINITY,
        }];
        assert_eq!(levels_json(&odd), "[[NaN,-Infinity]]");
    }

    #[test]
    fn an_unsynced_book_gives_events_without_depth() {
        let book = LocalBook::new(crate::ingest::Symbol::new("BTCUSDT").unwrap(), 100);
        let mut d = BookEventDeriver::new(5);
        let e = d.on_ticker(l1(1.0, 2.0), 10, &book).unwrap();
        assert!(!e.with_depth && e.book_update_id == 0);
        assert_eq!(d.on_ticker(l1(1.0, 2.0), 11, &book), None, "same L1");
        assert_eq!(d.on_ticker(l1(1.5, 2.0), 11, &book), None, "not newer");
        assert!(d.on_ticker(l1(1.5, 2.0), 12, &book).is_some());
        assert_eq!(d.on_book(&book), None);
    }

    #[test]
    fn the_agreement_check_waits_for_the_ticker_stream_to_pass_a_state() {
        let mut c = AgreementCheck::default();
        let mut out = Vec::new();
        c.push_ticker(5, l1(1.0, 2.0), &mut out);
        c.push_state(7, l1(1.0, 2.0), &mut out);
        assert_eq!(c.checks, 0, "no ticker past 7 yet");
        c.push_ticker(8, l1(1.1, 2.0), &mut out);
        assert_eq!((c.checks, c.agree), (1, 1));
        c.push_state(9, l1(1.0, 2.0), &mut out);
        c.push_ticker(10, l1(1.2, 2.0), &mut out);
        assert_eq!((c.checks, c.agree), (2, 1));
        assert_eq!(
            out,
            vec![Disagreement {
                at: 9,
                book: l1(1.0, 2.0),
                ticker_u: 8,
                ticker: l1(1.1, 2.0)
            }]
        );
        // a state before any ticker is dropped unchecked
        let mut c = AgreementCheck::default();
        c.push_state(3, l1(1.0, 2.0), &mut out);
        c.push_ticker(4, l1(1.0, 2.0), &mut out);
        assert_eq!(c.checks, 0);
    }
}
