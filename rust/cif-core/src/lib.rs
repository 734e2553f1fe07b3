//! Pure-Rust core of cif, the Crypto Impact Forecaster.
//!
//! The modules follow the system's one-way data flow. This crate holds no Python types: the
//! PyO3 bindings live in the `cif-py` crate, which wraps these types for `cif._core`.
//!
//! - [`ingest`]: Binance WebSocket frames and REST bodies → normalized events, one at a
//!   time or into columnar batches.
//! - [`book`]: the local order book kept in sync by Binance's snapshot + diff procedure.
//! - [`features`]: order-flow features of a symbol's trades and book events, streaming or
//!   in batch, with snapshot / restore.
//! - [`forecast`]: scoring feature vectors into class probabilities (logistic, heuristic).
//! - [`codec`]: the feature processor's stream entries as Python writes and reads them
//!   (`repr` of feature rows out, trade / book entries in).
//! - [`store`]: the live writer's DuckDB rows, column by column.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod book;
pub mod codec;
pub mod features;
pub mod forecast;
pub mod ingest;
pub mod store;
