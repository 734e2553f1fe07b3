//! Bindings for `cif_core::codec`: the feature processor's stream entries, encoded and
//! decoded in Rust with Python's text rules (`cif._core.pack_feature_rows`,
//! `cif._core.decode_event_entries`).
//!
//! Both are per-batch calls on the processor's hot path: the Python objects are read in
//! place (NumPy buffers and `bytes` are borrowed, not copied) and only the results are
//! built as new objects.

mod fanout;

use cif_core::codec::{
    digest_row_bytes, forecast_digest_row_bytes, forecast_record_json, EntryField, EntryFields,
    EventDecoder, EventLogColumns, FieldValue, RowColumns, RowPacker, ROW_FIELDS,
};
use numpy::{
    dtype, Element, PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};

/// Rows from which packing runs without the GIL (about 40 µs of work at 41 features; below
/// it the release and re-acquire are not worth it).
const DETACH_ROWS: usize = 256;

// ------------------------------------------------------------------------------------------
// Feature rows out
// ------------------------------------------------------------------------------------------

/// `rows[key]` as a contiguous 1-D array of `T`. Dtypes listed in `convertible` (NumPy kind,
/// max item size) are converted losslessly; others are a TypeError.
fn contiguous_column<'py, T: Element>(
    rows: &Bound<'py, PyAny>,
    key: &str,
    convertible: &[(u8, usize)],
    type_name: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let py = rows.py();
    let mut arr = rows.get_item(key)?;
    // The engine's columns are already contiguous arrays of the right dtype: take them as
    // they are (importing NumPy and comparing dtypes per column was most of a small batch).
    if let Ok(exact) = arr.cast::<PyArray1<T>>() {
        if exact.is_c_contiguous() {
            return Ok(exact.readonly());
        }
    }
    let np = py.import("numpy")?;
    if arr.cast::<PyUntypedArray>().is_err() {
        arr = np.getattr("asarray")?.call1((arr,))?;
    }
    let untyped = arr.cast::<PyUntypedArray>()?;
    if untyped.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "rows[{key:?}] must be 1-D, got shape {:?}",
            untyped.shape()
        )));
    }
    let descr = untyped.dtype();
    let target = dtype::<T>(py);
    let exact = descr.is_equiv_to(&target);
    if !exact
        && !convertible
            .iter()
            .any(|&(kind, size)| descr.kind() == kind && descr.itemsize() <= size)
    {
        return Err(PyTypeError::new_err(format!(
            "rows[{key:?}] must have dtype {type_name}, got {}",
            descr
        )));
    }
    if !exact || !untyped.is_c_contiguous() {
        arr = np.getattr("ascontiguousarray")?.call1((arr, target))?;
    }
    Ok(arr.extract::<PyReadonlyArray1<'py, T>>()?)
}

/// Integer dtypes that fit an int64 exactly.
const INTS: &[(u8, usize)] = &[(b'i', 8), (b'u', 4), (b'b', 1)];
/// Float dtypes (float16 / float32 widen exactly, and Python's `repr` sees the widened
/// value too).
const FLOATS: &[(u8, usize)] = &[(b'f', 8)];

/// The publisher's pre-packed `features:{symbol}` rows.
///
/// `rows` is what `FeatureEngine.process` returns: `seq`, `ts`, `recv_ts_ns`, `kind`
/// (integer columns) and one float column per feature, in mapping order. Returns the number
/// of fields per row and, per row, its `seq` and its fields as RESP bulk strings
/// (`name value name value ...`): the integers written `%d`, then one field named by the
/// feature names joined by `,`, its value the features as Python's `repr(float)` joined by
/// `,`.
#[pyfunction]
#[pyo3(name = "pack_feature_rows")]
fn pack_feature_rows<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
) -> PyResult<(usize, Bound<'py, PyList>)> {
    let names = feature_names(rows)?;
    let ints = ROW_FIELDS
        .iter()
        .map(|key| contiguous_column::<i64>(rows, key, INTS, "int64"))
        .collect::<PyResult<Vec<_>>>()?;
    let floats = names
        .iter()
        .map(|key| contiguous_column::<f64>(rows, key, FLOATS, "float64"))
        .collect::<PyResult<Vec<_>>>()?;
    // Contiguity was ensured when each column was extracted.
    let int_slices: Vec<&[i64]> = ints.iter().map(|a| a.as_slice().unwrap_or(&[])).collect();
    let features: Vec<&[f64]> = floats.iter().map(|a| a.as_slice().unwrap_or(&[])).collect();
    let cols = RowColumns {
        seq: int_slices[0],
        ts: int_slices[1],
        recv_ts_ns: int_slices[2],
        kind: int_slices[3],
        features: &features,
    };
    let packer = RowPacker::new(&names).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let packed = if cols.seq.len() >= DETACH_ROWS {
        py.detach(|| packer.pack(&cols))
    } else {
        packer.pack(&cols)
    }
    .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let out = PyList::new(
        py,
        (0..packed.len()).map(|i| (cols.seq[i], PyBytes::new(py, packed.row(i)))),
    )?;
    Ok((packer.n_fields(), out))
}

