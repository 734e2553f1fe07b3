//! The streaming engine: state, the per-event update shared by the streaming and batch paths,
//! and the row of features.

use super::book::{depth_imbalance, L1Features, L1};
use super::config::{FeatureConfig, Window};
use super::error::InputError;
use super::input::{check_book, check_seq, check_trade, BookEvent, TradeEvent};
use super::window::{
    Entry, Logs, WindowState, BOOK, BUY, DEPTH, N_SUMS, OFI, PQ, R2, SELL, VB, VS,
};

/// The feature engine of one symbol: feed its events in seq order, read a row of features
/// after every trade (and after every book event with `emit_on_book`).
///
/// Each event costs O(1) amortized per window. The streaming calls ([`on_trade`],
/// [`on_book`]) and the batch call ([`process`]) run the same update and row code, so they
/// give bit-identical rows; [`snapshot`] / [`restore`] carry the full state, so a restored
/// engine continues bit-identically.
///
/// [`on_trade`]: FeatureEngine::on_trade
/// [`on_book`]: FeatureEngine::on_book
/// [`process`]: FeatureEngine::process
/// [`snapshot`]: FeatureEngine::snapshot
/// [`restore`]: FeatureEngine::restore
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    pub(crate) config: FeatureConfig,
    pub(crate) names: Vec<String>,
    /// (k, feature slot) of the depth levels, by increasing k.
    pub(crate) levels: Vec<(usize, usize)>,
    /// w / 1000 of each time window (NaN for count windows), the intensity divisor.
    pub(crate) seconds: Vec<f64>,
    pub(crate) state: State,
    /// The L1 features of `state.book` (derived: not snapshotted).
    l1: L1Features,
    /// Memo of ewma_vol at one clock (a pure function of the state: not snapshotted).
    ewma_memo: Option<(i64, f64)>,
}

/// Everything that evolves with the events (what a snapshot stores).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    /// Events consumed.
    pub events: u64,
    /// Seq of the last event.
    pub last_seq: Option<i64>,
    /// Engine clock: max of event times so far.
    pub clock: Option<i64>,
    /// Trades seen.
    pub trades: u64,
    /// Price of the last trade (NaN before one).
    pub last_price: f64,
    /// Clock at the last trade.
    pub last_trade_stamp: i64,
    /// L1 of the latest book event.
    pub book: Option<L1>,
    /// The last finite mid (NaN before one).
    pub last_mid: f64,
    /// depth_imbalance_top<k> of the latest book event, per depth level.
    pub depth: Vec<f64>,
    /// EWMA variance V.
    pub ewma_v: f64,
    /// Clock of the last V update (t_V).
    pub ewma_t: i64,
    /// Trades and book events still in some window.
    pub logs: Logs,
    /// The windows, in row order.
    pub windows: Vec<WindowState>,
}

impl State {
    fn new(config: &FeatureConfig) -> Self {
        State {
            events: 0,
            last_seq: None,
            clock: None,
            trades: 0,
            last_price: f64::NAN,
            last_trade_stamp: 0,
            book: None,
            last_mid: f64::NAN,
            depth: vec![f64::NAN; config.depth_levels().len()],
            ewma_v: 0.0,
            ewma_t: 0,
            logs: Logs::default(),
            windows: config
                .windows()
                .into_iter()
                .map(|w| WindowState::new(w, 0, 0))
                .collect(),
        }
    }
}

/// Per-window features in a row.
const PER_WINDOW: usize = super::config::WINDOW_FEATURES.len();

impl FeatureEngine {
    /// A fresh engine.
    pub fn new(config: FeatureConfig) -> Self {
        let state = State::new(&config);
        Self::with_state(config, state)
    }

    /// An engine over a given state (fresh or restored).
    pub(crate) fn with_state(config: FeatureConfig, state: State) -> Self {
        let names = config.feature_names();
        // Validated >= 1; beyond usize only on 32-bit targets, where saturating is exact.
        let mut levels: Vec<(usize, usize)> = config
            .depth_levels()
            .iter()
            .enumerate()
            .map(|(slot, &k)| (usize::try_from(k).unwrap_or(usize::MAX), slot))
            .collect();
        levels.sort_unstable();
        let seconds = config
            .windows()
            .into_iter()
            .map(|w| match w {
                Window::Time(ms) => ms as f64 / 1000.0,
                Window::Trades(_) => f64::NAN,
            })
            .collect();
        let l1 = state.book.map_or(L1Features::NONE, |b| b.features());
        FeatureEngine {
            config,
            names,
            levels,
            seconds,
            state,
            l1,
            ewma_memo: None,
        }
    }

