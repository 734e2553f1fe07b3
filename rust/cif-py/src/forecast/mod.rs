//! Bindings for `cif_core::forecast`: model scoring as `cif._core.score_linear` and
//! `cif._core.score_heuristic` (NumPy in, NumPy out).

use cif_core::forecast::{Heuristic, LinearModel, ScoreError};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Rows from which scoring runs without the GIL (below it the release costs more than it saves).
const DETACH_ROWS: usize = 4096;

fn value_error(e: ScoreError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn vec1(a: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

fn to_rows<'py>(py: Python<'py>, data: Vec<f64>, k: usize) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = data.len() / k;
    PyArray1::from_vec(py, data).reshape([n, k])
}

/// Multinomial logistic scoring: softmax((x − mean)/scale · coefᵀ + intercept) per row.
#[pyfunction]
fn score_linear<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    mean: PyReadonlyArray1<'py, f64>,
    scale: PyReadonlyArray1<'py, f64>,
    coef: PyReadonlyArray2<'py, f64>,
    intercept: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let [k, f] = [coef.shape()[0], coef.shape()[1]];
    if x.shape()[1] != f && x.shape()[0] > 0 {
        return Err(PyValueError::new_err(format!(
            "x has {} columns, the model has {f} features",
            x.shape()[1]
        )));
    }
    let model = LinearModel::new(
        vec1(&mean),
        vec1(&scale),
        coef.as_array().iter().copied().collect(),
        vec1(&intercept),
    )
    .map_err(value_error)?;
    let data: Vec<f64> = x.as_array().iter().copied().collect();
    let n = x.shape()[0];
    let probs = if n >= DETACH_ROWS {
        py.detach(|| model.score(&data))
    } else {
        model.score(&data)
    }
    .map_err(value_error)?;
    to_rows(py, probs, k)
}

/// The seed's OFI-threshold heuristic: (p_down, p_up) per value.
#[pyfunction]
fn score_heuristic<'py>(
    py: Python<'py>,
    x: PyReadonlyArray1<'py, f64>,
    threshold: f64,
    scale: f64,
    max_prob: f64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let rule = Heuristic::new(threshold, scale, max_prob).map_err(value_error)?;
    let data = vec1(&x);
    to_rows(py, rule.score(&data), 2)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(score_linear, m)?)?;
    m.add_function(wrap_pyfunction!(score_heuristic, m)?)?;
    Ok(())
}
