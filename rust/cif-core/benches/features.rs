//! Criterion bench of the feature engine over synthetic events: the per-event update (a
//! trade; a book event with 10 depth levels plus a trade; default settings, windows in
//! steady state) and the batch `process` over 500k events (into fresh output, as the Python
//! binding does, and into reused output buffers). Run: `cargo bench -p cif-core --bench features`.

use cif_core::features::{
    BookEvent, EventLogColumns, FeatureColumns, FeatureConfig, FeatureEngine, TradeEvent,
};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const LEVELS: usize = 10;
const N_BATCH: usize = 500_000;

include!("../tests/support/columns.rs");

/// Synthetic columns: half trades, half book events with 10 levels; ~8 ms apart on average.
fn synthetic(n: usize) -> EventLogColumns {
    let mut rng = Rng(42);
    let mut s = EventLogColumns::new(LEVELS);
    let mut ts = 1_700_000_000_000i64;
    let mut mid = 60_000.0f64;
    for i in 0..n {
        ts += (rng.next() % 17) as i64;
        mid *= 1.0 + 1e-5 * (rng.unit() - 0.5);
        let seq = i as i64 + 1;
        if rng.next() & 1 == 0 {
            let price = mid + (rng.unit() - 0.5);
            let qty = rng.unit() * 0.5;
            let side = if rng.next() & 1 == 0 { 1 } else { -1 };
            s.push_trade(seq, ts, ts * 1_000_000, price, qty, side);
        } else {
            let bp = mid - 0.01 - (rng.next() % 3) as f64 * 0.01;
            let bq = rng.unit() * 3.0;
            let ap = mid + 0.01 + (rng.next() % 3) as f64 * 0.01;
            let aq = rng.unit() * 3.0;
            let bd: Vec<f64> = (0..LEVELS).map(|_| rng.unit() * 5.0).collect();
            let ad: Vec<f64> = (0..LEVELS).map(|_| rng.unit() * 5.0).collect();
            s.push_book(seq, ts, ts * 1_000_000, [bp, bq, ap, aq], &bd, &ad);
        }
    }
    s
}

fn bench(c: &mut Criterion) {
    let events = synthetic(N_BATCH);
    // Rows of each kind, for the one-event benches.
    let rows_of =
        |kind: u8| -> Vec<usize> { (0..N_BATCH).filter(|&i| events.kind[i] == kind).collect() };
    let (trade_rows, book_rows) = (rows_of(0), rows_of(1));
    // Warm engine: a batch of history so the windows (up to 1 min) are full.
    let mut warm = FeatureEngine::new(FeatureConfig::default());
    warm.process(&events.view()).expect("valid events");
    let t_end = *events.ts.last().expect("events");

    let mut g = c.benchmark_group("features");
    g.throughput(Throughput::Elements(1));
    {
        let mut engine = warm.clone();
        let mut row = vec![0.0; engine.n_features()];
        let mut seq = N_BATCH as i64;
        g.bench_function("on_trade (one event, steady state)", |b| {
            b.iter(|| {
                seq += 1;
                let i = trade_rows[(seq as usize) % trade_rows.len()];
                let trade = TradeEvent {
                    seq,
                    ts: t_end + (seq - N_BATCH as i64) * 8,
                    price: events.price[i],
                    qty: events.qty[i],
                    side: events.side[i],
                };
                engine.on_trade(&trade, &mut row).expect("valid");
                black_box(row[0])
            })
        });
    }
    g.throughput(Throughput::Elements(2));
    {
        let mut engine = warm.clone();
        let mut row = vec![0.0; engine.n_features()];
        let mut seq = N_BATCH as i64;
        g.bench_function("on_book + on_trade (10 levels, steady state)", |b| {
            b.iter(|| {
                seq += 2;
                let i = book_rows[(seq as usize / 2) % book_rows.len()];
                let t = trade_rows[(seq as usize / 2) % trade_rows.len()];
                let ts = t_end + (seq - N_BATCH as i64) * 4;
                let book = BookEvent {
                    seq,
                    ts,
                    bid_price: events.bid_price[i],
                    bid_qty: events.bid_qty[i],
                    ask_price: events.ask_price[i],
                    ask_qty: events.ask_qty[i],
                    bid_depth: &events.bid_depth[i * LEVELS..(i + 1) * LEVELS],
                    ask_depth: &events.ask_depth[i * LEVELS..(i + 1) * LEVELS],
                };
                engine.on_book(&book, &mut row).expect("valid");
                let trade = TradeEvent {
                    seq: seq + 1,
                    ts,
                    price: events.price[t],
                    qty: events.qty[t],
                    side: events.side[t],
                };
                engine.on_trade(&trade, &mut row).expect("valid");
                black_box(row[0])
            })
        });
    }
    g.throughput(Throughput::Elements(N_BATCH as u64));
    g.sample_size(10);
    for emit_on_book in [false, true] {
        let config = FeatureConfig::new(
            vec![1000, 10_000, 60_000],
            vec![100],
            vec![5, 10],
            10_000.0,
            emit_on_book,
        )
        .expect("valid config");
        let fresh = FeatureEngine::new(config);
        g.bench_function(
            format!("process {N_BATCH} events (emit_on_book={emit_on_book})"),
            |b| {
                b.iter_batched(
                    || fresh.clone(),
                    |mut engine| engine.process(&events.view()).expect("valid").len(),
                    BatchSize::LargeInput,
                )
            },
        );
        // The same without the cost of fresh output memory (page faults).
        let mut out = FeatureColumns::default();
        g.bench_function(
            format!("process_into {N_BATCH} events, reused output (emit_on_book={emit_on_book})"),
            |b| {
                b.iter_batched(
                    || fresh.clone(),
                    |mut engine| {
                        engine
                            .process_into(&events.view(), &mut out)
                            .expect("valid");
                        out.len()
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
