//! The running metrics of one predictor's scored forecasts: the live evaluator's hot loop.
//!
//! A [`ScoreTrack`] takes forecasts (class probabilities) with the class that was then
//! realized, in order, and keeps what the evaluation reports: cumulative compensated sums of
//! the accuracy credit, the Brier score and the log loss, histograms of `prob_up` per outcome
//! (for the cumulative AUC), a calibration table, and the same sums over a rolling window of
//! the last `window` forecasts. The definitions are those of `cif.forecast.evaluation`
//! (a tie at the top earns `1/(number tied)`; Brier summed over classes; log loss of the
//! probability clipped to `[1e-15, 1]`), and every value is computed with the same
//! floating-point operations in the same order as that module's Python reference, so a
//! state continues bit for bit whichever implementation built it.

use std::collections::VecDeque;

use super::ScoreError;
use crate::features::rolling::two_sum;

/// Bins of the `prob_up` histograms behind the cumulative AUC.
pub const AUC_BINS: usize = 1000;
/// Equal-width bins of the calibration table.
pub const CALIBRATION_BINS: usize = 10;
/// The log loss clips the outcome's probability from below here.
pub const P_MIN: f64 = 1e-15;
/// The rolling sums are rebuilt from the window after more removals than this (or than the
/// window holds), which bounds their drift.
pub const MIN_REBUILD: usize = 64;

/// A Neumaier-compensated running sum: `s` the sum, `c` the compensation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompensatedSum {
    /// The running sum.
    pub s: f64,
    /// The rounding error collected so far.
    pub c: f64,
}

impl CompensatedSum {
    /// Add `x`. The rounding error is TwoSum's, which is bit for bit the error of
    /// Neumaier's branch (`(s - t) + x` or `(x - t) + s`) that the Python code takes.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let (t, err) = two_sum(self.s, x);
        self.s = t;
        self.c += err;
    }

    /// The compensated total.
    pub fn value(&self) -> f64 {
        self.s + self.c
    }
}

/// One scored forecast as the rolling window keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Accuracy credit: `1/(number of classes tied at the top)` if the outcome is one, else 0.
    pub credit: f64,
    /// Brier score (summed over classes).
    pub brier: f64,
    /// Log loss of the outcome's clipped probability.
    pub log_loss: f64,
    /// The forecast's probability of "up".
    pub prob_up: f64,
    /// Whether the outcome was "up".
    pub is_up: bool,
}

/// The metrics of one predictor (a model, or the base rate), see the module doc. Every
/// field is public so a state can be taken apart and put back (checkpoints); put one back
/// through [`ScoreTrack::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTrack {
    /// Forecasts the rolling window keeps (≥ 1).
    pub window: usize,
    /// Forecasts scored so far.
    pub n: u64,
    /// Cumulative sum of the accuracy credit.
    pub credit: CompensatedSum,
    /// Cumulative sum of the Brier score.
    pub brier: CompensatedSum,
    /// Cumulative sum of the log loss.
    pub log_loss: CompensatedSum,
    /// Per `prob_up` bin: forecasts whose outcome was up ([`AUC_BINS`] bins).
    pub hist_up: Vec<u64>,
    /// Per `prob_up` bin: forecasts whose outcome was not up.
    pub hist_not: Vec<u64>,
    /// Per calibration bin: forecasts.
    pub cal_n: [u64; CALIBRATION_BINS],
    /// Per calibration bin: the sum of `prob_up`.
    pub cal_p: [CompensatedSum; CALIBRATION_BINS],
    /// Per calibration bin: forecasts whose outcome was up.
    pub cal_up: [u64; CALIBRATION_BINS],
    /// The last `window` scored forecasts, oldest first.
    pub recent: VecDeque<Scored>,
    /// Sum of the window's accuracy credit.
    pub r_credit: CompensatedSum,
    /// Sum of the window's Brier score.
    pub r_brier: CompensatedSum,
    /// Sum of the window's log loss.
    pub r_log_loss: CompensatedSum,
    /// Forecasts that left the window since its sums were last rebuilt.
    pub removals: u64,
}

