//! Criterion bench of the frame parser over the real btc capture (one frame at a time and
//! the whole capture as a batch). Run: `cargo bench -p cif-core --bench parse`.

use std::io::Read;
use std::path::PathBuf;

use cif_core::ingest::{parse_capture, parse_frame};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn capture() -> Vec<u8> {
    let dir = std::env::var_os("CIF_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance")
        });
    let path = dir.join("btcusdt_20240808.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .expect("gzip capture");
    text
}

fn bench(c: &mut Criterion) {
    let text = capture();
    let frames: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter_map(|l| l.iter().position(|&b| b == b' ').map(|p| &l[p + 1..]))
        .collect();
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
