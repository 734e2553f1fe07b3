//! WebSocket frames → events.
//!
//! A frame is either the combined-stream wrapper `{"stream":"btcusdt@trade","data":{…}}`
//! (`/stream?streams=…`), a raw payload (`/ws/<stream>`), or the connection event wrapper
//! `{"event":{"e":"serverShutdown",…}}`. The payload kind comes from `e`; payloads without
//! `e` are bookTicker (`u`) or partial depth (`lastUpdateId`, symbol from the stream name).

use super::error::{ErrorKind, ParseError};
use super::events::{
    AggTrade, BookTicker, DepthSnapshot, DepthUpdate, Event, Level, ServerShutdown, Side, Trade,
};
use super::fast::parse_fast;
use super::json::{decimal_value, int_value, Cursor, JStr, Result, Val};
use super::symbol::Symbol;

/// Keys cif reads. Any other key is validated and skipped, so Binance adding fields does
/// not break parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Key {
    LowerE,
    UpperE,
    S,
    LowerT,
    P,
    Q,
    UpperT,
    M,
    LowerA,
    LowerB,
    F,
    L,
    UpperU,
    LowerU,
    UpperB,
    UpperA,
    LastUpdateId,
    Id,
    Price,
    Qty,
    Time,
    IsBuyerMaker,
}

const N_KEYS: usize = Key::IsBuyerMaker as usize + 1;

