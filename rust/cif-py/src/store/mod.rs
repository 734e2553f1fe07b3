//! Bindings for `cif_core::store`: the live writer's queued events → NumPy columns per
//! DuckDB table (`cif._core.live_store_columns`).

use cif_core::codec::BookEntry;
use cif_core::store::{LiveRows, TableColumn};
use numpy::PyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::ingest::events::{PyBookTicker, PyDepthSnapshot, PyDepthUpdate, PyTrade};
use crate::ingest::parse::column_array;

/// A book event's tuple: `symbol, seq, update_id, event_ts, recv_ts_ns, source, bid_price,
/// bid_qty, ask_price, ask_qty, book_update_id, bids, asks, bids_json, asks_json`
/// (`cif.ingest.book_events.BookEvent`).
const BOOK_EVENT_LEN: usize = 15;
const BIDS_JSON: usize = 13;
const ASKS_JSON: usize = 14;

/// Adds one book event; its JSON sides go to `bids` / `asks` (kept as the caller's str).
fn push_book_event<'py>(
    rows: &mut LiveRows,
    ev: &Bound<'py, PyTuple>,
    bids: &mut Vec<Py<PyAny>>,
    asks: &mut Vec<Py<PyAny>>,
) -> PyResult<()> {
    if ev.len() != BOOK_EVENT_LEN {
        return Err(PyTypeError::new_err(format!(
            "a book event has {BOOK_EVENT_LEN} fields, got a tuple of {}",
            ev.len()
        )));
    }
    let symbol = ev.get_item(0)?;
    let source = ev.get_item(5)?;
    let bid_json = ev.get_item(BIDS_JSON)?;
    let ask_json = ev.get_item(ASKS_JSON)?;
    let text = |item: &Bound<'py, PyAny>, what: &str| -> PyResult<Bound<'py, PyString>> {
        item.cast::<PyString>()
            .cloned()
            .map_err(|_| PyTypeError::new_err(format!("a book event's {what} must be str")))
    };
    let bid_text = text(&bid_json, "bids_json")?;
    let ask_text = text(&ask_json, "asks_json")?;
    let entry = BookEntry {
        seq: ev.get_item(1)?.extract()?,
        update_id: ev.get_item(2)?.extract()?,
        event_ts: ev.get_item(3)?.extract()?,
        recv_ts_ns: ev.get_item(4)?.extract()?,
        source: source.cast::<PyString>()?.to_str()?,
        bid_price: ev.get_item(6)?.extract()?,
        bid_qty: ev.get_item(7)?.extract()?,
        ask_price: ev.get_item(8)?.extract()?,
        ask_qty: ev.get_item(9)?.extract()?,
        book_update_id: ev.get_item(10)?.extract()?,
        // The core ignores these two: the columns take the str objects themselves (below).
        bids_json: bid_text.to_str()?,
        asks_json: ask_text.to_str()?,
    };
    rows.push_book_event(symbol.cast::<PyString>()?.to_str()?, &entry);
    bids.push(bid_json.unbind());
    asks.push(ask_json.unbind());
    Ok(())
}

/// A column as a NumPy array: numbers without a copy, texts as an object array of `str`
/// (one `str` per distinct value, shared by its rows), or with `as_codes` as a tuple
/// `(uint32 codes, list of the distinct str)`.
fn to_numpy<'py>(py: Python<'py>, col: TableColumn, as_codes: bool) -> PyResult<Bound<'py, PyAny>> {
    Ok(match col {
        TableColumn::Num(col) => column_array(py, col),
        TableColumn::Text { codes, values } if as_codes => {
            let codes = PyArray1::from_vec(py, codes).into_any();
            (codes, values).into_pyobject(py)?.into_any()
        }
        TableColumn::Text { codes, values } => {
            let strs: Vec<Py<PyAny>> = values
                .iter()
                .map(|v| PyString::new(py, v).into_any().unbind())
                .collect();
            let objs: Vec<Py<PyAny>> = codes
                .iter()
                .map(|&c| strs[c as usize].clone_ref(py))
                .collect();
            PyArray1::from_vec(py, objs).into_any()
        }
    })
}

