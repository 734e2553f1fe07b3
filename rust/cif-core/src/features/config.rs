//! Engine settings — windows, depth levels, EWMA half-life, row emission — validated once,
//! and the feature names they imply.

use std::fmt;

/// Default time windows (ms): 1 s, 10 s, 1 min.
pub const DEFAULT_TIME_WINDOWS_MS: [i64; 3] = [1000, 10_000, 60_000];
/// Default count windows (trades).
pub const DEFAULT_COUNT_WINDOWS: [i64; 1] = [100];
/// Default depth levels for `depth_imbalance_top<k>`.
pub const DEFAULT_DEPTH_LEVELS: [i64; 2] = [5, 10];
/// Default EWMA half-life (ms).
pub const DEFAULT_EWMA_HALF_LIFE_MS: f64 = 10_000.0;

/// The global features before the `depth_imbalance_top<k>` ones (`ewma_vol` follows them).
const GLOBAL_HEAD: [&str; 6] = [
    "last_price",
    "mid",
    "spread",
    "spread_bps",
    "queue_imbalance",
    "microprice_offset",
];
/// The per-window feature prefixes, in row order.
pub const WINDOW_FEATURES: [&str; 8] = [
    "trade_imbalance_count",
    "trade_imbalance_volume",
    "signed_volume",
    "ofi",
    "ofi_depth",
    "rv",
    "vwap",
    "intensity",
];

/// A rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Contributions stamped in `(t - ms, t]`, `t` the engine clock.
    Time(i64),
    /// The last `n` trades and the book contributions that arrived after the oldest of them.
    Trades(u64),
}

impl Window {
    /// The name suffix: `"500ms"`, `"1s"`, `"1m"`, `"100t"`.
    pub fn suffix(self) -> String {
        match self {
            Window::Time(ms) => time_suffix(ms),
            Window::Trades(n) => format!("{n}t"),
        }
    }
}

