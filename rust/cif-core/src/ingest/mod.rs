//! Ingestion: raw exchange bytes to normalized events.
//!
//! - [`events`]: the normalized event types (exchange time and receive time on each).
//! - [`frame`]: WebSocket frames (combined `{"stream","data"}` wrapper or raw payloads).
//! - [`rest`]: REST response bodies (depth snapshot, historical trades).
//! - [`batch`]: many frames into columnar tables in one call.
//! - [`error`]: the typed parse error.
//! - [`trade_gaps`]: trade-id continuity (gap detection, in-order release after backfill).
//! - [`book_events`]: L1-change events with the local book's depth, and the book's
//!   agreement with the ticker stream.
//! - [`ws_wire`]: the server's plain WebSocket data frames cut out of received bytes.

pub mod batch;
pub mod book_events;
pub mod decimal;
pub mod error;
pub mod events;
mod fast;
pub mod frame;
mod json;
pub mod rest;
pub mod symbol;
pub mod trade_gaps;
pub mod ws_wire;

pub use batch::{parse_capture, parse_frames, FrameBatch};
pub use error::{ErrorKind, ParseError};
pub use events::{
    AggTrade, BookTicker, DepthSnapshot, DepthUpdate, Event, Level, ServerShutdown, Side, Trade,
};
pub use frame::parse_frame;
pub use rest::{parse_rest_depth, parse_rest_trades};
pub use symbol::Symbol;
pub use trade_gaps::{Released, SequencerStats, TradeSequencer};
