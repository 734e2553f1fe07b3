//! Bindings for `cif_core::book`: the local order book as `cif._core.OrderBook`.

use cif_core::book::{DiffOutcome, LocalBook, SnapshotOutcome, SyncState};
use cif_core::ingest::{Level, Symbol};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::ingest::events::{PyDepthSnapshot, PyDepthUpdate};

/// Levels as (price, qty) pairs, best first.
type Levels = Vec<(f64, f64)>;

fn pair(l: Level) -> (f64, f64) {
    (l.price, l.qty)
}

/// A symbol's local order book, synced by Binance's snapshot + diff procedure.
#[pyclass(name = "OrderBook", module = "cif._core")]
pub(crate) struct PyOrderBook {
    pub(crate) inner: LocalBook,
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (symbol, max_buffer=10_000))]
    fn new(symbol: &str, max_buffer: usize) -> PyResult<Self> {
        let sym = Symbol::new(symbol)
            .map_err(|e| PyValueError::new_err(format!("invalid symbol: {e}")))?;
        Ok(PyOrderBook {
            inner: LocalBook::new(sym, max_buffer),
        })
    }

    #[getter]
    fn symbol(&self) -> &str {
        self.inner.symbol_ref().as_str()
    }

    /// True while the book equals the exchange's (after a snapshot, before a break).
    #[getter]
    fn synced(&self) -> bool {
        self.inner.state() == SyncState::Synced
    }

    #[getter]
    fn last_update_id(&self) -> i64 {
        self.inner.last_update_id()
    }

    #[getter]
    fn buffered(&self) -> usize {
        self.inner.buffered()
    }

    #[getter]
    fn first_buffered_update_id(&self) -> Option<i64> {
        self.inner.first_buffered_update_id()
    }

    /// Feed a diff: returns "applied", "buffered", "stale", "gap" or "wrong_symbol".
    fn on_diff(&mut self, update: &Bound<'_, PyDepthUpdate>) -> &'static str {
        match self.inner.on_diff(update.get().inner.clone()) {
            DiffOutcome::Applied => "applied",
            DiffOutcome::Buffered => "buffered",
            DiffOutcome::Stale => "stale",
            DiffOutcome::Gap { .. } => "gap",
            DiffOutcome::WrongSymbol => "wrong_symbol",
        }
    }

    /// Feed a REST snapshot: returns "synced", "too_old", "broken_chain" or "wrong_symbol".
    fn on_snapshot(&mut self, snapshot: &Bound<'_, PyDepthSnapshot>) -> &'static str {
        match self.inner.on_snapshot(&snapshot.get().inner) {
            SnapshotOutcome::Synced { .. } => "synced",
            SnapshotOutcome::TooOld { .. } => "too_old",
            SnapshotOutcome::BrokenChain => "broken_chain",
            SnapshotOutcome::WrongSymbol => "wrong_symbol",
        }
    }

    /// Best bid as (price, qty); None when unsynced or the side is empty.
    fn best_bid(&self) -> Option<(f64, f64)> {
        self.inner.best().and_then(|(b, _)| b).map(pair)
    }

    /// Best ask as (price, qty); None when unsynced or the side is empty.
    fn best_ask(&self) -> Option<(f64, f64)> {
        self.inner.best().and_then(|(_, a)| a).map(pair)
    }

    /// The best `k` levels of each side, best first; empty lists while unsynced.
    #[pyo3(signature = (k=10))]
    fn top(&self, k: usize) -> (Levels, Levels) {
        if self.inner.state() != SyncState::Synced {
            return (Vec::new(), Vec::new());
        }
        (
            self.inner.bids().top(k).into_iter().map(pair).collect(),
            self.inner.asks().top(k).into_iter().map(pair).collect(),
        )
    }

    /// Counters: applied, stale, gaps, syncs, snapshots_too_old, buffer_overflow.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("applied", s.applied)?;
        d.set_item("stale", s.stale)?;
        d.set_item("gaps", s.gaps)?;
        d.set_item("syncs", s.syncs)?;
        d.set_item("snapshots_too_old", s.snapshots_too_old)?;
        d.set_item("buffer_overflow", s.buffer_overflow)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "OrderBook(symbol='{}', synced={}, last_update_id={}, bids={}, asks={})",
            self.symbol(),
            self.synced(),
            self.inner.last_update_id(),
            self.inner.bids().len(),
            self.inner.asks().len()
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOrderBook>()?;
    Ok(())
}
