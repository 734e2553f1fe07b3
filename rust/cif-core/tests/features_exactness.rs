//! Exactness of the rolling windows over a long generated log: at many checkpoints every
//! feature of the engine matches a from-scratch recomputation over the window contents.
//!
//! 1,000,000 events (trades and book events with changing L1 and depth, prices and sizes
//! over many orders of magnitude, zero sizes, missing sides, crossed quotes, clock
//! regressions and gaps that empty the windows) go through the batch path in chunks; every
//! 997th row and the last row are checked: relative error <= 1e-12, or for signed sums an
//! absolute error <= 1e-12 * the sum of the absolute terms.

use cif_core::features::{EventLogColumns, FeatureConfig, FeatureEngine};

const N_EVENTS: usize = 1_000_000;
const CHUNK: usize = 20_000;
const CHECK_EVERY: usize = 997;
const TOL: f64 = 1e-12;

include!("support/columns.rs");

const LEVELS: usize = 12;

/// The generated events, columnar.
type Events = EventLogColumns;

fn generate(n: usize) -> Events {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut ev = EventLogColumns::new(LEVELS);
    let mut ts = 1_700_000_000_000i64;
    let mut seq = 1i64;
    let mut scale = 100.0f64;
    let mut mid = scale;
    for i in 0..n {
        seq += 1 + (rng.next() % 3) as i64;
        if rng.chance(1.0 / 4000.0) {
            ts += 30_000 + (rng.next() % 150_000) as i64; // gap: windows empty
        } else if rng.chance(0.02) {
            ts -= (rng.next() % 200) as i64; // behind the clock
        } else {
            ts += (rng.next() % 31) as i64;
        }
        if i % 50_000 == 0 {
            scale = rng.log_uniform(-3.0, 5.0);
            mid = scale;
        }
        let step = if rng.chance(0.01) { 1e-2 } else { 1e-4 };
        mid *= 1.0 + step * (rng.unit() - 0.5);
        if rng.chance(0.5) {
            let price = mid * (1.0 + 1e-4 * (rng.unit() - 0.5));
            let qty = if rng.chance(0.02) {
                0.0
            } else {
                rng.log_uniform(-6.0, 4.0)
            };
            let side = if rng.chance(0.5) { 1 } else { -1 };
            ev.push_trade(seq, ts, i as i64, price, qty, side);
        } else {
            let half = mid * rng.log_uniform(-5.0, -2.0);
            let (mut bp, mut ap) = (mid - half, mid + half);
            if rng.chance(0.01) {
                std::mem::swap(&mut bp, &mut ap); // crossed
            }
            let size = |rng: &mut Rng| {
                if rng.chance(0.02) {
                    0.0
                } else {
                    rng.log_uniform(-4.0, 4.0)
                }
            };
            let (mut bq, mut aq) = (size(&mut rng), size(&mut rng));
            if rng.chance(0.01) {
                bp = f64::NAN;
                bq = 0.0;
            }
            if rng.chance(0.01) {
                ap = f64::NAN;
                aq = 0.0;
            }
            let levels = (rng.next() % (LEVELS as u64 + 1)) as usize;
            let bd: Vec<f64> = (0..levels).map(|_| size(&mut rng)).collect();
            let ad: Vec<f64> = (0..levels).map(|_| size(&mut rng)).collect();
            ev.push_book(seq, ts, i as i64, [bp, bq, ap, aq], &bd, &ad);
        }
    }
    ev
}

/// One event's contribution, computed independently of the engine.
#[derive(Clone, Copy)]
struct Contrib {
    stamp: i64,
    k: u64,
    trade: bool,
    buy: bool,
    qty: f64,
    pq: f64,
    e: f64,
    d: f64,
    r2: f64,
}

/// Accurate sum (compensated, from scratch) and the sum of absolute values.
#[derive(Default, Clone, Copy)]
struct Acc {
    s: f64,
    c: f64,
    abs: f64,
}

impl Acc {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
        self.abs += x.abs();
    }
    fn value(&self) -> f64 {
        self.s + self.c
    }
}

/// The reference model: state needed to produce contributions and the global features.
struct Reference {
    clock: Option<i64>,
    trades: u64,
    last_price: f64,
    book: Option<[f64; 4]>,
    depth: Vec<f64>,
    last_mid: f64,
    v: f64,
    t_v: i64,
    contribs: Vec<Contrib>,
}

const DEPTH_LEVELS: [usize; 3] = [1, 5, 10];
const HALF_LIFE: f64 = 7_000.0;

