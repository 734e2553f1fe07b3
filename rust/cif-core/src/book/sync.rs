//! Binance's local-order-book procedure, as a state machine per symbol.
//!
//! 1. Buffer diffs until a REST snapshot arrives.
//! 2. A snapshot older than the first buffered diff (`lastUpdateId < U`) is refused: fetch
//!    another.
//! 3. Drop buffered diffs with `u <= lastUpdateId`; the first remaining one straddles
//!    `lastUpdateId + 1`.
//! 4. From then on a diff with `u <= last` is stale (dropped), one with `U > last + 1` is a
//!    break (the book is discarded and resynced), anything else is applied (`U == last + 1`
//!    normally; an overlap is harmless because diffs carry absolute quantities).

use std::collections::VecDeque;

use super::side::BookSide;
use crate::ingest::{DepthSnapshot, DepthUpdate, Level, Symbol};

/// Whether the book can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Buffering diffs until a usable snapshot arrives; the book is empty.
    AwaitingSnapshot,
    /// The book equals the exchange's at `last_update_id`.
    Synced,
}

/// What a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// The book is synced; `replayed` buffered diffs were applied, `dropped` were stale.
    Synced {
        /// Buffered diffs applied on top of the snapshot.
        replayed: usize,
        /// Buffered diffs older than the snapshot.
        dropped: usize,
    },
    /// The snapshot predates the first buffered diff: fetch a newer one.
    TooOld {
        /// The snapshot's `lastUpdateId`.
        last_update_id: i64,
        /// `U` of the first buffered diff.
        first_buffered: i64,
    },
    /// Replaying the buffer hit a break: the book is waiting for another snapshot.
    BrokenChain,
    /// The snapshot is for another symbol; ignored.
    WrongSymbol,
}

/// What a diff did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Applied; the book is at the diff's `u`.
    Applied,
    /// Kept until a snapshot arrives.
    Buffered,
    /// Already contained in the book (`u <= last`); dropped.
    Stale,
    /// `U > last + 1`: updates were missed. The book was discarded and this diff starts a
    /// new buffer; fetch a snapshot.
    Gap {
        /// The update id the book needed next.
        expected: i64,
        /// The diff's `U`.
        got: i64,
    },
    /// The diff is for another symbol; ignored.
    WrongSymbol,
}

/// Counters of what the book has seen, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookStats {
    /// Diffs applied.
    pub applied: u64,
    /// Diffs dropped as stale.
    pub stale: u64,
    /// Chain breaks detected (each forces a resync).
    pub gaps: u64,
    /// Snapshots that synced the book.
    pub syncs: u64,
    /// Snapshots refused as too old.
    pub snapshots_too_old: u64,
    /// Buffered diffs dropped because the buffer was full.
    pub buffer_overflow: u64,
}

/// A symbol's local book, kept in sync with the exchange by the Binance procedure.
#[derive(Debug, Clone)]
pub struct LocalBook {
    symbol: Symbol,
    bids: BookSide,
    asks: BookSide,
    state: SyncState,
    last_update_id: i64,
    buffer: VecDeque<DepthUpdate>,
    max_buffer: usize,
    stats: BookStats,
}

