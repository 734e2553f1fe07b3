//! The parse entry points: one frame (live path), many frames or a capture (batch, NumPy
//! columns, one crossing), and REST bodies.

use std::time::{SystemTime, UNIX_EPOCH};

use cif_core::ingest::batch::{Column, Columns};
use cif_core::ingest::{self as core, FrameBatch, Symbol};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::errors::to_pyerr;
use super::events::{event_to_py, PyTrade};

/// Below this many input bytes the GIL round trip costs more than the parse.
const DETACH_THRESHOLD_BYTES: usize = 64 * 1024;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn symbol_arg(symbol: Option<&str>) -> PyResult<Option<Symbol>> {
    symbol
        .map(|s| Symbol::new(s).map_err(|e| PyValueError::new_err(format!("invalid symbol: {e}"))))
        .transpose()
}

/// Parse one WebSocket text frame into an event object.
#[pyfunction]
#[pyo3(signature = (frame, recv_time_ns=None, symbol=None))]
fn parse_frame<'py>(
    py: Python<'py>,
    frame: &[u8],
    recv_time_ns: Option<i64>,
    symbol: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let hint = symbol_arg(symbol)?;
    let event =
        core::parse_frame(frame, recv_time_ns.unwrap_or_else(now_ns), hint).map_err(to_pyerr)?;
    event_to_py(py, event)
}

/// Receive times: an int64 array, a sequence of ints, or None (now, for every frame).
fn recv_times(arg: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Vec<i64>> {
    let times = match arg {
        None => return Ok(vec![now_ns(); n]),
        Some(a) if a.is_none() => return Ok(vec![now_ns(); n]),
        Some(a) => match a.extract::<PyReadonlyArray1<'_, i64>>() {
            Ok(arr) => arr.as_array().to_vec(),
            Err(_) => a.extract::<Vec<i64>>().map_err(|_| {
                PyTypeError::new_err(
                    "recv_time_ns must be an int64 NumPy array, a sequence of ints or None",
                )
            })?,
        },
    };
    if times.len() != n {
        return Err(PyValueError::new_err(format!(
            "recv_time_ns has {} entries for {n} frames",
            times.len()
        )));
    }
    Ok(times)
}

/// Parse many frames in one call; bad frames land in `errors`, never raise.
#[pyfunction]
#[pyo3(signature = (frames, recv_time_ns=None, symbol=None))]
fn parse_frames(
    py: Python<'_>,
    frames: &Bound<'_, PyAny>,
    recv_time_ns: Option<&Bound<'_, PyAny>>,
    symbol: Option<&str>,
) -> PyResult<PyFrameBatch> {
    let hint = symbol_arg(symbol)?;
    // Hold a reference to every bytes object so the borrowed slices stay valid while the
    // GIL is released, even if the caller's list is mutated meanwhile.
    let mut owned: Vec<Bound<'_, PyBytes>> = Vec::new();
    for (i, item) in frames.try_iter()?.enumerate() {
        let item = item?;
        let bytes = item.cast_into::<PyBytes>().map_err(|e| {
            PyTypeError::new_err(format!(
                "frames[{i}] must be bytes, got {}",
                e.into_inner()
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".to_string(), |n| n.to_string())
            ))
        })?;
        owned.push(bytes);
    }
    let slices: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
    let times = recv_times(recv_time_ns, slices.len())?;
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let batch = if total >= DETACH_THRESHOLD_BYTES {
        py.detach(|| core::parse_frames(&slices, &times, hint))
    } else {
        core::parse_frames(&slices, &times, hint)
    };
    PyFrameBatch::new(py, batch)
}

/// Parse a capture file's text (`<recv ns> <json>` per line).
#[pyfunction]
fn parse_capture(py: Python<'_>, data: &[u8]) -> PyResult<PyFrameBatch> {
    let batch = if data.len() >= DETACH_THRESHOLD_BYTES {
        py.detach(|| core::parse_capture(data))
    } else {
        core::parse_capture(data)
    };
    PyFrameBatch::new(py, batch)
}

/// Parse a `GET /api/v3/depth` response body.
#[pyfunction]
#[pyo3(signature = (body, symbol, recv_time_ns=None))]
fn parse_rest_depth<'py>(
    py: Python<'py>,
    body: &[u8],
    symbol: &str,
    recv_time_ns: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let sym = symbol_arg(Some(symbol))?.expect("symbol given");
    let snap =
        core::parse_rest_depth(body, sym, recv_time_ns.unwrap_or_else(now_ns)).map_err(to_pyerr)?;
    event_to_py(py, core::Event::DepthSnapshot(snap))
}