impl Reference {
    fn push(&mut self, ev: &Events, i: usize) {
        let t = match self.clock {
            Some(c) => c.max(ev.ts[i]),
            None => {
                self.t_v = ev.ts[i];
                ev.ts[i]
            }
        };
        self.clock = Some(t);
        if ev.kind[i] == 0 {
            self.trades += 1;
            self.last_price = ev.price[i];
            self.contribs.push(Contrib {
                stamp: t,
                k: self.trades,
                trade: true,
                buy: ev.side[i] == 1,
                qty: ev.qty[i],
                pq: ev.price[i] * ev.qty[i],
                e: 0.0,
                d: 0.0,
                r2: 0.0,
            });
            return;
        }
        let (bp, bq, ap, aq) = (
            ev.bid_price[i],
            ev.bid_qty[i],
            ev.ask_price[i],
            ev.ask_qty[i],
        );
        let e = match self.book {
            None => 0.0,
            Some([pbp, pbq, pap, paq]) => {
                let mut e = 0.0;
                if bp >= pbp {
                    e += bq;
                }
                if bp <= pbp {
                    e -= pbq;
                }
                if ap <= pap {
                    e -= aq;
                }
                if ap >= pap {
                    e += paq;
                }
                e
            }
        };
        self.book = Some([bp, bq, ap, aq]);
        let mid = (bp + ap) / 2.0;
        let mut r2 = 0.0;
        if mid.is_finite() {
            if self.last_mid.is_finite() {
                let r = (mid / self.last_mid).ln();
                r2 = r * r;
                self.v = self.v * 2f64.powf(-((t - self.t_v) as f64) / HALF_LIFE) + r2;
                self.t_v = t;
            }
            self.last_mid = mid;
        }
        let bid = &ev.bid_depth[i * LEVELS..(i + 1) * LEVELS];
        let ask = &ev.ask_depth[i * LEVELS..(i + 1) * LEVELS];
        self.depth = DEPTH_LEVELS
            .iter()
            .map(|&k| {
                let b: f64 = bid[..k].iter().sum();
                let a: f64 = ask[..k].iter().sum();
                if b + a == 0.0 {
                    f64::NAN
                } else {
                    (b - a) / (b + a)
                }
            })
            .collect();
        self.contribs.push(Contrib {
            stamp: t,
            k: self.trades,
            trade: false,
            buy: false,
            qty: 0.0,
            pq: 0.0,
            e,
            d: (bq + aq) / 2.0,
            r2,
        });
    }

    /// Expected features with a tolerance scale each: (value, scale).
    fn expected(&self, time_windows: &[i64], count_windows: &[u64]) -> Vec<(f64, f64)> {
        let nan = f64::NAN;
        let t = self.clock.unwrap();
        let mut out = vec![(self.last_price, 0.0)];
        match self.book {
            None => out.extend([(nan, 0.0); 5]),
            Some([bp, bq, ap, aq]) => {
                let mid = (bp + ap) / 2.0;
                let q = bq + aq;
                out.push((mid, 0.0));
                out.push((ap - bp, 0.0));
                out.push((1e4 * (ap - bp) / mid, 0.0));
                out.push((if q == 0.0 { nan } else { (bq - aq) / q }, 0.0));
                let micro = if q == 0.0 || bp.is_nan() || ap.is_nan() {
                    nan
                } else {
                    (ap * bq + bp * aq) / q - mid
                };
                out.push((micro, 0.0));
            }
        }
        out.extend(self.depth.iter().map(|&d| (d, 0.0)));
        let ewma = if self.v == 0.0 {
            0.0
        } else {
            (self.v * 2f64.powf(-((t - self.t_v) as f64) / HALF_LIFE)).sqrt()
        };
        out.push((ewma, 0.0));
        let windows = time_windows
            .iter()
            .map(|&w| (Some(w), None))
            .chain(count_windows.iter().map(|&n| (None, Some(n))));
        for (time, count) in windows {
            let (mut nb, mut ns, mut nbook) = (0u64, 0u64, 0u64);
            let [mut vb, mut vs, mut pq, mut e, mut d, mut r2] = [Acc::default(); 6];
            let mut newest_trade = None;
            let mut oldest_trade = None;
            // Contents oldest to newest: find the start, then sum forward.
            let inside = |c: &Contrib| match (time, count) {
                (Some(w), _) => c.stamp > t - w,
                (_, Some(n)) => self.trades < n || c.k > self.trades - n,
                _ => unreachable!(),
            };
            let mut start = self.contribs.len();
            while start > 0 && inside(&self.contribs[start - 1]) {
                start -= 1;
            }
            for c in &self.contribs[start..] {
                if c.trade {
                    if c.buy {
                        nb += 1;
                        vb.add(c.qty);
                    } else {
                        ns += 1;
                        vs.add(c.qty);
                    }
                    pq.add(c.pq);
                    oldest_trade.get_or_insert(c.stamp);
                    newest_trade = Some(c.stamp);
                } else {
                    nbook += 1;
                    e.add(c.e);
                    d.add(c.d);
                    r2.add(c.r2);
                }
            }
            let n = nb + ns;
            let (vbv, vsv) = (vb.value(), vs.value());
            let q = vbv + vsv;
            if n == 0 {
                out.extend([(nan, 0.0); 3]);
            } else {
                out.push(((nb as f64 - ns as f64) / n as f64, 0.0));
                out.push((if q == 0.0 { nan } else { (vbv - vsv) / q }, 1.0));
                out.push((vbv - vsv, vb.abs + vs.abs));
            }
            if nbook == 0 {
                out.extend([(nan, 0.0); 3]);
            } else {
                let mean = d.value() / nbook as f64;
                out.push((e.value(), e.abs));
                if mean == 0.0 {
                    out.push((nan, 0.0));
                } else {
                    out.push((e.value() / mean, e.abs / mean));
                }
                out.push((r2.value().sqrt(), 0.0));
            }
            out.push((
                if n == 0 || q == 0.0 {
                    nan
                } else {
                    pq.value() / q
                },
                0.0,
            ));
            let intensity = match (time, count) {
                (Some(_), _) if n == 0 => nan,
                (Some(w), _) => n as f64 / (w as f64 / 1000.0),
                _ => match (oldest_trade, newest_trade) {
                    (Some(a), Some(b)) if n >= 2 && b > a => {
                        (n - 1) as f64 / ((b - a) as f64 / 1000.0)
                    }
                    _ => nan,
                },
            };
            out.push((intensity, 0.0));
        }
        out
    }
}

