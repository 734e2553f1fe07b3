//! The local book rebuilt from the real captures' snapshot + diffs agrees with every
//! bookTicker: at each book state (update id L) the best bid/ask equal those of the latest
//! bookTicker with `u <= L` (bookTicker is pushed on every L1 change, so that ticker is the
//! L1 state at L).

use cif_core::book::{DiffOutcome, LocalBook, SnapshotOutcome};
use cif_core::ingest::{parse_capture, DepthSnapshot, DepthUpdate, Level, Symbol};

include!("support/capture.rs");

fn levels(b: &cif_core::ingest::FrameBatch, start: i64, end: i64) -> (Vec<Level>, Vec<Level>) {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    for i in start as usize..end as usize {
        let l = Level {
            price: b.levels.price[i],
            qty: b.levels.qty[i],
        };
        if b.levels.side[i] > 0 {
            bids.push(l);
        } else {
            asks.push(l);
        }
    }
    (bids, asks)
}

fn check(name: &str, symbol: &str) -> (usize, usize) {
    let b = parse_capture(&capture_text(name));
    assert!(b.errors.frame.is_empty());
    let sym = Symbol::new(symbol).unwrap();
    let snap_frame = b.depth_snapshots.frame[0];
    let (sb, sa) = levels(
        &b,
        b.depth_snapshots.level_start[0],
        b.depth_snapshots.level_end[0],
    );
    let snapshot = DepthSnapshot {
        symbol: sym,
        last_update_id: b.depth_snapshots.last_update_id[0],
        bids: sb,
        asks: sa,
        event_time_ms: None,
        recv_time_ns: 0,
    };
    let t = &b.book_tickers;
    let mut book = LocalBook::new(sym, 10_000);
    let (mut compared, mut agreed) = (0usize, 0usize);
    let mut synced = false;
    let mut ticker = 0usize; // tickers are in u order in the capture
    for i in 0..b.depth_updates.frame.len() {
        if !synced && b.depth_updates.frame[i] > snap_frame {
            let out = book.on_snapshot(&snapshot);
            assert!(
                matches!(out, SnapshotOutcome::Synced { dropped: 2, .. }),
                "{out:?}"
            );
            synced = true;
            assert_eq!(
                book.last_update_id(),
                snapshot.last_update_id.max(book.last_update_id())
            );
        }
        let (bids, asks) = levels(
            &b,
            b.depth_updates.level_start[i],
            b.depth_updates.level_end[i],
        );
        let out = book.on_diff(DepthUpdate {
            symbol: sym,
            event_time_ms: b.depth_updates.event_time_ms[i],
            first_update_id: b.depth_updates.first_update_id[i],
            final_update_id: b.depth_updates.final_update_id[i],
            bids,
            asks,
            recv_time_ns: 0,
        });
        if !synced {
            assert_eq!(out, DiffOutcome::Buffered);
            continue;
        }
        assert_eq!(out, DiffOutcome::Applied, "diff {i}");
        let last = book.last_update_id();
        while ticker + 1 < t.update_id.len() && t.update_id[ticker + 1] <= last {
            ticker += 1;
        }
        if t.update_id[ticker] > last || t.update_id[ticker] <= snapshot.last_update_id {
            continue;
        }
        let (bid, ask) = book.best().expect("synced");
        let (bid, ask) = (bid.unwrap(), ask.unwrap());
        compared += 1;
        if bid.price == t.bid_price[ticker]
            && bid.qty == t.bid_qty[ticker]
            && ask.price == t.ask_price[ticker]
            && ask.qty == t.ask_qty[ticker]
        {
            agreed += 1;
        }
    }
    assert_eq!(book.stats().gaps, 0);
    eprintln!("{name}: book agrees with {agreed}/{compared} bookTicker states");
    (compared, agreed)
}

#[test]
fn btc_book_agrees_with_every_book_ticker() {
    let (compared, agreed) = check("btcusdt_20240808.gz", "BTCUSDT");
    assert!(compared > 3000, "{compared}");
    assert_eq!(agreed, compared, "agreement {agreed}/{compared}");
}

#[test]
fn eth_book_agrees_with_every_book_ticker() {
    let (compared, agreed) = check("ethusdt_20240808.gz", "ETHUSDT");
    assert!(compared > 3000, "{compared}");
    assert_eq!(agreed, compared, "agreement {agreed}/{compared}");
}
