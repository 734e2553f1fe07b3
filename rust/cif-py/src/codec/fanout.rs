//! Bindings for `cif_core::codec::fanout`: the gateway's stream entries, one call per entry
//! (`cif._core.pack_trade_entry`, `cif._core.pack_book_entry`).

use cif_core::codec::{
    pack_book_entry as pack_book, pack_trade_entry as pack_trade, pack_xadd, BookEntry,
    BOOK_FIELDS, TRADE_FIELDS,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::ingest::events::PyTrade;

/// Room for a typical entry, so the buffer is allocated once.
const ENTRY_CAPACITY: usize = 256;

/// The `trades:{symbol}` entry of a released trade, pre-packed for the gateway's batch
/// script: RESP bulk strings `<trade id>-0`, `9`, then `name value` for `seq`, `trade_id`,
/// `ts`, `event_ts`, `recv_ts_ns`, `price`, `qty`, `side`, `backfilled` (integers `%d`,
/// doubles as Python's `repr`).
#[pyfunction]
#[pyo3(name = "pack_trade_entry")]
fn pack_trade_entry<'py>(
    py: Python<'py>,
    trade: PyRef<'py, PyTrade>,
    seq: i64,
    backfilled: bool,
) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(ENTRY_CAPACITY);
    pack_trade(&mut out, &trade.inner, seq, backfilled);
    PyBytes::new(py, &out)
}

/// The `book:{symbol}` entry of a book event, pre-packed like
/// :func:`pack_trade_entry`: `<seq>-0`, `12`, then the fields of ``BOOK_FIELDS`` in order
/// (``bids`` / ``asks`` are the depth sides' JSON text, stored as given).
#[pyfunction]
#[pyo3(name = "pack_book_entry")]
#[allow(clippy::too_many_arguments)]
fn pack_book_entry<'py>(
    py: Python<'py>,
    seq: i64,
    update_id: i64,
    event_ts: i64,
    recv_ts_ns: i64,
    source: &str,
    bid_price: f64,
    bid_qty: f64,
    ask_price: f64,
    ask_qty: f64,
    book_update_id: i64,
    bids: &str,
    asks: &str,
) -> Bound<'py, PyBytes> {
    let entry = BookEntry {
        seq,
        update_id,
        event_ts,
        recv_ts_ns,
        source,
        bid_price,
        bid_qty,
        ask_price,
        ask_qty,
        book_update_id,
        bids_json: bids,
        asks_json: asks,
    };
    let mut out = Vec::with_capacity(ENTRY_CAPACITY + bids.len() + asks.len());
    pack_book(&mut out, &entry);
    PyBytes::new(py, &out)
}

/// ``XADD`` commands in RESP, one per entry, joined: entry ``i`` is ``heads[i]``
/// (``XADD <key> MAXLEN ~ <n>`` as bulk strings) and ``bodies[i]`` (``<id> <n> <name>
/// <value>...`` bulk strings, as the entry packers build them) less its field count
/// ``n_fields[i]``. ``ValueError`` for a body that does not start with its ID and that
/// count, or lists of different lengths.
#[pyfunction]
#[pyo3(name = "pack_xadds")]
fn pack_xadds<'py>(
    py: Python<'py>,
    heads: &Bound<'py, PyList>,
    bodies: &Bound<'py, PyList>,
    n_fields: Vec<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let n = bodies.len();
    if heads.len() != n || n_fields.len() != n {
        return Err(PyValueError::new_err(format!(
            "{} heads, {n} bodies and {} field counts",
            heads.len(),
            n_fields.len()
        )));
    }
    let mut out = Vec::with_capacity(n * ENTRY_CAPACITY);
    for ((head, body), &fields) in heads.iter().zip(bodies.iter()).zip(&n_fields) {
        let head = head.cast::<PyBytes>()?;
        let body = body.cast::<PyBytes>()?;
        pack_xadd(&mut out, head.as_bytes(), body.as_bytes(), fields)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(PyBytes::new(py, &out))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TRADE_FIELDS", PyTuple::new(m.py(), TRADE_FIELDS)?)?;
    m.add("BOOK_FIELDS", PyTuple::new(m.py(), BOOK_FIELDS)?)?;
    m.add_function(wrap_pyfunction!(pack_trade_entry, m)?)?;
    m.add_function(wrap_pyfunction!(pack_book_entry, m)?)?;
    m.add_function(wrap_pyfunction!(pack_xadds, m)?)?;
    Ok(())
}
