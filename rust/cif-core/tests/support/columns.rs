// Owned event columns and a deterministic generator, shared (with `include!`) by the feature
// unit tests, the exactness test and the criterion bench. The includer brings
// `DepthColumns` and `EventColumns` into scope.

/// xorshift64*: deterministic, no dependency.
#[allow(dead_code)]
struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability p.
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// 10^u with u uniform in [lo, hi).
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        10f64.powf(lo + (hi - lo) * self.unit())
    }
}

/// An event log as owned columns; `view` lends them to the engine. Trade rows carry NaN
/// book columns and depth; book rows' depth is padded with zeros to `levels`.
#[allow(dead_code)]
struct OwnedColumns {
    kind: Vec<u8>,
    seq: Vec<i64>,
    ts: Vec<i64>,
    recv: Vec<i64>,
    price: Vec<f64>,
    qty: Vec<f64>,
    side: Vec<i8>,
    bp: Vec<f64>,
    bq: Vec<f64>,
    ap: Vec<f64>,
    aq: Vec<f64>,
    levels: usize,
    bd: Vec<f64>,
    ad: Vec<f64>,
}

#[allow(dead_code)]
impl OwnedColumns {
    fn with_levels(levels: usize) -> Self {
        OwnedColumns {
            kind: vec![],
            seq: vec![],
            ts: vec![],
            recv: vec![],
            price: vec![],
            qty: vec![],
            side: vec![],
            bp: vec![],
            bq: vec![],
            ap: vec![],
            aq: vec![],
            levels,
            bd: vec![],
            ad: vec![],
        }
    }

    fn push_trade(&mut self, seq: i64, ts: i64, recv: i64, price: f64, qty: f64, side: i8) {
        self.kind.push(0);
        self.seq.push(seq);
        self.ts.push(ts);
        self.recv.push(recv);
        self.price.push(price);
        self.qty.push(qty);
        self.side.push(side);
        for v in [&mut self.bp, &mut self.bq, &mut self.ap, &mut self.aq] {
            v.push(f64::NAN);
        }
        self.bd.extend(std::iter::repeat_n(f64::NAN, self.levels));
        self.ad.extend(std::iter::repeat_n(f64::NAN, self.levels));
    }

    /// A book event: `l1` = (bid price, bid size, ask price, ask size), then the sizes of
    /// the top levels of each side (at most `levels` each).
    fn push_book(&mut self, seq: i64, ts: i64, recv: i64, l1: [f64; 4], bd: &[f64], ad: &[f64]) {
        self.kind.push(1);
        self.seq.push(seq);
        self.ts.push(ts);
        self.recv.push(recv);
        self.price.push(f64::NAN);
        self.qty.push(f64::NAN);
        self.side.push(0);
        self.bp.push(l1[0]);
        self.bq.push(l1[1]);
        self.ap.push(l1[2]);
        self.aq.push(l1[3]);
        for (dst, src) in [(&mut self.bd, bd), (&mut self.ad, ad)] {
            dst.extend_from_slice(src);
            dst.extend(std::iter::repeat_n(0.0, self.levels - src.len()));
        }
    }

    /// All columns as they are (lengths unchecked: the engine validates them).
    fn view(&self) -> EventColumns<'_> {
        EventColumns {
            kind: &self.kind,
            seq: &self.seq,
            ts: &self.ts,
            recv_ts_ns: &self.recv,
            price: &self.price,
            qty: &self.qty,
            side: &self.side,
            bid_price: &self.bp,
            bid_qty: &self.bq,
            ask_price: &self.ap,
            ask_qty: &self.aq,
            bid_depth: Some(DepthColumns {
                values: &self.bd,
                levels: self.levels,
            }),
            ask_depth: Some(DepthColumns {
                values: &self.ad,
                levels: self.levels,
            }),
        }
    }

    /// Rows `start..end` only.
    fn view_range(&self, start: usize, end: usize) -> EventColumns<'_> {
        let (lo, hi) = (start * self.levels, end * self.levels);
        EventColumns {
            kind: &self.kind[start..end],
            seq: &self.seq[start..end],
            ts: &self.ts[start..end],
            recv_ts_ns: &self.recv[start..end],
            price: &self.price[start..end],
            qty: &self.qty[start..end],
            side: &self.side[start..end],
            bid_price: &self.bp[start..end],
            bid_qty: &self.bq[start..end],
            ask_price: &self.ap[start..end],
            ask_qty: &self.aq[start..end],
            bid_depth: Some(DepthColumns {
                values: &self.bd[lo..hi],
                levels: self.levels,
            }),
            ask_depth: Some(DepthColumns {
                values: &self.ad[lo..hi],
                levels: self.levels,
            }),
        }
    }
}
