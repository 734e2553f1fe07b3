//! The seed's heuristic: an order-flow-imbalance threshold turned into a probability.

use super::ScoreError;

/// `|x| ≤ threshold` (or `x` undefined) ⇒ no view, (0.5, 0.5); beyond it the probability
/// of an up move rises (falls) with the excess, saturating at `max_prob` (`1 − max_prob`):
/// `p_up = 0.5 + (max_prob − 0.5) · tanh((x − sign(x)·threshold) / scale)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heuristic {
    threshold: f64,
    scale: f64,
    max_prob: f64,
}

impl Heuristic {
    /// Checks and builds the rule: `threshold ≥ 0`, `scale > 0`, `0.5 ≤ max_prob ≤ 1`.
    pub fn new(threshold: f64, scale: f64, max_prob: f64) -> Result<Self, ScoreError> {
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(ScoreError::InvalidModel(format!(
                "threshold must be finite and >= 0, got {threshold}"
            )));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(ScoreError::InvalidModel(format!(
                "scale must be finite and > 0, got {scale}"
            )));
        }
        if !(0.5..=1.0).contains(&max_prob) {
            return Err(ScoreError::InvalidModel(format!(
                "max_prob must be in [0.5, 1], got {max_prob}"
            )));
        }
        Ok(Heuristic {
            threshold,
            scale,
            max_prob,
        })
    }

    /// The probability of an up move for one feature value.
    pub fn prob_up(&self, x: f64) -> f64 {
        if !x.is_finite() || x.abs() <= self.threshold {
            return 0.5;
        }
        let excess = x - x.signum() * self.threshold;
        0.5 + (self.max_prob - 0.5) * (excess / self.scale).tanh()
    }

    /// Scores values into row-major `(p_down, p_up)` pairs.
    pub fn score(&self, x: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(2 * x.len());
        for &v in x {
            let up = self.prob_up(v);
            out.push(1.0 - up);
            out.push(up);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_view_inside_the_threshold_and_monotone_outside() {
        let h = Heuristic::new(2.0, 4.0, 0.8).unwrap();
        assert_eq!(h.prob_up(1.5), 0.5);
        assert_eq!(h.prob_up(-2.0), 0.5);
        assert_eq!(h.prob_up(f64::NAN), 0.5);
        let ups: Vec<f64> = [2.5, 4.0, 10.0, 1e9]
            .iter()
            .map(|&x| h.prob_up(x))
            .collect();
        assert!(ups.windows(2).all(|w| w[0] < w[1] || w[1] == 0.8));
        assert!((h.prob_up(1e9) - 0.8).abs() < 1e-12);
        assert!((h.prob_up(-6.0) - (0.5 - 0.3 * 1f64.tanh())).abs() < 1e-15);
        let p = h.score(&[6.0]);
        assert_eq!(p[0] + p[1], 1.0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Heuristic::new(-1.0, 1.0, 0.7).is_err());
        assert!(Heuristic::new(0.0, 0.0, 0.7).is_err());
        assert!(Heuristic::new(0.0, 1.0, 1.5).is_err());
        assert!(Heuristic::new(f64::NAN, 1.0, 0.7).is_err());
    }
}
