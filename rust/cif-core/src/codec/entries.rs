//! `trades:{symbol}` and `book:{symbol}` stream entries into the feature engine's event log
//! columns, as the Python `EventLogBuilder` decodes them.
//!
//! A trade entry needs `seq`, `ts`, `recv_ts_ns` (integers), `price`, `qty` (numbers) and
//! `side` (`buy` / `sell`); a book entry `seq`, `event_ts`, `recv_ts_ns`, `bid_price`,
//! `bid_qty`, `ask_price`, `ask_qty` and the depth levels `bids` / `asks` (JSON, see
//! [`depth`](super::depth)). Other fields are ignored. Text is read with Python's
//! `int()` / `float()` rules ([`text`](super::text)), so a valid entry decodes to the same
//! bits on both sides; a bad entry is refused whole, with the problem the Python builder
//! would have raised first (its fields are checked in the same order).

use std::fmt;

use super::depth::{parse_depth_levels, JsonError, LevelError};
use super::repr::py_repr_f64;
use super::text::{parse_py_float, parse_py_int, NumberError};
// The decoder's output is the engine's input log, so the type lives with the engine; it is
// re-exported so codec users reach what `EventDecoder::finish` returns from here.
pub use crate::features::EventLogColumns;

/// A field the decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryField {
    /// `seq`: the symbol's ingest sequence number.
    Seq,
    /// `ts`: a trade's exchange time (ms).
    Ts,
    /// `event_ts`: a book event's exchange time (ms).
    EventTs,
    /// `recv_ts_ns`: local receive time (ns).
    RecvTsNs,
    /// `price` of a trade.
    Price,
    /// `qty` of a trade.
    Qty,
    /// `side` of a trade: `buy` or `sell` (the aggressor).
    Side,
    /// `bid_price` of a book event.
    BidPrice,
    /// `bid_qty` of a book event.
    BidQty,
    /// `ask_price` of a book event.
    AskPrice,
    /// `ask_qty` of a book event.
    AskQty,
    /// `bids`: the bid depth levels (JSON).
    Bids,
    /// `asks`: the ask depth levels (JSON).
    Asks,
}

impl EntryField {
    /// Number of fields.
    pub const COUNT: usize = 13;

    /// Every field, in declaration order (`ALL[f.index()] == f`).
    pub const ALL: [EntryField; EntryField::COUNT] = [
        EntryField::Seq,
        EntryField::Ts,
        EntryField::EventTs,
        EntryField::RecvTsNs,
        EntryField::Price,
        EntryField::Qty,
        EntryField::Side,
        EntryField::BidPrice,
        EntryField::BidQty,
        EntryField::AskPrice,
        EntryField::AskQty,
        EntryField::Bids,
        EntryField::Asks,
    ];

    /// The field's name in the entry.
    pub fn name(self) -> &'static str {
        match self {
            EntryField::Seq => "seq",
            EntryField::Ts => "ts",
            EntryField::EventTs => "event_ts",
            EntryField::RecvTsNs => "recv_ts_ns",
            EntryField::Price => "price",
            EntryField::Qty => "qty",
            EntryField::Side => "side",
            EntryField::BidPrice => "bid_price",
            EntryField::BidQty => "bid_qty",
            EntryField::AskPrice => "ask_price",
            EntryField::AskQty => "ask_qty",
            EntryField::Bids => "bids",
            EntryField::Asks => "asks",
        }
    }

    /// The field of that name (None for the fields the decoder ignores).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"seq" => EntryField::Seq,
            b"ts" => EntryField::Ts,
            b"event_ts" => EntryField::EventTs,
            b"recv_ts_ns" => EntryField::RecvTsNs,
            b"price" => EntryField::Price,
            b"qty" => EntryField::Qty,
            b"side" => EntryField::Side,
            b"bid_price" => EntryField::BidPrice,
            b"bid_qty" => EntryField::BidQty,
            b"ask_price" => EntryField::AskPrice,
            b"ask_qty" => EntryField::AskQty,
            b"bids" => EntryField::Bids,
            b"asks" => EntryField::Asks,
            _ => return None,
        })
    }

    /// Position in [`EntryField::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A field's value as the caller holds it: text (Redis always returns bytes) or, for
