//! Bindings for `cif_core::features`: `FeatureEngine`, `compute_features`, `feature_names`.
//!
//! Events come in as a mapping of NumPy columns (the spec's events dict) and rows go out as
//! an insertion-ordered dict of NumPy columns; the batch computation runs without the GIL.

use cif_core::codec::{digest_row_bytes, RowColumns, RowPacker};
use cif_core::features::{
    BookEvent, DepthColumns, EventColumns, FeatureColumns, FeatureConfig, FeatureEngine, Field,
    InputError, Problem, TradeEvent,
};
use numpy::{
    dtype, Element, PyArray1, PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

/// Below this many events the GIL round trip costs more than the work.
const DETACH_THRESHOLD_EVENTS: usize = 1024;

/// The five settings, validated (ValueError naming the setting).
fn config(
    time_windows_ms: Vec<i64>,
    count_windows: Vec<i64>,
    depth_levels: Vec<i64>,
    ewma_half_life_ms: f64,
    emit_on_book: bool,
) -> PyResult<FeatureConfig> {
    FeatureConfig::new(
        time_windows_ms,
        count_windows,
        depth_levels,
        ewma_half_life_ms,
        emit_on_book,
    )
    .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn input_error(e: InputError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

// ------------------------------------------------------------------------------------------
// Events dict -> columns
// ------------------------------------------------------------------------------------------

/// A column as a contiguous slice: borrowed from NumPy or converted.
enum Col<'py, T: Element> {
    Array(PyReadonlyArray1<'py, T>),
    Owned(Vec<T>),
}

impl<T: Element + Copy> Col<'_, T> {
    fn slice(&self) -> &[T] {
        match self {
            // Contiguity was checked when the column was built.
            Col::Array(a) => a.as_slice().unwrap_or(&[]),
            Col::Owned(v) => v,
        }
    }
}

/// `events[key]` as a NumPy array (`numpy.asarray` for other sequences).
fn get_array<'py>(events: &Bound<'py, PyAny>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    let obj = match events.get_item(key) {
        Ok(obj) => obj,
        Err(e) if e.is_instance_of::<PyKeyError>(events.py()) => return Ok(None),
        Err(e) => return Err(e),
    };
    if obj.is_none() {
        return Ok(None);
    }
    if obj.cast::<PyUntypedArray>().is_ok() {
        return Ok(Some(obj));
    }
    let np = events.py().import("numpy")?;
    np.getattr("asarray")?.call1((obj,)).map(Some)
}

fn required<'py>(events: &Bound<'py, PyAny>, key: &str) -> PyResult<Bound<'py, PyAny>> {
    get_array(events, key)?
        .ok_or_else(|| PyValueError::new_err(format!("events has no {key:?} column")))
}

fn dtype_name(arr: &Bound<'_, PyUntypedArray>) -> String {
    arr.dtype().to_string()
}

/// A 1-D array of `T`: the exact dtype (native byte order) is borrowed; `convertible` dtypes
/// (numpy kind and max item size) are converted losslessly with `astype`; others are a
/// TypeError.
fn column<'py, T: Element + Copy>(
    arr: Bound<'py, PyAny>,
    key: &str,
    convertible: &[(u8, usize)],
    type_name: &str,
) -> PyResult<Col<'py, T>> {
    let py = arr.py();
    let untyped = arr.cast::<PyUntypedArray>()?;
    if untyped.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "events[{key:?}] must be 1-D, got shape {:?}",
            untyped.shape()
        )));
    }
    let descr = untyped.dtype();
    let target = dtype::<T>(py);
    let arr = if descr.is_equiv_to(&target) {
        arr
    } else if convertible
        .iter()
        .any(|&(kind, size)| descr.kind() == kind && descr.itemsize() <= size)
    {
        arr.call_method1("astype", (target,))?
    } else {
        return Err(PyTypeError::new_err(format!(
            "events[{key:?}] must have dtype {type_name}, got {}",
            dtype_name(untyped)
        )));
    };
    let ro = arr.extract::<PyReadonlyArray1<'py, T>>()?;
    if ro.as_slice().is_ok() {
        Ok(Col::Array(ro))
    } else {
        Ok(Col::Owned(ro.as_array().iter().copied().collect()))
    }
}

