//! Bindings for `cif_core::forecast`: model scoring as `cif._core.score_linear` and
//! `cif._core.score_heuristic` (NumPy in, NumPy out), and the live evaluator's running
//! metrics as `cif._core.ScoreTrack`; the service's per-row reading and packing of entries
//! (`cif._core.decode_feature_rows`, `cif._core.pack_forecast_entries`).

mod rows;

use std::collections::VecDeque;

use cif_core::forecast::{CompensatedSum, Heuristic, LinearModel, ScoreError, ScoreTrack, Scored};
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

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

/// Whether each row of the `(n, K)` probabilities is a publishable forecast: every
/// probability finite and in `[0, 1]`, their sum within `tol` of 1.
#[pyfunction]
#[pyo3(name = "publishable_rows")]
fn publishable_rows<'py>(
    py: Python<'py>,
    probs: PyReadonlyArray2<'py, f64>,
    tol: f64,
) -> PyResult<Bound<'py, PyArray1<bool>>> {
    let (n, k) = (probs.shape()[0], probs.shape()[1]);
    let ok = if k == 0 {
        vec![false; n] // no class: no row has a forecast
    } else if probs.is_c_contiguous() {
        cif_core::forecast::publishable_rows(probs.as_slice()?, k, tol)
    } else {
        let rows: Vec<f64> = probs.as_array().iter().copied().collect();
        cif_core::forecast::publishable_rows(&rows, k, tol)
    };
    Ok(PyArray1::from_vec(py, ok))
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

/// A compensated sum as `(sum, compensation)`.
type SumParts = (f64, f64);
/// A scored forecast of the rolling window: `(credit, brier, log loss, prob_up, is_up)`.
type ScoredParts = (f64, f64, f64, f64, bool);
/// Every field of a track, as :meth:`ScoreTrack.parts` gives them.
type TrackParts = (
    usize,
    u64,
    u64,
    Vec<SumParts>,
    Vec<u64>,
    Vec<u64>,
    Vec<u64>,
    Vec<SumParts>,
    Vec<u64>,
    Vec<ScoredParts>,
    Vec<SumParts>,
);

fn sum_parts(s: &CompensatedSum) -> SumParts {
    (s.s, s.c)
}

fn sums<const N: usize>(parts: &[SumParts], what: &str) -> PyResult<[CompensatedSum; N]> {
    let v: Vec<CompensatedSum> = parts
        .iter()
        .map(|&(s, c)| CompensatedSum { s, c })
        .collect();
    v.try_into().map_err(|_| {
        PyValueError::new_err(format!("{what}: expected {N} sums, got {}", parts.len()))
    })
}

fn counts<const N: usize>(v: Vec<u64>, what: &str) -> PyResult<[u64; N]> {
    let n = v.len();
    v.try_into()
        .map_err(|_| PyValueError::new_err(format!("{what}: expected {N} counts, got {n}")))
}

/// The running metrics of one predictor's scored forecasts (`cif_core::forecast::ScoreTrack`):
/// cumulative sums, AUC histograms, calibration bins and a rolling window.
#[pyclass(name = "ScoreTrack", module = "cif._core")]
pub(crate) struct PyScoreTrack {
    inner: ScoreTrack,
}

#[pymethods]
impl PyScoreTrack {
    #[new]
    fn new(window: usize) -> PyResult<Self> {
        Ok(PyScoreTrack {
            inner: ScoreTrack::new(window).map_err(value_error)?,
        })
    }

    /// Forecasts the rolling window keeps.
    #[getter]
    fn window(&self) -> usize {
        self.inner.window
    }

    /// Forecasts scored so far.
    #[getter]
    fn n(&self) -> u64 {
        self.inner.n
    }

    /// Forecasts in the rolling window now.
    #[getter]
    fn recent_len(&self) -> usize {
        self.inner.recent.len()
    }

    /// Score forecasts in order: ``probs`` flat (``k`` per forecast, class order), the
    /// realized class of each, the index of "up". All or nothing (``ValueError``).
    fn add_batch(
        &mut self,
        probs: Vec<f64>,
        k: usize,
        classes: Vec<usize>,
        up: usize,
    ) -> PyResult<()> {
        self.inner
            .add_batch(&probs, k, &classes, up)
            .map_err(value_error)
    }

