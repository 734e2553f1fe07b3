//! The latest book event: L1, the features derived from it alone, and the OFI term.

/// Best bid and ask of a book event (a missing side has price NaN and qty 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct L1 {
    /// Bid price.
    pub bp: f64,
    /// Bid size.
    pub bq: f64,
    /// Ask price.
    pub ap: f64,
    /// Ask size.
    pub aq: f64,
}

/// Features of one book event's L1 (NaN where undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct L1Features {
    /// (Pb + Pa)/2.
    pub mid: f64,
    /// Pa - Pb.
    pub spread: f64,
    /// 1e4 * spread / mid.
    pub spread_bps: f64,
    /// (Qb - Qa)/(Qb + Qa).
    pub queue_imbalance: f64,
    /// (Pa*Qb + Pb*Qa)/(Qb + Qa) - mid.
    pub microprice_offset: f64,
}

impl L1Features {
    /// Before any book event: all NaN.
    pub const NONE: L1Features = L1Features {
        mid: f64::NAN,
        spread: f64::NAN,
        spread_bps: f64::NAN,
        queue_imbalance: f64::NAN,
        microprice_offset: f64::NAN,
    };
}

impl L1 {
    /// The mid, NaN if a side is missing.
    #[inline(always)]
    pub fn mid(&self) -> f64 {
        (self.bp + self.ap) / 2.0
    }

    /// The L1 features (a missing side's NaN price propagates to mid, spread, spread_bps;
    /// the microprice is NaN then too).
    #[inline]
    pub fn features(&self) -> L1Features {
        let mid = self.mid();
        let spread = self.ap - self.bp;
        let q = self.bq + self.aq;
        let (queue_imbalance, microprice_offset) = if q == 0.0 {
            (f64::NAN, f64::NAN)
        } else {
            let micro = if self.bp.is_nan() || self.ap.is_nan() {
                f64::NAN
            } else {
                (self.ap * self.bq + self.bp * self.aq) / q - mid
            };
            ((self.bq - self.aq) / q, micro)
        };
        L1Features {
            mid,
            spread,
            spread_bps: 1e4 * spread / mid,
            queue_imbalance,
            microprice_offset,
        }
    }

    /// OFI term e_n of this event relative to the previous one (Cont, Kukanov & Stoikov);
    /// comparisons with a NaN (missing) price are false.
    #[inline]
    pub fn ofi_since(&self, prev: &L1) -> f64 {
        let pick = |cond: bool, q: f64| if cond { q } else { 0.0 };
        pick(self.bp >= prev.bp, self.bq)
            - pick(self.bp <= prev.bp, prev.bq)
            - pick(self.ap <= prev.ap, self.aq)
            + pick(self.ap >= prev.ap, prev.aq)
    }
}

/// `depth_imbalance_top<k>` for every depth level: `(bid - ask)/(bid + ask)` of the sizes of
/// levels 1..min(k, L) of each side, summed from level 1 on; NaN without depth (both sides
/// empty) or with a zero total. `levels` holds `(k, slot in out)` by increasing k, so one
/// running sum per side serves every k.
#[inline]
pub(crate) fn depth_imbalance(
    bid: &[f64],
    ask: &[f64],
    levels: &[(usize, usize)],
    out: &mut [f64],
) {
    if bid.is_empty() && ask.is_empty() {
        for &(_, slot) in levels {
            out[slot] = f64::NAN;
        }
        return;
    }
    let (mut b, mut a) = (0.0, 0.0);
    let (mut nb, mut na) = (0, 0);
    for &(k, slot) in levels {
        // k increases, so the prefix only grows.
        let (mb, ma) = (k.min(bid.len()), k.min(ask.len()));
        for &q in &bid[nb..mb] {
            b += q;
        }
        for &q in &ask[na..ma] {
            a += q;
        }
        (nb, na) = (mb, ma);
        let total = b + a;
        out[slot] = if total == 0.0 {
            f64::NAN
        } else {
            (b - a) / total
        };
    }
}
