//! Rolling windows over two shared logs of contributions: one of trades, one of book events.
//!
//! Every event appends one entry to its log; each window is a suffix of each log (from its
//! two heads) plus the rolling sums of those suffixes. Eviction only moves heads forward,
//! so an event costs O(1) amortized per window, and each log drops the prefix no window
//! needs any more. Keeping trades and book events apart means every entry touches only its
//! own three sums, with no branching on the kind of what is evicted.

use super::config::Window;
use super::rolling::RollingSums;

/// Sums per log: trades have Vb, Vs and p*q; book events e, (Qb + Qa)/2 and r^2. The
/// fourth lane is padding (its terms are always 0): four lanes update as two SIMD pairs with
/// matching loads and stores.
pub(crate) const N_SUMS: usize = 4;
/// Index of the buy volume Vb in a trade entry's terms and the trade sums.
pub(crate) const VB: usize = 0;
/// Sell volume Vs.
pub(crate) const VS: usize = 1;
/// Sum of price * qty.
pub(crate) const PQ: usize = 2;
/// Index of the OFI term e in a book entry's terms and the book sums.
pub(crate) const OFI: usize = 0;
/// (Qb + Qa)/2.
pub(crate) const DEPTH: usize = 1;
/// Squared log mid return (0 without a return).
pub(crate) const R2: usize = 2;

/// Count slot of a buy trade.
pub(crate) const BUY: u8 = 0;
/// Count slot of a sell trade.
pub(crate) const SELL: u8 = 1;
/// Count slot of a book event.
pub(crate) const BOOK: u8 = 2;

/// One event's contribution: its terms of its log's three sums (a buy has
/// `[qty, 0, p*q, 0]`, a sell `[0, qty, p*q, 0]`, a book event `[e, (Qb + Qa)/2, r^2, 0]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry {
    /// The engine clock at arrival (ms).
    pub stamp: i64,
    /// Trades seen so far, including this one if it is a trade.
    pub k: u64,
    /// Count slot: [`BUY`], [`SELL`] or [`BOOK`].
    pub slot: u8,
    /// Terms of the log's sums.
    pub terms: [f64; N_SUMS],
}

/// Entries still inside some window, oldest first, addressed by absolute index.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Log {
    /// Absolute index of `items[0]`.
    base: u64,
    /// The entries; `items[..dead]` are no longer needed (dropped in bulk).
    items: Vec<Entry>,
    /// How many leading items no window needs.
    dead: usize,
}

impl Log {
    /// A log whose first entry has absolute index `base`.
    pub fn new(base: u64, items: Vec<Entry>) -> Self {
        Log {
            base,
            items,
            dead: 0,
        }
    }

    /// Absolute index of the oldest entry kept.
    pub fn first(&self) -> u64 {
        self.base + self.dead as u64
    }

    /// One past the newest absolute index.
    #[inline(always)]
    pub fn end(&self) -> u64 {
        self.base + self.items.len() as u64
    }

    /// The entries kept, oldest first.
    pub fn live(&self) -> &[Entry] {
        &self.items[self.dead..]
    }

    /// The entry at absolute index `i` (`first() <= i < end()`).
    #[inline(always)]
    pub fn at(&self, i: u64) -> &Entry {
        &self.items[(i - self.base) as usize]
    }

    /// The newest entry, if any.
    #[inline(always)]
    pub fn last(&self) -> Option<&Entry> {
        self.items.last()
    }

    /// Append an entry.
    #[inline(always)]
    pub fn push(&mut self, e: Entry) {
        self.items.push(e);
    }

    /// Forget everything before absolute index `first` (amortized O(1): the buffer is
    /// compacted once the dead prefix outweighs the live part).
    #[inline]
    pub fn trim_to(&mut self, first: u64) {
        self.dead = (first - self.base) as usize;
        if self.dead >= 1024 && self.dead * 2 >= self.items.len() {
            self.items.drain(..self.dead);
            self.base += self.dead as u64;
            self.dead = 0;
        }
    }
}

/// The trade log and the book-event log.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Logs {
    /// Trades.
    pub trades: Log,
    /// Book events.
    pub books: Log,
}

/// One window: its span, its suffix of each log, counts and sums.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowState {
    /// Time or trade-count span.
    pub span: Window,
    /// Absolute index of the oldest trade inside.
    pub trade_head: u64,
    /// Absolute index of the oldest book event inside.
    pub book_head: u64,
    /// Entries inside, per count slot (buys, sells, book events).
    pub counts: [u64; 3],
    /// Removals since the sums were last recomputed from the contents.
    pub removals: u64,
    /// Sums over the trades inside: Vb, Vs, p*q.
    pub trade_sums: RollingSums<N_SUMS>,
    /// Sums over the book events inside: e, (Qb + Qa)/2, r^2.
    pub book_sums: RollingSums<N_SUMS>,
}

/// Recompute once removals since the last recompute exceed max(len, this).
pub(crate) const MIN_RECOMPUTE_REMOVALS: u64 = 64;