const FLOAT: &[(u8, usize)] = &[(b'f', 8)];
const INT64: &[(u8, usize)] = &[(b'i', 8), (b'u', 4), (b'b', 1)];

/// A small-integer column (`kind` u8, `side` i8) from any integer dtype: values outside the
/// target range become `sentinel` (invalid where the value matters) and the original values
/// are kept for the error message.
struct SmallInts<'py, T: Element> {
    col: Col<'py, T>,
    original: Option<Vec<i64>>,
}

fn small_ints<'py, T>(
    arr: Bound<'py, PyAny>,
    key: &str,
    type_name: &str,
    sentinel: T,
) -> PyResult<SmallInts<'py, T>>
where
    T: Element + Copy + TryFrom<i64>,
{
    let untyped = arr.cast::<PyUntypedArray>()?;
    let descr = untyped.dtype();
    let exact = descr.is_equiv_to(&dtype::<T>(arr.py()));
    if exact || untyped.ndim() != 1 {
        return Ok(SmallInts {
            col: column(arr, key, &[], type_name)?,
            original: None,
        });
    }
    if !matches!(descr.kind(), b'i' | b'u' | b'b') {
        return Err(PyTypeError::new_err(format!(
            "events[{key:?}] must have dtype {type_name} (or another integer dtype), got {}",
            dtype_name(untyped)
        )));
    }
    let wide: Col<'py, i64> = column(arr, key, &[(b'i', 8), (b'u', 8), (b'b', 1)], "int64")?;
    let original = wide.slice().to_vec();
    let narrow = original
        .iter()
        .map(|&v| T::try_from(v).unwrap_or(sentinel))
        .collect();
    Ok(SmallInts {
        col: Col::Owned(narrow),
        original: Some(original),
    })
}

/// A 2-D `(n, L)` float64 depth array, C-contiguous.
fn depth<'py>(arr: Bound<'py, PyAny>, key: &str, n: usize) -> PyResult<PyReadonlyArray2<'py, f64>> {
    let py = arr.py();
    let untyped = arr.cast::<PyUntypedArray>()?;
    if untyped.ndim() != 2 || untyped.shape()[0] != n {
        return Err(PyValueError::new_err(format!(
            "events[{key:?}] must have shape (n, L) with n = {n} rows, got {:?}",
            untyped.shape()
        )));
    }
    let descr = untyped.dtype();
    let needs_cast = !descr.is_equiv_to(&dtype::<f64>(py));
    if needs_cast && descr.kind() != b'f' {
        return Err(PyTypeError::new_err(format!(
            "events[{key:?}] must have dtype float64, got {}",
            dtype_name(untyped)
        )));
    }
    let arr = if needs_cast || !untyped.is_c_contiguous() {
        let np = py.import("numpy")?;
        np.getattr("ascontiguousarray")?
            .call1((arr, dtype::<f64>(py)))?
    } else {
        arr
    };
    Ok(arr.extract::<PyReadonlyArray2<'py, f64>>()?)
}

/// The events dict, converted and borrowed for one batch call.
struct Events<'py> {
    kind: SmallInts<'py, u8>,
    seq: Col<'py, i64>,
    ts: Col<'py, i64>,
    recv_ts_ns: Col<'py, i64>,
    price: Col<'py, f64>,
    qty: Col<'py, f64>,
    side: SmallInts<'py, i8>,
    bid_price: Col<'py, f64>,
    bid_qty: Col<'py, f64>,
    ask_price: Col<'py, f64>,
    ask_qty: Col<'py, f64>,
    bid_depth: Option<PyReadonlyArray2<'py, f64>>,
    ask_depth: Option<PyReadonlyArray2<'py, f64>>,
}

