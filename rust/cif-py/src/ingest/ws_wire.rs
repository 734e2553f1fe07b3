//! Binding for `cif_core::ingest::ws_wire`: `cif._core.split_ws_frames`.

use cif_core::ingest::ws_wire::split_data_frames;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// The server's plain WebSocket data frames in ``data`` from ``start``: ``(payloads, end,
/// special)``. ``end`` is where the scan stopped; ``special`` > 0 means the frame at
/// ``end`` is not a plain data frame and its first ``special`` bytes are for the WebSocket
/// library; 0 means the frame at ``end`` (if any) is incomplete.
#[pyfunction]
fn split_ws_frames<'py>(
    py: Python<'py>,
    data: &[u8],
    start: usize,
    max_size: usize,
    data_allowed: bool,
) -> PyResult<(Bound<'py, PyList>, usize, usize)> {
    let split = split_data_frames(data, start, max_size, data_allowed);
    let payloads = PyList::new(
        py,
        split
            .payloads
            .into_iter()
            .map(|r| PyBytes::new(py, &data[r])),
    )?;
    Ok((payloads, split.end, split.special))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(split_ws_frames, m)?)?;
    Ok(())
}