/// entries built in-process, a number.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// UTF-8 / ASCII text.
    Text(&'a [u8]),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Something the decoder cannot read (described for the error message, e.g.
    /// `"None"`, `"a list"`).
    Other(String),
}

/// The fields of one entry the decoder reads; unset fields are missing.
#[derive(Debug, Clone, Default)]
pub struct EntryFields<'a> {
    values: [Option<FieldValue<'a>>; EntryField::COUNT],
}

impl<'a> EntryFields<'a> {
    /// No field set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set (or replace) a field.
    pub fn set(&mut self, field: EntryField, value: FieldValue<'a>) {
        self.values[field.index()] = Some(value);
    }

    /// A field's value, if set.
    pub fn get(&self, field: EntryField) -> Option<&FieldValue<'a>> {
        self.values[field.index()].as_ref()
    }

    fn require(&self, field: EntryField) -> Result<&FieldValue<'a>, DecodeError> {
        self.get(field).ok_or(DecodeError {
            field,
            problem: DecodeProblem::Missing,
        })
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodeProblem {
    /// The entry does not have it.
    Missing,
    /// Not an integer (the value, quoted).
    NotInteger(String),
    /// An integer outside the `i64` range (the value, quoted).
    IntegerOutOfRange(String),
    /// Not a number (the value, quoted).
    NotNumber(String),
    /// A trade side other than `buy` / `sell` (the side, quoted).
    BadSide(String),
    /// A value of a kind the field cannot have.
    WrongType {
        /// What the value is.
        found: String,
        /// What the field needs.
        expected: &'static str,
    },
    /// Depth levels that are not JSON.
    Json(JsonError),
    /// Depth levels that are JSON but not a list of `[price, qty]` levels.
    Depth(LevelError),
}