impl<'py> Events<'py> {
    fn extract(events: &Bound<'py, PyAny>) -> PyResult<Self> {
        let f64_col = |key: &str| column::<f64>(required(events, key)?, key, FLOAT, "float64");
        let i64_col = |key: &str| column::<i64>(required(events, key)?, key, INT64, "int64");
        let kind = small_ints::<u8>(required(events, "kind")?, "kind", "uint8", u8::MAX)?;
        let n = kind.col.slice().len();
        let depth_of = |key: &str| -> PyResult<Option<PyReadonlyArray2<'py, f64>>> {
            get_array(events, key)?
                .map(|arr| depth(arr, key, n))
                .transpose()
        };
        Ok(Events {
            seq: i64_col("seq")?,
            ts: i64_col("ts")?,
            recv_ts_ns: i64_col("recv_ts_ns")?,
            price: f64_col("price")?,
            qty: f64_col("qty")?,
            side: small_ints::<i8>(required(events, "side")?, "side", "int8", 0)?,
            bid_price: f64_col("bid_price")?,
            bid_qty: f64_col("bid_qty")?,
            ask_price: f64_col("ask_price")?,
            ask_qty: f64_col("ask_qty")?,
            bid_depth: depth_of("bid_depth")?,
            ask_depth: depth_of("ask_depth")?,
            kind,
        })
    }

    fn view(&self) -> EventColumns<'_> {
        fn depth<'a>(d: &'a Option<PyReadonlyArray2<'_, f64>>) -> Option<DepthColumns<'a>> {
            d.as_ref().map(|a| DepthColumns {
                // C-contiguity was ensured when the column was built.
                values: a.as_slice().unwrap_or(&[]),
                levels: a.shape()[1],
            })
        }
        EventColumns {
            kind: self.kind.col.slice(),
            seq: self.seq.slice(),
            ts: self.ts.slice(),
            recv_ts_ns: self.recv_ts_ns.slice(),
            price: self.price.slice(),
            qty: self.qty.slice(),
            side: self.side.col.slice(),
            bid_price: self.bid_price.slice(),
            bid_qty: self.bid_qty.slice(),
            ask_price: self.ask_price.slice(),
            ask_qty: self.ask_qty.slice(),
            bid_depth: depth(&self.bid_depth),
            ask_depth: depth(&self.ask_depth),
        }
    }

    /// The error as a ValueError, with the caller's value where `kind` / `side` were
    /// narrowed.
    fn error(&self, e: InputError) -> PyErr {
        if let InputError::Event {
            index,
            seq,
            field,
            problem,
        } = &e
        {
            let original = match (field, problem) {
                (Field::Kind, Problem::UnknownKind(_)) => self.kind.original.as_ref(),
                (Field::TradeSide, Problem::BadSide(_)) => self.side.original.as_ref(),
                _ => None,
            };
            if let Some(v) = original.and_then(|o| o.get(*index)) {
                let expected = if *field == Field::Kind {
                    "0 (trade) or 1 (book)"
                } else {
                    "+1 (buy) or -1 (sell)"
                };
                return PyValueError::new_err(format!(
                    "event {index} (seq {seq}): {field} is {v}, not {expected}"
                ));
            }
        }
        input_error(e)
    }
}

/// Rows as a dict: seq, ts, recv_ts_ns, kind, then one float64 column per feature.
fn rows_to_dict<'py>(
    py: Python<'py>,
    out: FeatureColumns,
    names: &[String],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    // from_vec hands each Vec's buffer to NumPy: no copy.
    d.set_item("seq", PyArray1::from_vec(py, out.seq))?;
    d.set_item("ts", PyArray1::from_vec(py, out.ts))?;
    d.set_item("recv_ts_ns", PyArray1::from_vec(py, out.recv_ts_ns))?;
    d.set_item("kind", PyArray1::from_vec(py, out.kind))?;
    for (name, col) in names.iter().zip(out.features) {
        d.set_item(name, PyArray1::from_vec(py, col))?;
    }
    Ok(d)
}

/// Run a batch through `engine`, without the GIL when it is large.
fn run_engine(
    py: Python<'_>,
    engine: &mut FeatureEngine,
    events: &Bound<'_, PyAny>,
) -> PyResult<FeatureColumns> {
    let cols = Events::extract(events)?;
    let view = cols.view();
    let result = if view.len() >= DETACH_THRESHOLD_EVENTS {
        py.detach(|| engine.process(&view))
    } else {
        engine.process(&view)
    };
    result.map_err(|e| cols.error(e))
}

