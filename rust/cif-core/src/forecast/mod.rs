//! Forecast scoring: turning feature vectors into class probabilities.
//!
//! Two model families, both pure functions of their inputs (no state, no clock):
//!
//! - [`LinearModel`]: multinomial logistic regression (softmax over K ≥ 2 classes) on
//!   standardized features, the form `cif train` fits. A non-finite standardized value is
//!   replaced by 0, i.e. by the training mean, so a feature that is undefined at some row
//!   (an empty window) neither poisons the row nor moves it.
//! - [`Heuristic`]: the seed's order-flow-imbalance threshold rule on one feature.
//!
//! [`ScoreTrack`] is the other direction: the running metrics of forecasts once their
//! outcome is known (the live evaluator's hot loop).
//!
//! Rows are scored independently and in order; every row uses one fixed summation order,
//! so scores are bit-identical wherever they are computed.

mod heuristic;
mod linear;
mod score_track;

pub use heuristic::Heuristic;
pub use linear::LinearModel;
pub use score_track::{
    CompensatedSum, ScoreTrack, Scored, AUC_BINS, CALIBRATION_BINS, MIN_REBUILD, P_MIN,
};

use std::fmt;

/// Whether each row of `probs` (row-major, `k` per row) is a publishable forecast: every
/// probability finite and in `[0, 1]`, and their sum (in column order) within `tol` of 1.
/// (A model's rows that fail this get no forecast, live and in replay alike.)
pub fn publishable_rows(probs: &[f64], k: usize, tol: f64) -> Vec<bool> {
    if k == 0 {
        return Vec::new();
    }
    probs
        .chunks_exact(k)
        .map(|row| {
            row.iter().all(|p| (0.0..=1.0).contains(p))
                && (row.iter().sum::<f64>() - 1.0).abs() <= tol
        })
        .collect()
}

/// Why a model or an input was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreError {
    /// The model's parameters are inconsistent or not finite.
    InvalidModel(String),
    /// The input has the wrong shape.
    Shape(String),
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScoreError::InvalidModel(m) => write!(f, "invalid model: {m}"),
            ScoreError::Shape(m) => write!(f, "wrong input shape: {m}"),
        }
    }
}

impl std::error::Error for ScoreError {}

#[cfg(test)]
mod publishable_tests {
    use super::publishable_rows;

    #[test]
    fn a_row_is_publishable_when_finite_in_range_and_summing_to_one() {
        let rows = [
            0.25,
            0.75, // good
            0.5,
            0.5000001, // sums to more than 1
            f64::NAN,
            1.0, // not finite
            -0.0,
            1.0, // -0 is in range
            -1e-300,
            1.0, // below 0
            1.0 + f64::EPSILON,
            0.0, // above 1
        ];
        assert_eq!(
            publishable_rows(&rows, 2, 1e-12),
            vec![true, false, false, true, false, false]
        );
        assert!(publishable_rows(&[], 3, 1e-12).is_empty());
        assert!(publishable_rows(&[1.0], 0, 1e-12).is_empty());
    }
}