/// The feature columns of `rows`: every key that is not one of the four row fields, in
/// mapping order.
fn feature_names(rows: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for key in rows.try_iter()? {
        let key = key?;
        let name = key
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("rows has a non-str key {key:?}")))?
            .to_str()?;
        if !ROW_FIELDS.contains(&name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// The row count and the bytes the output digest (`cif.digest`) hashes for a feature
/// table: per row `seq` and `ts` as int64, then each feature column's float64 bits, all
/// little-endian, every NaN as the canonical quiet NaN. `rows` is what
/// `FeatureEngine.process` returns (`recv_ts_ns` and `kind` are not hashed).
#[pyfunction]
#[pyo3(name = "feature_digest_rows")]
fn feature_digest_rows<'py>(
    py: Python<'py>,
    rows: &Bound<'py, PyAny>,
) -> PyResult<(usize, Bound<'py, PyBytes>)> {
    let names = feature_names(rows)?;
    let seq = contiguous_column::<i64>(rows, ROW_FIELDS[0], INTS, "int64")?;
    let ts = contiguous_column::<i64>(rows, ROW_FIELDS[1], INTS, "int64")?;
    let floats = names
        .iter()
        .map(|key| contiguous_column::<f64>(rows, key, FLOATS, "float64"))
        .collect::<PyResult<Vec<_>>>()?;
    let features: Vec<&[f64]> = floats.iter().map(|a| a.as_slice().unwrap_or(&[])).collect();
    let seq = seq.as_slice().unwrap_or(&[]);
    let data = digest_row_bytes(seq, ts.as_slice().unwrap_or(&[]), &features)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((seq.len(), PyBytes::new(py, &data)))
}

/// The row count and the bytes the output digest hashes for forecasts: per row `seq` as
/// int64, then the `(n, K)` probabilities' float64 bits, little-endian, every NaN as the
/// canonical quiet NaN. Arrays in any memory order (read in row order; C-ordered ones in
/// place).
#[pyfunction]
#[pyo3(name = "forecast_digest_rows")]
fn forecast_digest_rows<'py>(
    py: Python<'py>,
    seq: PyReadonlyArray1<'py, i64>,
    probs: PyReadonlyArray2<'py, f64>,
) -> PyResult<(usize, Bound<'py, PyBytes>)> {
    let k = probs.shape()[1];
    let seq_copy;
    let seq_rows = match seq.as_slice() {
        Ok(s) => s,
        Err(_) => {
            seq_copy = seq.as_array().to_vec();
            &seq_copy
        }
    };
    // `as_slice` also takes Fortran order (columns first): only C order is row order.
    let probs_copy;
    let prob_rows = if probs.is_c_contiguous() {
        probs.as_slice()?
    } else {
        probs_copy = probs.as_array().iter().copied().collect::<Vec<f64>>();
        &probs_copy
    };
    let data = forecast_digest_row_bytes(seq_rows, prob_rows, k)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((seq.len(), PyBytes::new(py, &data)))
}

// ------------------------------------------------------------------------------------------
// Trade and book entries in
// ------------------------------------------------------------------------------------------

/// The value objects of the fields the decoder reads, held for the entry's decoding (the
/// decoder borrows their bytes).
type Held<'py> = [Option<Bound<'py, PyAny>>; EntryField::COUNT];

