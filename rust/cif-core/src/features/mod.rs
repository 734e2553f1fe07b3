//! Order-flow features of one symbol's event log (trades + book events, in seq order).
//!
//! The spec lives in the project's `features.md`; in short: an engine clock (max of event
//! times), rolling time and trade-count windows, L1/depth book features, OFI, realized and
//! EWMA volatility. One row of features after every trade (and after every book event with
//! `emit_on_book`); undefined values are NaN.
//!
//! - [`config`]: validated settings and the feature names.
//! - [`input`]: events one at a time, as borrowed columns or as an owned event log, and
//!   their validation.
//! - [`error`]: typed input errors naming the event index, seq and field.
//! - [`rolling`]: the Neumaier-compensated rolling sum.
//! - [`engine`]: the streaming engine and its row of features.
//! - [`batch`]: the batch path over columns.
//! - [`snapshot`]: versioned binary snapshot / restore of the full engine.
//!
//! Internal: `window` (the shared logs of trades and of book events, each window a suffix of
//! both with its counts and rolling sums) and `book` (L1 features, OFI term, depth
//! imbalance).
//!
//! Numerics: every window sum is a Neumaier-compensated sum with removal that resets to
//! exactly 0 when its last non-zero term leaves, and is recomputed from the window contents
//! (oldest to newest) once removals since the last recompute exceed max(len, 64). The
//! streaming and batch paths run the same update code, so their rows are bit-identical.

pub mod batch;
mod book;
pub mod config;
pub mod engine;
pub mod error;
pub mod input;
pub mod rolling;
pub mod snapshot;
mod window;

pub use batch::FeatureColumns;
pub use config::{time_suffix, ConfigError, FeatureConfig, Window};
pub use engine::FeatureEngine;
pub use error::{Field, InputError, Problem};
pub use input::{
    BookEvent, DepthColumns, EventColumns, EventLogColumns, TradeEvent, KIND_BOOK, KIND_TRADE,
};
pub use snapshot::{SnapshotError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};

#[cfg(test)]
mod tests;
