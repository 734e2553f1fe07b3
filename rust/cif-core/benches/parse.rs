//! Criterion bench of the frame parser over the real btc capture (one frame at a time and
//! the whole capture as a batch). Run: `cargo bench -p cif-core --bench parse`.

use cif_core::ingest::{parse_capture, parse_frame};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

include!("../tests/support/capture.rs");

fn bench(c: &mut Criterion) {
    let text = capture_text("btcusdt_20240808.gz");
    let frames = capture_payloads(&text);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("parse_frame each frame", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for f in &frames {
                ok += usize::from(parse_frame(f, 0, None).is_ok());
            }
            ok
        })
    });
    g.bench_function("parse_capture whole file", |b| {
        b.iter(|| parse_capture(&text).n_frames)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
