//! Snapshot / restore: the full engine (settings and state) in a versioned little-endian
//! binary format, so that a restored engine continues bit-identically.
//!
//! Layout (version 1; integers and floats little-endian, floats as their IEEE bits):
//!
//! ```text
//! magic "CIFFEAT\0" (8 bytes), version u32
//! config: time windows (u32 count, i64 each), count windows (same), depth levels (same),
//!         ewma_half_life_ms f64, emit_on_book u8
//! state:  events u64, last_seq (u8 flag, i64), clock (u8 flag, i64), trades u64,
//!         last_price f64, last_trade_stamp i64,
//!         book (u8 flag, bid_price, bid_qty, ask_price, ask_qty f64), last_mid f64,
//!         depth imbalance f64 per depth level, ewma_v f64, ewma_t i64,
//!         trade log, then book log: first index u64, count u64, then per entry
//!           stamp i64, k u64, slot u8 (0 buy, 1 sell, 2 book), four terms f64
//!           (trades: Vb, Vs, p*q, 0; book events: e, (Qb + Qa)/2, r^2, 0)
//!         per window (row order): trade head u64, book head u64, removals u64, then
//!           (s, c) f64 of each lane of its trade sums (Vb, Vs, p*q, pad), then of its book
//!           sums (e, depth, r^2, pad)
//! ```
//!
//! Counts (per window and non-zero terms per sum) are derived from the logs on restore.

use std::fmt;

use super::book::L1;
use super::config::{ConfigError, FeatureConfig};
use super::engine::{FeatureEngine, State};
use super::rolling::RollingSums;
use super::window::{Entry, Log, Logs, WindowState, BOOK, BUY, N_SUMS, SELL};

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CIFFEAT\0";
/// The format version written by [`FeatureEngine::snapshot`].
pub const SNAPSHOT_VERSION: u32 = 1;

/// Bytes per stored log entry.
const ENTRY_BYTES: usize = 8 + 8 + 1 + N_SUMS * 8;

/// A snapshot that cannot be restored.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotError {
    /// The data does not start with [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// A version this build does not read.
    UnsupportedVersion(u32),
    /// The data ends early.
    Truncated,
    /// The stored settings are invalid.
    Config(ConfigError),
    /// The stored state is inconsistent.
    Corrupt(&'static str),
    /// Bytes follow the end of the snapshot.
    TrailingBytes(usize),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => f.write_str("not a feature-engine snapshot (bad magic)"),
            SnapshotError::UnsupportedVersion(v) => write!(
                f,
                "unsupported feature-engine snapshot version {v} (this build reads {SNAPSHOT_VERSION})"
            ),
            SnapshotError::Truncated => f.write_str("feature-engine snapshot is truncated"),
            SnapshotError::Config(e) => write!(f, "feature-engine snapshot has invalid settings: {e}"),
            SnapshotError::Corrupt(what) => write!(f, "feature-engine snapshot is corrupt: {what}"),
            SnapshotError::TrailingBytes(n) => {
                write!(f, "feature-engine snapshot has {n} trailing bytes")
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Little-endian writer.
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        self.u8(u8::from(v.is_some()));
        self.i64(v.unwrap_or(0));
    }
    fn i64s(&mut self, vs: &[i64]) {
        // Settings lists come from a caller; beyond u32::MAX entries is not a real config.
        self.u32(u32::try_from(vs.len()).expect("settings list too long"));
        for &v in vs {
            self.i64(v);
        }
    }
}

/// Little-endian reader over untrusted bytes.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or(SnapshotError::Truncated)?;
        self.pos += N;
        Ok(bytes.try_into().expect("length checked"))
    }
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64, SnapshotError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn flag(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::Corrupt("flag byte is not 0 or 1")),
        }
    }
    fn opt_i64(&mut self) -> Result<Option<i64>, SnapshotError> {
        let some = self.flag()?;
        let v = self.i64()?;
        Ok(some.then_some(v))
    }
    fn i64s(&mut self) -> Result<Vec<i64>, SnapshotError> {
        let n = self.u32()? as usize;
        if self.remaining() / 8 < n {
            return Err(SnapshotError::Truncated);
        }
        (0..n).map(|_| self.i64()).collect()
    }
}

impl Writer {
    fn log(&mut self, log: &Log) {
        self.u64(log.first());
        self.u64(log.live().len() as u64);
        for e in log.live() {
            self.i64(e.stamp);
            self.u64(e.k);
            self.u8(e.slot);
            for &x in &e.terms {
                self.f64(x);
            }
        }
    }
}

impl Reader<'_> {
    /// A log whose entries all have a slot in `slots`.
    fn log(&mut self, slots: &[u8]) -> Result<Log, SnapshotError> {
        let first = self.u64()?;
        let n = self.u64()?;
        if (self.remaining() / ENTRY_BYTES) < usize::try_from(n).unwrap_or(usize::MAX) {
            return Err(SnapshotError::Truncated);
        }
        if first.checked_add(n).is_none() {
            return Err(SnapshotError::Corrupt("log index overflows"));
        }
        let mut items = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let stamp = self.i64()?;
            let k = self.u64()?;
            let slot = self.u8()?;
            if !slots.contains(&slot) {
                return Err(SnapshotError::Corrupt("log entry of the wrong kind"));
            }
            let mut terms = [0.0; N_SUMS];
            for x in &mut terms {
                *x = self.f64()?;
            }
            items.push(Entry {
                stamp,
                k,
                slot,
                terms,
            });
        }
        Ok(Log::new(first, items))
    }

    fn parts(&mut self) -> Result<[(f64, f64); N_SUMS], SnapshotError> {
        let mut parts = [(0.0, 0.0); N_SUMS];
        for p in &mut parts {
            *p = (self.f64()?, self.f64()?);
        }
        Ok(parts)
    }
}