impl Key {
    fn from_bytes(k: &[u8]) -> Option<Key> {
        Some(match k {
            b"e" => Key::LowerE,
            b"E" => Key::UpperE,
            b"s" => Key::S,
            b"t" => Key::LowerT,
            b"p" => Key::P,
            b"q" => Key::Q,
            b"T" => Key::UpperT,
            b"m" => Key::M,
            b"a" => Key::LowerA,
            b"b" => Key::LowerB,
            b"f" => Key::F,
            b"l" => Key::L,
            b"U" => Key::UpperU,
            b"u" => Key::LowerU,
            b"B" => Key::UpperB,
            b"A" => Key::UpperA,
            b"lastUpdateId" => Key::LastUpdateId,
            b"id" => Key::Id,
            b"price" => Key::Price,
            b"qty" => Key::Qty,
            b"time" => Key::Time,
            b"isBuyerMaker" => Key::IsBuyerMaker,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::LowerE => "e",
            Key::UpperE => "E",
            Key::S => "s",
            Key::LowerT => "t",
            Key::P => "p",
            Key::Q => "q",
            Key::UpperT => "T",
            Key::M => "m",
            Key::LowerA => "a",
            Key::LowerB => "b",
            Key::F => "f",
            Key::L => "l",
            Key::UpperU => "U",
            Key::LowerU => "u",
            Key::UpperB => "B",
            Key::UpperA => "A",
            Key::LastUpdateId => "lastUpdateId",
            Key::Id => "id",
            Key::Price => "price",
            Key::Qty => "qty",
            Key::Time => "time",
            Key::IsBuyerMaker => "isBuyerMaker",
        }
    }
}

/// Which side a level list belongs to, by the key it came under.
fn level_side(key: &[u8]) -> Option<(bool, &'static str)> {
    match key {
        b"b" => Some((true, "b")),
        b"a" => Some((false, "a")),
        b"bids" => Some((true, "bids")),
        b"asks" => Some((false, "asks")),
        _ => None,
    }
}

/// The members of one JSON object that cif knows, kept uninterpreted until the event kind is
/// known.
#[derive(Default)]
pub(crate) struct Fields<'a> {
    vals: [Option<Val<'a>>; N_KEYS],
    bids: Option<(&'static str, Vec<Level>)>,
    asks: Option<(&'static str, Vec<Level>)>,
}

fn duplicate(key: &str) -> ParseError {
    ParseError::malformed(format!("duplicate key `{key}`"))
}

impl<'a> Fields<'a> {
    /// Read one member's value into the right slot. Returns false if the key is not one of
    /// ours (the caller then decides what to do with it).
    fn member(&mut self, cur: &mut Cursor<'a>, key: &[u8]) -> Result<bool> {
        if cur.peek() == Some(b'[') {
            if let Some((is_bid, name)) = level_side(key) {
                let slot = if is_bid {
                    &mut self.bids
                } else {
                    &mut self.asks
                };
                if slot.is_some() {
                    return Err(duplicate(name));
                }
                let mut levels = Vec::new();
                cur.levels(&mut levels, name, "a depth message")?;
                *slot = Some((name, levels));
                return Ok(true);
            }
        }
        let Some(k) = Key::from_bytes(key) else {
            return Ok(false);
        };
        let slot = &mut self.vals[k as usize];
        if slot.is_some() {
            return Err(duplicate(k.name()));
        }
        *slot = Some(cur.value(1)?);
        Ok(true)
    }

    /// Parse an object made only of event members (unknown keys skipped) into `self`.
    pub(crate) fn parse_into(&mut self, cur: &mut Cursor<'a>) -> Result<()> {
        cur.object(|cur, key| {
            let key = key_bytes(&key)?;
            if !self.member(cur, &key)? {
                cur.value(1)?;
            }
            Ok(())
        })
    }

    fn get(&self, k: Key) -> Option<Val<'a>> {
        self.vals[k as usize]
    }

    fn has(&self, k: Key) -> bool {
        self.vals[k as usize].is_some()
    }

    pub(crate) fn int(&self, k: Key, what: &str) -> Result<i64> {
        match self.get(k) {
            Some(Val::Num(raw)) => int_value(raw, k.name(), what),
            Some(v) => Err(ParseError::wrong_type(
                k.name(),
                what,
                "an integer",
                v.type_name(),
            )),
            None => Err(ParseError::missing(k.name(), what)),
        }
    }

    fn opt_int(&self, k: Key, what: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None | Some(Val::Null) => Ok(None),
            Some(_) => self.int(k, what).map(Some),
        }
    }

    /// A decimal-string field; `positive` rejects zero too.
    pub(crate) fn decimal(&self, k: Key, what: &str, positive: bool) -> Result<f64> {
        let v = match self.get(k) {
            Some(Val::Str(s)) => decimal_value(&s, k.name(), what)?,
            Some(v) => {
                return Err(ParseError::wrong_type(
                    k.name(),
                    what,
                    "a decimal string",
                    v.type_name(),
                ))
            }
            None => return Err(ParseError::missing(k.name(), what)),
        };
        if positive && v <= 0.0 {
            return Err(ParseError::invalid(format!(
                "field `{}` in {what} must be positive, got {v}",
                k.name()
            )));
        }
        Ok(v)
    }

    pub(crate) fn bool(&self, k: Key, what: &str) -> Result<bool> {
        match self.get(k) {
            Some(Val::Bool(b)) => Ok(b),
            Some(v) => Err(ParseError::wrong_type(
                k.name(),
                what,
                "a boolean",
                v.type_name(),
            )),
            None => Err(ParseError::missing(k.name(), what)),
        }
    }

    fn string(&self, k: Key, what: &str) -> Result<JStr<'a>> {
        match self.get(k) {
            Some(Val::Str(s)) => Ok(s),
            Some(v) => Err(ParseError::wrong_type(
                k.name(),
                what,
                "a string",
                v.type_name(),
            )),
            None => Err(ParseError::missing(k.name(), what)),
        }
    }

    /// The payload's own symbol `s`, checked against the stream name's when both exist.
    fn symbol(&self, what: &str, from_stream: Option<Symbol>) -> Result<Symbol> {
        let s = self.string(Key::S, what)?;
        if let (Some(stream_sym), Some(raw)) = (from_stream, s.plain()) {
            // The usual case: the payload repeats the stream's symbol; no second validation.
            if stream_sym.as_bytes().eq_ignore_ascii_case(raw) {
                return Ok(stream_sym);
            }
        }
        let sym = Symbol::new(&s.text()?)
            .map_err(|e| ParseError::invalid(format!("field `s` in {what}: {e}")))?;
        if let Some(stream_sym) = from_stream {
            if stream_sym != sym {
                return Err(ParseError::invalid(format!(
                    "{what} for symbol {sym} arrived on the stream of {stream_sym}"
                )));
            }
        }
        Ok(sym)
    }