/// Pick the decoder's fields out of a mapping with `str` or `bytes` keys; like the Python
/// builder, a `str` key wins over the same name as `bytes`.
fn held_fields<'py>(fields: &Bound<'py, PyAny>) -> PyResult<Held<'py>> {
    let mut held: Held<'py> = Default::default();
    let mut from_str = [false; EntryField::COUNT];
    let mut take = |key: &Bound<'py, PyAny>, value: Bound<'py, PyAny>| -> PyResult<()> {
        let (name, is_str) = if let Ok(b) = key.cast::<PyBytes>() {
            (b.as_bytes(), false)
        } else if let Ok(s) = key.cast::<PyString>() {
            match s.to_str() {
                Ok(s) => (s.as_bytes(), true),
                Err(_) => return Ok(()),
            }
        } else {
            return Ok(());
        };
        let Some(field) = EntryField::from_name(name) else {
            return Ok(());
        };
        let i = field.index();
        if is_str || !from_str[i] {
            // A bytearray cannot be borrowed safely while Python code might resize it.
            let value = match value.cast::<PyByteArray>() {
                Ok(ba) => PyBytes::new(value.py(), &ba.to_vec()).into_any(),
                Err(_) => value,
            };
            held[i] = Some(value);
            from_str[i] = is_str;
        }
        Ok(())
    };
    if let Ok(d) = fields.cast::<PyDict>() {
        for (k, v) in d.iter() {
            take(&k, v)?;
        }
    } else if let Ok(flat) = fields.cast::<PyList>() {
        // Keys and values alternating, as a stream reply holds them: a later key wins,
        // as in the dict built from them.
        if flat.len() % 2 != 0 {
            return Err(PyValueError::new_err(format!(
                "a flat field list holds keys and values in pairs, got {} items",
                flat.len()
            )));
        }
        for i in (0..flat.len()).step_by(2) {
            take(&flat.get_item(i)?, flat.get_item(i + 1)?)?;
        }
    } else {
        for item in fields.call_method0("items")?.try_iter()? {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
            take(&k, v)?;
        }
    }
    Ok(held)
}

/// A Python value as the decoder sees it.
fn field_value<'a>(v: &'a Bound<'_, PyAny>) -> FieldValue<'a> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return FieldValue::Text(b.as_bytes());
    }
    if let Ok(s) = v.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => FieldValue::Text(s.as_bytes()),
            Err(_) => FieldValue::Other("a str that is not valid UTF-8".to_owned()),
        };
    }
    if let Ok(i) = v.cast::<PyInt>() {
        return match i.extract::<i64>() {
            Ok(x) => FieldValue::Int(x),
            Err(_) => FieldValue::Other("an integer beyond 64 bits".to_owned()),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return FieldValue::Float(f.value());
    }
    // NumPy scalars and other numbers: integers by `__index__`, the rest by `__float__`.
    if let Ok(x) = v.extract::<i64>() {
        return FieldValue::Int(x);
    }
    if let Ok(x) = v.extract::<f64>() {
        return FieldValue::Float(x);
    }
    if v.is_none() {
        return FieldValue::Other("None".to_owned());
    }
    let type_name = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string());
    FieldValue::Other(format!("of type {type_name}"))
}

fn entry_view<'a>(held: &'a Held<'_>) -> EntryFields<'a> {
    let mut view = EntryFields::new();
    for (field, value) in EntryField::ALL.iter().zip(held) {
        if let Some(v) = value {
            view.set(*field, field_value(v));
        }
    }
    view
}

/// The builder's column dict: same keys, order, dtypes and shapes.
fn columns_dict<'py>(py: Python<'py>, c: EventLogColumns) -> PyResult<Bound<'py, PyDict>> {
    let (n, width) = (c.len(), c.depth_levels);
    let d = PyDict::new(py);
    // from_vec hands each Vec's buffer to NumPy: no copy.
    d.set_item("kind", PyArray1::from_vec(py, c.kind))?;
    d.set_item("seq", PyArray1::from_vec(py, c.seq))?;
    d.set_item("ts", PyArray1::from_vec(py, c.ts))?;
    d.set_item("recv_ts_ns", PyArray1::from_vec(py, c.recv_ts_ns))?;
    d.set_item("price", PyArray1::from_vec(py, c.price))?;
    d.set_item("qty", PyArray1::from_vec(py, c.qty))?;
    d.set_item("side", PyArray1::from_vec(py, c.side))?;
    d.set_item("bid_price", PyArray1::from_vec(py, c.bid_price))?;
    d.set_item("bid_qty", PyArray1::from_vec(py, c.bid_qty))?;
    d.set_item("ask_price", PyArray1::from_vec(py, c.ask_price))?;
    d.set_item("ask_qty", PyArray1::from_vec(py, c.ask_qty))?;
    d.set_item(
        "bid_depth",
        PyArray1::from_vec(py, c.bid_depth).reshape([n, width])?,
    )?;
    d.set_item(
        "ask_depth",
        PyArray1::from_vec(py, c.ask_depth).reshape([n, width])?,
    )?;
    Ok(d)
}

/// `(index, message)` of each entry the decoder refused.
type Failures = Vec<(usize, String)>;

