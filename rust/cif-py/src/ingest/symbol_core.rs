//! `cif._core.IngestCore`: the per-tick part of the gateway's `SymbolIngest` (trade release,
//! ticker dedup, the ingest `seq`, book-event derivation, the book agreement check, the
//! stream entries), one Rust call per event. What it produces waits in it until `take()`:
//! the rows for the DuckDB writer and the entries for Redis, in order.

use cif_core::codec::{
    pack_book_entry, pack_trade_entry, BookEntry, EntryId, BOOK_FIELDS, TRADE_FIELDS,
};
use cif_core::ingest::book_events::{AgreementCheck, BookEventDeriver, Derived, Disagreement, L1};
use cif_core::ingest::{Level, Released, Trade};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::events::{PyBookTicker, PyTrade};
use super::trade_gaps::PyTradeSequencer;
use crate::book::PyOrderBook;

/// Disagreements logged per symbol (the counters keep counting).
const LOGGED_DISAGREEMENTS: u64 = 5;

/// The depth attached to book events, as the Python objects every event shares.
struct DepthObjects {
    bids: Py<PyAny>,
    asks: Py<PyAny>,
    bids_json: Py<PyAny>,
    asks_json: Py<PyAny>,
}

fn levels_tuple<'py>(py: Python<'py>, levels: &[Level]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, levels.iter().map(|l| (l.price, l.qty)))
}

fn l1_tuple(l1: &L1) -> (f64, f64, f64, f64) {
    (l1.bid_price, l1.bid_qty, l1.ask_price, l1.ask_qty)
}

/// The per-tick ingestion state of one symbol (see the module docs); the Python
/// `cif.ingest.symbol_ingest.SymbolIngest` owns it and drains it after every event.
#[pyclass(name = "IngestCore", module = "cif._core")]
pub(crate) struct PyIngestCore {
    symbol: Py<PyString>,
    book: Py<PyOrderBook>,
    sequencer: Py<PyTradeSequencer>,
    trades_key: Py<PyString>,
    book_key: Py<PyString>,
    publish: bool,
    book_event_type: Py<PyAny>,
    packed_entry_type: Py<PyAny>,
    tuple_new: Py<PyAny>,
    sources: [Py<PyString>; 3],
    no_depth: DepthObjects,
    depth: DepthObjects,
    deriver: BookEventDeriver,
    agreement: AgreementCheck,
    seq: i64,
    last_ticker_u: i64,
    trades: u64,
    backfilled: u64,
    tickers: u64,
    duplicate_tickers: u64,
    book_events: u64,
    last_event_ts: i64,
    feed_lag_ms: f64,
    stored: Vec<Py<PyAny>>,
    published: Vec<Py<PyAny>>,
    disagreements: Vec<Disagreement>,
}

impl PyIngestCore {
    fn next(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }

    fn note(&mut self, event_ts: i64, recv_ns: i64) {
        if event_ts > self.last_event_ts {
            self.last_event_ts = event_ts;
            self.feed_lag_ms = recv_ns as f64 / 1e6 - event_ts as f64;
        }
    }

