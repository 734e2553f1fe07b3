//! Unit tests of the feature engine: names, validation, edge cases, streaming = batch,
//! snapshot / restore.

use super::*;

const NAN: f64 = f64::NAN;

/// One event of a test log.
#[derive(Debug, Clone)]
enum Ev {
    T {
        seq: i64,
        ts: i64,
        price: f64,
        qty: f64,
        side: i8,
    },
    B {
        seq: i64,
        ts: i64,
        bp: f64,
        bq: f64,
        ap: f64,
        aq: f64,
        bd: Vec<f64>,
        ad: Vec<f64>,
    },
}

fn t(seq: i64, ts: i64, price: f64, qty: f64, side: i8) -> Ev {
    Ev::T {
        seq,
        ts,
        price,
        qty,
        side,
    }
}

fn b(seq: i64, ts: i64, bp: f64, bq: f64, ap: f64, aq: f64) -> Ev {
    Ev::B {
        seq,
        ts,
        bp,
        bq,
        ap,
        aq,
        bd: vec![],
        ad: vec![],
    }
}

fn bd(seq: i64, ts: i64, l1: [f64; 4], bid: &[f64], ask: &[f64]) -> Ev {
    Ev::B {
        seq,
        ts,
        bp: l1[0],
        bq: l1[1],
        ap: l1[2],
        aq: l1[3],
        bd: bid.to_vec(),
        ad: ask.to_vec(),
    }
}

/// Owned columns for a list of events (depth padded with zeros to the widest row).
fn columns(events: &[Ev]) -> EventLogColumns {
    let levels = events
        .iter()
        .map(|e| match e {
            Ev::B { bd, ad, .. } => bd.len().max(ad.len()),
            Ev::T { .. } => 0,
        })
        .max()
        .unwrap_or(0);
    let mut c = EventLogColumns::new(levels);
    for (i, e) in events.iter().enumerate() {
        let recv = 1_000_000 + i as i64;
        match e {
            Ev::T {
                seq,
                ts,
                price,
                qty,
                side,
            } => c.push_trade(*seq, *ts, recv, *price, *qty, *side),
            Ev::B {
                seq,
                ts,
                bp,
                bq,
                ap,
                aq,
                bd,
                ad,
            } => c.push_book(*seq, *ts, recv, [*bp, *bq, *ap, *aq], bd, ad),
        }
    }
    c
}

#[test]
fn event_log_views_a_range_of_rows() {
    let events = [
        t(1, 0, 100.0, 1.0, 1),
        bd(2, 0, [99.0, 1.0, 101.0, 1.0], &[1.0, 2.0], &[3.0]),
        t(3, 0, 100.0, 2.0, -1),
    ];
    let cols = columns(&events);
    assert_eq!(cols.bid_depth, [0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    let view = cols.view_range(1..3);
    assert_eq!(view.seq, [2, 3]);
    assert_eq!(view.book(0).bid_depth, [1.0, 2.0]);
    assert_eq!(view.book(0).ask_depth, [3.0, 0.0]);
    assert_eq!(view.ask_depth.unwrap().values.len(), 4);
    assert_eq!(cols.view_range(0..0).len(), 0);
}

#[test]
#[should_panic(expected = "3 bid / 0 ask levels, at most 2 fit")]
fn event_log_refuses_deeper_books() {
    EventLogColumns::new(2).push_book(1, 0, 0, [NAN, 0.0, NAN, 0.0], &[1.0; 3], &[]);
}

fn cfg(time: &[i64], count: &[i64], depth: &[i64], emit_on_book: bool) -> FeatureConfig {
    FeatureConfig::new(
        time.to_vec(),
        count.to_vec(),
        depth.to_vec(),
        10_000.0,
        emit_on_book,
    )
    .unwrap()
}

/// Streaming: the rows emitted, one Vec per row.
fn stream(engine: &mut FeatureEngine, events: &[Ev]) -> Vec<Vec<f64>> {
    let mut rows = vec![];
    let mut row = vec![0.0; engine.n_features()];
    for e in events {
        match e {
            Ev::T {
                seq,
                ts,
                price,
                qty,
                side,
            } => {
                let ev = TradeEvent {
                    seq: *seq,
                    ts: *ts,
                    price: *price,
                    qty: *qty,
                    side: *side,
                };
                engine.on_trade(&ev, &mut row).unwrap();
                rows.push(row.clone());
            }
            Ev::B {
                seq,
                ts,
                bp,
                bq,
                ap,
                aq,
                bd,
                ad,
            } => {
                let ev = BookEvent {
                    seq: *seq,
                    ts: *ts,
                    bid_price: *bp,
                    bid_qty: *bq,
                    ask_price: *ap,
                    ask_qty: *aq,
                    bid_depth: bd,
                    ask_depth: ad,
                };
                if engine.on_book(&ev, &mut row).unwrap() {
                    rows.push(row.clone());
                }
            }
        }
    }
    rows
}

/// Batch rows transposed to one Vec per row.
fn rows_of(out: &FeatureColumns) -> Vec<Vec<f64>> {
    (0..out.len())
        .map(|r| out.features.iter().map(|c| c[r]).collect())
        .collect()
}

fn bits(rows: &[Vec<f64>]) -> Vec<Vec<u64>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Value of feature `name` in `row`.
fn get(engine: &FeatureEngine, row: &[f64], name: &str) -> f64 {
    let i = engine
        .feature_names()
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no feature {name}"));
    row[i]
}

fn assert_close(a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1e-300),
        "{a} != {b} (diff {})",
        a - b
    );
}