impl FeatureEngine {
    /// The full engine (settings and state) as bytes; see the module docs for the layout.
    pub fn snapshot(&self) -> Vec<u8> {
        let s = &self.state;
        let c = &self.config;
        let entries = s.logs.trades.live().len() + s.logs.books.live().len();
        let mut w = Writer(Vec::with_capacity(
            256 + entries * ENTRY_BYTES + s.windows.len() * 128,
        ));
        w.0.extend_from_slice(&SNAPSHOT_MAGIC);
        w.u32(SNAPSHOT_VERSION);
        w.i64s(c.time_windows_ms());
        w.i64s(c.count_windows());
        w.i64s(c.depth_levels());
        w.f64(c.ewma_half_life_ms());
        w.u8(u8::from(c.emit_on_book()));

        w.u64(s.events);
        w.opt_i64(s.last_seq);
        w.opt_i64(s.clock);
        w.u64(s.trades);
        w.f64(s.last_price);
        w.i64(s.last_trade_stamp);
        w.u8(u8::from(s.book.is_some()));
        let book = s.book.unwrap_or(L1 {
            bp: f64::NAN,
            bq: 0.0,
            ap: f64::NAN,
            aq: 0.0,
        });
        for v in [book.bp, book.bq, book.ap, book.aq, s.last_mid] {
            w.f64(v);
        }
        for &d in &s.depth {
            w.f64(d);
        }
        w.f64(s.ewma_v);
        w.i64(s.ewma_t);
        w.log(&s.logs.trades);
        w.log(&s.logs.books);
        for win in &s.windows {
            w.u64(win.trade_head);
            w.u64(win.book_head);
            w.u64(win.removals);
            for (a, b) in win
                .trade_sums
                .parts()
                .into_iter()
                .chain(win.book_sums.parts())
            {
                w.f64(a);
                w.f64(b);
            }
        }
        w.0
    }

    /// An engine from [`snapshot`](FeatureEngine::snapshot) bytes; it continues exactly as
    /// the snapshotted engine would.
    pub fn restore(data: &[u8]) -> Result<FeatureEngine, SnapshotError> {
        let mut r = Reader { data, pos: 0 };
        if r.take::<8>().ok() != Some(SNAPSHOT_MAGIC) {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let time = r.i64s()?;
        let count = r.i64s()?;
        let depth_levels = r.i64s()?;
        let half_life = r.f64()?;
        let emit_on_book = r.flag()?;
        let config = FeatureConfig::new(time, count, depth_levels, half_life, emit_on_book)
            .map_err(SnapshotError::Config)?;

        let events = r.u64()?;
        let last_seq = r.opt_i64()?;
        let clock = r.opt_i64()?;
        let trades = r.u64()?;
        let last_price = r.f64()?;
        let last_trade_stamp = r.i64()?;
        let has_book = r.flag()?;
        let l1 = L1 {
            bp: r.f64()?,
            bq: r.f64()?,
            ap: r.f64()?,
            aq: r.f64()?,
        };
        let last_mid = r.f64()?;
        let depth = (0..config.depth_levels().len())
            .map(|_| r.f64())
            .collect::<Result<Vec<_>, _>>()?;
        let ewma_v = r.f64()?;
        let ewma_t = r.i64()?;
        let logs = Logs {
            trades: r.log(&[BUY, SELL])?,
            books: r.log(&[BOOK])?,
        };
        let inside = |head: u64, log: &Log| head >= log.first() && head <= log.end();
        let mut windows = Vec::new();
        for span in config.windows() {
            let trade_head = r.u64()?;
            let book_head = r.u64()?;
            if !inside(trade_head, &logs.trades) || !inside(book_head, &logs.books) {
                return Err(SnapshotError::Corrupt("window head outside its log"));
            }
            let removals = r.u64()?;
            let trade_parts = r.parts()?;
            let book_parts = r.parts()?;
            // Counts from the contents; the sums keep their stored bits.
            let mut win = WindowState::new(span, trade_head, book_head);
            win.recompute(&logs);
            let nonzero = |sums: &RollingSums<N_SUMS>| std::array::from_fn(|i| sums.nonzero(i));
            win.trade_sums = RollingSums::from_parts(trade_parts, nonzero(&win.trade_sums));
            win.book_sums = RollingSums::from_parts(book_parts, nonzero(&win.book_sums));
            win.removals = removals;
            windows.push(win);
        }
        if r.remaining() != 0 {
            return Err(SnapshotError::TrailingBytes(r.remaining()));
        }
        let state = State {
            events,
            last_seq,
            clock,
            trades,
            last_price,
            last_trade_stamp,
            book: has_book.then_some(l1),
            last_mid,
            depth,
            ewma_v,
            ewma_t,
            logs,
            windows,
        };
        Ok(FeatureEngine::with_state(config, state))
    }
}