/// Decode `trades:{symbol}` / `book:{symbol}` entries into the feature engine's event log.
///
/// `entries` are `(is_trade, fields)` pairs, `fields` a mapping with `str` or `bytes` keys
/// and `bytes` / `str` / number values (as Redis returns them or as they are published), or
/// a list of keys and values alternating (as a raw stream reply holds them).
/// Returns the event columns of the decodable entries, in the given order (what
/// `EventLogBuilder.build()` returns for them: bit for bit the same), and `(index, message)`
/// for every entry that is not (a missing field, a value that is not a number, a bad side,
/// broken depth JSON); a refused entry adds no row.
#[pyfunction]
#[pyo3(name = "decode_event_entries")]
fn decode_event_entries<'py>(
    py: Python<'py>,
    entries: &Bound<'py, PyAny>,
    depth_levels: i64,
) -> PyResult<(Bound<'py, PyDict>, Failures)> {
    let width = usize::try_from(depth_levels).map_err(|_| {
        PyValueError::new_err(format!("depth_levels must be >= 0, got {depth_levels}"))
    })?;
    let mut decoder = EventDecoder::new(width);
    let mut failures = Vec::new();
    for (index, item) in entries.try_iter()?.enumerate() {
        let (is_trade, fields): (bool, Bound<'py, PyAny>) = item?.extract()?;
        let held = held_fields(&fields)?;
        if let Err(e) = decoder.push(is_trade, &entry_view(&held)) {
            failures.push((index, e.to_string()));
        }
    }
    Ok((columns_dict(py, decoder.finish())?, failures))
}

// ------------------------------------------------------------------------------------------
// Forecast records out (the API)
// ------------------------------------------------------------------------------------------

/// The API's JSON record of each `forecasts:{symbol}` entry, as
/// `cif.api.streams.forecast_json` writes it; `None` for an entry it is not sure about
/// (see `cif_core::codec::forecast_json`), which the caller then takes through Python.
///
/// `entries` holds `(id, fields)` pairs, `fields` a dict of `str` (a decoding link's
/// entries) or a list of names and values alternating (the reply as it is), `str` or
/// `bytes`; a pair of another shape, a field of another type or a name given twice gives
/// `None` too.
#[pyfunction]
#[pyo3(name = "forecast_records_json")]
fn forecast_records_json<'py>(
    py: Python<'py>,
    entries: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    let mut text: Vec<u8> = Vec::with_capacity(320);
    for entry in entries.try_iter()? {
        text.clear();
        match forecast_record(&entry?, &mut text) {
            Some(record) => out.append(PyString::new(py, record))?,
            None => out.append(py.None())?,
        }
    }
    Ok(out)
}

/// The text of a `str` (UTF-8) or `bytes` value; `None` for anything else. (Bytes that
/// are not printable ASCII are declined by the codec, and the Python path decodes them.)
fn text_of<'a>(value: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Some(b.as_bytes());
    }
    Some(value.cast::<PyString>().ok()?.to_str().ok()?.as_bytes())
}

/// One entry's record in `text` (its `str`), or `None` for an entry of another shape or
/// one the codec declines.
fn forecast_record<'py, 't>(entry: &Bound<'py, PyAny>, text: &'t mut Vec<u8>) -> Option<&'t str> {
    let fields = entry.get_item(1).ok()?;
    let held: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = if let Ok(d) = fields.cast::<PyDict>() {
        d.iter().collect()
    } else {
        // Names and values alternating, as the stream reply holds them.
        let flat = fields.cast_into::<PyList>().ok()?;
        if flat.len() % 2 != 0 {
            return None;
        }
        (0..flat.len())
            .step_by(2)
            .map(|i| Some((flat.get_item(i).ok()?, flat.get_item(i + 1).ok()?)))
            .collect::<Option<Vec<_>>>()?
    };
    let pairs = held
        .iter()
        .map(|(k, v)| Some((text_of(k)?, text_of(v)?)))
        .collect::<Option<Vec<_>>>()?;
    // A name twice (only a flat list can hold it): the dict of them keeps the last, so
    // such an entry is left to the Python path, which reads that dict.
    if pairs
        .iter()
        .enumerate()
        .any(|(i, (k, _))| pairs[..i].iter().any(|(k2, _)| k2 == k))
    {
        return None;
    }
    if !forecast_record_json(&pairs, text) {
        return None;
    }
    // Only printable ASCII is ever written: this cannot fail.
    std::str::from_utf8(text).ok()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(forecast_records_json, m)?)?;
    m.add_function(wrap_pyfunction!(pack_feature_rows, m)?)?;
    m.add_function(wrap_pyfunction!(decode_event_entries, m)?)?;
    m.add_function(wrap_pyfunction!(feature_digest_rows, m)?)?;
    m.add_function(wrap_pyfunction!(forecast_digest_rows, m)?)?;
    fanout::register(m)?;
    Ok(())
}
