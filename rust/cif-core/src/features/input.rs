//! The engine's input — one event at a time or columns — and its validation.

use super::error::{Field, InputError, Problem};

/// `kind` of a trade row.
pub const KIND_TRADE: u8 = 0;
/// `kind` of a book-event row.
pub const KIND_BOOK: u8 = 1;

/// One trade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeEvent {
    /// Ingest sequence number (strictly increasing across all events).
    pub seq: i64,
    /// Trade time (exchange ms).
    pub ts: i64,
    /// Price: finite and > 0.
    pub price: f64,
    /// Size: finite and >= 0.
    pub qty: f64,
    /// +1 buy aggressor, -1 sell aggressor.
    pub side: i8,
}

/// One book event: L1 plus optional top-L sizes of each side.
///
/// A side is present (price finite and > 0, qty finite and >= 0) or missing (price NaN,
/// qty 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookEvent<'a> {
    /// Ingest sequence number (strictly increasing across all events).
    pub seq: i64,
    /// Event time (exchange ms).
    pub ts: i64,
    /// Best bid price (NaN if the side is missing).
    pub bid_price: f64,
    /// Best bid size.
    pub bid_qty: f64,
    /// Best ask price (NaN if the side is missing).
    pub ask_price: f64,
    /// Best ask size.
    pub ask_qty: f64,
    /// Sizes of bid levels 1..L (0 where absent); may be empty.
    pub bid_depth: &'a [f64],
    /// Sizes of ask levels 1..L (0 where absent); may be empty.
    pub ask_depth: &'a [f64],
}

/// A 2-D `(n, levels)` array of sizes, row-major.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthColumns<'a> {
    /// `n * levels` sizes, row after row.
    pub values: &'a [f64],
    /// Levels per row (may be 0).
    pub levels: usize,
}

impl<'a> DepthColumns<'a> {
    /// The levels of row `i` (the caller checked the shape).
    #[inline(always)]
    fn row(&self, i: usize) -> &'a [f64] {
        &self.values[i * self.levels..(i + 1) * self.levels]
    }
}

/// A batch of events in columns (all of length n; see the spec's events dict).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventColumns<'a> {
    /// 0 = trade, 1 = book event.
    pub kind: &'a [u8],
    /// Ingest sequence, strictly increasing.
    pub seq: &'a [i64],
    /// Exchange time (ms).
    pub ts: &'a [i64],
    /// Local receive time (ns), carried to the output rows.
    pub recv_ts_ns: &'a [i64],
    /// Trade price (ignored on book rows).
    pub price: &'a [f64],
    /// Trade size (ignored on book rows).
    pub qty: &'a [f64],
    /// Trade aggressor side (ignored on book rows).
    pub side: &'a [i8],
    /// Book best bid price (ignored on trade rows).
    pub bid_price: &'a [f64],
    /// Book best bid size.
    pub bid_qty: &'a [f64],
    /// Book best ask price.
    pub ask_price: &'a [f64],
    /// Book best ask size.
    pub ask_qty: &'a [f64],
    /// Optional bid depth sizes, `(n, L)`.
    pub bid_depth: Option<DepthColumns<'a>>,
    /// Optional ask depth sizes, `(n, L)`.
    pub ask_depth: Option<DepthColumns<'a>>,
}

impl<'a> EventColumns<'a> {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    /// True if there are no events.
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Every column has n values (depth: n rows).
    pub(crate) fn check_lengths(&self) -> Result<(), InputError> {
        let n = self.len();
        let columns: [(&'static str, usize); 10] = [
            ("seq", self.seq.len()),
            ("ts", self.ts.len()),
            ("recv_ts_ns", self.recv_ts_ns.len()),
            ("price", self.price.len()),
            ("qty", self.qty.len()),
            ("side", self.side.len()),
            ("bid_price", self.bid_price.len()),
            ("bid_qty", self.bid_qty.len()),
            ("ask_price", self.ask_price.len()),
            ("ask_qty", self.ask_qty.len()),
        ];
        for (column, len) in columns {
            if len != n {
                return Err(InputError::Length {
                    column,
                    len,
                    expected: n,
                });
            }
        }
        for (column, depth) in [("bid_depth", self.bid_depth), ("ask_depth", self.ask_depth)] {
            if let Some(d) = depth {
                let expected = n.saturating_mul(d.levels);
                if d.values.len() != expected {
                    return Err(InputError::Length {
                        column,
                        len: d.values.len(),
                        expected,
                    });
                }
            }
        }
        Ok(())
    }

    /// Row `i` as a trade.
    #[inline(always)]
    pub(crate) fn trade(&self, i: usize) -> TradeEvent {
        TradeEvent {
            seq: self.seq[i],
            ts: self.ts[i],
            price: self.price[i],
            qty: self.qty[i],
            side: self.side[i],
        }
    }

    /// Row `i` as a book event.
    #[inline(always)]
    pub(crate) fn book(&self, i: usize) -> BookEvent<'a> {
        BookEvent {
            seq: self.seq[i],
            ts: self.ts[i],
            bid_price: self.bid_price[i],
            bid_qty: self.bid_qty[i],
            ask_price: self.ask_price[i],
            ask_qty: self.ask_qty[i],
            bid_depth: self.bid_depth.map_or(&[], |d| d.row(i)),
            ask_depth: self.ask_depth.map_or(&[], |d| d.row(i)),
        }
    }
}