    /// Level lists under `bids`/`b` and `asks`/`a`.
    pub(crate) fn take_levels(
        &mut self,
        what: &str,
        bid_key: &str,
        ask_key: &str,
    ) -> Result<(Vec<Level>, Vec<Level>)> {
        let take = |slot: &mut Option<(&'static str, Vec<Level>)>,
                    key: &str,
                    scalar: Option<Val<'a>>|
         -> Result<Vec<Level>> {
            match slot.take() {
                Some((name, levels)) if name == key => Ok(levels),
                Some((name, _)) => Err(ParseError::malformed(format!(
                    "{what} has level list `{name}` where `{key}` was expected"
                ))),
                None => match scalar {
                    Some(v) => Err(ParseError::wrong_type(
                        key,
                        what,
                        "a list of [price, quantity] decimal-string pairs",
                        v.type_name(),
                    )),
                    None => Err(ParseError::missing(key, what)),
                },
            }
        };
        let scalar_b = if bid_key == "b" {
            self.get(Key::LowerB)
        } else {
            None
        };
        let scalar_a = if ask_key == "a" {
            self.get(Key::LowerA)
        } else {
            None
        };
        let bids = take(&mut self.bids, bid_key, scalar_b)?;
        let asks = take(&mut self.asks, ask_key, scalar_a)?;
        Ok((bids, asks))
    }
}

/// Object keys as bytes; escaped keys (legal JSON, never sent by Binance) are decoded.
#[inline]
fn key_bytes<'k>(key: &JStr<'k>) -> Result<std::borrow::Cow<'k, [u8]>> {
    if let Some(raw) = key.plain() {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    Ok(match key.text()? {
        std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
    })
}

/// The symbol in a stream name (`btcusdt@depth@100ms` → `BTCUSDT`).
fn stream_symbol(stream: &str) -> Result<Symbol> {
    let (sym, kind) = stream.split_once('@').ok_or_else(|| {
        ParseError::invalid(format!(
            "stream name {stream:?} has no '@' (expected <symbol>@<type>)"
        ))
    })?;
    if kind.is_empty() {
        return Err(ParseError::invalid(format!(
            "stream name {stream:?} has no type after '@'"
        )));
    }
    Symbol::new(sym).map_err(|e| ParseError::invalid(format!("stream name {stream:?}: {e}")))
}

/// Parse one WebSocket text frame into an event.
///
/// `symbol_hint` names the symbol for partial-depth payloads on a raw `/ws` stream, which
/// carry none; it is ignored when the frame names its own symbol.
#[inline]
pub fn parse_frame(
    frame: &[u8],
    recv_time_ns: i64,
    symbol_hint: Option<Symbol>,
) -> std::result::Result<Event, ParseError> {
    // The fast path covers only payloads that name their own symbol, so the hint is moot.
    if let Some(event) = parse_fast(frame, recv_time_ns) {
        return Ok(event);
    }
    parse_general(frame, recv_time_ns, symbol_hint)
}

/// The general validating parser: any key order, whitespace, unknown keys, escapes; every
/// rejection named.
pub(crate) fn parse_general(
    frame: &[u8],
    recv_time_ns: i64,
    symbol_hint: Option<Symbol>,
) -> std::result::Result<Event, ParseError> {
    let mut cur = Cursor::new(frame);
    cur.skip_ws();
    if cur.peek() != Some(b'{') {
        return Err(match cur.peek() {
            None => ParseError::malformed("empty frame"),
            Some(_) => {
                // Valid JSON of another shape is a structural problem, not a syntax one.
                let v = cur.value(0)?;
                cur.finish()?;
                ParseError::malformed(format!(
                    "frame must be a JSON object, got {}",
                    v.type_name()
                ))
            }
        });
    }
    // Both objects live here for the whole parse: no moves of the field tables.
    let mut top = Fields::default();
    let mut inner = Fields::default();
    let mut stream: Option<Val<'_>> = None;
    let mut wrapper: Option<&'static str> = None;
    cur.object(|cur, key| {
        let key = key_bytes(&key)?;
        match &*key {
            b"stream" => set_once(&mut stream, "stream", cur.value(1)?),
            b"data" | b"event" if cur.peek() == Some(b'{') => {
                let name = if &*key == b"data" { "data" } else { "event" };
                if let Some(prev) = wrapper {
                    return Err(if prev == name {
                        duplicate(name)
                    } else {
                        ParseError::malformed("frame has both `data` and `event`")
                    });
                }
                wrapper = Some(name);
                inner.parse_into(cur)
            }
            b"data" => Err(ParseError::wrong_type(
                "data",
                "a combined-stream frame",
                "an object",
                cur.value(1)?.type_name(),
            )),
            _ => {
                if !top.member(cur, &key)? {
                    cur.value(1)?;
                }
                Ok(())
            }
        }
    })?;
    cur.finish()?;

    match wrapper {
        Some("data") => {
            let stream = match stream {
                Some(Val::Str(s)) => s.text()?,
                Some(v) => {
                    return Err(ParseError::wrong_type(
                        "stream",
                        "a combined-stream frame",
                        "a string",
                        v.type_name(),
                    ))
                }
                None => return Err(ParseError::missing("stream", "a combined-stream frame")),
            };
            let sym = stream_symbol(&stream)?;
            interpret(&mut inner, Some(sym), None, recv_time_ns)
        }
        Some(_) => interpret(&mut inner, None, None, recv_time_ns),
        None if stream.is_some() => Err(ParseError::missing("data", "a combined-stream frame")),
        None => interpret(&mut top, None, symbol_hint, recv_time_ns),
    }
}