/// A deterministic mixed log: trades and book events, depth, a missing side, clock
/// regressions.
fn mixed_log(n: usize) -> Vec<Ev> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ts = 1_700_000_000_000i64;
    let mut mid = 100.0f64;
    let mut out = vec![];
    for i in 0..n {
        let r = next();
        ts += (r % 50) as i64 - 5; // sometimes goes back in time
        let seq = 10 + 3 * i as i64;
        let u = (r >> 8) as f64 / (1u64 << 56) as f64;
        if r % 3 == 0 {
            let side = if (r >> 5) & 1 == 0 { 1 } else { -1 };
            out.push(t(seq, ts, mid * (1.0 + (u - 0.5) * 1e-3), u * 2.0, side));
        } else {
            mid *= 1.0 + (u - 0.5) * 2e-4;
            let bp = if r % 97 == 0 { NAN } else { mid - 0.01 };
            let bq = if bp.is_nan() { 0.0 } else { u * 5.0 };
            let depth: Vec<f64> = (0..(r % 12)).map(|l| (l as f64 + u) * 0.5).collect();
            out.push(bd(
                seq,
                ts,
                [bp, bq, mid + 0.01, 3.0 - u],
                &depth,
                &depth[..depth.len() / 2],
            ));
        }
    }
    out
}

#[test]
fn window_suffixes() {
    assert_eq!(time_suffix(1000), "1s");
    assert_eq!(time_suffix(10_000), "10s");
    assert_eq!(time_suffix(60_000), "1m");
    assert_eq!(time_suffix(120_000), "2m");
    assert_eq!(time_suffix(90_000), "90s");
    assert_eq!(time_suffix(500), "500ms");
    assert_eq!(time_suffix(1500), "1500ms");
    assert_eq!(Window::Trades(100).suffix(), "100t");
    assert_eq!(Window::Time(60_000).suffix(), "1m");
}

#[test]
fn default_feature_names() {
    let names = FeatureConfig::default().feature_names();
    assert_eq!(names.len(), 9 + 4 * 8);
    assert_eq!(
        &names[..9],
        [
            "last_price",
            "mid",
            "spread",
            "spread_bps",
            "queue_imbalance",
            "microprice_offset",
            "depth_imbalance_top5",
            "depth_imbalance_top10",
            "ewma_vol"
        ]
    );
    assert_eq!(
        &names[9..17],
        [
            "trade_imbalance_count_1s",
            "trade_imbalance_volume_1s",
            "signed_volume_1s",
            "ofi_1s",
            "ofi_depth_1s",
            "rv_1s",
            "vwap_1s",
            "intensity_1s"
        ]
    );
    assert_eq!(names[17], "trade_imbalance_count_10s");
    assert_eq!(names[25], "trade_imbalance_count_1m");
    assert_eq!(names[33], "trade_imbalance_count_100t");
    assert_eq!(names[40], "intensity_100t");
    // Windows keep the given order.
    let c = cfg(&[500, 60_000], &[7, 3], &[3], false);
    let names = c.feature_names();
    let suffixes: Vec<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix("intensity_"))
        .collect();
    assert_eq!(suffixes, ["500ms", "1m", "7t", "3t"]);
    assert_eq!(names.len(), c.n_features());
}

