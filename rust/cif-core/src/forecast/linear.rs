//! Multinomial logistic regression on standardized features.

use super::ScoreError;

/// A softmax-linear model: `p = softmax(W · z + b)` with `z = (x − mean) / scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// Row-major K × F coefficients.
    coef: Vec<f64>,
    intercept: Vec<f64>,
}

impl LinearModel {
    /// Checks and builds a model: `coef` is row-major `intercept.len()` × `mean.len()`,
    /// at least 2 classes and 1 feature, every value finite, every scale > 0.
    pub fn new(
        mean: Vec<f64>,
        scale: Vec<f64>,
        coef: Vec<f64>,
        intercept: Vec<f64>,
    ) -> Result<Self, ScoreError> {
        let (f, k) = (mean.len(), intercept.len());
        if f == 0 {
            return Err(ScoreError::InvalidModel("no features".into()));
        }
        if k < 2 {
            return Err(ScoreError::InvalidModel(format!(
                "needs at least 2 classes, got {k}"
            )));
        }
        if scale.len() != f {
            return Err(ScoreError::InvalidModel(format!(
                "scale has {} values for {f} features",
                scale.len()
            )));
        }
        if coef.len() != k * f {
            return Err(ScoreError::InvalidModel(format!(
                "coef has {} values, expected {k} classes x {f} features",
                coef.len()
            )));
        }
        let all = mean.iter().chain(&scale).chain(&coef).chain(&intercept);
        if all.clone().any(|v| !v.is_finite()) {
            return Err(ScoreError::InvalidModel("a parameter is not finite".into()));
        }
        if let Some(i) = scale.iter().position(|s| *s <= 0.0) {
            return Err(ScoreError::InvalidModel(format!(
                "scale of feature {i} is {} (must be > 0)",
                scale[i]
            )));
        }
        Ok(LinearModel {
            mean,
            scale,
            coef,
            intercept,
        })
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.intercept.len()
    }

    /// Scores one row (`x.len() == n_features`) into `out` (`n_classes` probabilities).
    pub fn score_row(&self, x: &[f64], z: &mut [f64], out: &mut [f64]) {
        for (j, zj) in z.iter_mut().enumerate() {
            let v = (x[j] - self.mean[j]) / self.scale[j];
            *zj = if v.is_finite() { v } else { 0.0 };
        }
        let f = self.n_features();
        let mut max = f64::NEG_INFINITY;
        for (c, o) in out.iter_mut().enumerate() {
            let w = &self.coef[c * f..(c + 1) * f];
            let mut logit = self.intercept[c];
            for (wj, zj) in w.iter().zip(z.iter()) {
                logit += wj * zj;
            }
            *o = logit;
            max = max.max(logit);
        }
        // Subtracting the largest logit keeps exp() finite for any input.
        let mut total = 0.0;
        for o in out.iter_mut() {
            *o = (*o - max).exp();
            total += *o;
        }
        for o in out.iter_mut() {
            *o /= total;
        }
    }

    /// Scores `n` rows of a row-major `n × n_features` matrix into a row-major `n × n_classes`.
    pub fn score(&self, x: &[f64]) -> Result<Vec<f64>, ScoreError> {
        let f = self.n_features();
        if x.len() % f != 0 {
            return Err(ScoreError::Shape(format!(
                "{} values is not a whole number of rows of {f} features",
                x.len()
            )));
        }
        let k = self.n_classes();
        let n = x.len() / f;
        let mut out = vec![0.0; n * k];
        let mut z = vec![0.0; f];
        for (row, o) in x.chunks_exact(f).zip(out.chunks_exact_mut(k)) {
            self.score_row(row, &mut z, o);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> LinearModel {
        LinearModel::new(
            vec![1.0, -2.0],
            vec![2.0, 0.5],
            vec![0.5, -1.0, 0.0, 0.0, -0.5, 1.0],
            vec![0.1, 0.0, -0.1],
        )
        .unwrap()
    }

    #[test]
    fn probabilities_are_a_softmax_of_standardized_logits() {
        let m = model();
        let p = m.score(&[3.0, -1.0]).unwrap();
        // z = (1, 2): logits 0.1 + 0.5 - 2 = -1.4, 0, -0.1 - 0.5 + 2 = 1.4
        let e = [(-1.4f64).exp(), 1.0, 1.4f64.exp()];
        let s: f64 = e.iter().sum();
        for (got, want) in p.iter().zip(e.iter().map(|v| v / s)) {
            assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        }
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn undefined_features_count_as_the_training_mean() {
        let m = model();
        let nan = m.score(&[f64::NAN, f64::INFINITY]).unwrap();
        let mean = m.score(&[1.0, -2.0]).unwrap();
        assert_eq!(nan, mean);
    }

    #[test]
    fn huge_inputs_stay_finite() {
        let m = model();
        let p = m.score(&[1e300, -1e300]).unwrap();
        assert!(p.iter().all(|v| v.is_finite()));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn inconsistent_models_and_inputs_are_refused() {
        assert!(LinearModel::new(vec![0.0], vec![1.0], vec![1.0], vec![0.0]).is_err());
        assert!(LinearModel::new(vec![0.0], vec![0.0], vec![1.0, 1.0], vec![0.0, 0.0]).is_err());
        assert!(LinearModel::new(vec![0.0], vec![1.0], vec![1.0], vec![0.0, 0.0]).is_err());
        assert!(
            LinearModel::new(vec![f64::NAN], vec![1.0], vec![1.0, 1.0], vec![0.0, 0.0]).is_err()
        );
        assert!(model().score(&[1.0, 2.0, 3.0]).is_err());
    }
}