/// The live writer's queued entries as one dict of NumPy columns per DuckDB table.
///
/// `entries` iterates `(event, seq, backfilled, rows)` tuples, `event` being a
/// :class:`Trade`, :class:`BookTicker`, :class:`DepthUpdate`, :class:`DepthSnapshot` or a
/// book event tuple (``cif.ingest.book_events.BookEvent``, whose own ``seq`` is used).
/// Returns ``{table: {column: array}}`` for ``trades``, ``book_tickers``,
/// ``depth_updates``, ``depth_snapshots``, ``depth_levels`` and ``book_events``, every table
/// present (empty arrays when it has no rows), columns in the table's order; texts are
/// object arrays of ``str``. With ``texts_as_codes``, the few-valued texts (symbol, side,
/// source) are ``(codes, values)`` tuples instead: ``values[codes[i]]`` is row ``i``'s
/// text (DuckDB reads such a column without taking the GIL per row; the book events' JSON
/// sides stay ``str`` arrays). Raises ``TypeError`` on an entry of another shape.
#[pyfunction]
#[pyo3(name = "live_store_columns", signature = (entries, *, texts_as_codes = false))]
fn live_store_columns<'py>(
    py: Python<'py>,
    entries: &Bound<'py, PyAny>,
    texts_as_codes: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let mut rows = LiveRows::new();
    let mut bids: Vec<Py<PyAny>> = Vec::new();
    let mut asks: Vec<Py<PyAny>> = Vec::new();
    for (i, item) in entries.try_iter()?.enumerate() {
        let item = item?;
        let entry = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "entry {i}: expected (event, seq, backfilled, rows)"
            ))
        })?;
        if entry.len() != 4 {
            return Err(PyValueError::new_err(format!(
                "entry {i}: expected (event, seq, backfilled, rows), got {} items",
                entry.len()
            )));
        }
        let ev = entry.get_item(0)?;
        if let Ok(t) = ev.cast::<PyTrade>() {
            let seq: i64 = entry.get_item(1)?.extract()?;
            let backfilled: bool = entry.get_item(2)?.extract()?;
            rows.push_trade(&t.get().inner, seq, backfilled);
        } else if let Ok(t) = ev.cast::<PyBookTicker>() {
            rows.push_book_ticker(&t.get().inner, entry.get_item(1)?.extract()?);
        } else if let Ok(u) = ev.cast::<PyDepthUpdate>() {
            rows.push_depth_update(&u.get().inner, entry.get_item(1)?.extract()?);
        } else if let Ok(s) = ev.cast::<PyDepthSnapshot>() {
            rows.push_depth_snapshot(&s.get().inner, entry.get_item(1)?.extract()?);
        } else if let Ok(tuple) = ev.cast::<PyTuple>() {
            push_book_event(&mut rows, tuple, &mut bids, &mut asks)
                .map_err(|e| PyTypeError::new_err(format!("entry {i}: {e}")))?;
        } else {
            return Err(PyTypeError::new_err(format!(
                "entry {i}: cannot store a {}",
                ev.get_type().name()?
            )));
        }
    }
    let out = PyDict::new(py);
    for (table, columns) in rows.into_tables() {
        let d = PyDict::new(py);
        for (name, col) in columns {
            d.set_item(name, to_numpy(py, col, texts_as_codes)?)?;
        }
        if table == "book_events" {
            d.set_item("bids", PyArray1::from_vec(py, std::mem::take(&mut bids)))?;
            d.set_item("asks", PyArray1::from_vec(py, std::mem::take(&mut asks)))?;
        }
        out.set_item(table, d)?;
    }
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(live_store_columns, m)?)?;
    Ok(())
}
