//! Criterion bench of the feature engine over synthetic events: the per-event update (a
//! trade; a book event with 10 depth levels plus a trade; default settings, windows in
//! steady state) and the batch `process` over 500k events (into fresh output, as the Python
//! binding does, and into reused output buffers). Run: `cargo bench -p cif-core --bench features`.

use cif_core::features::{
    BookEvent, DepthColumns, EventColumns, FeatureColumns, FeatureConfig, FeatureEngine, TradeEvent,
};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const LEVELS: usize = 10;
const N_BATCH: usize = 500_000;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Synthetic columns: half trades, half book events with 10 levels; ~8 ms apart on average.
struct Synthetic {
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
    bd: Vec<f64>,
    ad: Vec<f64>,
}

impl Synthetic {
    fn new(n: usize) -> Self {
        let mut rng = Rng(42);
        let mut s = Synthetic {
            kind: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            recv: Vec::with_capacity(n),
            price: Vec::with_capacity(n),
            qty: Vec::with_capacity(n),
            side: Vec::with_capacity(n),
            bp: Vec::with_capacity(n),
            bq: Vec::with_capacity(n),
            ap: Vec::with_capacity(n),
            aq: Vec::with_capacity(n),
            bd: Vec::with_capacity(n * LEVELS),
            ad: Vec::with_capacity(n * LEVELS),
        };
        let mut ts = 1_700_000_000_000i64;
        let mut mid = 60_000.0f64;
        for i in 0..n {
            ts += (rng.next() % 17) as i64;
            mid *= 1.0 + 1e-5 * (rng.unit() - 0.5);
            s.seq.push(i as i64 + 1);
            s.ts.push(ts);
            s.recv.push(ts * 1_000_000);
            let trade = rng.next() & 1 == 0;
            s.kind.push(u8::from(!trade));
            s.price.push(mid + (rng.unit() - 0.5));
            s.qty.push(rng.unit() * 0.5);
            s.side.push(if rng.next() & 1 == 0 { 1 } else { -1 });
            s.bp.push(mid - 0.01 - (rng.next() % 3) as f64 * 0.01);
            s.bq.push(rng.unit() * 3.0);
            s.ap.push(mid + 0.01 + (rng.next() % 3) as f64 * 0.01);
            s.aq.push(rng.unit() * 3.0);
            for _ in 0..LEVELS {
                s.bd.push(rng.unit() * 5.0);
                s.ad.push(rng.unit() * 5.0);
            }
        }
        s
    }

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
                levels: LEVELS,
            }),
            ask_depth: Some(DepthColumns {
                values: &self.ad,
                levels: LEVELS,
            }),
        }
    }
}

fn bench(c: &mut Criterion) {
    let events = Synthetic::new(N_BATCH);
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
        let mut i = 0usize;
        g.bench_function("on_trade (one event, steady state)", |b| {
            b.iter(|| {
                seq += 1;
                i = (i + 1) % N_BATCH;
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
        let mut i = 0usize;
        g.bench_function("on_book + on_trade (10 levels, steady state)", |b| {
            b.iter(|| {
                seq += 2;
                i = (i + 1) % N_BATCH;
                let ts = t_end + (seq - N_BATCH as i64) * 4;
                let book = BookEvent {
                    seq,
                    ts,
                    bid_price: events.bp[i],
                    bid_qty: events.bq[i],
                    ask_price: events.ap[i],
                    ask_qty: events.aq[i],
                    bid_depth: &events.bd[i * LEVELS..(i + 1) * LEVELS],
                    ask_depth: &events.ad[i * LEVELS..(i + 1) * LEVELS],
                };
                engine.on_book(&book, &mut row).expect("valid");
                let trade = TradeEvent {
                    seq: seq + 1,
                    ts,
                    price: events.price[i],
                    qty: events.qty[i],
                    side: events.side[i],
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