    /// The settings.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The feature names, in row order.
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Number of features in a row.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Events consumed so far.
    pub fn events(&self) -> u64 {
        self.state.events
    }

    /// Seq of the last event consumed.
    pub fn last_seq(&self) -> Option<i64> {
        self.state.last_seq
    }

    /// The engine clock (ms): the largest event time so far.
    pub fn clock(&self) -> Option<i64> {
        self.state.clock
    }

    /// Feed one trade and write the row of features after it into `row`.
    ///
    /// On error nothing changes. Panics if `row.len() != self.n_features()`.
    pub fn on_trade(&mut self, trade: &TradeEvent, row: &mut [f64]) -> Result<(), InputError> {
        assert_eq!(row.len(), self.n_features(), "row length");
        check_seq(0, trade.seq, self.state.last_seq)?;
        check_trade(0, trade)?;
        self.apply_trade(trade);
        self.fill_row(row);
        Ok(())
    }

    /// Feed one book event; with `emit_on_book`, write the row after it into `row` and
    /// return true (else `row` is untouched and the result false).
    ///
    /// On error nothing changes. Panics if `row.len() != self.n_features()`.
    pub fn on_book(&mut self, book: &BookEvent<'_>, row: &mut [f64]) -> Result<bool, InputError> {
        assert_eq!(row.len(), self.n_features(), "row length");
        check_seq(0, book.seq, self.state.last_seq)?;
        check_book(0, book)?;
        self.apply_book(book);
        if self.config.emit_on_book() {
            self.fill_row(row);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Advance the clock to max(clock, ts) for a (validated) event; returns the clock and
    /// whether it moved.
    #[inline(always)]
    fn tick(&mut self, seq: i64, ts: i64) -> (i64, bool) {
        let s = &mut self.state;
        let (t, moved) = match s.clock {
            Some(c) => (c.max(ts), ts > c),
            None => {
                s.ewma_t = ts;
                (ts, true)
            }
        };
        s.clock = Some(t);
        s.last_seq = Some(seq);
        s.events += 1;
        (t, moved)
    }

    /// Update the state with a validated trade.
    #[inline]
    pub(crate) fn apply_trade(&mut self, trade: &TradeEvent) {
        let (t, moved) = self.tick(trade.seq, trade.ts);
        let s = &mut self.state;
        s.trades += 1;
        s.last_trade_stamp = t;
        s.last_price = trade.price;
        let mut terms = [0.0; N_SUMS];
        let (slot, volume) = if trade.side > 0 {
            (BUY, VB)
        } else {
            (SELL, VS)
        };
        terms[volume] = trade.qty;
        terms[PQ] = trade.price * trade.qty;
        s.logs.trades.push(Entry {
            stamp: t,
            k: s.trades,
            slot,
            terms,
        });
        self.roll(true, t, moved);
    }

    /// Update the state with a validated book event.
    #[inline]
    pub(crate) fn apply_book(&mut self, book: &BookEvent<'_>) {
        let (t, moved) = self.tick(book.seq, book.ts);
        let s = &mut self.state;
        let l1 = L1 {
            bp: book.bid_price,
            bq: book.bid_qty,
            ap: book.ask_price,
            aq: book.ask_qty,
        };
        let e = s.book.map_or(0.0, |prev| l1.ofi_since(&prev));
        let mid = l1.mid();
        let mut r2 = 0.0;
        if mid.is_finite() {
            if s.last_mid.is_finite() {
                let r = (mid / s.last_mid).ln();
                r2 = r * r;
                let decayed = if s.ewma_v == 0.0 {
                    0.0
                } else {
                    s.ewma_v * decay(t, s.ewma_t, self.config.ewma_half_life_ms())
                };
                s.ewma_v = decayed + r2;
                s.ewma_t = t;
                self.ewma_memo = None;
            }
            s.last_mid = mid;
        }
        depth_imbalance(book.bid_depth, book.ask_depth, &self.levels, &mut s.depth);
        s.book = Some(l1);
        self.l1 = l1.features();
        let mut terms = [0.0; N_SUMS];
        terms[OFI] = e;
        terms[DEPTH] = (l1.bq + l1.aq) / 2.0;
        terms[R2] = r2;
        s.logs.books.push(Entry {
            stamp: t,
            k: s.trades,
            slot: BOOK,
            terms,
        });
        self.roll(false, t, moved);
    }

    /// Advance every window past the entry just appended (a trade or a book event) at
    /// clock `t` (`moved`: the clock advanced); drop what no window needs.
    #[inline]
    fn roll(&mut self, trade: bool, t: i64, moved: bool) {
        let s = &mut self.state;
        let mut first_trade = s.logs.trades.end();
        let mut first_book = s.logs.books.end();
        for w in &mut s.windows {
            // Entries leave a time window only when the clock moves, a count window only
            // when a trade arrives.
            let evict = match w.span {
                Window::Time(_) => moved,
                Window::Trades(_) => trade,
            };
            w.advance(&s.logs, trade, evict, t, s.trades);
            first_trade = first_trade.min(w.trade_head);
            first_book = first_book.min(w.book_head);
        }
        s.logs.trades.trim_to(first_trade);
        s.logs.books.trim_to(first_book);
    }

    /// ewma_vol at the current clock.
    #[inline]
    fn ewma_vol(&mut self) -> f64 {
        let s = &self.state;
        if s.ewma_v == 0.0 {
            return 0.0;
        }
        let t = s.clock.unwrap_or(s.ewma_t);
        if let Some((mt, v)) = self.ewma_memo {
            if mt == t {
                return v;
            }
        }
        let v = (s.ewma_v * decay(t, s.ewma_t, self.config.ewma_half_life_ms())).sqrt();
        self.ewma_memo = Some((t, v));
        v
    }

    /// Write the features of the current state into `row` (length n_features).
    #[inline]
    pub(crate) fn fill_row(&mut self, row: &mut [f64]) {
        let ewma = self.ewma_vol();
        let s = &self.state;
        let n_depth = s.depth.len();
        let (global, per_window) = row.split_at_mut(self.config.n_global());
        let l1 = &self.l1;
        global[0] = s.last_price;
        global[1] = l1.mid;
        global[2] = l1.spread;
        global[3] = l1.spread_bps;
        global[4] = l1.queue_imbalance;
        global[5] = l1.microprice_offset;
        global[6..6 + n_depth].copy_from_slice(&s.depth);
        global[6 + n_depth] = ewma;
        for ((w, out), &secs) in s
            .windows
            .iter()
            .zip(per_window.chunks_exact_mut(PER_WINDOW))
            .zip(&self.seconds)
        {
            window_features(s, w, secs, out);
        }
    }
}

/// 2^(-(t - t_v)/H).
#[inline(always)]
fn decay(t: i64, t_v: i64, half_life: f64) -> f64 {
    let dt = t.saturating_sub(t_v) as f64;
    (-dt / half_life).exp2()
}

/// The eight features of window `w` into `out`.
#[inline(always)]
fn window_features(s: &State, w: &WindowState, secs: f64, out: &mut [f64]) {
    let nan = f64::NAN;
    let n = w.trades();
    let vb = w.trade_sums.value(VB);
    let vs = w.trade_sums.value(VS);
    let q = vb + vs;
    if n == 0 {
        out[0] = nan;
        out[1] = nan;
        out[2] = nan;
    } else {
        out[0] = (w.buys() as f64 - w.sells() as f64) / n as f64;
        out[1] = if q == 0.0 { nan } else { (vb - vs) / q };
        out[2] = vb - vs;
    }
    if w.books() == 0 {
        out[3] = nan;
        out[4] = nan;
        out[5] = nan;
    } else {
        let ofi = w.book_sums.value(OFI);
        let mean_depth = w.book_sums.value(DEPTH) / w.books() as f64;
        out[3] = ofi;
        out[4] = if mean_depth == 0.0 {
            nan
        } else {
            ofi / mean_depth
        };
        out[5] = w.book_sums.value(R2).max(0.0).sqrt();
    }
    out[6] = if n == 0 || q == 0.0 {
        nan
    } else {
        w.trade_sums.value(PQ) / q
    };
    out[7] = match w.span {
        // No trades inside: an empty window, NaN like every other window feature.
        Window::Time(_) if n == 0 => nan,
        Window::Time(_) => n as f64 / secs,
        Window::Trades(_) => match w.oldest_trade_stamp(&s.logs) {
            Some(t0) if n >= 2 && s.last_trade_stamp > t0 => {
                let span = s.last_trade_stamp.saturating_sub(t0);
                (n - 1) as f64 / (span as f64 / 1000.0)
            }
            _ => nan,
        },
    };
}