/// The seq must exceed the previous event's.
#[inline]
pub(crate) fn check_seq(index: usize, seq: i64, prev: Option<i64>) -> Result<(), InputError> {
    match prev {
        Some(prev) if seq <= prev => Err(InputError::Event {
            index,
            seq,
            field: Field::Seq,
            problem: Problem::NotIncreasing { prev },
        }),
        _ => Ok(()),
    }
}

/// The kind must be 0 or 1.
#[inline]
pub(crate) fn check_kind(index: usize, seq: i64, kind: u8) -> Result<(), InputError> {
    if kind == KIND_TRADE || kind == KIND_BOOK {
        Ok(())
    } else {
        Err(InputError::Event {
            index,
            seq,
            field: Field::Kind,
            problem: Problem::UnknownKind(kind),
        })
    }
}

/// A trade's fields (not its seq order).
#[inline]
pub(crate) fn check_trade(index: usize, t: &TradeEvent) -> Result<(), InputError> {
    let fail = |field, problem| {
        Err(InputError::Event {
            index,
            seq: t.seq,
            field,
            problem,
        })
    };
    if !t.price.is_finite() {
        return fail(Field::TradePrice, Problem::NotFinite);
    }
    if t.price <= 0.0 {
        return fail(Field::TradePrice, Problem::NotPositive);
    }
    if !t.qty.is_finite() {
        return fail(Field::TradeQty, Problem::NotFinite);
    }
    if t.qty < 0.0 {
        return fail(Field::TradeQty, Problem::Negative);
    }
    if t.side != 1 && t.side != -1 {
        return fail(Field::TradeSide, Problem::BadSide(t.side));
    }
    Ok(())
}

/// One book side: present (price finite > 0, qty finite >= 0) or missing (NaN, 0).
#[inline]
fn check_side(price: f64, qty: f64, pf: Field, qf: Field) -> Result<(), (Field, Problem)> {
    if price.is_nan() {
        if qty == 0.0 {
            Ok(())
        } else if qty.is_nan() {
            Err((qf, Problem::NotFinite))
        } else {
            Err((qf, Problem::QtyOnMissingSide(qty)))
        }
    } else if !price.is_finite() {
        Err((pf, Problem::NotFinite))
    } else if price <= 0.0 {
        Err((pf, Problem::NotPositive))
    } else if !qty.is_finite() {
        Err((qf, Problem::NotFinite))
    } else if qty < 0.0 {
        Err((qf, Problem::Negative))
    } else {
        Ok(())
    }
}

/// Depth sizes: finite and >= 0.
#[inline]
fn check_depth(levels: &[f64], field: fn(usize) -> Field) -> Result<(), (Field, Problem)> {
    // Fast path without early exit (vectorizes); find the culprit only on failure.
    let bad = levels.iter().fold(0u64, |bad, &q| {
        bad | u64::from(q.is_nan() | (q < 0.0) | (q == f64::INFINITY))
    });
    if bad == 0 {
        return Ok(());
    }
    for (i, &q) in levels.iter().enumerate() {
        if !q.is_finite() {
            return Err((field(i + 1), Problem::NotFinite));
        }
        if q < 0.0 {
            return Err((field(i + 1), Problem::Negative));
        }
    }
    Ok(())
}

/// A book event's fields (not its seq order).
#[inline]
pub(crate) fn check_book(index: usize, b: &BookEvent<'_>) -> Result<(), InputError> {
    check_side(b.bid_price, b.bid_qty, Field::BidPrice, Field::BidQty)
        .and_then(|()| check_side(b.ask_price, b.ask_qty, Field::AskPrice, Field::AskQty))
        .and_then(|()| check_depth(b.bid_depth, Field::BidDepth))
        .and_then(|()| check_depth(b.ask_depth, Field::AskDepth))
        .map_err(|(field, problem)| InputError::Event {
            index,
            seq: b.seq,
            field,
            problem,
        })
}