#[test]
fn config_validation() {
    let new = |t: &[i64], c: &[i64], d: &[i64], h: f64| {
        FeatureConfig::new(t.to_vec(), c.to_vec(), d.to_vec(), h, false)
    };
    assert!(new(&[], &[], &[], 1.0).is_ok());
    assert_eq!(
        new(&[1000, 0], &[], &[], 1.0),
        Err(ConfigError::NonPositiveTimeWindow(0))
    );
    assert_eq!(
        new(&[1000, 5, 1000], &[], &[], 1.0),
        Err(ConfigError::DuplicateTimeWindow(1000))
    );
    assert_eq!(
        new(&[], &[-1], &[], 1.0),
        Err(ConfigError::NonPositiveCountWindow(-1))
    );
    assert_eq!(
        new(&[], &[5, 5], &[], 1.0),
        Err(ConfigError::DuplicateCountWindow(5))
    );
    assert_eq!(
        new(&[], &[], &[0], 1.0),
        Err(ConfigError::NonPositiveDepthLevel(0))
    );
    assert_eq!(
        new(&[], &[], &[2, 2], 1.0),
        Err(ConfigError::DuplicateDepthLevel(2))
    );
    for h in [0.0, -1.0, f64::INFINITY, NAN] {
        assert!(matches!(
            new(&[], &[], &[], h),
            Err(ConfigError::BadHalfLife(_))
        ));
    }
    // A time window and a count window of the same number are fine.
    assert!(new(&[100], &[100], &[], 1.0).is_ok());
    assert_eq!(
        new(&[0], &[], &[], 1.0).unwrap_err().to_string(),
        "time_windows_ms: window 0 must be > 0"
    );
}

#[test]
fn first_trade_without_book() {
    let mut e = FeatureEngine::new(FeatureConfig::default());
    let rows = stream(&mut e, &[t(1, 5000, 100.0, 2.0, 1)]);
    let r = &rows[0];
    assert_eq!(get(&e, r, "last_price"), 100.0);
    for name in [
        "mid",
        "spread",
        "spread_bps",
        "queue_imbalance",
        "microprice_offset",
        "depth_imbalance_top5",
        "ofi_1s",
        "ofi_depth_1s",
        "rv_1s",
        "ofi_100t",
        "rv_100t",
        "intensity_100t",
    ] {
        assert!(get(&e, r, name).is_nan(), "{name}");
    }
    assert_eq!(get(&e, r, "ewma_vol"), 0.0);
    assert_eq!(get(&e, r, "trade_imbalance_count_1s"), 1.0);
    assert_eq!(get(&e, r, "trade_imbalance_volume_1s"), 1.0);
    assert_eq!(get(&e, r, "signed_volume_1s"), 2.0);
    assert_eq!(get(&e, r, "vwap_1m"), 100.0);
    assert_eq!(get(&e, r, "intensity_1s"), 1.0);
    assert_eq!(get(&e, r, "intensity_10s"), 0.1);
}

