//! Neumaier-compensated sums that also remove terms: the rolling sums of every window.

/// `a + b` rounded, and its exact rounding error (Knuth's TwoSum, branch-free).
///
/// The error equals Neumaier's `(a - s) + b` / `(b - s) + a` (whichever operand is larger
/// in magnitude comes first): both are the exact error of the rounded sum.
#[inline(always)]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (s, err)
}

/// `N` compensated running sums updated together, each holding the non-zero terms added to
/// it and not yet removed.
///
/// Each sum is Neumaier's compensated summation: a running sum `s` plus the running sum `c`
/// of the exact rounding errors, read as `s + c`. Removing a term adds its negation. A sum
/// whose last non-zero term leaves resets to exactly 0 (in particular when its window
/// empties), so a window of zeros reads exactly 0 rather than a rounding residue. Zero
/// terms do not change a sum, so updating all `N` sums with a vector of terms (zeros where a
/// sum is not concerned) runs without data-dependent branches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollingSums<const N: usize> {
    s: [f64; N],
    c: [f64; N],
    nonzero: [u64; N],
}

impl<const N: usize> Default for RollingSums<N> {
    fn default() -> Self {
        RollingSums {
            s: [0.0; N],
            c: [0.0; N],
            nonzero: [0; N],
        }
    }
}

impl<const N: usize> RollingSums<N> {
    /// Sums restored from their parts: `(s, c)` per sum, and how many non-zero terms each
    /// holds.
    pub(crate) fn from_parts(parts: [(f64, f64); N], nonzero: [u64; N]) -> Self {
        RollingSums {
            s: parts.map(|p| p.0),
            c: parts.map(|p| p.1),
            nonzero,
        }
    }

    /// The running sum and compensation of each sum, bit for bit.
    pub(crate) fn parts(&self) -> [(f64, f64); N] {
        std::array::from_fn(|i| (self.s[i], self.c[i]))
    }

    /// Add one term to each sum.
    #[inline(always)]
    pub fn add(&mut self, x: &[f64; N]) {
        // Straight-line array code (no data-dependent branches) so it vectorizes.
        for (n, &xi) in self.nonzero.iter_mut().zip(x) {
            *n += u64::from(xi != 0.0);
        }
        for ((s, c), &xi) in self.s.iter_mut().zip(&mut self.c).zip(x) {
            let (sum, err) = two_sum(*s, xi);
            *s = sum;
            *c += err;
        }
    }

    /// Remove from each sum a term previously added to it.
    #[inline(always)]
    pub fn remove(&mut self, x: &[f64; N]) {
        for (n, &xi) in self.nonzero.iter_mut().zip(x) {
            *n -= u64::from(xi != 0.0);
        }
        let sums = self.s.iter_mut().zip(&mut self.c);
        for (((s, c), &n), &xi) in sums.zip(&self.nonzero).zip(x) {
            let (sum, err) = two_sum(*s, -xi);
            // Exactly +0.0 once no non-zero term is left.
            let keep = 0u64.wrapping_sub(u64::from(n != 0));
            *s = f64::from_bits(sum.to_bits() & keep);
            *c = f64::from_bits((*c + err).to_bits() & keep);
        }
    }

    /// The compensated value `s + c` of sum `i`.
    #[inline(always)]
    pub fn value(&self, i: usize) -> f64 {
        self.s[i] + self.c[i]
    }

    /// How many non-zero terms sum `i` holds.
    pub fn nonzero(&self, i: usize) -> u64 {
        self.nonzero[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_sum_error_is_exact_and_matches_neumaier() {
        for (a, b) in [
            (1e16, 1.0),
            (1.0, 1e16),
            (0.1, 0.2),
            (-3.5, 1e-20),
            (5.0, -5.0),
        ] {
            let (s, e) = two_sum(a, b);
            let neumaier = if f64::abs(a) >= f64::abs(b) {
                (a - s) + b
            } else {
                (b - s) + a
            };
            assert_eq!(e.to_bits(), neumaier.to_bits(), "{a} + {b}");
        }
    }

    #[test]
    fn compensation_recovers_small_terms() {
        let mut s = RollingSums::<1>::default();
        s.add(&[1e16]);
        for _ in 0..10 {
            s.add(&[1.0]);
        }
        s.remove(&[1e16]);
        assert_eq!(s.value(0), 10.0);
    }

    #[test]
    fn last_nonzero_removal_resets_exactly() {
        let mut s = RollingSums::<2>::default();
        s.add(&[0.1, 0.0]);
        s.add(&[0.0, 0.0]);
        s.add(&[0.2, 1.0]);
        s.remove(&[0.1, 0.0]);
        s.remove(&[0.2, 1.0]);
        assert_eq!(s.parts(), [(0.0, 0.0), (0.0, 0.0)]);
        assert_eq!(s.nonzero(0), 0);
        assert_eq!(s.value(0).to_bits(), 0.0f64.to_bits());
    }
}
