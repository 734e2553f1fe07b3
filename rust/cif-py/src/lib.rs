//! `cif._core`: the PyO3 binding layer over `cif-core`.
//!
//! Only conversion lives here (Python objects ⇄ core types, errors → exceptions, columns →
//! NumPy); every computation is in `cif-core`. One submodule per area of the core.

use pyo3::prelude::*;

mod book;
mod codec;
mod features;
mod forecast;
mod ingest;
mod store;

/// The Rust core of cif: Binance message parsing and normalization, the local order book.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    features::register(m)?;
    forecast::register(m)?;
    ingest::register(m)?;
    book::register(m)?;
    codec::register(m)?;
    store::register(m)?;
    Ok(())
}
