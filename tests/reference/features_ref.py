"""Reference feature engine in pure Python: every feature of ``cif._core.compute_features``.

It implements ``/work/spec/features.md`` (the README's feature table) as plainly as possible so
tests can compare the Rust engine with it value by value and benches can measure the Rust
engine against it. Same input (the events dict of :mod:`cif.features.event_log`) and the same
output (an insertion-ordered dict: ``seq``, ``ts``, ``recv_ts_ns``, ``kind``, then one float64
column per feature name).

How it stays obviously correct:

- The clock, the window rules and the NaN rules are written out literally, one event at a
  time. Each window keeps its contributions in deques (trades and book events separately)
  and evicts by the spec's membership rule (time: stamp > t - w; count: trade ``k > T - N``,
  book ``k >= T - N + 1``).
- Window sums are exact: every float term is converted exactly to an integer number of
  units of 2**-1074 (the smallest subnormal; every finite double is a whole multiple of it),
  added and removed with Python's unbounded integers, and turned back into a float by
  ``int / int`` true division, which CPython rounds correctly. A window sum is therefore the
  correctly rounded exact sum of the window's current terms — the same number
  ``math.fsum(window)`` gives (``check_fsum=True`` recomputes every sum with ``math.fsum``
  from the deques at every row and asserts that), at O(1) per event instead of O(window).
- Ratios of window sums (vwap, volume imbalance, ofi_depth) are exact quotients of the exact
  integer sums, rounded once.
- Per-event quantities (mid, spread, the log mid return, microprice, e_n's terms, p*q,
  (Qb + Qa)/2, ewma_vol) use the spec's float formulas.

Spec points read literally where another reading was possible (see the test report):

- Per-window features over a window without contributions of their kind (no trades for the
  trade features and ``intensity``; no book events for ``ofi``, ``ofi_depth``, ``rv``) are NaN
  ("empty window" is undefined) — including ``signed_volume``, ``ofi``, ``rv`` and the
  time-window ``intensity``, whose formulas would otherwise give 0.
- ``queue_imbalance`` is NaN only when Qb + Qa == 0 (a missing side has qty 0, so a one-sided
  book gives +1 / -1); ``microprice_offset`` is also NaN when a side is missing (spec).
- ``depth_imbalance_top<k>`` sums the first ``min(k, L)`` sizes of each side; the
  streaming/push form may give sides of different lengths, each side is cut at its own length.

Besides the columns, :func:`reference_features` gives per row and feature an absolute error
scale for the comparison with a floating-point implementation (see :class:`RefFeatures`).

Not part of the package: ``cif`` never imports this module.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

NAN: Final = float("nan")

DEFAULT_TIME_WINDOWS_MS: Final = (1000, 10000, 60000)
DEFAULT_COUNT_WINDOWS: Final = (100,)
DEFAULT_DEPTH_LEVELS: Final = (5, 10)
DEFAULT_EWMA_HALF_LIFE_MS: Final = 10000.0

#: Window features, in row order (each window: these eight, then the next window).
WINDOW_FEATURES: Final = (
    "trade_imbalance_count",
    "trade_imbalance_volume",
    "signed_volume",
    "ofi",
    "ofi_depth",
    "rv",
    "vwap",
    "intensity",
)

#: Required keys of the events dict; ``bid_depth`` / ``ask_depth`` are optional.
EVENT_KEYS: Final = (
    "kind",
    "seq",
    "ts",
    "recv_ts_ns",
    "price",
    "qty",
    "side",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
)

#: Weight of everything that ever passed through a rolling sum in the error scale (see
#: :class:`RefFeatures`).
CHURN_WEIGHT: Final = 1e-6

# --------------------------------------------------------------------------------------------
# Exact sums: integers in units of 2**-1074
# --------------------------------------------------------------------------------------------

_FX_BITS: Final = 1074
_FX_ONE: Final = 1 << _FX_BITS


def fx(x: float) -> int:
    """``x`` (finite) as an exact integer number of units of 2**-1074."""
    num, den = x.as_integer_ratio()  # den is a power of two <= 2**1074
    return num << (_FX_BITS + 1 - den.bit_length())


def fx_value(total: int) -> float:
    """The correctly rounded float of an exact sum (``int / int`` rounds correctly)."""
    return total / _FX_ONE


def fx_approx(total: int) -> float:
    """A cheap approximation of :func:`fx_value` (for error scales only: drops < 2**-100)."""
    return float(total >> (_FX_BITS - 100)) * 2.0**-100


# --------------------------------------------------------------------------------------------
# Config and names
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    time_windows_ms: tuple[int, ...] = DEFAULT_TIME_WINDOWS_MS
    count_windows: tuple[int, ...] = DEFAULT_COUNT_WINDOWS
    depth_levels: tuple[int, ...] = DEFAULT_DEPTH_LEVELS
    ewma_half_life_ms: float = DEFAULT_EWMA_HALF_LIFE_MS
    emit_on_book: bool = False

    def __post_init__(self) -> None:
        for name, values in (
            ("time_windows_ms", self.time_windows_ms),
            ("count_windows", self.count_windows),
            ("depth_levels", self.depth_levels),
        ):
            if any(int(v) < 1 for v in values):
                raise ValueError(f"{name} must be >= 1, got {list(values)}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {list(values)}")
        h = self.ewma_half_life_ms
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"ewma_half_life_ms must be finite and > 0, got {h}")

    @classmethod
    def make(
        cls,
        *,
        time_windows_ms: Sequence[int] = DEFAULT_TIME_WINDOWS_MS,
        count_windows: Sequence[int] = DEFAULT_COUNT_WINDOWS,
        depth_levels: Sequence[int] = DEFAULT_DEPTH_LEVELS,
        ewma_half_life_ms: float = DEFAULT_EWMA_HALF_LIFE_MS,
        emit_on_book: bool = False,
    ) -> Config:
        return cls(
            tuple(int(v) for v in time_windows_ms),
            tuple(int(v) for v in count_windows),
            tuple(int(v) for v in depth_levels),
            float(ewma_half_life_ms),
            bool(emit_on_book),
        )


def time_suffix(w_ms: int) -> str:
    """1000 -> "1s", 60000 -> "1m", 500 -> "500ms", 90000 -> "90s"."""
    if w_ms % 60000 == 0:
        return f"{w_ms // 60000}m"
    if w_ms % 1000 == 0:
        return f"{w_ms // 1000}s"
    return f"{w_ms}ms"


def window_suffixes(cfg: Config) -> list[str]:
    return [time_suffix(w) for w in cfg.time_windows_ms] + [f"{n}t" for n in cfg.count_windows]


def global_feature_names(cfg: Config) -> list[str]:
    return [
        "last_price",
        "mid",
        "spread",
        "spread_bps",
        "queue_imbalance",
        "microprice_offset",
        *(f"depth_imbalance_top{k}" for k in cfg.depth_levels),
        "ewma_vol",
    ]


def feature_names(**settings: Any) -> list[str]:
    """The feature names, in row order, for the keyword settings of ``compute_features``."""
    return _names(Config.make(**settings))


def _names(cfg: Config) -> list[str]:
    names = global_feature_names(cfg)
    for suffix in window_suffixes(cfg):
        names.extend(f"{f}_{suffix}" for f in WINDOW_FEATURES)
    return names


# --------------------------------------------------------------------------------------------
# Validation (the whole batch, before any state changes)
# --------------------------------------------------------------------------------------------


def validate(events: Mapping[str, Any], last_seq: int | None = None) -> None:
    """Raise ``ValueError`` naming the row, seq and field of the first invalid event.

    Checks the spec's rules on whole columns and reports the lowest failing row (for one
    row, the first failing check in the order below).
    """
    for key in EVENT_KEYS:
        if key not in events:
            raise ValueError(f"events has no {key!r} column")
    cols = {k: np.asarray(events[k]) for k in EVENT_KEYS}
    n = len(cols["kind"])
    for key, col in cols.items():
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"column {key!r} has shape {col.shape}, expected ({n},)")
    depth: dict[str, NDArray[np.float64]] = {}
    for key in ("bid_depth", "ask_depth"):
        if key in events:
            depth[key] = np.asarray(events[key], dtype=np.float64)
            if depth[key].ndim != 2 or depth[key].shape[0] != n:
                raise ValueError(f"column {key!r} has shape {depth[key].shape}, expected ({n}, L)")
    if n == 0:
        return
    seq = cols["seq"].astype(np.int64)
    kind = cols["kind"].astype(np.int64)
    trade, book = kind == 0, kind == 1
    prev = np.concatenate(([seq[0] - 1 if last_seq is None else last_seq], seq[:-1]))
    with np.errstate(invalid="ignore"):
        price = cols["price"].astype(np.float64)
        qty = cols["qty"].astype(np.float64)
        checks: list[tuple[NDArray[np.bool_], str]] = [
            (seq <= prev, "seq is not greater than the previous event's seq"),
            (~(trade | book), "kind is not 0 (trade) or 1 (book)"),
            (trade & ~(np.isfinite(price) & (price > 0)), "trade price is not finite and > 0"),
            (trade & ~(np.isfinite(qty) & (qty >= 0)), "trade qty is negative or not finite"),
            (trade & ~np.isin(cols["side"], (1, -1)), "trade side is not +1 or -1"),
        ]
        for side in ("bid", "ask"):
            p = cols[f"{side}_price"].astype(np.float64)
            q = cols[f"{side}_qty"].astype(np.float64)
            present = np.isfinite(p) & (p > 0) & np.isfinite(q) & (q >= 0)
            missing = np.isnan(p) & (q == 0)
            checks.append(
                (book & ~(present | missing), f"book {side} is neither present nor missing")
            )
            if f"{side}_depth" in depth:
                d = depth[f"{side}_depth"]
                ok = np.all(np.isfinite(d) & (d >= 0), axis=1)
                checks.append((book & ~ok, f"book {side}_depth has a negative or non-finite size"))
    first: tuple[int, str] | None = None
    for mask, what in checks:
        hits = np.flatnonzero(mask)
        if len(hits) and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), what)
    if first is not None:
        i, what = first
        raise ValueError(f"event {i} (seq {int(seq[i])}): {what}")


# --------------------------------------------------------------------------------------------
# Windows
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Trade:
    stamp: int
    k: int
    side: int
    q: float
    pq: float
    q_fx: int
    pq_fx: int


@dataclass(slots=True)
class _Book:
    stamp: int
    k: int
    e_terms: tuple[float, ...]  # the non-zero signed terms of e_n
    e_fx: int
    e_abs_fx: int
    d: float  # (Qb + Qa) / 2
    d_fx: int
    r2: float
    r2_fx: int


class _Window:
    """One window's contents and their exact sums."""

    def __init__(self, *, time_ms: int | None = None, count: int | None = None) -> None:
        self.time_ms = time_ms
        self.count = count
        self.trades: deque[_Trade] = deque()
        self.books: deque[_Book] = deque()
        self.nb = 0
        self.ns = 0
        self.vb_fx = 0
        self.vs_fx = 0
        self.pq_fx = 0
        self.e_fx = 0
        self.e_abs_fx = 0
        self.d_fx = 0
        self.r2_fx = 0

    def add_trade(self, c: _Trade) -> None:
        self.trades.append(c)
        if c.side > 0:
            self.nb += 1
            self.vb_fx += c.q_fx
        else:
            self.ns += 1
            self.vs_fx += c.q_fx
        self.pq_fx += c.pq_fx

    def _drop_trade(self) -> None:
        c = self.trades.popleft()
        if c.side > 0:
            self.nb -= 1
            self.vb_fx -= c.q_fx
        else:
            self.ns -= 1
            self.vs_fx -= c.q_fx
        self.pq_fx -= c.pq_fx

    def add_book(self, c: _Book) -> None:
        self.books.append(c)
        self.e_fx += c.e_fx
        self.e_abs_fx += c.e_abs_fx
        self.d_fx += c.d_fx
        self.r2_fx += c.r2_fx

    def _drop_book(self) -> None:
        c = self.books.popleft()
        self.e_fx -= c.e_fx
        self.e_abs_fx -= c.e_abs_fx
        self.d_fx -= c.d_fx
        self.r2_fx -= c.r2_fx

    def expire(self, t: int, trades_seen: int) -> None:
        """Drop what is outside the window at clock ``t`` after ``trades_seen`` trades."""
        if self.time_ms is not None:
            edge = t - self.time_ms  # members have stamp > edge
            while self.trades and self.trades[0].stamp <= edge:
                self._drop_trade()
            while self.books and self.books[0].stamp <= edge:
                self._drop_book()
        else:
            n = self.count
            assert n is not None
            while self.trades and self.trades[0].k <= trades_seen - n:
                self._drop_trade()
            while self.books and self.books[0].k < trades_seen - n + 1:
                self._drop_book()

    def check_fsum(self) -> None:
        """The exact sums equal ``math.fsum`` over the window's contents (self-check)."""
        buys = [c.q for c in self.trades if c.side > 0]
        sells = [c.q for c in self.trades if c.side < 0]
        assert self.nb == len(buys)
        assert self.ns == len(sells)
        assert fx_value(self.vb_fx) == math.fsum(buys)
        assert fx_value(self.vs_fx) == math.fsum(sells)
        assert fx_value(self.vb_fx - self.vs_fx) == math.fsum(buys + [-q for q in sells])
        assert fx_value(self.pq_fx) == math.fsum(c.pq for c in self.trades)
        assert fx_value(self.e_fx) == math.fsum(x for c in self.books for x in c.e_terms)
        assert fx_value(self.d_fx) == math.fsum(c.d for c in self.books)
        assert fx_value(self.r2_fx) == math.fsum(c.r2 for c in self.books)

    def features(self) -> list[float]:
        """The eight window features, in :data:`WINDOW_FEATURES` order."""
        n_trades = self.nb + self.ns
        n_books = len(self.books)
        q_fx = self.vb_fx + self.vs_fx
        if n_trades:
            imb_count = (self.nb - self.ns) / n_trades
            imb_volume = (self.vb_fx - self.vs_fx) / q_fx if q_fx else NAN
            signed = fx_value(self.vb_fx - self.vs_fx)
            vwap = self.pq_fx / q_fx if q_fx else NAN
        else:
            imb_count = imb_volume = signed = vwap = NAN
        if n_books:
            ofi = fx_value(self.e_fx)
            # ofi / (sum d / n) = ofi * n / sum d, one exact quotient
            ofi_depth = self.e_fx * n_books / self.d_fx if self.d_fx else NAN
            rv = math.sqrt(fx_value(self.r2_fx))
        else:
            ofi = ofi_depth = rv = NAN
        if self.time_ms is not None:
            intensity = n_trades / (self.time_ms / 1000) if n_trades else NAN
        else:
            span = self.trades[-1].stamp - self.trades[0].stamp if n_trades else 0
            intensity = (n_trades - 1) / (span / 1000) if n_trades >= 2 and span > 0 else NAN
        return [imb_count, imb_volume, signed, ofi, ofi_depth, rv, vwap, intensity]

    def scales(self, churn: _Churn) -> list[float]:
        """Absolute error scales of :meth:`features` (see :class:`RefFeatures`)."""
        w = CHURN_WEIGHT
        q = fx_approx(self.vb_fx + self.vs_fx)
        v_scale = q + w * churn.q
        imb_volume = 2 * v_scale / q if q > 0 else 0.0
        e_scale = fx_approx(self.e_abs_fx) + w * churn.e
        d = fx_approx(self.d_fx)
        if self.books and d > 0:
            ofi_depth_value = abs(fx_approx(self.e_fx)) * len(self.books) / d
            d_scale = (d + w * churn.d) / d
            ofi_depth = e_scale * len(self.books) / d + ofi_depth_value * d_scale
        else:
            ofi_depth = 0.0
        rv2 = fx_approx(self.r2_fx) + w * churn.r2
        pq = fx_approx(self.pq_fx)
        vwap = (pq / q) * ((pq + w * churn.pq) / pq + v_scale / q) if q > 0 and pq > 0 else 0.0
        return [0.0, imb_volume, v_scale, e_scale, ofi_depth, rv2, vwap, 0.0]


