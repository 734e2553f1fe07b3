//! The local order book: Binance's snapshot + diff-stream procedure, per symbol.
//!
//! - [`side`]: one side of the book (price → quantity), best first.
//! - [`sync`]: the synchronisation state machine (buffer diffs, take a snapshot, drop stale
//!   diffs, require a continuous update-id chain, resync on a break).

pub mod side;
pub mod sync;

pub use side::BookSide;
pub use sync::{DiffOutcome, LocalBook, SnapshotOutcome, SyncState};