#[test]
fn empty_and_zero_windows_are_nan() {
    let c = cfg(&[1000], &[], &[], true);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            t(1, 0, 100.0, 0.0, 1),
            t(2, 10, 101.0, 0.0, -1),
            b(3, 5000, 99.0, 0.0, 101.0, 0.0),
        ],
    );
    // Zero-size trades: counts defined, volumes 0/0.
    let r = &rows[1];
    assert_eq!(get(&e, r, "trade_imbalance_count_1s"), 0.0);
    assert!(get(&e, r, "trade_imbalance_volume_1s").is_nan());
    assert_eq!(get(&e, r, "signed_volume_1s"), 0.0);
    assert!(get(&e, r, "vwap_1s").is_nan());
    assert_eq!(get(&e, r, "intensity_1s"), 2.0);
    // Book row 5 s later: no trades in the window.
    let r = &rows[2];
    for name in [
        "trade_imbalance_count_1s",
        "trade_imbalance_volume_1s",
        "signed_volume_1s",
        "vwap_1s",
        "intensity_1s",
    ] {
        assert!(get(&e, r, name).is_nan(), "{name}");
    }
    // One book event with zero sizes: OFI 0, depth mean 0 -> ofi_depth NaN, rv 0.
    assert_eq!(get(&e, r, "ofi_1s"), 0.0);
    assert!(get(&e, r, "ofi_depth_1s").is_nan());
    assert_eq!(get(&e, r, "rv_1s"), 0.0);
    assert!(get(&e, r, "queue_imbalance").is_nan());
    assert!(get(&e, r, "microprice_offset").is_nan());
    assert_eq!(get(&e, r, "mid"), 100.0);
    assert_eq!(get(&e, r, "last_price"), 101.0);
}

#[test]
fn one_sided_and_crossed_books() {
    let c = cfg(&[1000], &[], &[2], true);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            bd(1, 0, [NAN, 0.0, 101.0, 3.0], &[], &[1.0, 2.0]),
            b(2, 1, 100.0, 1.0, 100.0, 3.0), // locked
            b(3, 2, 100.5, 1.0, 100.0, 1.0), // crossed
        ],
    );
    let r = &rows[0];
    for name in ["mid", "spread", "spread_bps", "microprice_offset"] {
        assert!(get(&e, r, name).is_nan(), "{name}");
    }
    assert_eq!(get(&e, r, "queue_imbalance"), -1.0);
    assert_eq!(get(&e, r, "depth_imbalance_top2"), -1.0);
    assert_eq!(get(&e, r, "ofi_1s"), 0.0); // first book event
    assert_eq!(get(&e, r, "rv_1s"), 0.0);
    let r = &rows[1];
    assert_eq!(get(&e, r, "spread"), 0.0);
    assert_eq!(get(&e, r, "spread_bps"), 0.0);
    assert_eq!(get(&e, r, "queue_imbalance"), -0.5);
    assert!(get(&e, r, "depth_imbalance_top2").is_nan()); // no depth on this event
                                                          // (100*1 + 100*3)/4 - 100
    assert_eq!(get(&e, r, "microprice_offset"), 0.0);
    // e = Qb_n*1{Pb_n >= NaN} - Qb_{n-1}*... - Qa_n*1{100 <= 101} + Qa_{n-1}*1{100 >= 101}
    //   = 0 - 0 - 3 + 0
    assert_eq!(get(&e, r, "ofi_1s"), -3.0);
    let r = &rows[2];
    assert_eq!(get(&e, r, "spread"), -0.5);
    assert_close(get(&e, r, "spread_bps"), 1e4 * -0.5 / 100.25);
    // bid up: +1 ; ask 100 <= 100 and >= 100: -1 + 3
    assert_eq!(get(&e, r, "ofi_1s"), -3.0 + 1.0 - 1.0 + 3.0);
    let ret = (100.25f64 / 100.0).ln();
    assert_eq!(get(&e, r, "rv_1s"), (ret * ret).sqrt());
}

#[test]
fn ofi_and_depth_hand_computed() {
    let c = cfg(&[10_000], &[], &[1, 3], false);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            bd(
                1,
                0,
                [100.0, 2.0, 101.0, 4.0],
                &[2.0, 1.0, 1.0],
                &[4.0, 0.0, 0.0],
            ),
            b(2, 1, 100.0, 5.0, 101.0, 1.0), // same prices: e = 5 - 2 - 1 + 4 = 6
            b(3, 2, 99.0, 7.0, 100.0, 2.0),  // bid down: -5; ask down: -2; e = -7
            t(4, 3, 100.0, 1.0, 1),
        ],
    );
    let r = &rows[0];
    assert_eq!(get(&e, r, "ofi_10s"), -1.0);
    // mean depth: ((2+4)/2 + (5+1)/2 + (7+2)/2)/3 = (3 + 3 + 4.5)/3 = 3.5
    assert_eq!(get(&e, r, "ofi_depth_10s"), -1.0 / 3.5);
    assert!(get(&e, r, "depth_imbalance_top1").is_nan());
    let mid1 = 100.5f64;
    let mid3 = 99.5f64;
    let r3 = (mid3 / mid1).ln();
    assert_eq!(get(&e, r, "rv_10s"), (0.0 + r3 * r3).sqrt());
}