fn set_once<'a>(slot: &mut Option<Val<'a>>, name: &str, v: Val<'a>) -> Result<()> {
    if slot.is_some() {
        return Err(duplicate(name));
    }
    *slot = Some(v);
    Ok(())
}

/// Turn a payload's fields into an event. `stream_sym` is the symbol from the stream name
/// (combined streams), which a payload's own `s` must match; `hint` is the caller's symbol
/// for payloads that carry none (partial depth on a raw stream).
fn interpret(
    f: &mut Fields<'_>,
    stream_sym: Option<Symbol>,
    hint: Option<Symbol>,
    recv: i64,
) -> Result<Event> {
    let kind = match f.get(Key::LowerE) {
        Some(Val::Str(s)) => Some(s.text()?),
        Some(v) => {
            return Err(ParseError::wrong_type(
                "e",
                "an event",
                "a string",
                v.type_name(),
            ))
        }
        None => None,
    };
    match kind.as_deref() {
        Some("trade") => trade(f, stream_sym, recv).map(Event::Trade),
        Some("aggTrade") => agg_trade(f, stream_sym, recv).map(Event::AggTrade),
        Some("depthUpdate") => depth_update(f, stream_sym, recv).map(Event::DepthUpdate),
        Some("serverShutdown") => Ok(Event::ServerShutdown(ServerShutdown {
            event_time_ms: f.int(Key::UpperE, "serverShutdown")?,
            recv_time_ns: recv,
        })),
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            Err(ParseError::new(
                ErrorKind::UnknownEvent,
                format!("unknown event type {shown:?}"),
            ))
        }
        None if f.has(Key::LastUpdateId) => {
            let what = "a partial depth message";
            let symbol = stream_sym.or(hint).ok_or_else(|| {
                ParseError::missing(
                    "symbol",
                    "a partial depth message on a raw stream (pass the stream's symbol)",
                )
            })?;
            snapshot(f, symbol, what, "bids", "asks", recv).map(Event::DepthSnapshot)
        }
        None if f.has(Key::LowerU) => book_ticker(f, stream_sym, recv).map(Event::BookTicker),
        None => Err(ParseError::new(
            ErrorKind::UnknownEvent,
            "not a market event: no `e`, `u` or `lastUpdateId`",
        )),
    }
}

fn trade(f: &Fields<'_>, stream_sym: Option<Symbol>, recv: i64) -> Result<Trade> {
    let what = "trade";
    let is_buyer_maker = f.bool(Key::M, what)?;
    Ok(Trade {
        symbol: f.symbol(what, stream_sym)?,
        trade_id: f.int(Key::LowerT, what)?,
        event_time_ms: f.int(Key::UpperE, what)?,
        trade_time_ms: f.int(Key::UpperT, what)?,
        price: f.decimal(Key::P, what, true)?,
        qty: f.decimal(Key::Q, what, true)?,
        side: Side::from_buyer_is_maker(is_buyer_maker),
        is_buyer_maker,
        recv_time_ns: recv,
    })
}

