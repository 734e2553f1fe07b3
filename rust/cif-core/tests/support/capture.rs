// Shared by the crate's unit tests, integration tests and benches through `include!`
// (they are separate crates, so a module cannot be shared directly).

/// The decompressed text of a real capture in `shared/data/binance` (or `$CIF_DATA_DIR`).
#[allow(dead_code)]
fn capture_text(name: &str) -> Vec<u8> {
    use std::io::Read;
    let dir = std::env::var_os("CIF_DATA_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/binance"),
        std::path::PathBuf::from,
    );
    let path = dir.join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("real capture {}: {e}", path.display()));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .expect("gzip capture");
    text
}

/// The payload (JSON) of every line of `text`, without the receive-time prefix.
#[allow(dead_code)]
fn capture_payloads(text: &[u8]) -> Vec<&[u8]> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| l.iter().position(|&b| b == b' ').map(|p| &l[p + 1..]))
        .collect()
}