    fn packed<'py>(
        &self,
        py: Python<'py>,
        key: &Py<PyString>,
        id: i64,
        n: usize,
        body: &[u8],
    ) -> PyResult<Py<PyAny>> {
        let fields = (
            key.clone_ref(py),
            PyString::new(py, EntryId::new(id).as_str()),
            n,
            pyo3::types::PyBytes::new(py, body),
        );
        self.tuple_new
            .call1(py, (self.packed_entry_type.clone_ref(py), fields))
    }

    fn store(
        &mut self,
        py: Python<'_>,
        event: Py<PyAny>,
        seq: i64,
        backfilled: bool,
    ) -> PyResult<()> {
        let row = (event, seq, backfilled, 1).into_pyobject(py)?;
        self.stored.push(row.into_any().unbind());
        Ok(())
    }

    fn release_one(
        &mut self,
        py: Python<'_>,
        trade: Py<PyAny>,
        inner: &Trade,
        backfilled: bool,
    ) -> PyResult<()> {
        let seq = self.next();
        self.trades += 1;
        if backfilled {
            self.backfilled += 1;
        }
        self.store(py, trade, seq, backfilled)?;
        if self.publish {
            let mut body = Vec::with_capacity(256);
            pack_trade_entry(&mut body, inner, seq, backfilled);
            let entry = self.packed(
                py,
                &self.trades_key,
                inner.trade_id,
                TRADE_FIELDS.len(),
                &body,
            )?;
            self.published.push(entry);
        }
        Ok(())
    }

    fn release_all(
        &mut self,
        py: Python<'_>,
        released: Vec<Released>,
        pushed: Option<&Bound<'_, PyTrade>>,
    ) -> PyResult<()> {
        for r in released {
            // The trade just pushed is released as the same object (the usual case).
            let obj = match pushed {
                Some(t) if t.get().inner == r.trade => t.clone().into_any().unbind(),
                _ => Py::new(py, PyTrade { inner: r.trade })?.into_any(),
            };
            self.release_one(py, obj, &r.trade, r.backfilled)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        py: Python<'_>,
        d: Derived,
        seq: i64,
        recv_ns: i64,
        source: usize,
    ) -> PyResult<()> {
        if d.depth_changed {
            let (bids, asks) = self.deriver.top();
            let (bids_json, asks_json) = self.deriver.top_json();
            self.depth = DepthObjects {
                bids: levels_tuple(py, bids)?.into_any().unbind(),
                asks: levels_tuple(py, asks)?.into_any().unbind(),
                bids_json: PyString::new(py, bids_json).into_any().unbind(),
                asks_json: PyString::new(py, asks_json).into_any().unbind(),
            };
        }
        self.book_events += 1;
        let depth = if d.with_depth {
            &self.depth
        } else {
            &self.no_depth
        };
        let l1 = d.l1;
        let fields = PyTuple::new(
            py,
            [
                self.symbol.clone_ref(py).into_any(),
                seq.into_pyobject(py)?.into_any().unbind(),
                d.update_id.into_pyobject(py)?.into_any().unbind(),
                self.last_event_ts.into_pyobject(py)?.into_any().unbind(),
                recv_ns.into_pyobject(py)?.into_any().unbind(),
                self.sources[source].clone_ref(py).into_any(),
                l1.bid_price.into_pyobject(py)?.into_any().unbind(),
                l1.bid_qty.into_pyobject(py)?.into_any().unbind(),
                l1.ask_price.into_pyobject(py)?.into_any().unbind(),
                l1.ask_qty.into_pyobject(py)?.into_any().unbind(),
                d.book_update_id.into_pyobject(py)?.into_any().unbind(),
                depth.bids.clone_ref(py),
                depth.asks.clone_ref(py),
                depth.bids_json.clone_ref(py),
                depth.asks_json.clone_ref(py),
            ],
        )?;
        let event = self
            .tuple_new
            .call1(py, (self.book_event_type.clone_ref(py), fields))?;
        if self.publish {
            // The JSON the deriver wrote (the Python strings hold the same text).
            let (bids_json, asks_json) = if d.with_depth {
                self.deriver.top_json()
            } else {
                ("[]", "[]")
            };
            let entry = BookEntry {
                seq,
                update_id: d.update_id,
                event_ts: self.last_event_ts,
                recv_ts_ns: recv_ns,
                source: SOURCES[source],
                bid_price: l1.bid_price,
                bid_qty: l1.bid_qty,
                ask_price: l1.ask_price,
                ask_qty: l1.ask_qty,
                book_update_id: d.book_update_id,
                bids_json,
                asks_json,
            };
            let mut body = Vec::with_capacity(256 + bids_json.len() + asks_json.len());
            pack_book_entry(&mut body, &entry);
            let packed = self.packed(py, &self.book_key, seq, BOOK_FIELDS.len(), &body)?;
            self.published.push(packed);
        }
        self.store(py, event, seq, false)
    }

    fn keep_disagreements(&mut self, found: Vec<Disagreement>) {
        // The n-th disagreement is logged while n <= LOGGED_DISAGREEMENTS; the counters
        // are final here, so count back from them.
        let total = self.agreement.checks - self.agreement.agree;
        let first = total - found.len() as u64;
        for (i, d) in found.into_iter().enumerate() {
            if first + (i as u64) < LOGGED_DISAGREEMENTS {
                self.disagreements.push(d);
            }
        }
    }
}

