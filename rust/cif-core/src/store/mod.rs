//! Storage: the rows the live gateway writes to the DuckDB history.
//!
//! - [`rows`]: events in, one column list per table out, in the tables' column order, for
//!   one batch insert per table (the live writer's flush).

pub mod rows;

pub use rows::{LiveRows, TableColumn};