@dataclass(slots=True)
class _Churn:
    """Sum of |terms| that ever entered each kind of rolling sum (error scale only)."""

    q: float = 0.0
    pq: float = 0.0
    e: float = 0.0
    d: float = 0.0
    r2: float = 0.0


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------


@dataclass
class RefFeatures:
    """The reference output and, per feature, an absolute error scale per row.

    ``columns`` is exactly what ``compute_features`` returns. ``abs_scale[name][i]`` is the
    sum of the absolute values of the terms behind the value of row ``i`` (for a window sum:
    the window's sum of |terms| plus :data:`CHURN_WEIGHT` times the sum of |terms| that ever
    entered that kind of sum — a rolling sum with compensated add/remove keeps second-order
    residuals of what passed through it). A floating-point implementation may differ from the
    exact value by a small multiple of machine epsilon times this scale; 0 where the value is
    a count, a copy or a positive quantity (relative tolerance is enough). ``rv_*`` scales are
    in squared units (they bound the error of the sum of r**2 under the square root).
    """

    columns: dict[str, NDArray[Any]]
    abs_scale: dict[str, NDArray[np.float64]]


class ReferenceEngine:
    """The feature state, one event at a time (stateful, like ``FeatureEngine``)."""

    def __init__(self, cfg: Config, *, check_fsum: bool = False) -> None:
        self.cfg = cfg
        self.names = _names(cfg)
        self.check_fsum = check_fsum
        self.windows = [_Window(time_ms=w) for w in cfg.time_windows_ms] + [
            _Window(count=n) for n in cfg.count_windows
        ]
        self.clock: int | None = None
        self.last_seq: int | None = None
        self.events = 0
        self.trades_seen = 0
        self.last_price = NAN
        # latest book event: L1 and depth sizes (None before the first book event)
        self.book: tuple[float, float, float, float] | None = None
        self.bid_depth: tuple[float, ...] = ()
        self.ask_depth: tuple[float, ...] = ()
        self.last_finite_mid: float | None = None
        self.ewma_v = 0.0
        self.ewma_t: int | None = None
        self.churn = _Churn()

    # -- events ---------------------------------------------------------------------------

    def _tick(self, seq: int, ts: int) -> int:
        self.clock = ts if self.clock is None else max(self.clock, ts)
        if self.ewma_t is None:
            self.ewma_t = self.clock  # t_V = first clock
        self.last_seq = seq
        self.events += 1
        return self.clock

    def trade(self, seq: int, ts: int, price: float, qty: float, side: int) -> None:
        t = self._tick(seq, ts)
        self.trades_seen += 1
        self.last_price = price
        pq = price * qty
        c = _Trade(t, self.trades_seen, side, qty, pq, fx(qty), fx(pq))
        self.churn.q += qty
        self.churn.pq += pq
        for w in self.windows:
            w.add_trade(c)
            w.expire(t, self.trades_seen)

    def book_event(
        self,
        seq: int,
        ts: int,
        bid_price: float,
        bid_qty: float,
        ask_price: float,
        ask_qty: float,
        bid_depth: Sequence[float] = (),
        ask_depth: Sequence[float] = (),
    ) -> None:
        t = self._tick(seq, ts)
        # e_n against the previous book event; comparisons with NaN prices are false
        terms: list[float] = []
        if self.book is not None:
            pb0, qb0, pa0, qa0 = self.book
            if bid_price >= pb0:
                terms.append(bid_qty)
            if bid_price <= pb0:
                terms.append(-qb0)
            if ask_price <= pa0:
                terms.append(-ask_qty)
            if ask_price >= pa0:
                terms.append(qa0)
        terms = [x for x in terms if x != 0.0]
        e_fx = sum(fx(x) for x in terms)
        e_abs_fx = sum(fx(abs(x)) for x in terms)
        # log mid return against the last finite mid
        mid = (bid_price + ask_price) / 2
        r2 = 0.0
        if math.isfinite(mid):
            if self.last_finite_mid is not None:
                r = math.log(mid / self.last_finite_mid)
                r2 = r * r
                assert self.ewma_t is not None
                decay = 2.0 ** (-(t - self.ewma_t) / self.cfg.ewma_half_life_ms)
                self.ewma_v = self.ewma_v * decay + r2
                self.ewma_t = t
            self.last_finite_mid = mid
        d = (bid_qty + ask_qty) / 2
        c = _Book(t, self.trades_seen, tuple(terms), e_fx, e_abs_fx, d, fx(d), r2, fx(r2))
        self.churn.e += fx_approx(e_abs_fx)
        self.churn.d += d
        self.churn.r2 += r2
        self.book = (bid_price, bid_qty, ask_price, ask_qty)
        self.bid_depth = tuple(float(x) for x in bid_depth)
        self.ask_depth = tuple(float(x) for x in ask_depth)
        for w in self.windows:
            w.add_book(c)
            w.expire(t, self.trades_seen)

    # -- rows -----------------------------------------------------------------------------

    def row(self) -> list[float]:
        """The feature values after the last event, in :attr:`names` order."""
        assert self.clock is not None
        assert self.ewma_t is not None
        out = [self.last_price]
        if self.book is None:
            out += [NAN] * 5 + [NAN] * len(self.cfg.depth_levels)
        else:
            pb, qb, pa, qa = self.book
            mid = (pb + pa) / 2
            spread = pa - pb
            qsum = qb + qa
            queue_imbalance = (qb - qa) / qsum if qsum != 0 else NAN
            if qsum != 0 and math.isfinite(mid):
                microprice = (pa * qb + pb * qa) / qsum - mid
            else:
                microprice = NAN
            out += [mid, spread, 1e4 * spread / mid, queue_imbalance, microprice]
            for k in self.cfg.depth_levels:
                bids, asks = self.bid_depth[:k], self.ask_depth[:k]
                total = math.fsum(bids + asks)
                if total > 0:
                    out.append(math.fsum(bids + tuple(-x for x in asks)) / total)
                else:
                    out.append(NAN)
        decay = 2.0 ** (-(self.clock - self.ewma_t) / self.cfg.ewma_half_life_ms)
        out.append(math.sqrt(self.ewma_v * decay))
        for w in self.windows:
            if self.check_fsum:
                w.check_fsum()
            out += w.features()
        return out

    def row_scales(self) -> list[float]:
        """Absolute error scales of :meth:`row` (see :class:`RefFeatures`)."""
        out = [0.0]
        if self.book is None:
            out += [0.0] * (5 + len(self.cfg.depth_levels))
        else:
            pb, _qb, pa, _qa = self.book
            prices = math.fsum(abs(p) for p in (pb, pa) if math.isfinite(p))
            mid = (pb + pa) / 2
            spread_bps = 1e4 * prices / mid if math.isfinite(mid) else 0.0
            out += [0.0, prices, spread_bps, 2.0, 2.0 * prices]
            out += [2.0] * len(self.cfg.depth_levels)
        out.append(0.0)
        for w in self.windows:
            out += w.scales(self.churn)
        return out