impl ScoreTrack {
    /// An empty track with a rolling window of `window` forecasts.
    pub fn new(window: usize) -> Result<Self, ScoreError> {
        let track = ScoreTrack {
            window,
            n: 0,
            credit: CompensatedSum::default(),
            brier: CompensatedSum::default(),
            log_loss: CompensatedSum::default(),
            hist_up: vec![0; AUC_BINS],
            hist_not: vec![0; AUC_BINS],
            cal_n: [0; CALIBRATION_BINS],
            cal_p: [CompensatedSum::default(); CALIBRATION_BINS],
            cal_up: [0; CALIBRATION_BINS],
            recent: VecDeque::with_capacity(window.min(1 << 16) + 1),
            r_credit: CompensatedSum::default(),
            r_brier: CompensatedSum::default(),
            r_log_loss: CompensatedSum::default(),
            removals: 0,
        };
        track.validate()?;
        Ok(track)
    }

    /// Whether the parts fit together (a state put back from a checkpoint).
    pub fn validate(&self) -> Result<(), ScoreError> {
        if self.window < 1 {
            return Err(ScoreError::Shape(format!(
                "window must be >= 1, got {}",
                self.window
            )));
        }
        if self.hist_up.len() != AUC_BINS || self.hist_not.len() != AUC_BINS {
            return Err(ScoreError::Shape(format!(
                "the AUC histograms need {AUC_BINS} bins, got {} and {}",
                self.hist_up.len(),
                self.hist_not.len()
            )));
        }
        if self.recent.len() > self.window {
            return Err(ScoreError::Shape(format!(
                "the rolling window holds {} forecasts, more than its size {}",
                self.recent.len(),
                self.window
            )));
        }
        Ok(())
    }

    /// Score forecasts in order: row `i` is `probs[i*k..(i+1)*k]` (class order), realized
    /// class `classes[i]`; `up` is the index of the "up" class. The probabilities are
    /// taken as given (the evaluator checks them). All or nothing: a shape error changes
    /// nothing.
    pub fn add_batch(
        &mut self,
        probs: &[f64],
        k: usize,
        classes: &[usize],
        up: usize,
    ) -> Result<(), ScoreError> {
        if k < 2 || up >= k {
            return Err(ScoreError::Shape(format!(
                "need k >= 2 and up < k, got k={k}, up={up}"
            )));
        }
        if probs.len() != classes.len() * k {
            return Err(ScoreError::Shape(format!(
                "{} probabilities for {} forecasts of {k} classes",
                probs.len(),
                classes.len()
            )));
        }
        if let Some(&c) = classes.iter().find(|&&c| c >= k) {
            return Err(ScoreError::Shape(format!("class {c} of {k} classes")));
        }
        for (row, &c) in probs.chunks_exact(k).zip(classes) {
            self.add(row, c, up);
        }
        Ok(())
    }