/// Run a batch through `engine`; its rows as a dict of columns.
fn run_batch<'py>(
    py: Python<'py>,
    engine: &mut FeatureEngine,
    events: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = run_engine(py, engine, events)?;
    rows_to_dict(py, out, engine.feature_names())
}

/// Rows as the processor publishes and digests them: `(fields per row, [(seq, fields)],
/// digest bytes)`, the same bytes as `pack_feature_rows` and `feature_digest_rows` of the
/// rows as a dict.
fn packed_rows<'py>(
    py: Python<'py>,
    packer: &RowPacker,
    out: &FeatureColumns,
) -> PyResult<(usize, Bound<'py, PyList>, Bound<'py, PyBytes>)> {
    let kind: Vec<i64> = out.kind.iter().map(|&k| i64::from(k)).collect();
    let features: Vec<&[f64]> = out.features.iter().map(Vec::as_slice).collect();
    let cols = RowColumns {
        seq: &out.seq,
        ts: &out.ts,
        recv_ts_ns: &out.recv_ts_ns,
        kind: &kind,
        features: &features,
    };
    // The engine has taken the batch by now: a failure here is a bug, not a bad event, and
    // must not look like one (a caller retries a refused batch event by event).
    let unpackable = |e: String| PyRuntimeError::new_err(format!("engine rows not packed: {e}"));
    let packed = packer.pack(&cols).map_err(|e| unpackable(e.to_string()))?;
    let digest =
        digest_row_bytes(&out.seq, &out.ts, &features).map_err(|e| unpackable(e.to_string()))?;
    let list = PyList::new(
        py,
        (0..packed.len()).map(|i| (out.seq[i], PyBytes::new(py, packed.row(i)))),
    )?;
    Ok((packer.n_fields(), list, PyBytes::new(py, &digest)))
}

// ------------------------------------------------------------------------------------------
// FeatureEngine
// ------------------------------------------------------------------------------------------

/// Depth sizes from a sequence of floats (or a 1-D array) into a reused buffer.
fn depth_levels_arg(obj: &Bound<'_, PyAny>, name: &str, buf: &mut Vec<f64>) -> PyResult<()> {
    buf.clear();
    if let Ok(arr) = obj.extract::<PyReadonlyArray1<'_, f64>>() {
        buf.extend(arr.as_array().iter().copied());
        return Ok(());
    }
    for item in obj
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a sequence of floats")))?
    {
        buf.push(item?.extract::<f64>()?);
    }
    Ok(())
}

/// The feature engine of one symbol: feed events in seq order, get a row of features after
/// every trade (and after every book event with `emit_on_book`).
#[pyclass(name = "FeatureEngine", module = "cif._core")]
pub(crate) struct PyFeatureEngine {
    inner: FeatureEngine,
    row: Vec<f64>,
    bid_depth: Vec<f64>,
    ask_depth: Vec<f64>,
    /// The entry packer of `process_packed` (made on first use: the names never change).
    packer: Option<RowPacker>,
}

impl PyFeatureEngine {
    fn wrap(inner: FeatureEngine) -> Self {
        let row = vec![0.0; inner.n_features()];
        PyFeatureEngine {
            inner,
            row,
            bid_depth: Vec::new(),
            ask_depth: Vec::new(),
            packer: None,
        }
    }
}