/// Parse a `GET /api/v3/historicalTrades` (or `/trades`) response body.
#[pyfunction]
#[pyo3(signature = (body, symbol, recv_time_ns=None))]
fn parse_rest_trades(
    body: &[u8],
    symbol: &str,
    recv_time_ns: Option<i64>,
) -> PyResult<Vec<PyTrade>> {
    let sym = symbol_arg(Some(symbol))?.expect("symbol given");
    let trades = core::parse_rest_trades(body, sym, recv_time_ns.unwrap_or_else(now_ns))
        .map_err(to_pyerr)?;
    Ok(trades.into_iter().map(|inner| PyTrade { inner }).collect())
}

/// Columnar result of a batch parse: one table (dict of NumPy arrays) per event kind.
#[pyclass(frozen, name = "FrameBatch", module = "cif._core")]
pub(crate) struct PyFrameBatch {
    #[pyo3(get)]
    n_frames: usize,
    #[pyo3(get)]
    symbols: Py<PyList>,
    #[pyo3(get)]
    trades: Py<PyDict>,
    #[pyo3(get)]
    agg_trades: Py<PyDict>,
    #[pyo3(get)]
    depth_updates: Py<PyDict>,
    #[pyo3(get)]
    depth_snapshots: Py<PyDict>,
    #[pyo3(get)]
    levels: Py<PyDict>,
    #[pyo3(get)]
    book_tickers: Py<PyDict>,
    #[pyo3(get)]
    shutdowns: Py<PyDict>,
    #[pyo3(get)]
    errors: Py<PyDict>,
    #[pyo3(get)]
    error_messages: Py<PyList>,
    row_counts: Vec<(&'static str, usize)>,
}

/// A core column as a NumPy array. `from_vec` hands the Vec's buffer to NumPy: no copy.
pub(crate) fn column_array(py: Python<'_>, col: Column) -> Bound<'_, PyAny> {
    match col {
        Column::I64(v) => PyArray1::from_vec(py, v).into_any(),
        Column::I32(v) => PyArray1::from_vec(py, v).into_any(),
        Column::I8(v) => PyArray1::from_vec(py, v).into_any(),
        Column::F64(v) => PyArray1::from_vec(py, v).into_any(),
        Column::Bool(v) => PyArray1::from_vec(py, v).into_any(),
    }
}

fn table(py: Python<'_>, columns: Columns) -> PyResult<Py<PyDict>> {
    let d = PyDict::new(py);
    for (name, col) in columns {
        d.set_item(name, column_array(py, col))?;
    }
    Ok(d.unbind())
}

impl PyFrameBatch {
    fn new(py: Python<'_>, b: FrameBatch) -> PyResult<Self> {
        let row_counts = b.counts().to_vec();
        let symbols = PyList::new(py, b.symbols.iter().map(|s| s.as_str()))?.unbind();
        let errors = vec![
            ("frame", Column::I64(b.errors.frame)),
            ("reason_code", Column::I8(b.errors.reason_code)),
        ];
        Ok(PyFrameBatch {
            n_frames: b.n_frames,
            symbols,
            trades: table(py, b.trades.into_columns())?,
            agg_trades: table(py, b.agg_trades.into_columns())?,
            depth_updates: table(py, b.depth_updates.into_columns())?,
            depth_snapshots: table(py, b.depth_snapshots.into_columns())?,
            levels: table(py, b.levels.into_columns())?,
            book_tickers: table(py, b.book_tickers.into_columns())?,
            shutdowns: table(py, b.shutdowns.into_columns())?,
            errors: table(py, errors)?,
            error_messages: PyList::new(py, b.errors.message)?.unbind(),
            row_counts,
        })
    }
}

#[pymethods]
impl PyFrameBatch {
    /// Rows per table.
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, n) in &self.row_counts {
            d.set_item(*name, *n)?;
        }
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.n_frames
    }

    fn __repr__(&self) -> String {
        let parts: Vec<String> = self
            .row_counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "FrameBatch(n_frames={}, {})",
            self.n_frames,
            parts.join(", ")
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFrameBatch>()?;
    m.add_function(wrap_pyfunction!(parse_frame, m)?)?;
    m.add_function(wrap_pyfunction!(parse_frames, m)?)?;
    m.add_function(wrap_pyfunction!(parse_capture, m)?)?;
    m.add_function(wrap_pyfunction!(parse_rest_depth, m)?)?;
    m.add_function(wrap_pyfunction!(parse_rest_trades, m)?)?;
    Ok(())
}