#[test]
fn depth_imbalance_levels() {
    let c = cfg(&[], &[], &[1, 3, 50], false);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            bd(
                1,
                0,
                [100.0, 2.0, 101.0, 4.0],
                &[2.0, 1.0, 1.0],
                &[4.0, 0.0],
            ),
            t(2, 1, 100.0, 1.0, 1),
        ],
    );
    let r = &rows[0];
    assert_eq!(get(&e, r, "depth_imbalance_top1"), (2.0 - 4.0) / 6.0);
    assert_eq!(get(&e, r, "depth_imbalance_top3"), 0.0);
    assert_eq!(get(&e, r, "depth_imbalance_top50"), 0.0);
}

#[test]
fn ewma_vol_decays() {
    let c = cfg(&[], &[], &[], false);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            b(1, 1000, 99.0, 1.0, 101.0, 1.0),
            t(2, 1000, 100.0, 1.0, 1),
            b(3, 2000, 100.0, 1.0, 102.0, 1.0),
            t(4, 2000, 100.0, 1.0, 1),
            t(5, 12_000, 100.0, 1.0, 1),
            b(6, 22_000, 100.0, 1.0, 102.0, 1.0), // r = 0: V decays, then + 0
            t(7, 22_000, 100.0, 1.0, 1),
            b(8, 23_000, 100.0, 1.0, f64::NAN, 0.0), // no return
            t(9, 23_000, 100.0, 1.0, 1),
        ],
    );
    let ewma = |r: &Vec<f64>| get(&e, r, "ewma_vol");
    assert_eq!(ewma(&rows[0]), 0.0);
    let r = (101.0f64 / 100.0).ln();
    let v = r * r;
    assert_eq!(ewma(&rows[1]), (v * 1.0f64).sqrt());
    assert_eq!(
        ewma(&rows[2]),
        (v * (-10_000.0_f64 / 10_000.0).exp2()).sqrt()
    );
    let v2 = v * (-20_000.0_f64 / 10_000.0).exp2() + 0.0;
    assert_eq!(ewma(&rows[3]), v2.sqrt());
    assert_eq!(
        ewma(&rows[4]),
        (v2 * (-1000.0_f64 / 10_000.0).exp2()).sqrt()
    );
}

#[test]
fn clock_is_clamped_monotone() {
    let c = cfg(&[1000], &[], &[], true);
    let mut e = FeatureEngine::new(c);
    let events = [
        t(1, 5000, 100.0, 1.0, 1),
        t(2, 4000, 100.0, 1.0, -1), // behind: clock stays 5000
        b(3, 4500, 99.0, 1.0, 101.0, 1.0),
        t(4, 5999, 100.0, 1.0, 1), // 5000 still inside (4999, 5999]
        t(5, 6000, 100.0, 1.0, 1), // now (5000, 6000]: the first three leave
    ];
    let cols = columns(&events);
    let out = e.process(&cols.view()).unwrap();
    assert_eq!(out.ts, [5000, 5000, 5000, 5999, 6000]);
    assert_eq!(e.clock(), Some(6000));
    let rows = rows_of(&out);
    assert_eq!(get(&e, &rows[3], "intensity_1s"), 3.0);
    assert_eq!(get(&e, &rows[3], "ofi_1s"), 0.0);
    assert_eq!(get(&e, &rows[4], "intensity_1s"), 2.0);
    assert!(get(&e, &rows[4], "ofi_1s").is_nan());
    assert_eq!(out.kind, [0, 0, 1, 0, 0]);
    assert_eq!(out.seq, [1, 2, 3, 4, 5]);
    assert_eq!(out.recv_ts_ns, cols.recv_ts_ns);
}