    /// The cumulative sums of credit, Brier and log loss, compensated.
    fn cumulative_sums(&self) -> (f64, f64, f64) {
        let t = &self.inner;
        (t.credit.value(), t.brier.value(), t.log_loss.value())
    }

    /// The rolling window's sums of credit, Brier and log loss, compensated.
    fn rolling_sums(&self) -> (f64, f64, f64) {
        let t = &self.inner;
        (t.r_credit.value(), t.r_brier.value(), t.r_log_loss.value())
    }

    /// Per ``prob_up`` bin, forecasts whose outcome was up and was not.
    fn histograms(&self) -> (Vec<u64>, Vec<u64>) {
        (self.inner.hist_up.clone(), self.inner.hist_not.clone())
    }

    /// Per calibration bin: ``(forecasts, sum of prob_up, outcomes up)``.
    fn calibration_bins(&self) -> Vec<(u64, f64, u64)> {
        let t = &self.inner;
        (0..t.cal_n.len())
            .map(|b| (t.cal_n[b], t.cal_p[b].value(), t.cal_up[b]))
            .collect()
    }

    /// The rolling window's ``prob_up`` and outcome-is-up columns, oldest first.
    fn recent_columns<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<bool>>) {
        let recent = &self.inner.recent;
        (
            PyArray1::from_iter(py, recent.iter().map(|r| r.prob_up)),
            PyArray1::from_iter(py, recent.iter().map(|r| r.is_up)),
        )
    }

    /// The state as bytes (:meth:`from_bytes` reads them back).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// A state written by :meth:`to_bytes` (``ValueError`` for anything else).
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(PyScoreTrack {
            inner: ScoreTrack::from_bytes(data).map_err(value_error)?,
        })
    }

    /// Every field: ``(window, n, removals, [credit, brier, log loss] sums, hist_up,
    /// hist_not, cal_n, cal_p sums, cal_up, window rows, [credit, brier, log loss] window
    /// sums)``, each sum as ``(sum, compensation)``.
    fn parts(&self) -> TrackParts {
        let t = &self.inner;
        (
            t.window,
            t.n,
            t.removals,
            [&t.credit, &t.brier, &t.log_loss].map(sum_parts).to_vec(),
            t.hist_up.clone(),
            t.hist_not.clone(),
            t.cal_n.to_vec(),
            t.cal_p.iter().map(sum_parts).collect(),
            t.cal_up.to_vec(),
            t.recent
                .iter()
                .map(|r| (r.credit, r.brier, r.log_loss, r.prob_up, r.is_up))
                .collect(),
            [&t.r_credit, &t.r_brier, &t.r_log_loss]
                .map(sum_parts)
                .to_vec(),
        )
    }

    /// A track from the fields :meth:`parts` gives (``ValueError`` when they do not fit).
    #[staticmethod]
    fn from_parts(parts: TrackParts) -> PyResult<Self> {
        let (window, n, removals, cum, hist_up, hist_not, cal_n, cal_p, cal_up, recent, rolling) =
            parts;
        let [credit, brier, log_loss] = sums::<3>(&cum, "cumulative sums")?;
        let [r_credit, r_brier, r_log_loss] = sums::<3>(&rolling, "rolling sums")?;
        let inner = ScoreTrack {
            window,
            n,
            credit,
            brier,
            log_loss,
            hist_up,
            hist_not,
            cal_n: counts(cal_n, "cal_n")?,
            cal_p: sums(&cal_p, "cal_p")?,
            cal_up: counts(cal_up, "cal_up")?,
            recent: recent
                .into_iter()
                .map(|(credit, brier, log_loss, prob_up, is_up)| Scored {
                    credit,
                    brier,
                    log_loss,
                    prob_up,
                    is_up,
                })
                .collect::<VecDeque<_>>(),
            r_credit,
            r_brier,
            r_log_loss,
            removals,
        };
        inner.validate().map_err(value_error)?;
        Ok(PyScoreTrack { inner })
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(score_linear, m)?)?;
    m.add_function(wrap_pyfunction!(score_heuristic, m)?)?;
    m.add_function(wrap_pyfunction!(publishable_rows, m)?)?;
    m.add_class::<PyScoreTrack>()?;
    rows::register(m)?;
    Ok(())
}
