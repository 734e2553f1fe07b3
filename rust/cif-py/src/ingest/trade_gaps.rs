//! Binding for `cif_core::ingest::TradeSequencer`.

use cif_core::ingest::{Released, TradeSequencer};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::events::PyTrade;

/// Released trades as (Trade, backfilled) pairs, in id order.
type ReleasedList = Vec<(PyTrade, bool)>;

fn to_py(released: Vec<Released>) -> ReleasedList {
    released
        .into_iter()
        .map(|r| (PyTrade { inner: r.trade }, r.backfilled))
        .collect()
}

/// Releases a symbol's trades in consecutive id order, holding trades behind a gap until
/// it is backfilled or given up on.
#[pyclass(name = "TradeSequencer", module = "cif._core")]
pub(crate) struct PyTradeSequencer {
    pub(crate) inner: TradeSequencer,
}

#[pymethods]
impl PyTradeSequencer {
    #[new]
    #[pyo3(signature = (last_id=None, max_held=100_000))]
    fn new(last_id: Option<i64>, max_held: usize) -> Self {
        PyTradeSequencer {
            inner: TradeSequencer::new(last_id, max_held),
        }
    }

    /// The next trade id to release, once known.
    #[getter]
    fn next_id(&self) -> Option<i64> {
        self.inner.next_id()
    }

    /// Trades waiting behind a gap.
    #[getter]
    fn held(&self) -> usize {
        self.inner.held()
    }

    /// A live trade; returns the (trade, backfilled) pairs now releasable, in id order.
    fn push(&mut self, trade: &Bound<'_, PyTrade>) -> ReleasedList {
        to_py(self.inner.push(trade.get().inner))
    }

    /// Trades from REST (any order); returns what is now releasable.
    fn fill(&mut self, trades: Vec<Bound<'_, PyTrade>>) -> ReleasedList {
        let rows: Vec<_> = trades.iter().map(|t| t.get().inner).collect();
        to_py(self.inner.fill(&rows))
    }

    /// Give up on missing ids below `trade_id` (counted as lost); returns what is released.
    fn skip_to(&mut self, trade_id: i64) -> ReleasedList {
        let mut out = Vec::new();
        self.inner.skip_to(trade_id, &mut out);
        to_py(out)
    }

    /// The missing id range (first, last) to backfill, if trades wait behind one.
    fn missing(&self) -> Option<(i64, i64)> {
        self.inner.missing()
    }

    /// Counters: released, backfilled, duplicates, gaps, lost.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("released", s.released)?;
        d.set_item("backfilled", s.backfilled)?;
        d.set_item("duplicates", s.duplicates)?;
        d.set_item("gaps", s.gaps)?;
        d.set_item("lost", s.lost)?;
        Ok(d)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTradeSequencer>()?;
    Ok(())
}