#[test]
fn count_window_membership_and_intensity() {
    let c = cfg(&[], &[2], &[], true);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            b(1, 0, 99.0, 1.0, 101.0, 1.0), // k = 0
            t(2, 1000, 100.0, 1.0, 1),      // k = 1
            b(3, 1500, 99.0, 2.0, 101.0, 1.0),
            t(4, 3000, 100.0, 3.0, -1), // k = 2: window = trades 1, 2, book at 1500
            t(5, 3500, 102.0, 1.0, 1),  // k = 3: trades 2, 3 only
        ],
    );
    let r = &rows[0];
    assert_eq!(get(&e, r, "ofi_2t"), 0.0);
    assert!(get(&e, r, "trade_imbalance_count_2t").is_nan());
    assert!(get(&e, r, "intensity_2t").is_nan());
    let r = &rows[2]; // T = 1: everything, incl. the book event before the first trade
    assert_eq!(get(&e, r, "ofi_2t"), 1.0); // e = 2 - 1 - 1 + 1
    assert!(get(&e, r, "intensity_2t").is_nan()); // one trade
    let r = &rows[3]; // T = 2: the first book event (k = 0) left
    assert_eq!(get(&e, r, "ofi_2t"), 1.0);
    assert_eq!(get(&e, r, "ofi_depth_2t"), 1.0 / 1.5);
    assert_eq!(get(&e, r, "signed_volume_2t"), -2.0);
    assert_eq!(get(&e, r, "intensity_2t"), 1.0 / 2.0);
    let r = &rows[4]; // T = 3: trades k = 2, 3, no book event after trade 2
    assert!(get(&e, r, "ofi_2t").is_nan());
    assert_eq!(get(&e, r, "signed_volume_2t"), -2.0);
    assert_eq!(get(&e, r, "vwap_2t"), (300.0 + 102.0) / 4.0);
    assert_eq!(get(&e, r, "intensity_2t"), 1.0 / 0.5);
    assert_eq!(get(&e, r, "trade_imbalance_count_2t"), 0.0);
    assert_eq!(get(&e, r, "trade_imbalance_volume_2t"), -0.5);
}