#[pymethods]
impl PyFeatureEngine {
    #[new]
    #[pyo3(
        text_signature = "(*, time_windows_ms=[1000, 10000, 60000], count_windows=[100], depth_levels=[5, 10], ewma_half_life_ms=10000.0, emit_on_book=False)"
    )]
    #[pyo3(signature = (
        *,
        time_windows_ms = vec![1000, 10_000, 60_000],
        count_windows = vec![100],
        depth_levels = vec![5, 10],
        ewma_half_life_ms = 10000.0,
        emit_on_book = false,
    ))]
    fn new(
        time_windows_ms: Vec<i64>,
        count_windows: Vec<i64>,
        depth_levels: Vec<i64>,
        ewma_half_life_ms: f64,
        emit_on_book: bool,
    ) -> PyResult<Self> {
        let cfg = config(
            time_windows_ms,
            count_windows,
            depth_levels,
            ewma_half_life_ms,
            emit_on_book,
        )?;
        Ok(Self::wrap(FeatureEngine::new(cfg)))
    }

    /// The feature names, in row order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.feature_names().to_vec()
    }

    /// The five settings.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.config();
        let d = PyDict::new(py);
        d.set_item("time_windows_ms", c.time_windows_ms().to_vec())?;
        d.set_item("count_windows", c.count_windows().to_vec())?;
        d.set_item("depth_levels", c.depth_levels().to_vec())?;
        d.set_item("ewma_half_life_ms", c.ewma_half_life_ms())?;
        d.set_item("emit_on_book", c.emit_on_book())?;
        Ok(d)
    }

    /// Events consumed so far.
    #[getter]
    fn events(&self) -> u64 {
        self.inner.events()
    }

    /// Seq of the last event consumed.
    #[getter]
    fn last_seq(&self) -> Option<i64> {
        self.inner.last_seq()
    }

    /// Feed one trade; returns the row of features after it.
    #[allow(clippy::too_many_arguments)]
    fn push_trade<'py>(
        &mut self,
        py: Python<'py>,
        seq: i64,
        ts: i64,
        recv_ts_ns: i64,
        price: f64,
        qty: f64,
        side: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let _ = recv_ts_ns; // carried in batch rows only; never used in the math
        let trade = TradeEvent {
            seq,
            ts,
            price,
            qty,
            // Out of i8 range: 0, which is rejected like any side other than +1 / -1.
            side: i8::try_from(side).unwrap_or(0),
        };
        self.inner
            .on_trade(&trade, &mut self.row)
            .map_err(|e| match e {
                InputError::Event {
                    field: Field::TradeSide,
                    ..
                } => PyValueError::new_err(format!(
                    "event 0 (seq {seq}): trade side is {side}, not +1 (buy) or -1 (sell)"
                )),
                e => input_error(e),
            })?;
        PyList::new(py, &self.row)
    }

    /// Feed one book event; returns the row after it with `emit_on_book`, else None.
    #[pyo3(
        text_signature = "($self, seq, ts, recv_ts_ns, bid_price, bid_qty, ask_price, ask_qty, bid_depth=(), ask_depth=())"
    )]
    #[pyo3(signature = (
        seq, ts, recv_ts_ns, bid_price, bid_qty, ask_price, ask_qty, bid_depth = None,
        ask_depth = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn push_book<'py>(
        &mut self,
        py: Python<'py>,
        seq: i64,
        ts: i64,
        recv_ts_ns: i64,
        bid_price: f64,
        bid_qty: f64,
        ask_price: f64,
        ask_qty: f64,
        bid_depth: Option<&Bound<'py, PyAny>>,
        ask_depth: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let _ = recv_ts_ns; // carried in batch rows only; never used in the math
        self.bid_depth.clear();
        self.ask_depth.clear();
        if let Some(obj) = bid_depth {
            depth_levels_arg(obj, "bid_depth", &mut self.bid_depth)?;
        }
        if let Some(obj) = ask_depth {
            depth_levels_arg(obj, "ask_depth", &mut self.ask_depth)?;
        }
        let book = BookEvent {
            seq,
            ts,
            bid_price,
            bid_qty,
            ask_price,
            ask_qty,
            bid_depth: &self.bid_depth,
            ask_depth: &self.ask_depth,
        };
        let emitted = self
            .inner
            .on_book(&book, &mut self.row)
            .map_err(input_error)?;
        emitted.then(|| PyList::new(py, &self.row)).transpose()
    }

    /// Feed a batch (a mapping of NumPy columns); returns its rows as a dict of columns.
    fn process<'py>(
        &mut self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        run_batch(py, &mut self.inner, events)
    }

    /// `process`, with the rows as the feature processor publishes them: the number of
    /// fields per row, per row its `seq` and its fields as RESP bulk strings (what
    /// `pack_feature_rows(process(events))` gives) and the rows' digest bytes (what
    /// `feature_digest_rows(process(events))` gives), without building the rows as NumPy
    /// columns first. Errors are those of `process` (nothing changed); a RuntimeError if
    /// the rows could not be packed after the engine took the batch (a bug).
    fn process_packed<'py>(
        &mut self,
        py: Python<'py>,
        events: &Bound<'py, PyAny>,
    ) -> PyResult<(usize, Bound<'py, PyList>, Bound<'py, PyBytes>)> {
        let packer = match self.packer.take() {
            Some(p) => p,
            None => RowPacker::new(self.inner.feature_names())
                .map_err(|e| PyRuntimeError::new_err(format!("no entry packer: {e}")))?,
        };
        let out = run_engine(py, &mut self.inner, events);
        let packed = out.and_then(|out| packed_rows(py, &packer, &out));
        self.packer = Some(packer);
        packed
    }

    /// The full engine (settings and state) as bytes.
    ///
    /// Serialises without the GIL: a state holds every event of the longest window
    /// (megabytes at thousands of events/s), and the processor takes it from a worker
    /// thread so that its event loop runs meanwhile.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let inner = &self.inner;
        let data = py.detach(|| inner.snapshot());
        PyBytes::new(py, &data)
    }

    /// An engine from `snapshot()` bytes.
    #[staticmethod]
    fn restore(data: &[u8]) -> PyResult<Self> {
        FeatureEngine::restore(data)
            .map(Self::wrap)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "FeatureEngine(events={}, last_seq={}, features={})",
            self.inner.events(),
            self.inner
                .last_seq()
                .map_or_else(|| "None".to_string(), |s| s.to_string()),
            self.inner.n_features()
        )
    }
}