/// What has left a window at the current event: entries stamped at or before `Stamp(edge)`
/// (time windows: inside is `(t - w, t]`), or counted at or before `K(edge)` (count windows:
/// inside is `k > T - N`, i.e. trades `k > T - N` and book events `k >= T - N + 1`).
#[derive(Debug, Clone, Copy)]
enum Edge {
    /// Nothing has left (t - w underflows, or fewer than N trades were seen).
    None,
    /// Entries with `stamp <= edge` have left.
    Stamp(i64),
    /// Entries with `k <= edge` have left.
    K(u64),
}

impl Edge {
    #[inline(always)]
    fn of(span: Window, t: i64, trades: u64) -> Edge {
        match span {
            Window::Time(w) => t.checked_sub(w).map_or(Edge::None, Edge::Stamp),
            Window::Trades(n) => trades.checked_sub(n).map_or(Edge::None, Edge::K),
        }
    }
}

/// Move `head` past the entries of `log` that have left the window; returns how many.
#[inline(always)]
fn evict(
    edge: Edge,
    head: &mut u64,
    log: &Log,
    sums: &mut RollingSums<N_SUMS>,
    counts: &mut [u64; 3],
) -> u64 {
    let start = (*head - log.base) as usize;
    let rest = &log.items[start..];
    let gone = match edge {
        Edge::None => 0,
        Edge::Stamp(edge) => rest.iter().take_while(|e| e.stamp <= edge).count(),
        Edge::K(edge) => rest.iter().take_while(|e| e.k <= edge).count(),
    };
    for e in &rest[..gone] {
        sums.remove(&e.terms);
        counts[usize::from(e.slot)] -= 1;
    }
    *head += gone as u64;
    gone as u64
}

impl WindowState {
    /// An empty window whose heads are at the ends of the logs.
    pub fn new(span: Window, trade_head: u64, book_head: u64) -> Self {
        WindowState {
            span,
            trade_head,
            book_head,
            counts: [0; 3],
            removals: 0,
            trade_sums: RollingSums::default(),
            book_sums: RollingSums::default(),
        }
    }

    /// Entries inside.
    #[inline(always)]
    pub fn len(&self) -> u64 {
        self.counts[0] + self.counts[1] + self.counts[2]
    }

    /// Buy trades inside.
    #[inline(always)]
    pub fn buys(&self) -> u64 {
        self.counts[usize::from(BUY)]
    }

    /// Sell trades inside.
    #[inline(always)]
    pub fn sells(&self) -> u64 {
        self.counts[usize::from(SELL)]
    }

    /// Book events inside.
    #[inline(always)]
    pub fn books(&self) -> u64 {
        self.counts[usize::from(BOOK)]
    }

    /// Trades inside.
    #[inline(always)]
    pub fn trades(&self) -> u64 {
        self.buys() + self.sells()
    }

    /// Account for the newest entry of one log (already appended; `trade` says which):
    /// evict what has left at clock `t` with `trades` trades seen (unless `evict_now` is
    /// false: nothing can have left), add the entry, and recompute the sums from the
    /// contents when removals exceed max(len, 64).
    #[inline(always)]
    pub fn advance(&mut self, logs: &Logs, trade: bool, evict_now: bool, t: i64, trades: u64) {
        let edge = if evict_now {
            Edge::of(self.span, t, trades)
        } else {
            Edge::None
        };
        let mut removed = evict(
            edge,
            &mut self.trade_head,
            &logs.trades,
            &mut self.trade_sums,
            &mut self.counts,
        );
        removed += evict(
            edge,
            &mut self.book_head,
            &logs.books,
            &mut self.book_sums,
            &mut self.counts,
        );
        self.removals += removed;
        let (log, sums) = if trade {
            (&logs.trades, &mut self.trade_sums)
        } else {
            (&logs.books, &mut self.book_sums)
        };
        if let Some(e) = log.last() {
            sums.add(&e.terms);
            self.counts[usize::from(e.slot)] += 1;
        }
        if self.removals > self.len().max(MIN_RECOMPUTE_REMOVALS) {
            self.recompute(logs);
        }
    }

    /// Recompute counts and sums from the contents, oldest to newest.
    #[cold]
    pub fn recompute(&mut self, logs: &Logs) {
        let mut fresh = WindowState::new(self.span, self.trade_head, self.book_head);
        for i in self.trade_head..logs.trades.end() {
            let e = logs.trades.at(i);
            fresh.trade_sums.add(&e.terms);
            fresh.counts[usize::from(e.slot)] += 1;
        }
        for i in self.book_head..logs.books.end() {
            let e = logs.books.at(i);
            fresh.book_sums.add(&e.terms);
            fresh.counts[usize::from(e.slot)] += 1;
        }
        *self = fresh;
    }

    /// Stamp of the oldest trade inside, if any.
    #[inline(always)]
    pub fn oldest_trade_stamp(&self, logs: &Logs) -> Option<i64> {
        (self.trade_head < logs.trades.end()).then(|| logs.trades.at(self.trade_head).stamp)
    }
}