#[test]
fn validation_errors_name_event_seq_and_field() {
    let c = cfg(&[1000], &[10], &[5], false);
    let cases: Vec<(Ev, &str)> = vec![
        (t(5, 0, 100.0, -1.0, 1), "trade qty is negative"),
        (t(5, 0, 0.0, 1.0, 1), "trade price is not > 0"),
        (t(5, 0, NAN, 1.0, 1), "trade price is not finite"),
        (t(5, 0, 1.0, f64::INFINITY, 1), "trade qty is not finite"),
        (
            t(5, 0, 1.0, 1.0, 0),
            "trade side is 0, not +1 (buy) or -1 (sell)",
        ),
        (
            b(5, 0, NAN, 1.0, 101.0, 1.0),
            "bid_qty is 1 on a missing side",
        ),
        (b(5, 0, 99.0, NAN, 101.0, 1.0), "bid_qty is not finite"),
        (
            b(5, 0, 99.0, 1.0, f64::INFINITY, 1.0),
            "ask_price is not finite",
        ),
        (b(5, 0, 99.0, 1.0, -101.0, 1.0), "ask_price is not > 0"),
        (b(5, 0, 99.0, 1.0, 101.0, -1.0), "ask_qty is negative"),
        (b(5, 0, NAN, NAN, 101.0, 1.0), "bid_qty is not finite"),
        (
            bd(5, 0, [99.0, 1.0, 101.0, 1.0], &[1.0, -2.0], &[]),
            "bid_depth level 2 is negative",
        ),
        (
            bd(5, 0, [99.0, 1.0, 101.0, 1.0], &[], &[NAN]),
            "ask_depth level 1 is not finite",
        ),
    ];
    for (bad, msg) in cases {
        let mut e = FeatureEngine::new(c.clone());
        let events = vec![t(1, 0, 100.0, 1.0, 1), b(2, 0, 99.0, 1.0, 101.0, 1.0), bad];
        let cols = columns(&events);
        let before = e.snapshot();
        let err = e.process(&cols.view()).unwrap_err().to_string();
        assert!(err.starts_with("event 2 (seq 5): "), "{err}");
        assert!(err.contains(msg), "{err} lacks {msg}");
        assert_eq!(e.snapshot(), before, "state changed by a rejected batch");
    }
    // seq order, within a batch and across calls
    let mut e = FeatureEngine::new(c.clone());
    let cols = columns(&[t(1, 0, 100.0, 1.0, 1), t(1, 0, 100.0, 1.0, 1)]);
    assert_eq!(
        e.process(&cols.view()).unwrap_err().to_string(),
        "event 1 (seq 1): seq is not greater than the previous seq 1"
    );
    assert_eq!(e.events(), 0);
    let cols = columns(&[t(7, 0, 100.0, 1.0, 1)]);
    e.process(&cols.view()).unwrap();
    let mut row = vec![0.0; e.n_features()];
    let err = e
        .on_trade(
            &TradeEvent {
                seq: 6,
                ts: 0,
                price: 1.0,
                qty: 1.0,
                side: 1,
            },
            &mut row,
        )
        .unwrap_err();
    assert_eq!(
        err,
        InputError::Event {
            index: 0,
            seq: 6,
            field: Field::Seq,
            problem: Problem::NotIncreasing { prev: 7 }
        }
    );
    assert_eq!(e.last_seq(), Some(7));
    assert_eq!(e.events(), 1);
    // unknown kind, bad lengths
    let mut cols = columns(&[t(8, 0, 100.0, 1.0, 1)]);
    cols.kind[0] = 2;
    assert_eq!(
        e.process(&cols.view()).unwrap_err().to_string(),
        "event 0 (seq 8): kind is 2, not 0 (trade) or 1 (book)"
    );
    let mut cols = columns(&[t(8, 0, 100.0, 1.0, 1)]);
    cols.qty.push(1.0);
    assert_eq!(
        e.process(&cols.view()).unwrap_err().to_string(),
        "column qty has 2 values, expected 1"
    );
    // Ignored fields may hold anything.
    let cols = columns(&[t(9, 0, 100.0, 1.0, 1), b(10, 0, NAN, 0.0, NAN, 0.0)]);
    let mut view = cols.view();
    let junk = [f64::INFINITY, -3.0];
    view.bid_price = &junk;
    view.price = &[100.0, f64::NEG_INFINITY];
    view.side = &[1, 5];
    assert!(e.process(&view).is_err()); // bid_price of the book row is now -3
    let junk = [f64::INFINITY, NAN];
    view.bid_price = &junk;
    e.process(&view).unwrap();
}

#[test]
fn streaming_equals_batch_bitwise() {
    let events = mixed_log(20_000);
    for emit in [false, true] {
        let c = cfg(&[250, 1000, 60_000], &[5, 100], &[1, 5, 10], emit);
        let mut s = FeatureEngine::new(c.clone());
        let streamed = stream(&mut s, &events);
        let mut bt = FeatureEngine::new(c.clone());
        let cols = columns(&events);
        let out = bt.process(&cols.view()).unwrap();
        assert_eq!(bits(&streamed), bits(&rows_of(&out)));
        assert_eq!(s.snapshot(), bt.snapshot());
        // In uneven chunks too.
        let mut ch = FeatureEngine::new(c);
        let mut rows = vec![];
        let mut start = 0;
        for size in [1, 2, 3, 500, 7, 10_000, 20_000].iter().cycle() {
            let end = (start + size).min(events.len());
            let cols = columns(&events[start..end]);
            rows.extend(rows_of(&ch.process(&cols.view()).unwrap()));
            start = end;
            if start == events.len() {
                break;
            }
        }
        assert_eq!(bits(&streamed), bits(&rows));
    }
}

#[test]
fn snapshot_restore_continues_bitwise() {
    let events = mixed_log(12_000);
    let c = cfg(&[100, 1000, 10_000], &[3, 50], &[2, 7], true);
    let mut whole = FeatureEngine::new(c.clone());
    let expected = stream(&mut whole, &events);
    for cut in [0, 1, 2, 777, 5000, 11_999, 12_000] {
        let mut e = FeatureEngine::new(c.clone());
        let head = stream(&mut e, &events[..cut]);
        let data = e.snapshot();
        let mut r = FeatureEngine::restore(&data).unwrap();
        assert_eq!(r.snapshot(), data);
        assert_eq!(r.config(), e.config());
        assert_eq!(r.events(), cut as u64);
        let tail = stream(&mut r, &events[cut..]);
        let mut all = head;
        all.extend(tail);
        assert_eq!(bits(&all), bits(&expected), "cut {cut}");
        assert_eq!(r.snapshot(), whole.snapshot());
    }
}