/// The suffix of a time window of `ms` milliseconds: minutes if divisible by 60 000, else
/// seconds if divisible by 1000, else milliseconds.
pub fn time_suffix(ms: i64) -> String {
    if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An invalid setting; the message names the keyword argument.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// A time window is not > 0.
    NonPositiveTimeWindow(i64),
    /// A time window appears twice.
    DuplicateTimeWindow(i64),
    /// A count window is not > 0.
    NonPositiveCountWindow(i64),
    /// A count window appears twice.
    DuplicateCountWindow(i64),
    /// A depth level is not >= 1.
    NonPositiveDepthLevel(i64),
    /// A depth level appears twice.
    DuplicateDepthLevel(i64),
    /// The half-life is not finite and > 0.
    BadHalfLife(f64),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NonPositiveTimeWindow(w) => {
                write!(f, "time_windows_ms: window {w} must be > 0")
            }
            ConfigError::DuplicateTimeWindow(w) => {
                write!(f, "time_windows_ms: window {w} appears twice")
            }
            ConfigError::NonPositiveCountWindow(w) => {
                write!(f, "count_windows: window {w} must be > 0")
            }
            ConfigError::DuplicateCountWindow(w) => {
                write!(f, "count_windows: window {w} appears twice")
            }
            ConfigError::NonPositiveDepthLevel(k) => {
                write!(f, "depth_levels: level {k} must be >= 1")
            }
            ConfigError::DuplicateDepthLevel(k) => {
                write!(f, "depth_levels: level {k} appears twice")
            }
            ConfigError::BadHalfLife(h) => {
                write!(f, "ewma_half_life_ms must be finite and > 0, got {h}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Validated engine settings. Windows keep the order given (time windows first, then count
/// windows).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    time_windows_ms: Vec<i64>,
    count_windows: Vec<i64>,
    depth_levels: Vec<i64>,
    ewma_half_life_ms: f64,
    emit_on_book: bool,
}

impl Default for FeatureConfig {
    /// Windows 1 s, 10 s, 1 min and 100 trades; depth levels 5 and 10; half-life 10 s; rows
    /// on trades only.
    fn default() -> Self {
        FeatureConfig {
            time_windows_ms: DEFAULT_TIME_WINDOWS_MS.to_vec(),
            count_windows: DEFAULT_COUNT_WINDOWS.to_vec(),
            depth_levels: DEFAULT_DEPTH_LEVELS.to_vec(),
            ewma_half_life_ms: DEFAULT_EWMA_HALF_LIFE_MS,
            emit_on_book: false,
        }
    }
}

/// The first value that repeats an earlier one (lists are short: no hashing).
fn first_duplicate(values: &[i64]) -> Option<i64> {
    values
        .iter()
        .enumerate()
        .find(|(i, v)| values[..*i].contains(v))
        .map(|(_, v)| *v)
}

impl FeatureConfig {
    /// Validated settings: windows > 0 and depth levels >= 1, without duplicates; the
    /// half-life finite and > 0.
    pub fn new(
        time_windows_ms: Vec<i64>,
        count_windows: Vec<i64>,
        depth_levels: Vec<i64>,
        ewma_half_life_ms: f64,
        emit_on_book: bool,
    ) -> Result<Self, ConfigError> {
        if let Some(&w) = time_windows_ms.iter().find(|w| **w <= 0) {
            return Err(ConfigError::NonPositiveTimeWindow(w));
        }
        if let Some(w) = first_duplicate(&time_windows_ms) {
            return Err(ConfigError::DuplicateTimeWindow(w));
        }
        if let Some(&w) = count_windows.iter().find(|w| **w <= 0) {
            return Err(ConfigError::NonPositiveCountWindow(w));
        }
        if let Some(w) = first_duplicate(&count_windows) {
            return Err(ConfigError::DuplicateCountWindow(w));
        }
        if let Some(&k) = depth_levels.iter().find(|k| **k < 1) {
            return Err(ConfigError::NonPositiveDepthLevel(k));
        }
        if let Some(k) = first_duplicate(&depth_levels) {
            return Err(ConfigError::DuplicateDepthLevel(k));
        }
        if !(ewma_half_life_ms.is_finite() && ewma_half_life_ms > 0.0) {
            return Err(ConfigError::BadHalfLife(ewma_half_life_ms));
        }
        Ok(FeatureConfig {
            time_windows_ms,
            count_windows,
            depth_levels,
            ewma_half_life_ms,
            emit_on_book,
        })
    }

    /// Time windows (ms), in the order given.
    pub fn time_windows_ms(&self) -> &[i64] {
        &self.time_windows_ms
    }

    /// Count windows (trades), in the order given.
    pub fn count_windows(&self) -> &[i64] {
        &self.count_windows
    }

    /// Depth levels `k` of the `depth_imbalance_top<k>` features, in the order given.
    pub fn depth_levels(&self) -> &[i64] {
        &self.depth_levels
    }

    /// Half-life of `ewma_vol` (ms).
    pub fn ewma_half_life_ms(&self) -> f64 {
        self.ewma_half_life_ms
    }

    /// Whether book events emit rows too (trades always do).
    pub fn emit_on_book(&self) -> bool {
        self.emit_on_book
    }

    /// All windows in row order: time windows, then count windows.
    pub fn windows(&self) -> Vec<Window> {
        let time = self.time_windows_ms.iter().map(|&w| Window::Time(w));
        // Validated > 0, so the cast is lossless.
        let count = self.count_windows.iter().map(|&n| Window::Trades(n as u64));
        time.chain(count).collect()
    }

    /// Number of global features (before the per-window blocks).
    pub fn n_global(&self) -> usize {
        GLOBAL_HEAD.len() + self.depth_levels.len() + 1
    }

    /// Number of features in a row.
    pub fn n_features(&self) -> usize {
        self.n_global()
            + WINDOW_FEATURES.len() * (self.time_windows_ms.len() + self.count_windows.len())
    }

    /// The feature names, in row order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.n_features());
        names.extend(GLOBAL_HEAD.iter().map(|s| s.to_string()));
        names.extend(
            self.depth_levels
                .iter()
                .map(|k| format!("depth_imbalance_top{k}")),
        );
        names.push("ewma_vol".to_string());
        for w in self.windows() {
            let suffix = w.suffix();
            names.extend(WINDOW_FEATURES.iter().map(|f| format!("{f}_{suffix}")));
        }
        names
    }
}