    fn add(&mut self, probs: &[f64], c: usize, up: usize) {
        let mut top = probs[0];
        for &q in &probs[1..] {
            if q > top {
                top = q;
            }
        }
        let p_c = probs[c];
        let credit = if p_c == top {
            1.0 / probs.iter().filter(|&&q| q == top).count() as f64
        } else {
            0.0
        };
        let mut brier = 0.0;
        for (i, &q) in probs.iter().enumerate() {
            let d = q - if i == c { 1.0 } else { 0.0 };
            brier += d * d;
        }
        let log_loss = -p_c.clamp(P_MIN, 1.0).ln();
        let prob_up = probs[up];
        let is_up = c == up;
        self.n += 1;
        self.credit.add(credit);
        self.brier.add(brier);
        self.log_loss.add(log_loss);
        // the bins of `min(int(p * bins), bins - 1)` (p in [0, 1]; `as` truncates)
        let h = ((prob_up * AUC_BINS as f64) as usize).min(AUC_BINS - 1);
        let b = ((prob_up * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
        self.cal_n[b] += 1;
        self.cal_p[b].add(prob_up);
        if is_up {
            self.hist_up[h] += 1;
            self.cal_up[b] += 1;
        } else {
            self.hist_not[h] += 1;
        }
        self.recent.push_back(Scored {
            credit,
            brier,
            log_loss,
            prob_up,
            is_up,
        });
        self.r_credit.add(credit);
        self.r_brier.add(brier);
        self.r_log_loss.add(log_loss);
        if self.recent.len() > self.window {
            if let Some(old) = self.recent.pop_front() {
                self.r_credit.add(-old.credit);
                self.r_brier.add(-old.brier);
                self.r_log_loss.add(-old.log_loss);
            }
            self.removals += 1;
            if self.removals > self.recent.len().max(MIN_REBUILD) as u64 {
                self.rebuild_rolling();
            }
        }
    }

    /// The rolling sums again from the window alone, oldest first.
    fn rebuild_rolling(&mut self) {
        self.r_credit = CompensatedSum::default();
        self.r_brier = CompensatedSum::default();
        self.r_log_loss = CompensatedSum::default();
        for r in &self.recent {
            self.r_credit.add(r.credit);
            self.r_brier.add(r.brier);
            self.r_log_loss.add(r.log_loss);
        }
        self.removals = 0;
    }

    /// The state as bytes ([`ScoreTrack::from_bytes`] reads them back).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 16 * AUC_BINS + 40 * self.recent.len());
        out.extend_from_slice(MAGIC);
        let u = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        u(&mut out, self.window as u64);
        u(&mut out, self.n);
        u(&mut out, self.removals);
        u(&mut out, self.recent.len() as u64);
        let f = |out: &mut Vec<u8>, v: f64| out.extend_from_slice(&v.to_le_bytes());
        for s in [&self.credit, &self.brier, &self.log_loss]
            .into_iter()
            .chain(&self.cal_p)
            .chain([&self.r_credit, &self.r_brier, &self.r_log_loss])
        {
            f(&mut out, s.s);
            f(&mut out, s.c);
        }
        for &v in self
            .hist_up
            .iter()
            .chain(&self.hist_not)
            .chain(&self.cal_n)
            .chain(&self.cal_up)
        {
            u(&mut out, v);
        }
        for r in &self.recent {
            for v in [r.credit, r.brier, r.log_loss, r.prob_up] {
                f(&mut out, v);
            }
            out.push(u8::from(r.is_up));
        }
        out
    }

    /// A state written by [`ScoreTrack::to_bytes`]; an error for anything else.
    pub fn from_bytes(data: &[u8]) -> Result<Self, ScoreError> {
        let bad = |what: &str| ScoreError::Shape(format!("not a score track state: {what}"));
        let rest = data.strip_prefix(MAGIC).ok_or_else(|| bad("no header"))?;
        let mut reader = Reader { data: rest };
        let window = usize::try_from(reader.u64()?).map_err(|_| bad("window"))?;
        let mut track = ScoreTrack::new(window.max(1))?;
        track.window = window;
        track.n = reader.u64()?;
        track.removals = reader.u64()?;
        let n_recent = usize::try_from(reader.u64()?).map_err(|_| bad("window length"))?;
        for s in [&mut track.credit, &mut track.brier, &mut track.log_loss]
            .into_iter()
            .chain(&mut track.cal_p)
            .chain([
                &mut track.r_credit,
                &mut track.r_brier,
                &mut track.r_log_loss,
            ])
        {
            s.s = reader.f64()?;
            s.c = reader.f64()?;
        }
        for v in track
            .hist_up
            .iter_mut()
            .chain(&mut track.hist_not)
            .chain(&mut track.cal_n)
            .chain(&mut track.cal_up)
        {
            *v = reader.u64()?;
        }
        if reader.data.len() != n_recent.saturating_mul(33) {
            return Err(bad("the window's length does not match"));
        }
        track.recent = (0..n_recent)
            .map(|_| {
                Ok(Scored {
                    credit: reader.f64()?,
                    brier: reader.f64()?,
                    log_loss: reader.f64()?,
                    prob_up: reader.f64()?,
                    is_up: reader.byte()? != 0,
                })
            })
            .collect::<Result<_, ScoreError>>()?;
        track.validate()?;
        Ok(track)
    }
}

/// The header of [`ScoreTrack::to_bytes`] (format 1).
const MAGIC: &[u8] = b"cif-score-track\x01";

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], ScoreError> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or_else(|| ScoreError::Shape("not a score track state: cut short".into()))?;
        self.data = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, ScoreError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn f64(&mut self) -> Result<f64, ScoreError> {
        Ok(f64::from_le_bytes(self.take()?))
    }

    fn byte(&mut self) -> Result<u8, ScoreError> {
        Ok(self.take::<1>()?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(track: &mut ScoreTrack, rows: &[([f64; 3], usize)]) {
        let probs: Vec<f64> = rows.iter().flat_map(|(p, _)| *p).collect();
        let classes: Vec<usize> = rows.iter().map(|(_, c)| *c).collect();
        track.add_batch(&probs, 3, &classes, 2).unwrap();
    }

    #[test]
    fn scores_ties_brier_and_the_clipped_log_loss() {
        let mut t = ScoreTrack::new(10).unwrap();
        // a tie of two at the top, the outcome among them; a certain miss (clipped)
        feed(&mut t, &[([0.4, 0.2, 0.4], 2), ([1.0, 0.0, 0.0], 2)]);
        assert_eq!(t.n, 2);
        assert_eq!(t.credit.value(), 0.5);
        let brier0 = 0.4f64 * 0.4 + 0.2 * 0.2 + (0.4 - 1.0) * (0.4 - 1.0);
        assert_eq!(t.brier.value(), brier0 + 2.0);
        assert_eq!(t.log_loss.value(), -(0.4f64.ln()) + -(P_MIN.ln()));
        assert_eq!(t.hist_up[400], 1);
        assert_eq!(t.hist_up[0], 1);
        assert_eq!(t.cal_n[4] + t.cal_n[0], 2);
        assert_eq!(t.cal_up, [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn the_window_keeps_the_last_forecasts_and_its_sums_match_them() {
        let mut t = ScoreTrack::new(3).unwrap();
        for i in 0..200 {
            let p = (i % 7) as f64 / 10.0;
            feed(&mut t, &[([0.9 - p, 0.1, p], i % 3)]);
        }
        assert_eq!(t.recent.len(), 3);
        let credit: f64 = t.recent.iter().map(|r| r.credit).sum();
        assert!((t.r_credit.value() - credit).abs() < 1e-12);
        assert!(t.removals <= MIN_REBUILD as u64);
        assert_eq!(t.n, 200);
        assert_eq!(
            t.hist_up.iter().sum::<u64>() + t.hist_not.iter().sum::<u64>(),
            200
        );
    }

    #[test]
    fn bytes_round_trip_and_bad_bytes_are_refused() {
        let mut t = ScoreTrack::new(5).unwrap();
        feed(
            &mut t,
            &[
                ([0.2, 0.3, 0.5], 0),
                ([0.5, 0.3, 0.2], 2),
                ([0.1, 0.1, 0.8], 2),
            ],
        );
        let bytes = t.to_bytes();
        assert_eq!(ScoreTrack::from_bytes(&bytes).unwrap(), t);
        assert!(ScoreTrack::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(ScoreTrack::from_bytes(b"nonsense").is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ScoreTrack::from_bytes(&longer).is_err());
    }

    #[test]
    fn bad_shapes_change_nothing() {
        let mut t = ScoreTrack::new(5).unwrap();
        let before = t.clone();
        assert!(t.add_batch(&[0.5, 0.5, 0.5], 2, &[0, 1], 1).is_err());
        assert!(t.add_batch(&[0.5, 0.5, 0.5, 0.5], 2, &[0, 2], 1).is_err());
        assert!(t.add_batch(&[0.5, 0.5], 2, &[0], 2).is_err());
        assert_eq!(t, before);
        assert!(ScoreTrack::new(0).is_err());
    }
}
