//! One side of an order book.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::ingest::Level;

/// A price usable as an ordered map key. Book prices are positive and finite (the parser
/// guarantees it), so the IEEE total order is the numeric order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Price(f64);

impl Eq for Price {}

impl PartialOrd for Price {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Price {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Price levels of one side. Iteration is in price order, never hash order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookSide {
    levels: BTreeMap<Price, f64>,
    is_bid: bool,
}

impl BookSide {
    /// An empty bid side (best = highest price) or ask side (best = lowest).
    pub fn new(is_bid: bool) -> Self {
        BookSide {
            levels: BTreeMap::new(),
            is_bid,
        }
    }

    /// Set a level's quantity; 0 removes it.
    pub fn set(&mut self, level: Level) {
        if level.qty == 0.0 {
            self.levels.remove(&Price(level.price));
        } else {
            self.levels.insert(Price(level.price), level.qty);
        }
    }

    /// Replace everything with `levels`.
    pub fn reset(&mut self, levels: &[Level]) {
        self.levels.clear();
        for &l in levels {
            self.set(l);
        }
    }

    /// Number of price levels.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// True when the side has no levels.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The best level, if any.
    pub fn best(&self) -> Option<Level> {
        let entry = if self.is_bid {
            self.levels.last_key_value()
        } else {
            self.levels.first_key_value()
        };
        entry.map(|(p, &qty)| Level { price: p.0, qty })
    }

    /// The best `k` levels, best first.
    pub fn top(&self, k: usize) -> Vec<Level> {
        let to_level = |(p, &qty): (&Price, &f64)| Level { price: p.0, qty };
        if self.is_bid {
            self.levels.iter().rev().take(k).map(to_level).collect()
        } else {
            self.levels.iter().take(k).map(to_level).collect()
        }
    }

    /// Total quantity over the best `k` levels, summed best first (one fixed order).
    pub fn depth(&self, k: usize) -> f64 {
        self.top(k).iter().map(|l| l.qty).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(price: f64, qty: f64) -> Level {
        Level { price, qty }
    }

    #[test]
    fn best_and_top_follow_side() {
        let mut bids = BookSide::new(true);
        let mut asks = BookSide::new(false);
        for p in [10.0, 12.0, 11.0] {
            bids.set(l(p, 1.0));
            asks.set(l(p, 2.0));
        }
        assert_eq!(bids.best(), Some(l(12.0, 1.0)));
        assert_eq!(asks.best(), Some(l(10.0, 2.0)));
        assert_eq!(bids.top(2), vec![l(12.0, 1.0), l(11.0, 1.0)]);
        assert_eq!(asks.top(5).len(), 3);
        bids.set(l(12.0, 0.0));
        assert_eq!(bids.best(), Some(l(11.0, 1.0)));
        assert_eq!(bids.depth(10), 2.0);
    }
}
