//! Trade-id continuity: Binance trade ids are consecutive per symbol, so a jump means lost
//! trades (a reconnect, a dropped frame, downtime). The sequencer releases trades strictly
//! in id order: live trades behind a gap are held until the missing ids are backfilled from
//! REST (or the caller gives up on them), and duplicates (overlapping connections,
//! re-sent frames, backfill rows already seen) are dropped.

use std::collections::BTreeMap;

use super::events::Trade;

/// A trade released in id order, and whether it came from a REST backfill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Released {
    /// The trade.
    pub trade: Trade,
    /// True if it was filled in from REST rather than received live.
    pub backfilled: bool,
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequencerStats {
    /// Trades released (live and backfilled).
    pub released: u64,
    /// Trades released from backfill.
    pub backfilled: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Gaps detected (each a jump in live ids).
    pub gaps: u64,
    /// Ids given up on (never received nor backfilled).
    pub lost: u64,
}

/// Releases a symbol's trades in consecutive id order.
#[derive(Debug, Clone)]
pub struct TradeSequencer {
    next_id: Option<i64>,
    held: BTreeMap<i64, (Trade, bool)>,
    max_held: usize,
    stats: SequencerStats,
}

impl TradeSequencer {
    /// A sequencer resuming after `last_id` (the last stored trade id), or starting at the
    /// first trade it sees. At most `max_held` trades wait behind a gap; beyond that the
    /// oldest missing ids are given up on.
    pub fn new(last_id: Option<i64>, max_held: usize) -> Self {
        TradeSequencer {
            next_id: last_id.map(|id| id + 1),
            held: BTreeMap::new(),
            max_held: max_held.max(1),
            stats: SequencerStats::default(),
        }
    }

    /// The next id to release, once known.
    pub fn next_id(&self) -> Option<i64> {
        self.next_id
    }

    /// Counters.
    pub fn stats(&self) -> SequencerStats {
        self.stats
    }

    /// Trades waiting behind a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The missing id range `[from, to]` to backfill, if trades are waiting behind one.
    pub fn missing(&self) -> Option<(i64, i64)> {
        let next = self.next_id?;
        let (&first_held, _) = self.held.first_key_value()?;
        (first_held > next).then_some((next, first_held - 1))
    }

    fn release_ready(&mut self, out: &mut Vec<Released>) {
        let Some(mut next) = self.next_id else {
            return;
        };
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != next {
                break;
            }
            let (trade, backfilled) = entry.remove();
            self.stats.released += 1;
            if backfilled {
                self.stats.backfilled += 1;
            }
            out.push(Released { trade, backfilled });
            next += 1;
        }
        self.next_id = Some(next);
    }

    fn offer(&mut self, t: Trade, backfilled: bool) -> bool {
        let next = *self.next_id.get_or_insert(t.trade_id);
        if t.trade_id < next || self.held.contains_key(&t.trade_id) {
            self.stats.duplicates += 1;
            return false;
        }
        self.held.insert(t.trade_id, (t, backfilled));
        true
    }

    fn enforce_bound(&mut self, out: &mut Vec<Released>) {
        while self.held.len() > self.max_held {
            // Give up on the hole in front of the oldest held trade.
            let (&first, _) = self.held.first_key_value().expect("non-empty");
            self.skip_to(first, out);
        }
    }

    /// A trade received live. Returns what can now be released, in id order.
    pub fn push(&mut self, t: Trade) -> Vec<Released> {
        let mut out = Vec::new();
        let before_gap = self.missing();
        if self.offer(t, false) {
            if let (None, Some(_)) = (before_gap, self.missing()) {
                self.stats.gaps += 1;
            }
            self.release_ready(&mut out);
            self.enforce_bound(&mut out);
        }
        out
    }

    /// Trades from a REST backfill (`historicalTrades`), any order. Returns what can now be
    /// released.
    pub fn fill(&mut self, trades: &[Trade]) -> Vec<Released> {
        let mut out = Vec::new();
        if self.next_id.is_none() {
            return out;
        }
        for &t in trades {
            self.offer(t, true);
        }
        self.release_ready(&mut out);
        self.enforce_bound(&mut out);
        out
    }

    /// Give up on every missing id below `id` (e.g. backfill no longer serves them) and
    /// release what follows. The skipped ids are counted as lost.
    pub fn skip_to(&mut self, id: i64, out: &mut Vec<Released>) {
        if let Some(next) = self.next_id {
            if id > next {
                let known: usize = self.held.range(next..id).count();
                self.stats.lost += (id - next) as u64 - known as u64;
                // Held trades below `id` are still released, in order.
                let below: Vec<i64> = self.held.range(next..id).map(|(&k, _)| k).collect();
                for k in below {
                    if let Some((trade, backfilled)) = self.held.remove(&k) {
                        self.stats.released += 1;
                        if backfilled {
                            self.stats.backfilled += 1;
                        }
                        out.push(Released { trade, backfilled });
                    }
                }
                self.next_id = Some(id);
            }
        }
        self.release_ready(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Side, Symbol};

    fn t(id: i64) -> Trade {
        Trade {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            trade_id: id,
            event_time_ms: id,
            trade_time_ms: id,
            price: 1.0,
            qty: 1.0,
            side: Side::Buy,
            is_buyer_maker: false,
            recv_time_ns: 0,
        }
    }

    fn ids(r: &[Released]) -> Vec<(i64, bool)> {
        r.iter().map(|x| (x.trade.trade_id, x.backfilled)).collect()
    }

    #[test]
    fn consecutive_trades_pass_straight_through() {
        let mut s = TradeSequencer::new(None, 100);
        assert_eq!(ids(&s.push(t(10))), vec![(10, false)]);
        assert_eq!(ids(&s.push(t(11))), vec![(11, false)]);
        assert_eq!(ids(&s.push(t(11))), vec![]);
        assert_eq!(s.stats().duplicates, 1);
    }

    #[test]
    fn gap_holds_until_backfilled_in_id_order() {
        let mut s = TradeSequencer::new(Some(9), 100);
        assert_eq!(ids(&s.push(t(10))), vec![(10, false)]);
        assert!(s.push(t(14)).is_empty());
        assert!(s.push(t(15)).is_empty());
        assert_eq!(s.missing(), Some((11, 13)));
        assert_eq!(s.stats().gaps, 1);
        let out = s.fill(&[t(13), t(11), t(12), t(14), t(10)]);
        assert_eq!(
            ids(&out),
            vec![(11, true), (12, true), (13, true), (14, false), (15, false)]
        );
        assert_eq!(s.missing(), None);
        assert_eq!(s.stats().backfilled, 3);
        assert_eq!(s.stats().duplicates, 2);
    }

    #[test]
    fn restart_resumes_after_the_last_stored_id() {
        let mut s = TradeSequencer::new(Some(100), 100);
        assert!(s.push(t(105)).is_empty());
        assert_eq!(s.missing(), Some((101, 104)));
        assert!(s.push(t(99)).is_empty());
    }

    #[test]
    fn giving_up_counts_lost_ids_and_bounds_memory() {
        let mut s = TradeSequencer::new(Some(0), 3);
        s.push(t(5));
        s.push(t(6));
        s.push(t(7));
        let out = s.push(t(8)); // a fourth held trade exceeds the bound
        assert_eq!(
            ids(&out),
            vec![(5, false), (6, false), (7, false), (8, false)]
        );
        assert_eq!(s.stats().lost, 4);
        let mut out = Vec::new();
        s.push(t(12));
        s.skip_to(12, &mut out);
        assert_eq!(ids(&out), vec![(12, false)]);
        assert_eq!(s.stats().lost, 7);
    }
}
