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
