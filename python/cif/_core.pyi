"""Type stubs for ``cif._core``, the Rust core of cif (hand-written; checked by mypy.stubtest).

Times: ``*_ms`` are exchange milliseconds since the epoch; ``recv_time_ns`` is the local
receive time in nanoseconds since the epoch. Prices and quantities are IEEE doubles parsed
from Binance's decimal strings with correct rounding (identical to Python's ``float(str)``).
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias, final, overload

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BOOK_FIELDS",
    "ERROR_REASONS",
    "TRADE_FIELDS",
    "AggTrade",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "FeatureEngine",
    "FrameBatch",
    "IngestCore",
    "InvalidValue",
    "MalformedFrame",
    "MissingField",
    "OrderBook",
    "ParseError",
    "ScoreTrack",
    "ServerShutdown",
    "Trade",
    "TradeSequencer",
    "UnknownEvent",
    "WrongType",
    "__version__",
    "compute_features",
    "decode_event_entries",
    "decode_feature_rows",
    "feature_digest_rows",
    "feature_names",
    "forecast_digest_rows",
    "forecast_records_json",
    "live_store_columns",
    "pack_book_entry",
    "pack_feature_rows",
    "pack_forecast_entries",
    "pack_trade_entry",
    "pack_xadds",
    "parse_capture",
    "parse_frame",
    "parse_frames",
    "parse_rest_depth",
    "parse_rest_trades",
    "publishable_rows",
    "score_heuristic",
    "score_linear",
    "split_ws_frames",
]

__version__: Final[str]

#: Reason codes, in the order of the ``reason_code`` column of ``FrameBatch.errors``.
ERROR_REASONS: Final[tuple[str, ...]]

class ParseError(ValueError):
    """A frame or REST body could not be parsed; the subclass names the reason."""

class MalformedFrame(ParseError):
    """Not valid JSON, not UTF-8, truncated, duplicate keys or an unexpected structure."""

class MissingField(ParseError):
    """A required field is absent."""

class WrongType(ParseError):
    """A field has the wrong JSON type (e.g. a number where Binance sends a decimal string)."""

class InvalidValue(ParseError):
    """A value is out of range or inconsistent.

    Negative, non-finite, too large, or not a plain decimal; a zero trade price or quantity
    or a zero level price (level quantities and bookTicker fields may be 0); a symbol that
    is empty, too long or contains whitespace, ``@``, ``/`` or ``"``; a payload symbol that
    differs from its stream name's; a stream name without ``@<type>``.
    """

class UnknownEvent(ParseError):
    """Well-formed JSON whose event type cif does not know."""

_Side: TypeAlias = Literal["buy", "sell"]
_Level: TypeAlias = tuple[float, float]

@final
class Trade:
    """One trade; ``side`` is the aggressor (``is_buyer_maker`` ⇒ ``"sell"``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def trade_id(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def side(self) -> _Side: ...
    @property
    def is_buyer_maker(self) -> bool: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AggTrade:
    """An aggregate trade (``<symbol>@aggTrade``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def agg_trade_id(self) -> int: ...
    @property
    def first_trade_id(self) -> int: ...
    @property
    def last_trade_id(self) -> int: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def trade_time_ms(self) -> int: ...
    @property
    def price(self) -> float: ...
    @property
    def qty(self) -> float: ...
    @property
    def side(self) -> _Side: ...
    @property
    def is_buyer_maker(self) -> bool: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DepthUpdate:
    """A diff-depth event (``<symbol>@depth`` / ``@depth@100ms``); qty 0 removes a level."""

    @property
    def symbol(self) -> str: ...
    @property
    def event_time_ms(self) -> int: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def final_update_id(self) -> int: ...
    @property
    def bids(self) -> list[_Level]: ...
    @property
    def asks(self) -> list[_Level]: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DepthSnapshot:
    """A full or partial book: REST ``/api/v3/depth`` or ``<symbol>@depth<N>`` streams.

    Binance spot sends no exchange time with either, so ``event_time_ms`` is ``None`` unless
    the payload has an ``E`` field.
    """

    @property
    def symbol(self) -> str: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def bids(self) -> list[_Level]: ...
    @property
    def asks(self) -> list[_Level]: ...
    @property
    def event_time_ms(self) -> int | None: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class BookTicker:
    """Best bid/ask (``<symbol>@bookTicker``). Spot sends no event time: ``None`` then."""

    @property
    def symbol(self) -> str: ...
    @property
    def update_id(self) -> int: ...
    @property
    def bid_price(self) -> float: ...
    @property
    def bid_qty(self) -> float: ...
    @property
    def ask_price(self) -> float: ...
    @property
    def ask_qty(self) -> float: ...
    @property
    def event_time_ms(self) -> int | None: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ServerShutdown:
    """The exchange announced it will close the connection soon: reconnect now."""

    @property
    def event_time_ms(self) -> int: ...
    @property
    def recv_time_ns(self) -> int: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

_Event: TypeAlias = Trade | AggTrade | DepthUpdate | DepthSnapshot | BookTicker | ServerShutdown

@final
class FrameBatch:
    """Columnar result of a batch parse: one table per event kind, NumPy columns.

    Every event table has a ``frame`` column (int64 index of the source frame in the batch)
    and, except ``shutdowns``, a ``symbol`` column (int32 code into ``symbols``, which lists
    the canonical upper-case symbols in order of first appearance). Integer ids and
    times are int64; prices and quantities float64; ``side`` is int8 (+1 buy, -1 sell).
    ``event_time_ms`` is -1 where the source has no exchange time (bookTicker, snapshots).

    Tables and columns:

    - ``trades``: frame, symbol, trade_id, event_time_ms, trade_time_ms, price, qty, side,
      is_buyer_maker (bool), recv_time_ns
    - ``agg_trades``: frame, symbol, agg_trade_id, first_trade_id, last_trade_id,
      event_time_ms, trade_time_ms, price, qty, side, is_buyer_maker, recv_time_ns
    - ``depth_updates``: frame, symbol, event_time_ms, first_update_id, final_update_id,
      recv_time_ns, level_start, level_end (rows ``[level_start, level_end)`` of ``levels``)
    - ``depth_snapshots``: frame, symbol, last_update_id, event_time_ms, recv_time_ns,
      level_start, level_end
    - ``levels``: side (int8, +1 bid / -1 ask), price, qty — bids before asks, in frame order
    - ``book_tickers``: frame, symbol, update_id, event_time_ms, bid_price, bid_qty,
      ask_price, ask_qty, recv_time_ns
    - ``shutdowns``: frame, event_time_ms, recv_time_ns
    - ``errors``: frame, reason_code (int8 index into ``ERROR_REASONS``); the messages are in
      ``error_messages``
    """

    @property
    def n_frames(self) -> int: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def trades(self) -> dict[str, NDArray[Any]]: ...
    @property
    def agg_trades(self) -> dict[str, NDArray[Any]]: ...
    @property
    def depth_updates(self) -> dict[str, NDArray[Any]]: ...
    @property
    def depth_snapshots(self) -> dict[str, NDArray[Any]]: ...
    @property
    def levels(self) -> dict[str, NDArray[Any]]: ...
    @property
    def book_tickers(self) -> dict[str, NDArray[Any]]: ...
    @property
    def shutdowns(self) -> dict[str, NDArray[Any]]: ...
    @property
    def errors(self) -> dict[str, NDArray[Any]]: ...
    @property
    def error_messages(self) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def __len__(self) -> int: ...

@final
class OrderBook:
    """A symbol's local order book, synced by Binance's documented procedure.

    Feed diffs as they arrive (buffered until a snapshot syncs the book) and a REST snapshot
    whose ``lastUpdateId`` is at least the first buffered diff's ``U`` (``"too_old"``
    otherwise: fetch another). Once synced, stale diffs (``u <= last_update_id``) are
    dropped and a break (``U > last_update_id + 1``) returns ``"gap"``: the book is then
    discarded and waits for a new snapshot (the breaking diff heads the new buffer).
    """

    def __new__(cls, symbol: str, max_buffer: int = 10000) -> OrderBook: ...
    @property
    def symbol(self) -> str: ...
    @property
    def synced(self) -> bool: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    @property
    def first_buffered_update_id(self) -> int | None: ...
    def on_diff(
        self, update: DepthUpdate
    ) -> Literal["applied", "buffered", "stale", "gap", "wrong_symbol"]: ...
    def on_snapshot(
        self, snapshot: DepthSnapshot
    ) -> Literal["synced", "too_old", "broken_chain", "wrong_symbol"]: ...
    def best_bid(self) -> _Level | None: ...
    def best_ask(self) -> _Level | None: ...
    def top(self, k: int = 10) -> tuple[list[_Level], list[_Level]]: ...
    def stats(self) -> dict[str, int]: ...

@final
class IngestCore:
    """The per-tick part of the gateway's ``SymbolIngest`` for one symbol: trade release,
    ticker dedup, the ingest ``seq``, book-event derivation, the book agreement check and
    the stream entries, one call per event. What it produces waits until :meth:`take`."""

    def __new__(
        cls,
        symbol: str,
        book: OrderBook,
        sequencer: TradeSequencer,
        trades_key: str,
        book_key: str,
        publish: bool,
        last_seq: int,
        top_k: int,
        book_event_type: type[Any],
        packed_entry_type: type[Any],
    ) -> IngestCore: ...
    @property
    def seq(self) -> int:
        """The last ingest sequence number given out."""
    def next_seq(self) -> int:
        """Give out the next ingest sequence number."""
    def note_time(self, event_ts: int, recv_ns: int) -> None:
        """Note an event's exchange time (ms) and receive time (ns)."""
    def on_trade(self, trade: Trade) -> bool:
        """A live trade, released in id order; whether a gap is now held."""
    def release(self, released: Sequence[tuple[Trade, bool]]) -> None:
        """Trades the sequencer released outside ``on_trade`` (backfill, gap given up)."""
    def on_ticker(self, ticker: BookTicker) -> None:
        """A best bid/ask update (a duplicate update id is counted and dropped)."""
    def after_book_change(self, seq: int, recv_ns: int, source: str) -> None:
        """After the book changed (``source``: ``"depth"`` or ``"snapshot"``)."""
    def take(
        self,
    ) -> tuple[
        list[tuple[Any, int, bool, int]],
        list[Any],
        list[tuple[int, tuple[float, float, float, float], int, tuple[float, float, float, float]]],
    ]:
        """``(rows, entries, disagreements)`` produced since the last call, in order."""
    def counters(self) -> tuple[int, int, int, int, int, int, int, int, float]:
        """``(trades, backfilled, tickers, duplicate_tickers, book_events, book_checks,
        book_agree, last_event_ts, feed_lag_ms)``."""

@final
class TradeSequencer:
    """Releases a symbol's trades in consecutive trade-id order.

    ``last_id`` resumes after the last stored trade (the downtime then shows as a gap).
    Live trades behind a gap are held until ``fill`` supplies the missing ids from REST or
    ``skip_to`` gives up on them (counted as lost); at most ``max_held`` wait, beyond which
    the oldest hole is given up on. Duplicates are dropped and counted.
    """

    def __new__(cls, last_id: int | None = None, max_held: int = 100000) -> TradeSequencer: ...
    @property
    def next_id(self) -> int | None: ...
    @property
    def held(self) -> int: ...
    def push(self, trade: Trade) -> list[tuple[Trade, bool]]: ...
    def fill(self, trades: list[Trade]) -> list[tuple[Trade, bool]]: ...
    def skip_to(self, trade_id: int) -> list[tuple[Trade, bool]]: ...
    def missing(self) -> tuple[int, int] | None: ...
    def stats(self) -> dict[str, int]: ...

def parse_frame(frame: bytes, recv_time_ns: int | None = None, symbol: str | None = None) -> _Event:
    """Parse one WebSocket text frame (combined ``{"stream","data"}`` or raw payload).

    ``recv_time_ns`` defaults to the current wall-clock time. ``symbol`` is needed only for
    partial-depth payloads on a raw ``/ws/<symbol>@depth<N>`` connection, which carry no
    symbol (a payload that names its own symbol keeps it). Raises a ``ParseError`` subclass
    naming the reason.
    """

def parse_frames(
    frames: Sequence[bytes],
    recv_time_ns: NDArray[np.int64] | Sequence[int] | None = None,
    symbol: str | None = None,
) -> FrameBatch:
    """Parse many frames in one call; bad frames land in ``errors``, never raise."""

def parse_capture(data: bytes) -> FrameBatch:
    """Parse a capture file's text (``<recv ns> <json>`` per line, as in shared/data/binance).

    Frame index = line index (blank lines are skipped but counted). REST depth snapshots on
    their own line take their symbol from the nearest stream frame seen before them.
    """

def split_ws_frames(
    data: bytes, start: int, max_size: int, data_allowed: bool
) -> tuple[list[bytes], int, int]:
    """The server's plain WebSocket data frames (FIN set, text or binary, unmasked, no RSV
    bit, payload ≤ ``max_size``) in ``data`` from ``start``, in one pass: ``(payloads, end,
    special)``. ``end`` is where the scan stopped. ``special`` > 0: the frame at ``end`` is
    not plain and its first ``special`` bytes are for the WebSocket library (the whole
    frame, or only its header when that already makes it an error: masked, or too large);
    0: the frame at ``end``, if any, is incomplete. ``data_allowed`` false (inside a
    fragmented message) hands every frame on."""

def parse_rest_depth(body: bytes, symbol: str, recv_time_ns: int | None = None) -> DepthSnapshot:
    """Parse a ``GET /api/v3/depth`` response body."""

def parse_rest_trades(body: bytes, symbol: str, recv_time_ns: int | None = None) -> list[Trade]:
    """Parse a ``GET /api/v3/historicalTrades`` (or ``/trades``) response body.

    REST rows have no event time: ``event_time_ms`` equals the trade time.
    """

# -- forecast scoring ------------------------------------------------------------------------

def score_linear(
    x: NDArray[np.float64],
    mean: NDArray[np.float64],
    scale: NDArray[np.float64],
    coef: NDArray[np.float64],
    intercept: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Multinomial logistic scoring of ``x`` (n × F): ``softmax(z · coefᵀ + intercept)`` per
    row with ``z = (x − mean) / scale``; a non-finite ``z`` counts as 0 (the training mean).
    ``coef`` is K × F (K ≥ 2 classes). Returns n × K probabilities. ``ValueError`` on
    inconsistent shapes, non-finite parameters or a scale ≤ 0."""

def publishable_rows(probs: NDArray[np.float64], tol: float) -> NDArray[np.bool_]:
    """Whether each row of the ``(n, K)`` probabilities is a publishable forecast: every
    probability finite and in ``[0, 1]``, their sum (in column order) within ``tol`` of 1.
    ``K = 0``: no row is."""

def score_heuristic(
    x: NDArray[np.float64], threshold: float, scale: float, max_prob: float
) -> NDArray[np.float64]:
    """The seed's OFI-threshold rule on one feature: n × 2 ``(p_down, p_up)``.

    ``|x| ≤ threshold`` or non-finite ⇒ (0.5, 0.5); else
    ``p_up = 0.5 + (max_prob − 0.5)·tanh((x − sign(x)·threshold) / scale)``."""

_SumParts = tuple[float, float]
_TrackParts = tuple[
    int,
    int,
    int,
    list[_SumParts],
    list[int],
    list[int],
    list[int],
    list[_SumParts],
    list[int],
    list[tuple[float, float, float, float, bool]],
    list[_SumParts],
]

@final
class ScoreTrack:
    """The running metrics of one predictor's scored forecasts (the live evaluator's hot
    loop): cumulative compensated sums of accuracy credit, Brier score and log loss, AUC
    histograms of ``prob_up`` (1000 bins), a 10-bin calibration table, and the same sums
    over a rolling window of the last ``window`` forecasts. Definitions and the order of
    every floating-point operation are those of :mod:`cif.forecast.evaluation`."""

    def __new__(cls, window: int) -> ScoreTrack:
        """An empty track; ``ValueError`` unless ``window >= 1``."""
    @property
    def window(self) -> int:
        """Forecasts the rolling window keeps."""
    @property
    def n(self) -> int:
        """Forecasts scored so far."""
    @property
    def recent_len(self) -> int:
        """Forecasts in the rolling window now."""
    def add_batch(self, probs: Sequence[float], k: int, classes: Sequence[int], up: int) -> None:
        """Score forecasts in order: ``probs`` flat (``k`` per forecast, class order), the
        realized class of each, the index of "up". The probabilities are taken as given
        (the evaluator checks them). All or nothing: ``ValueError`` on a shape error."""
    def cumulative_sums(self) -> tuple[float, float, float]:
        """The cumulative sums of credit, Brier and log loss, compensated."""
    def rolling_sums(self) -> tuple[float, float, float]:
        """The rolling window's sums of credit, Brier and log loss, compensated."""
    def histograms(self) -> tuple[list[int], list[int]]:
        """Per ``prob_up`` bin: forecasts whose outcome was up, and was not."""
    def calibration_bins(self) -> list[tuple[int, float, int]]:
        """Per calibration bin: ``(forecasts, sum of prob_up, outcomes up)``."""
    def recent_columns(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The rolling window's ``prob_up`` and outcome-is-up columns, oldest first."""
    def to_bytes(self) -> bytes:
        """The state as bytes (:meth:`from_bytes` reads them back)."""
    @staticmethod
    def from_bytes(data: bytes) -> ScoreTrack:
        """A state written by :meth:`to_bytes` (``ValueError`` for anything else)."""
    def parts(self) -> _TrackParts:
        """Every field: ``(window, n, removals, [credit, brier, log loss] sums, hist_up,
        hist_not, cal_n, cal_p sums, cal_up, window rows, [credit, brier, log loss] window
        sums)``, each sum as ``(sum, compensation)``, each window row as ``(credit, brier,
        log loss, prob_up, is_up)``."""
    @staticmethod
    def from_parts(parts: _TrackParts) -> ScoreTrack:
        """A track from the fields :meth:`parts` gives (``ValueError`` when they do not
        fit)."""

# -- order-flow features ---------------------------------------------------------------------

@final
class FeatureEngine:
    """The feature engine of one symbol's event log (trades and book events in seq order).

    Settings (keyword-only, validated: ``ValueError`` naming the setting): time windows in ms
    (suffix ``"500ms"``, ``"1s"``, ``"1m"``), count windows in trades (suffix ``"100t"``),
    the ``k`` of the ``depth_imbalance_top<k>`` features, the ``ewma_vol`` half-life in ms,
    and whether book events emit rows too (trades always do). Windows keep the order given:
    time windows first, then count windows.

    A row after an event: ``last_price, mid, spread, spread_bps, queue_imbalance,
    microprice_offset, depth_imbalance_top<k>..., ewma_vol``, then per window
    ``trade_imbalance_count, trade_imbalance_volume, signed_volume, ofi, ofi_depth, rv,
    vwap, intensity`` (suffixed). Undefined values (0/0, a missing side, a window without
    contributions of the feature's kind) are NaN. The clock is the largest exchange time
    seen (``ts`` of trades, ``event_ts`` of book events); each event is stamped with it.

    Events are validated before any state changes (``ValueError`` naming the event index,
    seq and field); ``seq`` must increase strictly, across calls too. ``push_*``,
    ``process`` and ``compute_features`` give bit-identical rows, and an engine restored
    from ``snapshot()`` continues bit-identically.
    """

    def __new__(
        cls,
        *,
        time_windows_ms: Sequence[int] = [1000, 10000, 60000],
        count_windows: Sequence[int] = [100],
        depth_levels: Sequence[int] = [5, 10],
        ewma_half_life_ms: float = 10000.0,
        emit_on_book: bool = False,
    ) -> FeatureEngine: ...
    @property
    def feature_names(self) -> list[str]:
        """The feature names, in row order."""
    @property
    def config(self) -> dict[str, object]:
        """The five settings (windows and depth levels as lists)."""
    @property
    def events(self) -> int:
        """Events consumed so far."""
    @property
    def last_seq(self) -> int | None:
        """Seq of the last event consumed (None before any)."""
    def push_trade(
        self, seq: int, ts: int, recv_ts_ns: int, price: float, qty: float, side: int
    ) -> list[float]:
        """Feed one trade (``side`` +1 buy / -1 sell aggressor); returns the row after it.

        ``recv_ts_ns`` is accepted for symmetry with the batch form and not used.
        """
    def push_book(
        self,
        seq: int,
        ts: int,
        recv_ts_ns: int,
        bid_price: float,
        bid_qty: float,
        ask_price: float,
        ask_qty: float,
        bid_depth: Sequence[float] = (),
        ask_depth: Sequence[float] = (),
    ) -> list[float] | None:
        """Feed one book event; returns the row after it with ``emit_on_book``, else None.

        A missing side has price NaN and qty 0. ``bid_depth`` / ``ask_depth``: sizes of
        levels 1..L (0 where a level is absent), each side cut at its own length.
        """
    def process(self, events: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Feed a batch; returns its rows as columns. The GIL is released meanwhile.

        ``events`` maps ``kind`` (uint8: 0 trade, 1 book), ``seq``, ``ts``, ``recv_ts_ns``
        (int64), ``price``, ``qty`` (float64, trade rows), ``side`` (int8: +1 / -1, trade
        rows), ``bid_price``, ``bid_qty``, ``ask_price``, ``ask_qty`` (float64, book rows) and
        optionally ``bid_depth`` / ``ask_depth`` (float64, shape ``(n, L)``) to 1-D arrays of
        one length n. ``kind`` and ``side`` may have any integer dtype; float32 and narrower
        integer columns are converted. A missing key or a wrong shape is a ``ValueError``, a
        wrong dtype a ``TypeError``.

        Returns an insertion-ordered dict: ``seq``, ``ts`` (the clock), ``recv_ts_ns``
        (int64), ``kind`` (uint8), then one float64 column per feature name.
        """
    def process_packed(
        self, events: Mapping[str, NDArray[Any]]
    ) -> tuple[int, list[tuple[int, bytes]], bytes]:
        """:meth:`process`, with the rows as the feature processor publishes them, without
        building them as NumPy columns first: ``(fields per row, [(seq, fields)], digest
        bytes)``, byte for byte ``pack_feature_rows(rows)`` and
        ``feature_digest_rows(rows)[1]`` of the rows :meth:`process` would return. The
        errors are those of :meth:`process` (the engine is unchanged by them); a
        ``RuntimeError`` says the rows could not be packed after the engine took the batch
        (a bug)."""
    def snapshot(self) -> bytes:
        """The full engine (settings and state) in a versioned binary format."""
    @staticmethod
    def restore(data: bytes) -> FeatureEngine:
        """An engine from ``snapshot()`` bytes; ``ValueError`` on bad or unknown data."""

def compute_features(
    events: Mapping[str, NDArray[Any]],
    *,
    time_windows_ms: Sequence[int] = [1000, 10000, 60000],
    count_windows: Sequence[int] = [100],
    depth_levels: Sequence[int] = [5, 10],
    ewma_half_life_ms: float = 10000.0,
    emit_on_book: bool = False,
) -> dict[str, NDArray[Any]]:
    """``FeatureEngine(**settings).process(events)`` on a fresh engine."""

def feature_names(
    *,
    time_windows_ms: Sequence[int] = [1000, 10000, 60000],
    count_windows: Sequence[int] = [100],
    depth_levels: Sequence[int] = [5, 10],
    ewma_half_life_ms: float = 10000.0,
    emit_on_book: bool = False,
) -> list[str]:
    """The feature names, in row order, for the given settings."""

# -- gateway stream entries ---------------------------------------------------------------------

#: Field names of a ``trades:{symbol}`` entry, in order.
TRADE_FIELDS: Final[tuple[str, ...]]
#: Field names of a ``book:{symbol}`` entry, in order.
BOOK_FIELDS: Final[tuple[str, ...]]

def pack_trade_entry(trade: Trade, seq: int, backfilled: bool) -> bytes:
    """The ``trades:{symbol}`` entry of a released trade, pre-packed for the gateway's batch
    script: RESP bulk strings ``<trade id>-0``, ``9``, then ``name value`` for ``seq``,
    ``trade_id``, ``ts``, ``event_ts``, ``recv_ts_ns``, ``price``, ``qty``, ``side``,
    ``backfilled`` (integers ``%d``, doubles as Python's ``repr``)."""

def pack_book_entry(
    seq: int,
    update_id: int,
    event_ts: int,
    recv_ts_ns: int,
    source: str,
    bid_price: float,
    bid_qty: float,
    ask_price: float,
    ask_qty: float,
    book_update_id: int,
    bids: str,
    asks: str,
) -> bytes:
    """The ``book:{symbol}`` entry of a book event, pre-packed like :func:`pack_trade_entry`:
    ``<seq>-0``, ``12``, then the fields in this order (``bids`` / ``asks``: the depth
    sides' JSON text, stored as given)."""

def pack_xadds(heads: list[bytes], bodies: list[bytes], n_fields: list[int]) -> bytes:
    """``XADD`` commands in RESP, one per entry, joined: entry ``i`` is ``heads[i]``
    (``XADD <key> MAXLEN ~ <n>`` as bulk strings) and ``bodies[i]`` (``<id> <n> <name>
    <value>...`` bulk strings, as :func:`pack_trade_entry` builds them) less its field count
    ``n_fields[i]``. ``ValueError`` for a body that does not start with its ID and that
    count, or lists of different lengths; ``TypeError`` for an item that is not bytes."""

# -- DuckDB history rows ---------------------------------------------------------------------

@overload
def live_store_columns(
    entries: Iterable[Any], *, texts_as_codes: Literal[False] = False
) -> dict[str, dict[str, NDArray[Any]]]: ...
@overload
def live_store_columns(
    entries: Iterable[Any], *, texts_as_codes: Literal[True]
) -> dict[str, dict[str, NDArray[Any] | tuple[NDArray[np.uint32], list[str]]]]: ...
@overload
def live_store_columns(
    entries: Iterable[Any], *, texts_as_codes: bool
) -> dict[str, dict[str, NDArray[Any] | tuple[NDArray[np.uint32], list[str]]]]:
    """The live writer's queued entries as one dict of NumPy columns per DuckDB table.

    ``entries`` iterates ``(event, seq, backfilled, rows)`` tuples, ``event`` being a
    :class:`Trade`, :class:`BookTicker`, :class:`DepthUpdate`, :class:`DepthSnapshot` or a
    book event tuple (``cif.ingest.book_events.BookEvent``, whose own ``seq`` is used).
    Returns ``{table: {column: array}}`` for ``trades``, ``book_tickers``,
    ``depth_updates``, ``depth_snapshots``, ``depth_levels`` and ``book_events``, every
    table present (empty arrays when it has no rows), columns in the table's order; texts
    are object arrays of ``str``. With ``texts_as_codes``, the few-valued texts (symbol,
    side, source) are ``(codes, values)`` tuples instead: ``values[codes[i]]`` is row
    ``i``'s text (DuckDB reads such a column without taking the GIL per row; the book
    events' JSON sides stay ``str`` arrays). Raises ``TypeError`` on an entry of another
    shape."""

# -- feature processor stream entries ----------------------------------------------------------

def feature_digest_rows(rows: Mapping[str, Any]) -> tuple[int, bytes]:
    """The row count and the bytes the output digest (``cif.digest``) hashes for a feature
    table: per row ``seq`` and ``ts`` as int64, then each feature column's float64 bits,
    all little-endian, every NaN as the canonical quiet NaN. ``rows`` is what
    ``FeatureEngine.process`` returns (``recv_ts_ns`` and ``kind`` are not hashed); a
    non-str key or a column of another length is a ``TypeError`` / ``ValueError``."""

def decode_feature_rows(
    entries: list[tuple[bytes, dict[bytes, bytes]]],
    start: int,
    header_keys: Sequence[bytes],
    layout_key: bytes,
    n_values: int,
    idx: Sequence[int],
    i_mid: int,
    n_fields: int,
    last_seq: int | None,
    last_ts: int | None,
) -> tuple[
    int,
    list[tuple[int, str, int, int | None]],
    list[int],
    list[int],
    list[int],
    list[list[float]],
    list[float],
    list[bytes],
    int | None,
    int | None,
]:
    """Read ``entries[start:]`` (``(entry_id, {field: value})``) as the forecaster does,
    until an entry this path cannot read: the header fields ``header_keys`` (seq, ts,
    recv_ts_ns, kind) and the features field ``layout_key`` of ``n_values`` values (the
    model's features at ``idx``, the mid at ``i_mid``), all ``bytes``, ``n_fields`` fields,
    numbers as Python's ``int()``/``float()`` read them, ``int`` within int64.

    Returns ``(stop, issues, seqs, ts, recv_ts_ns, xs, mids, ids, last_seq, last_ts)``: the
    first entry left to the caller (``len(entries)`` when none); the entries before it that
    were trimmed or failed the order checks, as ``(index, reason, value, reference)`` with
    reason ``"trimmed"``, ``"seen"`` (seq, last seq), ``"id_mismatch"`` (seq) or
    ``"ts_decreasing"`` (ts, last ts); the kept rows' columns; the order after them. A
    position at or past ``n_values`` is a ``ValueError``."""

def pack_forecast_entries(
    fixed: Sequence[bytes],
    seqs: Sequence[int],
    ts: Sequence[int],
    recv_ts_ns: Sequence[int],
    probs: NDArray[np.float64],
    ok: NDArray[np.bool_],
    columns: Sequence[int],
    suffix: bytes,
) -> list[bytes]:
    """The ``XADD`` bodies of the rows with ``ok`` set: the ID ``<seq>-0``, ``fixed[0]``,
    seq, ``fixed[1]``, ts, ``fixed[2]``, recv_ts_ns, then ``fixed[3 + j]`` and
    ``repr(probs[row, columns[j]])`` for each column, then ``suffix``; values as RESP bulk
    strings, ints as ``str()`` writes them. Parts, columns or rows that do not fit are a
    ``ValueError``."""

def forecast_digest_rows(seq: NDArray[np.int64], probs: NDArray[np.float64]) -> tuple[int, bytes]:
    """The row count and the bytes the output digest hashes for forecasts: per row ``seq``
    as int64, then the ``(n, K)`` probabilities' float64 bits, little-endian, every NaN as
    the canonical quiet NaN. Arrays in any memory order (read row by row); ``probs`` with
    another number of rows than ``seq`` is a ``ValueError``."""

def forecast_records_json(
    entries: Sequence[Sequence[Any]],
) -> list[str | None]:
    """The API's JSON record of each ``forecasts:{symbol}`` entry (``(id, fields)``, the
    fields a dict of ``str`` or a list of names and values alternating, as a stream reply
    holds them, ``str`` or ``bytes``), text for text what
    ``cif.api.streams.forecast_json`` writes; ``None``
    for an entry it is not sure about (another field set, a text that is not printable
    ASCII, a number beyond ``int()`` / ``float()`` of plain forms, a non-``str`` field, a
    name given twice), which then takes the Python path."""

def pack_feature_rows(
    rows: Mapping[str, NDArray[Any]],
) -> tuple[int, list[tuple[int, bytes]]]:
    """The ``features:{symbol}`` entries of ``rows``, pre-packed for an ``XADD`` script call.

    ``rows`` is what ``FeatureEngine.process`` returns: ``seq``, ``ts``, ``recv_ts_ns``,
    ``kind`` (integer columns), then one float column per feature, in mapping order.
    Returns the number of fields per row and, per row, its ``seq`` and its fields as RESP
    bulk strings (``name value name value ...``): the integers as ``%d``, then one field
    named by the feature names joined by ``,``, its value the features as Python's
    ``repr(float)`` (shortest round trip; ``nan``, ``inf``, ``-inf``, ``-0.0``) joined by
    ``,`` (:mod:`cif.features.entries`). A non-str key or a column of another length is a
    ``TypeError`` / ``ValueError``, a non-numeric column a ``TypeError``, a feature name
    that is empty or contains ``,`` a ``ValueError``. Large batches run without the GIL.
    """

def decode_event_entries(
    entries: Iterable[tuple[bool, Mapping[Any, Any] | list[Any]]], depth_levels: int
) -> tuple[dict[str, NDArray[Any]], list[tuple[int, str]]]:
    """Decode ``trades:{symbol}`` / ``book:{symbol}`` entries into the event log columns.

    ``entries`` are ``(is_trade, fields)`` tuples; ``fields`` maps ``str`` or ``bytes``
    names (``str`` wins when both are present) to ``bytes`` / ``str`` / number values, as
    Redis returns them or as they are published, or is a list of names and values
    alternating (a stream reply's; a later name wins, an odd length is a ``ValueError``).
    Text is read with Python's ``int()`` / ``float()`` rules and the depth levels
    (``bids`` / ``asks``, ``[[price, qty], ...]``) as Python's ``json`` reads them;
    ``depth_levels`` levels are kept per side.

    Returns the columns of ``cif.features.event_log.EventLogBuilder.build()`` for the
    decodable entries, in the given order and bit for bit the same, and ``(index, message)``
    for each entry that is not (a missing field, a value that is not a number, a side other
    than ``buy`` / ``sell``, broken depth JSON); such an entry adds no row. ``ValueError``
    for a negative ``depth_levels``; ``TypeError`` for an item that is not such a tuple.
    """
