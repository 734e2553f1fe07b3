//! Bindings for `cif_core::ingest`: events, parse functions and their errors.

use pyo3::prelude::*;

pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod parse;
pub(crate) mod trade_gaps;
pub(crate) mod ws_wire;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    events::register(m)?;
    parse::register(m)?;
    trade_gaps::register(m)?;
    ws_wire::register(m)?;
    Ok(())
}
