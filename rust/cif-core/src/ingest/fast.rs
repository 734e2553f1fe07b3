//! Exact-layout fast path for the frames Binance actually sends.
//!
//! Binance serializes every payload with the same key order and no whitespace. This module
//! matches that byte layout directly (literal keys, digits, plain decimal strings) and
//! returns `None` at the first deviation, in which case the caller runs the general
//! validating parser. It accepts only input the general parser accepts and builds the same
//! event from it (checked by tests on every real frame and on mutations of them), so it
//! changes speed, never results.

use super::decimal::parse_decimal;
use super::events::{BookTicker, DepthUpdate, Event, Level, Side, Trade};
use super::symbol::Symbol;

struct Bytes<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Bytes<'a> {
    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A JSON integer without sign, fraction or exponent that fits i64 (≤ 18 digits).
    #[inline]
    fn uint(&mut self) -> Option<i64> {
        let start = self.i;
        let mut v: i64 = 0;
        while let Some(c) = self.peek() {
            if !c.is_ascii_digit() {
                break;
            }
            v = v * 10 + i64::from(c - b'0');
            self.i += 1;
            if self.i - start > 18 {
                return None;
            }
        }
        let len = self.i - start;
        // JSON forbids leading zeros; a fraction or exponent means "not an integer" (the
        // general parser reports it).
        if len == 0 || (len > 1 && self.b[start] == b'0') {
            return None;
        }
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    /// The bytes up to the next `"` (the opening quote already consumed); printable ASCII
    /// without backslashes only.
    #[inline]
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        loop {
            let c = *self.b.get(self.i)?;
            if c == b'"' {
                let s = &self.b[start..self.i];
                self.i += 1;
                return Some(s);
            }
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                return None;
            }
            self.i += 1;
        }
    }

    #[inline]
    fn dec(&mut self) -> Option<f64> {
        parse_decimal(self.plain_str()?).ok()
    }

    #[inline]
    fn positive_dec(&mut self) -> Option<f64> {
        self.dec().filter(|v| *v > 0.0)
    }

    #[inline]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else if self.lit(b"false").is_some() {
            Some(false)
        } else {
            None
        }
    }

    /// `[["price","qty"],…]` with positive prices.
    fn levels(&mut self) -> Option<Vec<Level>> {
        self.lit(b"[")?;
        let mut out = Vec::new();
        if self.lit(b"]").is_some() {
            return Some(out);
        }
        loop {
            self.lit(b"[\"")?;
            let price = self.positive_dec()?;
            self.lit(b",\"")?;
            let qty = self.dec()?;
            self.lit(b"]")?;
            out.push(Level { price, qty });
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// The payload's `s`, which must agree with the stream's symbol when there is one.
    #[inline]
    fn symbol(&mut self, stream_sym: Option<Symbol>) -> Option<Symbol> {
        let raw = self.plain_str()?;
        match stream_sym {
            Some(s) if s.as_bytes().eq_ignore_ascii_case(raw) => Some(s),
            Some(_) => None,
            None => Symbol::new(std::str::from_utf8(raw).ok()?).ok(),
        }
    }
}

/// Try the exact layouts; `None` means "use the general parser".
#[inline]
pub(crate) fn parse_fast(frame: &[u8], recv: i64) -> Option<Event> {
    let mut p = Bytes { b: frame, i: 0 };
    let event = if p.lit(b"{\"stream\":\"").is_some() {
        let stream = p.plain_str()?;
        let at = stream.iter().position(|&c| c == b'@')?;
        if at + 1 == stream.len() {
            return None;
        }
        let sym = Symbol::new(std::str::from_utf8(&stream[..at]).ok()?).ok()?;
        p.lit(b",\"data\":")?;
        let ev = payload(&mut p, Some(sym), recv)?;
        p.lit(b"}")?;
        ev
    } else {
        payload(&mut p, None, recv)?
    };
    (p.i == frame.len()).then_some(event)
}

#[inline]
fn payload(p: &mut Bytes<'_>, sym: Option<Symbol>, recv: i64) -> Option<Event> {
    if p.lit(b"{\"u\":").is_some() {
        return book_ticker(p, sym, recv).map(Event::BookTicker);
    }
    p.lit(b"{\"e\":\"")?;
    if p.lit(b"trade\",\"E\":").is_some() {
        trade(p, sym, recv).map(Event::Trade)
    } else if p.lit(b"depthUpdate\",\"E\":").is_some() {
        depth(p, sym, recv).map(Event::DepthUpdate)
    } else {
        None
    }
}

fn book_ticker(p: &mut Bytes<'_>, sym: Option<Symbol>, recv: i64) -> Option<BookTicker> {
    let update_id = p.uint()?;
    p.lit(b",\"s\":\"")?;
    let symbol = p.symbol(sym)?;
    p.lit(b",\"b\":\"")?;
    let bid_price = p.dec()?;
    p.lit(b",\"B\":\"")?;
    let bid_qty = p.dec()?;
    p.lit(b",\"a\":\"")?;
    let ask_price = p.dec()?;
    p.lit(b",\"A\":\"")?;
    let ask_qty = p.dec()?;
    p.lit(b"}")?;
    Some(BookTicker {
        symbol,
        update_id,
        bid_price,
        bid_qty,
        ask_price,
        ask_qty,
        event_time_ms: None,
        recv_time_ns: recv,
    })
}

fn trade(p: &mut Bytes<'_>, sym: Option<Symbol>, recv: i64) -> Option<Trade> {
    let event_time_ms = p.uint()?;
    p.lit(b",\"s\":\"")?;
    let symbol = p.symbol(sym)?;
    p.lit(b",\"t\":")?;
    let trade_id = p.uint()?;
    p.lit(b",\"p\":\"")?;
    let price = p.positive_dec()?;
    p.lit(b",\"q\":\"")?;
    let qty = p.positive_dec()?;
    p.lit(b",\"T\":")?;
    let trade_time_ms = p.uint()?;
    p.lit(b",\"m\":")?;
    let is_buyer_maker = p.boolean()?;
    if p.lit(b",\"M\":").is_some() {
        p.boolean()?;
    }
    p.lit(b"}")?;
    Some(Trade {
        symbol,
        trade_id,
        event_time_ms,
        trade_time_ms,
        price,
        qty,
        side: Side::from_buyer_is_maker(is_buyer_maker),
        is_buyer_maker,
        recv_time_ns: recv,
    })
}

fn depth(p: &mut Bytes<'_>, sym: Option<Symbol>, recv: i64) -> Option<DepthUpdate> {
    let event_time_ms = p.uint()?;
    p.lit(b",\"s\":\"")?;
    let symbol = p.symbol(sym)?;
    p.lit(b",\"U\":")?;
    let first_update_id = p.uint()?;
    p.lit(b",\"u\":")?;
    let final_update_id = p.uint()?;
    if final_update_id < first_update_id {
        return None;
    }
    p.lit(b",\"b\":")?;
    let bids = p.levels()?;
    p.lit(b",\"a\":")?;
    let asks = p.levels()?;
    p.lit(b"}")?;
    Some(DepthUpdate {
        symbol,
        event_time_ms,
        first_update_id,
        final_update_id,
        bids,
        asks,
        recv_time_ns: recv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::frame::parse_general;

    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/capture.rs"
    ));

    fn capture_frames(name: &str) -> Vec<Vec<u8>> {
        capture_payloads(&capture_text(name))
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Where the fast path answers, it must give exactly the general parser's event.
    fn check_agrees(frame: &[u8]) -> bool {
        match parse_fast(frame, 1) {
            Some(ev) => {
                assert_eq!(
                    parse_general(frame, 1, None).as_ref(),
                    Ok(&ev),
                    "{}",
                    String::from_utf8_lossy(frame)
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn fast_path_agrees_with_general_parser_on_real_frames() {
        for name in ["btcusdt_20240808.gz", "ethusdt_20240808.gz"] {
            let frames = capture_frames(name);
            let hits = frames.iter().filter(|f| check_agrees(f)).count();
            // Everything but the REST snapshot line takes the fast path.
            assert_eq!(hits, frames.len() - 1, "{name}");
        }
    }

    #[test]
    fn fast_path_agrees_on_mutated_frames() {
        let frames = capture_frames("btcusdt_20240808.gz");
        let samples: Vec<&Vec<u8>> = frames.iter().step_by(997).take(40).collect();
        for frame in samples {
            for pos in 0..frame.len() {
                for b in [b'0', b'9', b'-', b'.', b'"', b'\\', b' ', b'}', b'e', 0x80] {
                    let mut m = frame.clone();
                    m[pos] = b;
                    check_agrees(&m);
                }
                check_agrees(&frame[..pos]);
            }
        }
    }
}
