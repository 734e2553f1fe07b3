//! Python-compatible text codecs of the stream entries the feature processor reads and
//! writes.
//!
//! The gateway, the processor and the consumers are Python code that writes numbers with
//! `repr` / `%d` and reads them with `int()` / `float()` / `json.loads`. These functions
//! follow the same rules byte for byte, so moving the per-event work of the processor into
//! Rust changes no stored byte and no decoded bit.
//!
//! - [`repr`]: `repr(float)` and `%d` of an integer.
//! - [`rows`]: feature rows packed as the RESP bulk strings of an `XADD`.
//! - [`text`]: Python's `int(text)` / `float(text)`.
//! - [`depth`]: the depth levels' JSON (`[[price, qty], ...]`).
//! - [`entries`]: `trades:{symbol}` / `book:{symbol}` entries into event log columns.
//! - [`digest_rows`]: feature rows as the bytes the output digest hashes.
//! - [`fanout`]: the same entries out, as the gateway publishes them (pre-packed RESP).
//! - [`forecast_json`]: a `forecasts:{symbol}` entry as the API's JSON record.
//! - [`feature_input`]: a `features:{symbol}` entry as the forecaster reads it.

pub mod depth;
pub mod digest_rows;
pub mod entries;
pub mod fanout;
pub mod feature_input;
pub mod forecast_json;
pub mod repr;
pub mod rows;
pub mod text;

pub use depth::{parse_depth_levels, JsonError, LevelError, LevelProblem};
pub use digest_rows::{
    digest_row_bytes, forecast_digest_row_bytes, RowLengthError, CANONICAL_NAN_BITS,
};
pub use entries::{
    DecodeError, DecodeProblem, EntryField, EntryFields, EventDecoder, EventLogColumns, FieldValue,
};
pub use fanout::{
    pack_book_entry, pack_trade_entry, pack_xadd, write_bulk, BookEntry, XaddBodyError,
    BOOK_FIELDS, TRADE_FIELDS,
};
pub use feature_input::{read_header, read_values, FeatureLayout, RowHeader, RowOrder, RowVerdict};
pub use forecast_json::forecast_record_json;
pub use repr::{py_repr_f64, write_i64, EntryId};
pub use rows::{PackedRows, RowColumns, RowPacker, RowsError, ROW_FIELDS};
pub use text::{parse_py_float, parse_py_int, NumberError};
