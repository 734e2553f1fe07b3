//! Normalized market events. Every event carries the exchange's time (where Binance sends
//! one) and the local receive time in nanoseconds.

use super::symbol::Symbol;

/// The aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The buyer crossed the spread (Binance `m: false`).
    Buy,
    /// The seller crossed the spread (Binance `m: true`, the buyer was the maker).
    Sell,
}

impl Side {
    /// From Binance's "is the buyer the maker" flag.
    pub fn from_buyer_is_maker(buyer_is_maker: bool) -> Side {
        if buyer_is_maker {
            Side::Sell
        } else {
            Side::Buy
        }
    }

    /// `"buy"` or `"sell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// +1 for buy, -1 for sell (the sign of signed volume).
    pub fn sign(self) -> i8 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }
}

/// One price level: price and quantity (quantity 0 in a diff removes the level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Price.
    pub price: f64,
    /// Quantity at that price.
    pub qty: f64,
}

/// A trade (`<symbol>@trade`, or a REST trade row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    /// Exchange symbol.
    pub symbol: Symbol,
    /// Exchange trade id, consecutive per symbol.
    pub trade_id: i64,
    /// Exchange event time `E` (ms); REST rows use the trade time.
    pub event_time_ms: i64,
    /// Trade time `T` (ms).
    pub trade_time_ms: i64,
    /// Price.
    pub price: f64,
    /// Quantity.
    pub qty: f64,
    /// Aggressor side.
    pub side: Side,
    /// Binance's `m`: the buyer was the maker.
    pub is_buyer_maker: bool,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// An aggregate trade (`<symbol>@aggTrade`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AggTrade {
    /// Exchange symbol.
    pub symbol: Symbol,
    /// Aggregate trade id `a`.
    pub agg_trade_id: i64,
    /// First trade id `f` in the aggregate.
    pub first_trade_id: i64,
    /// Last trade id `l` in the aggregate.
    pub last_trade_id: i64,
    /// Exchange event time `E` (ms).
    pub event_time_ms: i64,
    /// Trade time `T` (ms).
    pub trade_time_ms: i64,
    /// Price.
    pub price: f64,
    /// Quantity.
    pub qty: f64,
    /// Aggressor side.
    pub side: Side,
    /// Binance's `m`.
    pub is_buyer_maker: bool,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// A diff-depth event (`<symbol>@depth`, `<symbol>@depth@100ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthUpdate {
    /// Exchange symbol.
    pub symbol: Symbol,
    /// Exchange event time `E` (ms).
    pub event_time_ms: i64,
    /// First update id `U` in this event.
    pub first_update_id: i64,
    /// Final update id `u` in this event.
    pub final_update_id: i64,
    /// Changed bid levels.
    pub bids: Vec<Level>,
    /// Changed ask levels.
    pub asks: Vec<Level>,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// A book snapshot: REST `/api/v3/depth` or a partial-depth stream (`@depth5` …).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthSnapshot {
    /// Exchange symbol (from the request or the stream name: the payload has none).
    pub symbol: Symbol,
    /// `lastUpdateId`.
    pub last_update_id: i64,
    /// Bid levels, best first.
    pub bids: Vec<Level>,
    /// Ask levels, best first.
    pub asks: Vec<Level>,
    /// Exchange time if the source carries one (Binance spot's do not).
    pub event_time_ms: Option<i64>,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// Best bid and ask (`<symbol>@bookTicker`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookTicker {
    /// Exchange symbol.
    pub symbol: Symbol,
    /// Order book update id `u`.
    pub update_id: i64,
    /// Best bid price.
    pub bid_price: f64,
    /// Best bid quantity.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask_price: f64,
    /// Best ask quantity.
    pub ask_qty: f64,
    /// Exchange time `E` if present (spot bookTicker has none).
    pub event_time_ms: Option<i64>,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// The exchange will close this connection soon (`serverShutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerShutdown {
    /// Exchange event time `E` (ms).
    pub event_time_ms: i64,
    /// Local receive time, ns since the epoch.
    pub recv_time_ns: i64,
}

/// Any normalized event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A trade.
    Trade(Trade),
    /// An aggregate trade.
    AggTrade(AggTrade),
    /// A diff-depth update.
    DepthUpdate(DepthUpdate),
    /// A book snapshot.
    DepthSnapshot(DepthSnapshot),
    /// Best bid/ask.
    BookTicker(BookTicker),
    /// Server shutdown notice.
    ServerShutdown(ServerShutdown),
}

impl Event {
    /// The symbol, for events that have one.
    pub fn symbol(&self) -> Option<Symbol> {
        match self {
            Event::Trade(e) => Some(e.symbol),
            Event::AggTrade(e) => Some(e.symbol),
            Event::DepthUpdate(e) => Some(e.symbol),
            Event::DepthSnapshot(e) => Some(e.symbol),
            Event::BookTicker(e) => Some(e.symbol),
            Event::ServerShutdown(_) => None,
        }
    }
}