#[test]
fn restore_rejects_bad_data() {
    let mut e = FeatureEngine::new(FeatureConfig::default());
    stream(&mut e, &mixed_log(60));
    let data = e.snapshot();
    assert_eq!(
        FeatureEngine::restore(b"nope").unwrap_err(),
        SnapshotError::BadMagic
    );
    let mut v2 = data.clone();
    v2[8] = 2;
    assert_eq!(
        FeatureEngine::restore(&v2).unwrap_err(),
        SnapshotError::UnsupportedVersion(2)
    );
    for len in 0..data.len() {
        assert!(
            FeatureEngine::restore(&data[..len]).is_err(),
            "prefix {len}"
        );
    }
    let mut long = data.clone();
    long.push(0);
    assert_eq!(
        FeatureEngine::restore(&long).unwrap_err(),
        SnapshotError::TrailingBytes(1)
    );
    // Corrupting any single byte never panics.
    for i in 0..data.len() {
        let mut bad = data.clone();
        bad[i] ^= 0xA5;
        if let Ok(mut r) = FeatureEngine::restore(&bad) {
            let mut row = vec![0.0; r.n_features()];
            for i in 0..20 {
                let seq = i64::MAX - 40 + 2 * i;
                let trade = TradeEvent {
                    seq,
                    ts: i,
                    price: 1.0,
                    qty: 1.0,
                    side: 1,
                };
                let _ = r.on_trade(&trade, &mut row);
                let book = BookEvent {
                    seq: seq + 1,
                    ts: i,
                    bid_price: 1.0,
                    bid_qty: 1.0,
                    ask_price: 2.0,
                    ask_qty: 0.5,
                    bid_depth: &[1.0],
                    ask_depth: &[],
                };
                let _ = r.on_book(&book, &mut row);
            }
            let _ = r.snapshot();
        }
    }
}

#[test]
fn wide_time_values_do_not_overflow() {
    let c = cfg(&[1000, i64::MAX], &[2], &[], true);
    let mut e = FeatureEngine::new(c);
    let rows = stream(
        &mut e,
        &[
            t(1, i64::MIN, 1.0, 1.0, 1),
            b(2, i64::MIN + 5, 1.0, 1.0, 2.0, 1.0),
            b(3, 0, 1.0, 1.0, 3.0, 1.0),
            t(4, i64::MAX, 1.0, 1.0, -1),
        ],
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(get(&e, &rows[3], "ewma_vol"), 0.0);
}

#[test]
fn process_into_reuses_output_and_matches_process() {
    let events = mixed_log(3000);
    let c = cfg(&[1000], &[20], &[5], true);
    let mut a = FeatureEngine::new(c.clone());
    let mut b = FeatureEngine::new(c);
    let mut out = FeatureColumns::default();
    for chunk in events.chunks(700) {
        let cols = columns(chunk);
        let fresh = a.process(&cols.view()).unwrap();
        b.process_into(&cols.view(), &mut out).unwrap();
        assert_eq!(bits(&rows_of(&fresh)), bits(&rows_of(&out)));
        assert_eq!(fresh.seq, out.seq);
        assert_eq!(fresh.ts, out.ts);
        assert_eq!(fresh.kind, out.kind);
    }
    // A rejected batch leaves the output and the engine as they were.
    let before = (out.clone(), b.snapshot());
    let cols = columns(&[t(1, 0, 100.0, 1.0, 1)]);
    assert!(b.process_into(&cols.view(), &mut out).is_err());
    assert_eq!(bits(&rows_of(&out)), bits(&rows_of(&before.0)));
    assert_eq!(out.seq, before.0.seq);
    assert_eq!(b.snapshot(), before.1);
}