fn agg_trade(f: &Fields<'_>, stream_sym: Option<Symbol>, recv: i64) -> Result<AggTrade> {
    let what = "aggTrade";
    let is_buyer_maker = f.bool(Key::M, what)?;
    let first = f.int(Key::F, what)?;
    let last = f.int(Key::L, what)?;
    if last < first {
        return Err(ParseError::invalid(format!(
            "aggTrade last trade id {last} is before first trade id {first}"
        )));
    }
    Ok(AggTrade {
        symbol: f.symbol(what, stream_sym)?,
        agg_trade_id: f.int(Key::LowerA, what)?,
        first_trade_id: first,
        last_trade_id: last,
        event_time_ms: f.int(Key::UpperE, what)?,
        trade_time_ms: f.int(Key::UpperT, what)?,
        price: f.decimal(Key::P, what, true)?,
        qty: f.decimal(Key::Q, what, true)?,
        side: Side::from_buyer_is_maker(is_buyer_maker),
        is_buyer_maker,
        recv_time_ns: recv,
    })
}

fn depth_update(f: &mut Fields<'_>, stream_sym: Option<Symbol>, recv: i64) -> Result<DepthUpdate> {
    let what = "depthUpdate";
    let symbol = f.symbol(what, stream_sym)?;
    let first = f.int(Key::UpperU, what)?;
    let last = f.int(Key::LowerU, what)?;
    if last < first {
        return Err(ParseError::invalid(format!(
            "depthUpdate final update id {last} is before first update id {first}"
        )));
    }
    let event_time_ms = f.int(Key::UpperE, what)?;
    let (bids, asks) = f.take_levels(what, "b", "a")?;
    Ok(DepthUpdate {
        symbol,
        event_time_ms,
        first_update_id: first,
        final_update_id: last,
        bids,
        asks,
        recv_time_ns: recv,
    })
}

/// A snapshot body (`lastUpdateId`, `bids`, `asks`): REST depth or a partial-depth stream.
pub(crate) fn snapshot(
    f: &mut Fields<'_>,
    symbol: Symbol,
    what: &str,
    bid_key: &str,
    ask_key: &str,
    recv: i64,
) -> Result<DepthSnapshot> {
    let last_update_id = f.int(Key::LastUpdateId, what)?;
    let event_time_ms = f.opt_int(Key::UpperE, what)?;
    let (bids, asks) = f.take_levels(what, bid_key, ask_key)?;
    Ok(DepthSnapshot {
        symbol,
        last_update_id,
        bids,
        asks,
        event_time_ms,
        recv_time_ns: recv,
    })
}

