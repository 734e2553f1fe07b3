//! REST response bodies: `/api/v3/depth` and `/api/v3/historicalTrades` (or `/trades`).

use super::error::ParseError;
use super::events::{DepthSnapshot, Side, Trade};
use super::frame::{snapshot, Fields, Key};
use super::json::Cursor;
use super::symbol::Symbol;

fn cursor(body: &[u8]) -> Result<Cursor<'_>, ParseError> {
    let mut cur = Cursor::new(body);
    cur.skip_ws();
    Ok(cur)
}

/// Parse a `GET /api/v3/depth` body (`{"lastUpdateId", "bids", "asks"}`) for `symbol`.
pub fn parse_rest_depth(
    body: &[u8],
    symbol: Symbol,
    recv_time_ns: i64,
) -> Result<DepthSnapshot, ParseError> {
    let mut cur = cursor(body)?;
    if cur.peek() != Some(b'{') {
        return Err(cur.error("a JSON object (depth snapshot)"));
    }
    let mut f = Fields::default();
    f.parse_into(&mut cur)?;
    cur.finish()?;
    snapshot(
        &mut f,
        symbol,
        "a depth snapshot",
        "bids",
        "asks",
        recv_time_ns,
    )
}

/// Parse a `GET /api/v3/historicalTrades` body: a list of
/// `{"id","price","qty","quoteQty","time","isBuyerMaker","isBestMatch"}` rows for `symbol`.
/// REST rows have no event time, so `event_time_ms` is the trade time.
pub fn parse_rest_trades(
    body: &[u8],
    symbol: Symbol,
    recv_time_ns: i64,
) -> Result<Vec<Trade>, ParseError> {
    let mut cur = cursor(body)?;
    if cur.peek() != Some(b'[') {
        return Err(cur.error("a JSON array of trades"));
    }
    let mut out = Vec::new();
    let what = "a REST trade row";
    cur.array(|cur| {
        if cur.peek() != Some(b'{') {
            return Err(cur.error("a trade object"));
        }
        let mut f = Fields::default();
        f.parse_into(cur)?;
        let is_buyer_maker = f.bool(Key::IsBuyerMaker, what)?;
        let time = f.int(Key::Time, what)?;
        out.push(Trade {
            symbol,
            trade_id: f.int(Key::Id, what)?,
            event_time_ms: time,
            trade_time_ms: time,
            price: f.decimal(Key::Price, what, true)?,
            qty: f.decimal(Key::Qty, what, true)?,
            side: Side::from_buyer_is_maker(is_buyer_maker),
            is_buyer_maker,
            recv_time_ns,
        });
        Ok(())
    })?;
    cur.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::error::ErrorKind;

    fn btc() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    #[test]
    fn depth_body() {
        let s = parse_rest_depth(
            br#"{"lastUpdateId":5,"bids":[["1.5","2"]],"asks":[["1.6","0.1"],["1.7","3"]]}"#,
            btc(),
            9,
        )
        .unwrap();
        assert_eq!(s.last_update_id, 5);
        assert_eq!(s.bids.len(), 1);
        assert_eq!(s.asks[1].price, 1.7);
        assert_eq!(s.event_time_ms, None);
        let err = parse_rest_depth(br#"{"lastUpdateId":5,"bids":[]}"#, btc(), 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MissingField);
    }

    #[test]
    fn trade_rows() {
        let body = br#"[{"id":28457,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":1499865549590,"isBuyerMaker":true,"isBestMatch":true},
                       {"id":28458,"price":"4.1","qty":"1","quoteQty":"4.1","time":1499865549591,"isBuyerMaker":false,"isBestMatch":true}]"#;
        let t = parse_rest_trades(body, btc(), 3).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].trade_id, 28457);
        assert_eq!(t[0].side, Side::Sell);
        assert_eq!(t[1].side, Side::Buy);
        assert_eq!(t[1].event_time_ms, 1499865549591);
        assert_eq!(parse_rest_trades(b"[]", btc(), 0).unwrap(), vec![]);
        let err = parse_rest_trades(br#"[{"id":1}]"#, btc(), 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MissingField);
        let err =
            parse_rest_trades(br#"{"code":-1121,"msg":"Invalid symbol."}"#, btc(), 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedFrame);
    }
}