/// Features of an events dict on a fresh engine (same as `FeatureEngine(...).process`).
#[pyfunction]
#[pyo3(
    text_signature = "(events, *, time_windows_ms=[1000, 10000, 60000], count_windows=[100], depth_levels=[5, 10], ewma_half_life_ms=10000.0, emit_on_book=False)"
)]
#[pyo3(signature = (
    events,
    *,
    time_windows_ms = vec![1000, 10_000, 60_000],
    count_windows = vec![100],
    depth_levels = vec![5, 10],
    ewma_half_life_ms = 10000.0,
    emit_on_book = false,
))]
fn compute_features<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyAny>,
    time_windows_ms: Vec<i64>,
    count_windows: Vec<i64>,
    depth_levels: Vec<i64>,
    ewma_half_life_ms: f64,
    emit_on_book: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = config(
        time_windows_ms,
        count_windows,
        depth_levels,
        ewma_half_life_ms,
        emit_on_book,
    )?;
    let mut engine = FeatureEngine::new(cfg);
    run_batch(py, &mut engine, events)
}

/// The feature names, in row order, for the given settings.
#[pyfunction]
#[pyo3(
    text_signature = "(*, time_windows_ms=[1000, 10000, 60000], count_windows=[100], depth_levels=[5, 10], ewma_half_life_ms=10000.0, emit_on_book=False)"
)]
#[pyo3(signature = (
    *,
    time_windows_ms = vec![1000, 10_000, 60_000],
    count_windows = vec![100],
    depth_levels = vec![5, 10],
    ewma_half_life_ms = 10000.0,
    emit_on_book = false,
))]
fn feature_names(
    time_windows_ms: Vec<i64>,
    count_windows: Vec<i64>,
    depth_levels: Vec<i64>,
    ewma_half_life_ms: f64,
    emit_on_book: bool,
) -> PyResult<Vec<String>> {
    Ok(config(
        time_windows_ms,
        count_windows,
        depth_levels,
        ewma_half_life_ms,
        emit_on_book,
    )?
    .feature_names())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFeatureEngine>()?;
    m.add_function(wrap_pyfunction!(compute_features, m)?)?;
    m.add_function(wrap_pyfunction!(feature_names, m)?)?;
    Ok(())
}