def _depth_rows(events: Mapping[str, Any], key: str, n: int) -> list[tuple[float, ...]]:
    if key not in events:
        return [()] * n
    depth = np.asarray(events[key], dtype=np.float64)
    return [tuple(r) for r in depth.tolist()]


def reference_features(
    events: Mapping[str, Any],
    *,
    with_scales: bool = True,
    check_fsum: bool = False,
    **settings: Any,
) -> RefFeatures:
    """The feature columns of ``events`` (a fresh engine) and their error scales."""
    cfg = Config.make(**settings)
    validate(events)
    eng = ReferenceEngine(cfg, check_fsum=check_fsum)
    kind = np.asarray(events["kind"]).tolist()
    seq = np.asarray(events["seq"]).tolist()
    ts = np.asarray(events["ts"]).tolist()
    recv = np.asarray(events["recv_ts_ns"]).tolist()
    price = np.asarray(events["price"], dtype=np.float64).tolist()
    qty = np.asarray(events["qty"], dtype=np.float64).tolist()
    side = np.asarray(events["side"]).tolist()
    bp = np.asarray(events["bid_price"], dtype=np.float64).tolist()
    bq = np.asarray(events["bid_qty"], dtype=np.float64).tolist()
    ap = np.asarray(events["ask_price"], dtype=np.float64).tolist()
    aq = np.asarray(events["ask_qty"], dtype=np.float64).tolist()
    n = len(kind)
    bid_depth = _depth_rows(events, "bid_depth", n)
    ask_depth = _depth_rows(events, "ask_depth", n)

    out_seq: list[int] = []
    out_ts: list[int] = []
    out_recv: list[int] = []
    out_kind: list[int] = []
    rows: list[list[float]] = []
    scale_rows: list[list[float]] = []
    for i in range(n):
        if kind[i] == 0:
            eng.trade(seq[i], ts[i], price[i], qty[i], side[i])
        else:
            eng.book_event(seq[i], ts[i], bp[i], bq[i], ap[i], aq[i], bid_depth[i], ask_depth[i])
            if not cfg.emit_on_book:
                continue
        assert eng.clock is not None
        out_seq.append(seq[i])
        out_ts.append(eng.clock)
        out_recv.append(recv[i])
        out_kind.append(kind[i])
        rows.append(eng.row())
        if with_scales:
            scale_rows.append(eng.row_scales())

    width = len(eng.names)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), width)
    columns: dict[str, NDArray[Any]] = {
        "seq": np.array(out_seq, dtype=np.int64),
        "ts": np.array(out_ts, dtype=np.int64),
        "recv_ts_ns": np.array(out_recv, dtype=np.int64),
        "kind": np.array(out_kind, dtype=np.uint8),
    }
    for j, name in enumerate(eng.names):
        columns[name] = np.ascontiguousarray(values[:, j])
    abs_scale: dict[str, NDArray[np.float64]] = {}
    if with_scales:
        scales = np.array(scale_rows, dtype=np.float64).reshape(len(rows), width)
        for j, name in enumerate(eng.names):
            abs_scale[name] = np.ascontiguousarray(scales[:, j])
    return RefFeatures(columns, abs_scale)


def compute_features(events: Mapping[str, Any], **settings: Any) -> dict[str, NDArray[Any]]:
    """Same call and result as ``cif._core.compute_features`` (the reference's columns)."""
    return reference_features(events, with_scales=False, **settings).columns
