//! The engine's input — one event at a time, borrowed columns or an owned event log — and
//! its validation.

use std::ops::Range;

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

/// A symbol's event log as owned columns, built one event at a time; [`view`] lends it to
/// the engine.
///
/// The layout is the one the Python `EventLogBuilder.build()` returns (the entry decoder
/// must match it bit for bit): trade rows hold NaN L1 and zero depth, book rows NaN price
/// and qty, side 0 and depth padded with zeros to `depth_levels`.
///
/// [`view`]: EventLogColumns::view
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventLogColumns {
    /// 0 trade, 1 book event.
    pub kind: Vec<u8>,
    /// Ingest sequence number.
    pub seq: Vec<i64>,
    /// Exchange time (ms): a trade's `ts`, a book event's `event_ts`.
    pub ts: Vec<i64>,
    /// Local receive time (ns).
    pub recv_ts_ns: Vec<i64>,
    /// Trade price (NaN for book events).
    pub price: Vec<f64>,
    /// Trade qty (NaN for book events).
    pub qty: Vec<f64>,
    /// +1 buy, -1 sell (0 for book events).
    pub side: Vec<i8>,
    /// Best bid price (NaN for trades).
    pub bid_price: Vec<f64>,
    /// Best bid qty (NaN for trades).
    pub bid_qty: Vec<f64>,
    /// Best ask price (NaN for trades).
    pub ask_price: Vec<f64>,
    /// Best ask qty (NaN for trades).
    pub ask_qty: Vec<f64>,
    /// Bid level sizes, row-major `(len, depth_levels)`, 0 where a level is absent (and on
    /// every trade row).
    pub bid_depth: Vec<f64>,
    /// Ask level sizes, like `bid_depth`.
    pub ask_depth: Vec<f64>,
    /// Levels per side in the depth columns.
    pub depth_levels: usize,
}

impl EventLogColumns {
    /// An empty log with `depth_levels` levels per side in its depth columns.
    pub fn new(depth_levels: usize) -> Self {
        EventLogColumns {
            depth_levels,
            ..EventLogColumns::default()
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// No events.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Append a trade. Values are stored as given: the engine validates them.
    #[inline]
    pub fn push_trade(
        &mut self,
        seq: i64,
        ts: i64,
        recv_ts_ns: i64,
        price: f64,
        qty: f64,
        side: i8,
    ) {
        self.kind.push(KIND_TRADE);
        self.seq.push(seq);
        self.ts.push(ts);
        self.recv_ts_ns.push(recv_ts_ns);
        self.price.push(price);
        self.qty.push(qty);
        self.side.push(side);
        for col in [
            &mut self.bid_price,
            &mut self.bid_qty,
            &mut self.ask_price,
            &mut self.ask_qty,
        ] {
            col.push(f64::NAN);
        }
        // Zeros, not NaN: the Python builder zero-fills, and the engine never reads them.
        let width = self.depth_levels;
        self.bid_depth.resize(self.bid_depth.len() + width, 0.0);
        self.ask_depth.resize(self.ask_depth.len() + width, 0.0);
    }

    /// Append a book event: `l1` = (bid price, bid qty, ask price, ask qty), then the sizes
    /// of the top levels of each side, from level 1 on. Values are stored as given: the
    /// engine validates them.
    ///
    /// Panics if a side has more than `depth_levels` levels (the caller chooses how to cut
    /// deeper books).
    #[inline]
    pub fn push_book(
        &mut self,
        seq: i64,
        ts: i64,
        recv_ts_ns: i64,
        l1: [f64; 4],
        bid_depth: &[f64],
        ask_depth: &[f64],
    ) {
        let width = self.depth_levels;
        assert!(
            bid_depth.len() <= width && ask_depth.len() <= width,
            "{} bid / {} ask levels, at most {width} fit",
            bid_depth.len(),
            ask_depth.len(),
        );
        self.kind.push(KIND_BOOK);
        self.seq.push(seq);
        self.ts.push(ts);
        self.recv_ts_ns.push(recv_ts_ns);
        self.price.push(f64::NAN);
        self.qty.push(f64::NAN);
        self.side.push(0);
        self.bid_price.push(l1[0]);
        self.bid_qty.push(l1[1]);
        self.ask_price.push(l1[2]);
        self.ask_qty.push(l1[3]);
        for (col, sizes) in [
            (&mut self.bid_depth, bid_depth),
            (&mut self.ask_depth, ask_depth),
        ] {
            col.extend_from_slice(sizes);
            col.resize(col.len() + (width - sizes.len()), 0.0);
        }
    }

    /// Every column whole, as the engine's input. Not cut to `len()`: a column of the wrong
    /// length (the fields are public) must reach the engine's length check, not be hidden.
    pub fn view(&self) -> EventColumns<'_> {
        let depth = |values| {
            Some(DepthColumns {
                values,
                levels: self.depth_levels,
            })
        };
        EventColumns {
            kind: &self.kind,
            seq: &self.seq,
            ts: &self.ts,
            recv_ts_ns: &self.recv_ts_ns,
            price: &self.price,
            qty: &self.qty,
            side: &self.side,
            bid_price: &self.bid_price,
            bid_qty: &self.bid_qty,
            ask_price: &self.ask_price,
            ask_qty: &self.ask_qty,
            bid_depth: depth(&self.bid_depth),
            ask_depth: depth(&self.ask_depth),
        }
    }

    /// Events `rows` only, e.g. one chunk of a long log. Panics if `rows` is beyond any
    /// column.
    pub fn view_range(&self, rows: Range<usize>) -> EventColumns<'_> {
        let width = self.depth_levels;
        let (lo, hi) = (rows.start * width, rows.end * width);
        let bid_depth = Some(DepthColumns {
            values: &self.bid_depth[lo..hi],
            levels: width,
        });
        let ask_depth = Some(DepthColumns {
            values: &self.ask_depth[lo..hi],
            levels: width,
        });
        EventColumns {
            kind: &self.kind[rows.clone()],
            seq: &self.seq[rows.clone()],
            ts: &self.ts[rows.clone()],
            recv_ts_ns: &self.recv_ts_ns[rows.clone()],
            price: &self.price[rows.clone()],
            qty: &self.qty[rows.clone()],
            side: &self.side[rows.clone()],
            bid_price: &self.bid_price[rows.clone()],
            bid_qty: &self.bid_qty[rows.clone()],
            ask_price: &self.ask_price[rows.clone()],
            ask_qty: &self.ask_qty[rows],
            bid_depth,
            ask_depth,
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
