//! Typed input errors: which event (index in the call, seq), which field, what is wrong.

use std::fmt;

/// The field an input error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `seq`.
    Seq,
    /// `kind`.
    Kind,
    /// Trade `price`.
    TradePrice,
    /// Trade `qty`.
    TradeQty,
    /// Trade `side`.
    TradeSide,
    /// Book `bid_price`.
    BidPrice,
    /// Book `bid_qty`.
    BidQty,
    /// Book `ask_price`.
    AskPrice,
    /// Book `ask_qty`.
    AskQty,
    /// Book `bid_depth` at a level (1-based).
    BidDepth(usize),
    /// Book `ask_depth` at a level (1-based).
    AskDepth(usize),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Seq => f.write_str("seq"),
            Field::Kind => f.write_str("kind"),
            Field::TradePrice => f.write_str("trade price"),
            Field::TradeQty => f.write_str("trade qty"),
            Field::TradeSide => f.write_str("trade side"),
            Field::BidPrice => f.write_str("bid_price"),
            Field::BidQty => f.write_str("bid_qty"),
            Field::AskPrice => f.write_str("ask_price"),
            Field::AskQty => f.write_str("ask_qty"),
            Field::BidDepth(level) => write!(f, "bid_depth level {level}"),
            Field::AskDepth(level) => write!(f, "ask_depth level {level}"),
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Problem {
    /// `seq` is not greater than the previous event's.
    NotIncreasing {
        /// The previous event's seq.
        prev: i64,
    },
    /// `kind` is neither 0 (trade) nor 1 (book).
    UnknownKind(u8),
    /// `side` is neither +1 nor -1.
    BadSide(i8),
    /// NaN or infinite.
    NotFinite,
    /// A price that is not > 0.
    NotPositive,
    /// A size below 0.
    Negative,
    /// A size other than 0 on a missing side (price NaN).
    QtyOnMissingSide(f64),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotIncreasing { prev } => {
                write!(f, "is not greater than the previous seq {prev}")
            }
            Problem::UnknownKind(k) => write!(f, "is {k}, not 0 (trade) or 1 (book)"),
            Problem::BadSide(s) => write!(f, "is {s}, not +1 (buy) or -1 (sell)"),
            Problem::NotFinite => f.write_str("is not finite"),
            Problem::NotPositive => f.write_str("is not > 0"),
            Problem::Negative => f.write_str("is negative"),
            Problem::QtyOnMissingSide(q) => {
                write!(f, "is {q} on a missing side (price NaN); it must be 0")
            }
        }
    }
}

/// Bad input: the engine's state is left untouched.
#[derive(Debug, Clone, PartialEq)]
pub enum InputError {
    /// A column's length differs from the number of events (`kind`'s length).
    Length {
        /// The column.
        column: &'static str,
        /// Its length (for depth: its number of values).
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// An invalid event.
    Event {
        /// Index of the event in the call (0 for a single event).
        index: usize,
        /// Its seq.
        seq: i64,
        /// The offending field.
        field: Field,
        /// What is wrong.
        problem: Problem,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Length {
                column,
                len,
                expected,
            } => write!(f, "column {column} has {len} values, expected {expected}"),
            InputError::Event {
                index,
                seq,
                field,
                problem,
            } => write!(f, "event {index} (seq {seq}): {field} {problem}"),
        }
    }
}

impl std::error::Error for InputError {}