fn book_ticker(f: &Fields<'_>, stream_sym: Option<Symbol>, recv: i64) -> Result<BookTicker> {
    let what = "bookTicker";
    Ok(BookTicker {
        symbol: f.symbol(what, stream_sym)?,
        update_id: f.int(Key::LowerU, what)?,
        // An empty side is sent as zeros, so zero is a legal price here.
        bid_price: f.decimal(Key::LowerB, what, false)?,
        bid_qty: f.decimal(Key::UpperB, what, false)?,
        ask_price: f.decimal(Key::LowerA, what, false)?,
        ask_qty: f.decimal(Key::UpperA, what, false)?,
        event_time_ms: f.opt_int(Key::UpperE, what)?,
        recv_time_ns: recv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}"#;
    const DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;
    const TICKER: &str = r#"{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}"#;

    fn parse(s: &str) -> Result<Event> {
        parse_frame(s.as_bytes(), 7, None)
    }

    fn kind(s: &str) -> ErrorKind {
        parse(s).unwrap_err().kind
    }

    #[test]
    fn trade_normalizes_side_and_fields() {
        let Event::Trade(t) = parse(TRADE).unwrap() else {
            panic!("not a trade")
        };
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
        assert_eq!(t.trade_id, 3735683259);
        assert_eq!(t.event_time_ms, 1723161255343);
        assert_eq!(t.trade_time_ms, 1723161255342);
        assert_eq!(t.price, 61837.63);
        assert_eq!(t.qty, 0.02);
        assert_eq!(t.side, Side::Sell);
        assert_eq!(t.recv_time_ns, 7);
    }

    #[test]
    fn raw_payload_equals_wrapped_payload() {
        let raw = &TRADE[TRADE.find(r#"{"e""#).unwrap()..TRADE.len() - 1];
        assert_eq!(parse(raw).unwrap(), parse(TRADE).unwrap());
    }

    #[test]
    fn depth_and_ticker() {
        let Event::DepthUpdate(d) = parse(DEPTH).unwrap() else {
            panic!()
        };
        assert_eq!(
            (d.first_update_id, d.final_update_id),
            (50093239203, 50093239207)
        );
        assert_eq!(
            d.bids,
            vec![Level {
                price: 55653.87,
                qty: 0.0
            }]
        );
        assert_eq!(d.asks.len(), 2);
        let Event::BookTicker(b) = parse(TICKER).unwrap() else {
            panic!()
        };
        assert_eq!(b.update_id, 50093239212);
        assert_eq!((b.bid_price, b.ask_qty), (61837.63, 1.54698));
        assert_eq!(b.event_time_ms, None);
    }

    #[test]
    fn partial_depth_takes_symbol_from_stream_or_hint() {
        let body = r#"{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}"#;
        let wrapped = format!(r#"{{"stream":"bnbbtc@depth5@100ms","data":{body}}}"#);
        let Event::DepthSnapshot(s) = parse(&wrapped).unwrap() else {
            panic!()
        };
        assert_eq!(s.symbol.as_str(), "BNBBTC");
        assert_eq!(s.last_update_id, 160);
        assert_eq!(kind(body), ErrorKind::MissingField);
        let hint = Symbol::new("bnbbtc").unwrap();
        assert!(parse_frame(body.as_bytes(), 0, Some(hint)).is_ok());
    }

    #[test]
    fn hint_does_not_override_a_payloads_own_symbol() {
        let raw = &TRADE[TRADE.find(r#"{"e""#).unwrap()..TRADE.len() - 1];
        let eth = Symbol::new("ethusdt").unwrap();
        let Event::Trade(t) = parse_frame(raw.as_bytes(), 0, Some(eth)).unwrap() else {
            panic!()
        };
        assert_eq!(t.symbol.as_str(), "BTCUSDT");
    }

    #[test]
    fn server_shutdown_both_shapes() {
        for s in [
            r#"{"e":"serverShutdown","E":1770123456789}"#,
            r#"{"event":{"e":"serverShutdown","E":1770123456789}}"#,
        ] {
            assert_eq!(
                parse(s).unwrap(),
                Event::ServerShutdown(ServerShutdown {
                    event_time_ms: 1770123456789,
                    recv_time_ns: 7
                })
            );
        }
    }

    #[test]
    fn error_kinds() {
        assert_eq!(kind(&TRADE[..TRADE.len() - 5]), ErrorKind::MalformedFrame);
        assert_eq!(
            kind(&TRADE.replace(r#""p":"61837.63000000""#, r#""p":61837.63"#)),
            ErrorKind::WrongType
        );
        assert_eq!(
            kind(&TRADE.replace(r#","m":true"#, "")),
            ErrorKind::MissingField
        );
        assert_eq!(
            kind(&TRADE.replace("61837.63000000", "-1.0")),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind(&TRADE.replace("61837.63000000", "NaN")),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind(&TRADE.replace("\"trade\",", "\"kline\",")),
            ErrorKind::UnknownEvent
        );
        assert_eq!(
            kind(&TRADE.replace("\"BTCUSDT\"", "\"ETHUSDT\"")),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind(&TRADE.replace("\"t\":", "\"t\":1,\"t\":")),
            ErrorKind::MalformedFrame
        );
        assert_eq!(kind("[1,2]"), ErrorKind::MalformedFrame);
        assert_eq!(kind(""), ErrorKind::MalformedFrame);
        assert_eq!(kind(r#"{"result":null,"id":1}"#), ErrorKind::UnknownEvent);
        assert_eq!(
            parse_frame(b"{\"e\":\"\xff\"}", 0, None).unwrap_err().kind,
            ErrorKind::MalformedFrame
        );
    }

    #[test]
    fn every_prefix_is_rejected_not_panicking() {
        for src in [TRADE, DEPTH, TICKER] {
            for n in 0..src.len() {
                assert!(parse(&src[..n]).is_err(), "prefix {n} of {src}");
            }
        }
    }
}