/// Why an entry was refused: the first bad field, in the Python builder's order.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    /// The field.
    pub field: EntryField,
    /// What is wrong with it.
    pub problem: DecodeProblem,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.field.name();
        match &self.problem {
            DecodeProblem::Missing => write!(f, "stream entry has no field '{name}'"),
            DecodeProblem::NotInteger(v) => write!(f, "field '{name}' is not an integer: {v}"),
            DecodeProblem::IntegerOutOfRange(v) => {
                write!(f, "field '{name}' is out of the int64 range: {v}")
            }
            DecodeProblem::NotNumber(v) => write!(f, "field '{name}' is not a number: {v}"),
            DecodeProblem::BadSide(v) => {
                write!(f, "trade entry has side {v}, expected 'buy' or 'sell'")
            }
            DecodeProblem::WrongType { found, expected } => {
                write!(f, "field '{name}' is {found}, expected {expected}")
            }
            DecodeProblem::Json(e) => write!(f, "field '{name}' is not valid JSON: {e}"),
            DecodeProblem::Depth(e) => write!(f, "field '{name}' {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// At most this many bytes of a value are quoted in a message.
const QUOTE_MAX: usize = 60;

/// `text` quoted like Python's `repr` of the str (shortened): `'abc'`, `'a\nb'`.
fn quote(text: &[u8]) -> String {
    let cut = &text[..text.len().min(QUOTE_MAX)];
    let s = String::from_utf8_lossy(cut);
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(cut.len() + 5);
    out.push(q);
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(q);
    if cut.len() < text.len() {
        out.push_str("...");
    }
    out
}

fn float_text(x: f64) -> String {
    let mut out = Vec::new();
    py_repr_f64(x, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn described(v: &FieldValue<'_>) -> String {
    match v {
        FieldValue::Text(t) => format!("the text {}", quote(t)),
        FieldValue::Int(i) => format!("the integer {i}"),
        FieldValue::Float(x) => format!("the float {}", float_text(*x)),
        FieldValue::Other(d) => d.clone(),
    }
}

/// Python's `int(value)`.
fn int_field(fields: &EntryFields<'_>, field: EntryField) -> Result<i64, DecodeError> {
    let fail = |problem| DecodeError { field, problem };
    match fields.require(field)? {
        FieldValue::Text(t) => parse_py_int(t).map_err(|e| {
            fail(match e {
                NumberError::Invalid => DecodeProblem::NotInteger(quote(t)),
                NumberError::OutOfRange => DecodeProblem::IntegerOutOfRange(quote(t)),
            })
        }),
        FieldValue::Int(i) => Ok(*i),
        // int(float) truncates toward zero.
        FieldValue::Float(x) => {
            let t = x.trunc();
            // 2^63, exact as a double: the int64 range is [-2^63, 2^63).
            let limit = -(i64::MIN as f64);
            if !t.is_finite() {
                Err(fail(DecodeProblem::NotInteger(float_text(*x))))
            } else if !(-limit..limit).contains(&t) {
                Err(fail(DecodeProblem::IntegerOutOfRange(float_text(*x))))
            } else {
                Ok(t as i64)
            }
        }
        other @ FieldValue::Other(_) => Err(fail(DecodeProblem::WrongType {
            found: described(other),
            expected: "an integer",
        })),
    }
}

/// Python's `float(value)`.
fn float_field(fields: &EntryFields<'_>, field: EntryField) -> Result<f64, DecodeError> {
    match fields.require(field)? {
        FieldValue::Text(t) => parse_py_float(t).map_err(|_| DecodeError {
            field,
            problem: DecodeProblem::NotNumber(quote(t)),
        }),
        // float(int) rounds to nearest, ties to even: what `as` does.
        FieldValue::Int(i) => Ok(*i as f64),
        FieldValue::Float(x) => Ok(*x),
        other @ FieldValue::Other(_) => Err(DecodeError {
            field,
            problem: DecodeProblem::WrongType {
                found: described(other),
                expected: "a number",
            },
        }),
    }
}

/// `+1` buy, `-1` sell.
fn side_field(fields: &EntryFields<'_>) -> Result<i8, DecodeError> {
    let field = EntryField::Side;
    let text: Vec<u8> = match fields.require(field)? {
        FieldValue::Text(t) => match *t {
            b"buy" => return Ok(1),
            b"sell" => return Ok(-1),
            t if std::str::from_utf8(t).is_err() => {
                return Err(DecodeError {
                    field,
                    problem: DecodeProblem::WrongType {
                        found: format!("not UTF-8 ({})", quote(t)),
                        expected: "'buy' or 'sell'",
                    },
                })
            }
            t => t.to_vec(),
        },
        // Python compares str(value): the number's own text.
        FieldValue::Int(i) => i.to_string().into_bytes(),
        FieldValue::Float(x) => float_text(*x).into_bytes(),
        other @ FieldValue::Other(_) => {
            return Err(DecodeError {
                field,
                problem: DecodeProblem::WrongType {
                    found: described(other),
                    expected: "'buy' or 'sell'",
                },
            })
        }
    };
    Err(DecodeError {
        field,
        problem: DecodeProblem::BadSide(quote(&text)),
    })
}

/// The depth field's JSON: syntax errors now, level problems returned for later (Python
/// parses both sides before it reads any level).
fn depth_field(
    fields: &EntryFields<'_>,
    field: EntryField,
    keep: usize,
    out: &mut Vec<f64>,
) -> Result<Option<DecodeError>, DecodeError> {
    let fail = |problem| DecodeError { field, problem };
    match fields.require(field)? {
        FieldValue::Text(t) => parse_depth_levels(t, keep, out)
            .map(|bad| bad.map(|e| fail(DecodeProblem::Depth(e))))
            .map_err(|e| fail(DecodeProblem::Json(e))),
        other => Err(fail(DecodeProblem::WrongType {
            found: described(other),
            expected: "JSON text",
        })),
    }
}

/// Decodes entries one at a time into [`EventLogColumns`]; a refused entry adds nothing.
#[derive(Debug, Clone)]
pub struct EventDecoder {
    cols: EventLogColumns,
    bids: Vec<f64>,
    asks: Vec<f64>,
}

impl EventDecoder {
    /// A decoder keeping `depth_levels` levels per side (deeper ones are dropped).
    pub fn new(depth_levels: usize) -> Self {
        EventDecoder {
            cols: EventLogColumns::new(depth_levels),
            bids: Vec::with_capacity(depth_levels),
            asks: Vec::with_capacity(depth_levels),
        }
    }

    /// Events decoded so far.
    pub fn len(&self) -> usize {
        self.cols.len()
    }

    /// None decoded yet.
    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// A trade (`is_trade`) or book entry.
    pub fn push(&mut self, is_trade: bool, fields: &EntryFields<'_>) -> Result<(), DecodeError> {
        if is_trade {
            self.push_trade(fields)
        } else {
            self.push_book(fields)
        }
    }

    /// A `trades:{symbol}` entry.
    pub fn push_trade(&mut self, fields: &EntryFields<'_>) -> Result<(), DecodeError> {
        let side = side_field(fields)?;
        let seq = int_field(fields, EntryField::Seq)?;
        let ts = int_field(fields, EntryField::Ts)?;
        let recv = int_field(fields, EntryField::RecvTsNs)?;
        let price = float_field(fields, EntryField::Price)?;
        let qty = float_field(fields, EntryField::Qty)?;
        self.cols.push_trade(seq, ts, recv, price, qty, side);
        Ok(())
    }

    /// A `book:{symbol}` entry.
    pub fn push_book(&mut self, fields: &EntryFields<'_>) -> Result<(), DecodeError> {
        let keep = self.cols.depth_levels;
        let bad_bids = depth_field(fields, EntryField::Bids, keep, &mut self.bids)?;
        let bad_asks = depth_field(fields, EntryField::Asks, keep, &mut self.asks)?;
        let seq = int_field(fields, EntryField::Seq)?;
        let ts = int_field(fields, EntryField::EventTs)?;
        let recv = int_field(fields, EntryField::RecvTsNs)?;
        let l1 = [
            float_field(fields, EntryField::BidPrice)?,
            float_field(fields, EntryField::BidQty)?,
            float_field(fields, EntryField::AskPrice)?,
            float_field(fields, EntryField::AskQty)?,
        ];
        if let Some(e) = bad_bids.or(bad_asks) {
            return Err(e);
        }
        self.cols
            .push_book(seq, ts, recv, l1, &self.bids, &self.asks);
        Ok(())
    }

    /// The columns of every decoded entry, in push order.
    pub fn finish(self) -> EventLogColumns {
        self.cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(pairs: &[(&str, FieldValue<'a>)]) -> EntryFields<'a> {
        let mut f = EntryFields::new();
        for (name, v) in pairs {
            f.set(EntryField::from_name(name.as_bytes()).unwrap(), v.clone());
        }
        f
    }

    fn t(s: &str) -> FieldValue<'_> {
        FieldValue::Text(s.as_bytes())
    }

    fn trade<'a>(side: &'a str, price: &'a str) -> EntryFields<'a> {
        fields(&[
            ("seq", t("4")),
            ("ts", t("1723161255342")),
            ("recv_ts_ns", t("1723161254087896568")),
            ("price", t(price)),
            ("qty", t("0.02")),
            ("side", t(side)),
        ])
    }

    fn book<'a>(bids: &'a str, asks: &'a str) -> EntryFields<'a> {
        fields(&[
            ("seq", t("3")),
            ("event_ts", FieldValue::Int(1723161255308)),
            ("recv_ts_ns", t("1723161254087891268")),
            ("bid_price", t("61837.63")),
            ("bid_qty", FieldValue::Float(3.78826)),
            ("ask_price", t("nan")),
            ("ask_qty", t("0.0")),
            ("bids", t(bids)),
            ("asks", t(asks)),
        ])
    }

    #[test]
    fn names_round_trip() {
        for f in EntryField::ALL {
            assert_eq!(EntryField::from_name(f.name().as_bytes()), Some(f));
            assert_eq!(EntryField::ALL[f.index()], f);
        }
        assert_eq!(EntryField::from_name(b"trade_id"), None);
    }

    #[test]
    fn decodes_trades_and_books_into_columns() {
        let mut d = EventDecoder::new(2);
        d.push(false, &book("[[1,0.5],[1,2],[1,3]]", "[]")).unwrap();
        d.push(true, &trade("sell", "61837.63")).unwrap();
        d.push(true, &trade("buy", " 1_0.5 ")).unwrap();
        let c = d.finish();
        assert_eq!(c.len(), 3);
        assert_eq!(c.kind, [1, 0, 0]);
        assert_eq!(c.seq, [3, 4, 4]);
        assert_eq!(c.ts, [1723161255308, 1723161255342, 1723161255342]);
        assert_eq!(c.side, [0, -1, 1]);
        assert!(c.price[0].is_nan() && c.qty[0].is_nan());
        assert_eq!(c.price[1..], [61837.63, 10.5]);
        assert_eq!(c.bid_price[0], 61837.63);
        assert_eq!(c.bid_qty[0], 3.78826);
        assert!(c.ask_price[0].is_nan() && c.bid_price[1].is_nan());
        assert_eq!(c.bid_depth, [0.5, 2.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(c.ask_depth, [0.0; 6]);
    }

    #[test]
    fn refuses_bad_entries_whole_with_the_first_problem() {
        let mut d = EventDecoder::new(3);
        let msg = |r: Result<(), DecodeError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(d.push_trade(&trade("BUY", "1"))),
            "trade entry has side 'BUY', expected 'buy' or 'sell'"
        );
        assert_eq!(
            msg(d.push_trade(&trade("buy", "garbage"))),
            "field 'price' is not a number: 'garbage'"
        );
        let mut no_seq = trade("buy", "1");
        no_seq.values[EntryField::Seq.index()] = None;
        assert_eq!(
            msg(d.push_trade(&no_seq)),
            "stream entry has no field 'seq'"
        );
        // Side is checked first, as in Python.
        assert_eq!(
            msg(d.push_trade(&fields(&[("price", t("x"))]))),
            "stream entry has no field 'side'"
        );
        let mut big = trade("sell", "1");
        big.set(EntryField::Ts, t("99999999999999999999"));
        assert_eq!(
            msg(d.push_trade(&big)),
            "field 'ts' is out of the int64 range: '99999999999999999999'"
        );
        let mut none = trade("sell", "1");
        none.set(EntryField::Qty, FieldValue::Other("None".into()));
        assert_eq!(
            msg(d.push_trade(&none)),
            "field 'qty' is None, expected a number"
        );
        assert_eq!(
            msg(d.push_book(&book("[[broken", "[]"))),
            "field 'bids' is not valid JSON: expecting value at char 2"
        );
        // JSON syntax of both sides first, then the numbers, then the levels.
        let mut b = book("[[1]]", "[[1,");
        assert!(msg(d.push_book(&b)).starts_with("field 'asks' is not valid JSON"));
        b.set(EntryField::Asks, t("[]"));
        b.set(EntryField::Seq, t("x"));
        assert_eq!(msg(d.push_book(&b)), "field 'seq' is not an integer: 'x'");
        b.set(EntryField::Seq, t("3"));
        assert_eq!(msg(d.push_book(&b)), "field 'bids' level 0 has no qty");
        b.set(EntryField::Bids, FieldValue::Int(5));
        assert_eq!(
            msg(d.push_book(&b)),
            "field 'bids' is the integer 5, expected JSON text"
        );
        assert!(d.is_empty());
    }

    #[test]
    fn numbers_in_place_of_text_convert_like_python() {
        let mut f = trade("buy", "1");
        f.set(EntryField::Seq, FieldValue::Float(-7.9));
        f.set(EntryField::Price, FieldValue::Int(3));
        let mut d = EventDecoder::new(0);
        d.push_trade(&f).unwrap();
        f.set(EntryField::Seq, FieldValue::Float(f64::NAN));
        assert_eq!(
            d.push_trade(&f).unwrap_err().problem,
            DecodeProblem::NotInteger("nan".into())
        );
        f.set(EntryField::Seq, FieldValue::Int(5));
        f.set(EntryField::Side, FieldValue::Int(1));
        assert_eq!(
            d.push_trade(&f).unwrap_err().problem,
            DecodeProblem::BadSide("'1'".into())
        );
        let c = d.finish();
        assert_eq!((c.seq[0], c.price[0]), (-7, 3.0));
        assert!(c.bid_depth.is_empty());
    }

    #[test]
    fn quotes_like_python_repr() {
        assert_eq!(quote(b"abc"), "'abc'");
        assert_eq!(quote(b"it's"), "\"it's\"");
        assert_eq!(quote(b"a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(quote(b"\x01"), "'\\x01'");
        assert_eq!(quote(&[b'x'; 70]), format!("'{}'...", "x".repeat(60)));
    }
}