#[test]
fn rolling_windows_match_recomputation_over_a_million_events() {
    let time_windows = [250i64, 1000, 10_000, 60_000];
    let count_windows = [7u64, 100];
    let config = FeatureConfig::new(
        time_windows.to_vec(),
        count_windows.iter().map(|&n| n as i64).collect(),
        DEPTH_LEVELS.iter().map(|&k| k as i64).collect(),
        HALF_LIFE,
        true,
    )
    .unwrap();
    let events = generate(N_EVENTS);
    let mut engine = FeatureEngine::new(config);
    let names = engine.feature_names().to_vec();
    let mut reference = Reference {
        clock: None,
        trades: 0,
        last_price: f64::NAN,
        book: None,
        depth: vec![f64::NAN; DEPTH_LEVELS.len()],
        last_mid: f64::NAN,
        v: 0.0,
        t_v: 0,
        contribs: Vec::with_capacity(N_EVENTS),
    };
    let mut checked = 0usize;
    let mut worst = 0.0f64;
    let mut inexact = 0usize;
    let mut start = 0;
    while start < N_EVENTS {
        let end = (start + CHUNK).min(N_EVENTS);
        let out = engine.process(&events.view_range(start..end)).unwrap();
        assert_eq!(out.len(), end - start); // emit_on_book: one row per event
        for r in 0..out.len() {
            let i = start + r;
            reference.push(&events, i);
            if i % CHECK_EVERY != 0 && i != N_EVENTS - 1 {
                continue;
            }
            checked += 1;
            assert_eq!(out.ts[r], reference.clock.unwrap());
            let expected = reference.expected(&time_windows, &count_windows);
            assert_eq!(expected.len(), names.len());
            for (j, &(want, scale)) in expected.iter().enumerate() {
                let got = out.features[j][r];
                if want.is_nan() || got.is_nan() {
                    assert!(
                        want.is_nan() && got.is_nan(),
                        "row {i} {}: got {got}, want {want}",
                        names[j]
                    );
                    continue;
                }
                let bound = TOL * want.abs().max(scale);
                let err = (got - want).abs();
                assert!(
                    err <= bound,
                    "row {i} {}: got {got:e}, want {want:e} (err {err:e} > {bound:e})",
                    names[j]
                );
                if bound > 0.0 {
                    worst = worst.max(err / bound * TOL);
                }
                if err > 0.0 {
                    inexact += 1;
                }
            }
        }
        start = end;
    }
    assert!(checked > 1000);
    eprintln!(
        "checked {checked} rows; {inexact} values not bit-equal; worst relative error {worst:e}"
    );
}