/// The book-event sources, in the order of `PyIngestCore::sources`.
const SOURCES: [&str; 3] = ["ticker", "depth", "snapshot"];

#[pymethods]
impl PyIngestCore {
    /// The state of `symbol` (the name book events carry), on its `book` and trade
    /// `sequencer`; stream entries go to `trades_key` / `book_key` when `publish`; `seq`
    /// continues after `last_seq`; book events carry `top_k` levels per side and are built
    /// as `book_event_type` (a 15-field named tuple), stream entries as `packed_entry_type`
    /// (key, entry ID, field count, body).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        symbol: Bound<'_, PyString>,
        book: Py<PyOrderBook>,
        sequencer: Py<PyTradeSequencer>,
        trades_key: Bound<'_, PyString>,
        book_key: Bound<'_, PyString>,
        publish: bool,
        last_seq: i64,
        top_k: usize,
        book_event_type: Py<PyAny>,
        packed_entry_type: Py<PyAny>,
    ) -> PyResult<Self> {
        if top_k < 1 {
            return Err(PyValueError::new_err("top_k must be >= 1"));
        }
        let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?.unbind();
        let empty = PyTuple::empty(py).into_any().unbind();
        let no_json = PyString::intern(py, "[]").into_any().unbind();
        let no_depth = || DepthObjects {
            bids: empty.clone_ref(py),
            asks: empty.clone_ref(py),
            bids_json: no_json.clone_ref(py),
            asks_json: no_json.clone_ref(py),
        };
        Ok(Self {
            symbol: symbol.unbind(),
            book,
            sequencer,
            trades_key: trades_key.unbind(),
            book_key: book_key.unbind(),
            publish,
            book_event_type,
            packed_entry_type,
            tuple_new,
            sources: SOURCES.map(|s| PyString::intern(py, s).unbind()),
            no_depth: no_depth(),
            depth: no_depth(),
            deriver: BookEventDeriver::new(top_k),
            agreement: AgreementCheck::default(),
            seq: last_seq,
            last_ticker_u: -1,
            trades: 0,
            backfilled: 0,
            tickers: 0,
            duplicate_tickers: 0,
            book_events: 0,
            last_event_ts: 0,
            feed_lag_ms: 0.0,
            stored: Vec::new(),
            published: Vec::new(),
            disagreements: Vec::new(),
        })
    }

    /// The last ingest sequence number given out.
    #[getter]
    fn seq(&self) -> i64 {
        self.seq
    }

    /// Give out the next ingest sequence number.
    fn next_seq(&mut self) -> i64 {
        self.next()
    }

    /// Note an event's exchange time (ms) and receive time (ns): the latest exchange time
    /// is the event time of book events, and the feed's lag.
    fn note_time(&mut self, event_ts: i64, recv_ns: i64) {
        self.note(event_ts, recv_ns);
    }

    /// A live trade: released in id order (gaps held, duplicates dropped); whether a gap
    /// is now held (a backfill is wanted).
    fn on_trade(&mut self, py: Python<'_>, trade: &Bound<'_, PyTrade>) -> PyResult<bool> {
        let inner = trade.get().inner;
        self.note(inner.event_time_ms, inner.recv_time_ns);
        let (released, gap) = {
            let mut seq = self.sequencer.borrow_mut(py);
            let released = seq.inner.push(inner);
            (released, seq.inner.missing().is_some())
        };
        self.release_all(py, released, Some(trade))?;
        Ok(gap)
    }

    /// Trades released by the sequencer outside `on_trade` (a backfill, a gap given up):
    /// `(trade, backfilled)` pairs in id order.
    fn release(
        &mut self,
        py: Python<'_>,
        released: Vec<(Bound<'_, PyTrade>, bool)>,
    ) -> PyResult<()> {
        for (trade, backfilled) in released {
            let inner = trade.get().inner;
            self.release_one(py, trade.into_any().unbind(), &inner, backfilled)?;
        }
        Ok(())
    }

    /// A best bid/ask update: stored, checked against the book, a book event if L1 moved.
    /// A ticker at or below the last one's update id is a duplicate (counted, dropped).
    fn on_ticker(&mut self, py: Python<'_>, ticker: &Bound<'_, PyBookTicker>) -> PyResult<()> {
        let t = &ticker.get().inner;
        if t.update_id <= self.last_ticker_u {
            self.duplicate_tickers += 1;
            return Ok(());
        }
        self.last_ticker_u = t.update_id;
        let seq = self.next();
        self.tickers += 1;
        self.store(py, ticker.clone().into_any().unbind(), seq, false)?;
        let l1 = L1 {
            bid_price: t.bid_price,
            bid_qty: t.bid_qty,
            ask_price: t.ask_price,
            ask_qty: t.ask_qty,
        };
        let mut found = Vec::new();
        self.agreement.push_ticker(t.update_id, l1, &mut found);
        if !found.is_empty() {
            self.keep_disagreements(found);
        }
        let derived = {
            let book = self.book.borrow(py);
            self.deriver.on_ticker(l1, t.update_id, &book.inner)
        };
        if let Some(d) = derived {
            self.emit(py, d, seq, t.recv_time_ns, 0)?;
        }
        Ok(())
    }

    /// After the local book changed (`source`: "depth" for a diff applied, "snapshot" for
    /// a sync) at ingest `seq`: its state joins the agreement check, and a book event if
    /// L1 moved.
    fn after_book_change(
        &mut self,
        py: Python<'_>,
        seq: i64,
        recv_ns: i64,
        source: &str,
    ) -> PyResult<()> {
        let source = match source {
            "depth" => 1,
            "snapshot" => 2,
            other => {
                return Err(PyValueError::new_err(format!(
                    "source must be 'depth' or 'snapshot', got {other:?}"
                )))
            }
        };
        let (state, derived) = {
            let book = self.book.borrow(py);
            let state = match book.inner.best() {
                Some((Some(b), Some(a))) => Some((
                    book.inner.last_update_id(),
                    L1 {
                        bid_price: b.price,
                        bid_qty: b.qty,
                        ask_price: a.price,
                        ask_qty: a.qty,
                    },
                )),
                _ => None,
            };
            (state, self.deriver.on_book(&book.inner))
        };
        if let Some((u, l1)) = state {
            let mut found = Vec::new();
            self.agreement.push_state(u, l1, &mut found);
            if !found.is_empty() {
                self.keep_disagreements(found);
            }
        }
        if let Some(d) = derived {
            self.emit(py, d, seq, recv_ns, source)?;
        }
        Ok(())
    }

    /// What the events since the last call produced, in order: `(rows, entries,
    /// disagreements)`. Rows are `(event, seq, backfilled, 1)` for the DuckDB writer
    /// (trades, tickers and book events), entries the Redis stream entries (when
    /// publishing), disagreements the first few book states the ticker stream contradicted,
    /// as `(at, book_l1, ticker_u, ticker_l1)`.
    #[allow(clippy::type_complexity)]
    fn take<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyList>,
        Bound<'py, PyList>,
        Vec<(i64, (f64, f64, f64, f64), i64, (f64, f64, f64, f64))>,
    )> {
        let stored = PyList::new(py, std::mem::take(&mut self.stored))?;
        let published = PyList::new(py, std::mem::take(&mut self.published))?;
        let disagreements = std::mem::take(&mut self.disagreements)
            .iter()
            .map(|d| (d.at, l1_tuple(&d.book), d.ticker_u, l1_tuple(&d.ticker)))
            .collect();
        Ok((stored, published, disagreements))
    }

    /// The counters: `(trades, backfilled, tickers, duplicate_tickers, book_events,
    /// book_checks, book_agree, last_event_ts, feed_lag_ms)`.
    #[allow(clippy::type_complexity)]
    fn counters(&self) -> (u64, u64, u64, u64, u64, u64, u64, i64, f64) {
        (
            self.trades,
            self.backfilled,
            self.tickers,
            self.duplicate_tickers,
            self.book_events,
            self.agreement.checks,
            self.agreement.agree,
            self.last_event_ts,
            self.feed_lag_ms,
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIngestCore>()
}