impl LocalBook {
    /// An empty book for `symbol`, buffering at most `max_buffer` diffs while unsynced.
    pub fn new(symbol: Symbol, max_buffer: usize) -> Self {
        LocalBook {
            symbol,
            bids: BookSide::new(true),
            asks: BookSide::new(false),
            state: SyncState::AwaitingSnapshot,
            last_update_id: -1,
            buffer: VecDeque::new(),
            max_buffer: max_buffer.max(1),
            stats: BookStats::default(),
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    /// The symbol, by reference (its text borrows from the book).
    pub fn symbol_ref(&self) -> &Symbol {
        &self.symbol
    }

    /// Sync state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// The update id the book is at (-1 before the first sync).
    pub fn last_update_id(&self) -> i64 {
        self.last_update_id
    }

    /// Counters.
    pub fn stats(&self) -> BookStats {
        self.stats
    }

    /// Diffs waiting for a snapshot.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// `U` of the oldest buffered diff: a snapshot must be at least this new.
    pub fn first_buffered_update_id(&self) -> Option<i64> {
        self.buffer.front().map(|d| d.first_update_id)
    }

    /// Bids (only meaningful while synced).
    pub fn bids(&self) -> &BookSide {
        &self.bids
    }

    /// Asks (only meaningful while synced).
    pub fn asks(&self) -> &BookSide {
        &self.asks
    }

    /// Best bid and best ask while synced.
    pub fn best(&self) -> Option<(Option<Level>, Option<Level>)> {
        (self.state == SyncState::Synced).then(|| (self.bids.best(), self.asks.best()))
    }

    fn discard(&mut self) {
        self.bids.reset(&[]);
        self.asks.reset(&[]);
        self.state = SyncState::AwaitingSnapshot;
    }

    fn apply(&mut self, d: &DepthUpdate) {
        for &l in &d.bids {
            self.bids.set(l);
        }
        for &l in &d.asks {
            self.asks.set(l);
        }
        self.last_update_id = d.final_update_id;
        self.stats.applied += 1;
    }

    fn push_buffer(&mut self, d: DepthUpdate) {
        if self.buffer.len() == self.max_buffer {
            self.buffer.pop_front();
            self.stats.buffer_overflow += 1;
        }
        self.buffer.push_back(d);
    }

    /// Feed one diff.
    pub fn on_diff(&mut self, d: DepthUpdate) -> DiffOutcome {
        if d.symbol != self.symbol {
            return DiffOutcome::WrongSymbol;
        }
        match self.state {
            SyncState::AwaitingSnapshot => {
                self.push_buffer(d);
                DiffOutcome::Buffered
            }
            SyncState::Synced => self.on_synced_diff(d),
        }
    }

    fn on_synced_diff(&mut self, d: DepthUpdate) -> DiffOutcome {
        if d.final_update_id <= self.last_update_id {
            self.stats.stale += 1;
            return DiffOutcome::Stale;
        }
        let expected = self.last_update_id + 1;
        if d.first_update_id > expected {
            self.stats.gaps += 1;
            let got = d.first_update_id;
            self.discard();
            self.push_buffer(d);
            return DiffOutcome::Gap { expected, got };
        }
        self.apply(&d);
        DiffOutcome::Applied
    }

    /// Feed a REST snapshot (after buffering diffs from the stream).
    pub fn on_snapshot(&mut self, s: &DepthSnapshot) -> SnapshotOutcome {
        if s.symbol != self.symbol {
            return SnapshotOutcome::WrongSymbol;
        }
        if let Some(first) = self.first_buffered_update_id() {
            if s.last_update_id < first {
                self.stats.snapshots_too_old += 1;
                return SnapshotOutcome::TooOld {
                    last_update_id: s.last_update_id,
                    first_buffered: first,
                };
            }
        }
        let mut dropped = 0;
        while self
            .buffer
            .front()
            .is_some_and(|d| d.final_update_id <= s.last_update_id)
        {
            self.buffer.pop_front();
            dropped += 1;
        }
        self.bids.reset(&s.bids);
        self.asks.reset(&s.asks);
        self.last_update_id = s.last_update_id;
        self.state = SyncState::Synced;
        self.stats.syncs += 1;
        let pending: Vec<DepthUpdate> = self.buffer.drain(..).collect();
        let mut replayed = 0;
        let mut iter = pending.into_iter();
        for d in iter.by_ref() {
            match self.on_synced_diff(d) {
                DiffOutcome::Applied => replayed += 1,
                DiffOutcome::Gap { .. } => {
                    // The breaking diff now heads the buffer; keep the rest behind it.
                    for rest in iter {
                        self.push_buffer(rest);
                    }
                    return SnapshotOutcome::BrokenChain;
                }
                _ => {}
            }
        }
        SnapshotOutcome::Synced { replayed, dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    fn diff(first: i64, last: i64, bid: (f64, f64)) -> DepthUpdate {
        DepthUpdate {
            symbol: sym(),
            event_time_ms: 0,
            first_update_id: first,
            final_update_id: last,
            bids: vec![Level {
                price: bid.0,
                qty: bid.1,
            }],
            asks: vec![],
            recv_time_ns: 0,
        }
    }

    fn snap(last: i64) -> DepthSnapshot {
        DepthSnapshot {
            symbol: sym(),
            last_update_id: last,
            bids: vec![Level {
                price: 100.0,
                qty: 1.0,
            }],
            asks: vec![Level {
                price: 101.0,
                qty: 1.0,
            }],
            event_time_ms: None,
            recv_time_ns: 0,
        }
    }

    #[test]
    fn binance_procedure() {
        let mut b = LocalBook::new(sym(), 100);
        assert_eq!(b.on_diff(diff(5, 7, (99.0, 1.0))), DiffOutcome::Buffered);
        assert_eq!(b.on_diff(diff(8, 10, (100.5, 2.0))), DiffOutcome::Buffered);
        assert_eq!(b.on_diff(diff(11, 12, (100.0, 0.0))), DiffOutcome::Buffered);
        // Snapshot older than the first buffered diff: refused.
        assert!(matches!(
            b.on_snapshot(&snap(3)),
            SnapshotOutcome::TooOld { .. }
        ));
        // Snapshot at 9: [5,7] dropped, [8,10] straddles, [11,12] continues.
        assert_eq!(
            b.on_snapshot(&snap(9)),
            SnapshotOutcome::Synced {
                replayed: 2,
                dropped: 1
            }
        );
        assert_eq!(b.last_update_id(), 12);
        let (bid, ask) = b.best().unwrap();
        assert_eq!(bid.unwrap().price, 100.5);
        assert_eq!(ask.unwrap().price, 101.0);
        assert_eq!(b.on_diff(diff(11, 12, (1.0, 1.0))), DiffOutcome::Stale);
        assert_eq!(b.on_diff(diff(13, 13, (100.6, 1.0))), DiffOutcome::Applied);
        assert_eq!(
            b.on_diff(diff(15, 16, (1.0, 1.0))),
            DiffOutcome::Gap {
                expected: 14,
                got: 15
            }
        );
        assert_eq!(b.state(), SyncState::AwaitingSnapshot);
        assert_eq!(b.best(), None);
        assert_eq!(b.buffered(), 1);
        assert_eq!(b.stats().gaps, 1);
    }

    #[test]
    fn overlap_is_applied() {
        let mut b = LocalBook::new(sym(), 100);
        b.on_snapshot(&snap(10));
        assert_eq!(b.on_diff(diff(8, 12, (100.2, 1.0))), DiffOutcome::Applied);
        assert_eq!(b.last_update_id(), 12);
    }

    #[test]
    fn buffer_is_bounded() {
        let mut b = LocalBook::new(sym(), 2);
        for i in 0..5 {
            b.on_diff(diff(i * 2, i * 2 + 1, (1.0, 1.0)));
        }
        assert_eq!(b.buffered(), 2);
        assert_eq!(b.stats().buffer_overflow, 3);
        assert_eq!(b.first_buffered_update_id(), Some(6));
    }
}
