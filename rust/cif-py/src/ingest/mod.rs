//! Bindings for `cif_core::ingest`: events, parse functions and their errors, and the
//! gateway's per-symbol core (`IngestCore`).

use pyo3::prelude::*;

pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod parse;
pub(crate) mod symbol_core;
pub(crate) mod trade_gaps;
pub(crate) mod ws_wire;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    events::register(m)?;
    parse::register(m)?;
    symbol_core::register(m)?;
    trade_gaps::register(m)?;
    ws_wire::register(m)?;
    Ok(())
}
