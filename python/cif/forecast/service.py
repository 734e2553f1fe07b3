"""The forecaster service: ``features:{sym}`` in, ``forecasts:{sym}`` and ``eval:{sym}`` out.

Per symbol it owns, one asyncio task reads the feature rows through the consumer group
``cif-forecasts``, scores each batch with the model (one Rust call per batch), publishes one
forecast per row to ``forecasts:{sym}`` (entry ID ``<feature seq>-0``, fields as in
``/work/spec/forecasts.md``) and feeds every row to the live :class:`Evaluator`, whose
summary it publishes as JSON to ``eval:{sym}`` with each checkpoint: every
``eval_interval_s``, or less often for a state larger than ``checkpoint_bytes_per_s`` allows.

Latency
    The goal is tick -> forecast on the WebSocket within 10 ms (p99) at 5k ticks/s, so
    nothing waits to fill a batch: whatever one fenced ``XREADGROUP`` returns (after an
    ``XREAD ... BLOCK 100`` for new entries, in the same round trip) is scored and
    published at once (one fenced transaction, one round trip), and only then
    fed to the evaluator. ``published_ns`` is the wall clock just before that round trip.
    The checkpoint, which runs between batches, costs O(rows since the last one), not
    O(forecasts waiting for their horizon) (see "Checkpoint" below): at 5k rows/s and a 10 s
    horizon 50k forecasts wait, and serializing them all every second would stall the loop
    for tens of ms.

Exactly-once output from at-least-once input
    The same scheme as the feature processor (:mod:`cif.features.processor`): input entries
    are acked ONLY once a checkpoint covering them has landed: the fenced script that
    stores the forecaster's state (``forecasts-state:{sym}``), the evaluation summary and
    the output digest; then each read carries one fenced chunk of their acks
    (:data:`~cif.bus.fenced.ACK_CHUNK`), not the checkpoint itself (acking a few thousand
    entries in one script held Redis, and every stage of the pipeline, for 4-7 ms). An
    entry covered but not yet acked when the process dies is delivered again and skipped
    as ``seen``. After a crash (kill -9) the next owner restores the state, claims the
    unacked entries (``XAUTOCLAIM``, then its own pending list from 0) and re-processes
    them in order from exactly that state: the model is deterministic, so the forecasts are
    bit-identical and their re-publication is refused by Redis (ID not above the stream's
    top; counted as ``republished``, a no-op), and the evaluator, fed the same rows from
    the same state, ends where an uninterrupted run ends.
    Rows whose ``seq`` is not above the state's last one are skipped (``seen``: only a
    rewound group re-delivers them).

Keys (all under ``namespace``, all with the ``{sym}`` hash tag, so every script touches one
Redis Cluster slot): ``features:{sym}`` (input, group ``cif-forecasts``),
``forecasts:{sym}`` (output, ``MAXLEN ~``), ``eval:{sym}`` (summary JSON,
:func:`cif.bus.keys.eval_key`), ``forecasts-state:{sym}`` (checkpoint),
``lease:forecasts:{sym}`` (ownership, :mod:`cif.features.leases`).

Checkpoint format (``forecasts-state:{sym}``)
    A pickle (protocol 5) of a dict: ``format`` ("cif-forecaster-state"), ``version`` (1),
    ``symbol``, ``identity`` (model name, version, kind, classes, horizon, features, SHA-256
    of its parameters, rolling window), ``last_seq``, ``evaluator`` (the
    :class:`Evaluator` object, including its label tracker, with its two FIFO queues
    detached; its two metric tracks travel as the bytes of their Rust state,
    :class:`cif._core.ScoreTrack`, and tracks written as Python attributes by earlier
    versions restore too), and the two queues as little-endian column bytes: ``rows``
    (index int64, ts int64, mid float64: the label tracker's pending rows) and
    ``forecasts`` (index int64, probs float64 x K, base-rate probs float64 x K: the
    forecasts waiting for their outcome).
    The queues are kept as columns by the service as rows go through (appended per batch,
    trimmed at each checkpoint, checked against the evaluator's own queues), which is what
    makes a checkpoint cheap. It is loaded with an allow-listing unpickler that resolves
    only the evaluator's own classes and ``deque``, so a forged key cannot run code.
    Pickling the evaluator (rather than a hand-written schema) keeps every one of its
    counters and compensated sums exact without re-implementing its state here; the price
    is that the format follows :mod:`cif.forecast.evaluation`'s internals (the layout of
    the two queues is checked when the service starts).
    A checkpoint of another model (or window) starts a fresh evaluation (logged): a new
    model version is a normal deploy. An unreadable checkpoint refuses the symbol (logged,
    lease released, the process stays up), as the feature processor does.

Bad input
    An entry that cannot be decoded, whose ID is not ``<seq>-0``, whose time goes backwards
    or that lacks a feature the model or the labels need is counted per reason, the first
    few logged with a sample, skipped, and acked once the next checkpoint has landed. A
    row the model fails on (exception, or probabilities that are not finite, in [0, 1] and
    summing to 1 within 1e-12) gets no forecast (counted) but still feeds the labels: its
    mid is real market data that settles other rows' outcomes, and the batch labels use
    every row too.

Redis down or lease lost: that symbol's task stops and retries with backoff (re-acquiring
the lease and restoring the checkpoint); the process stays up. The ownership loop is
:mod:`cif.bus.owned_symbols`, the fenced calls :mod:`cif.bus.fenced` (shared with the
feature processor). The checkpoint also records the digest of the published forecasts,
``digest:forecasts:{sym}`` (:mod:`cif.digest`: seq and the probabilities in class
order), which ``cif replay --verify`` compares with an offline replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import pickle
import time
from collections import Counter, deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import redis.asyncio as aioredis
from numpy.typing import NDArray

from cif._core import decode_feature_rows, pack_forecast_entries, publishable_rows
from cif.bus.fenced import (
    CHECKPOINT_DIGEST_LUA,
    STAGED_STATE_LUA,
    LeaseLost,
    digest_args,
)
from cif.bus.keys import digest_key, eval_key, features_key, forecasts_key
from cif.bus.link import check_block_ms, stream_entries, wait_command
from cif.bus.owned_symbols import OwnedSymbols, SymbolSession, paced_interval
from cif.bus.stream_writer import bulk, pack_command
from cif.digest import ChainDigest
from cif.features.entries import ROW_FIELD_KEYS, ROW_FIELDS, feature_texts
from cif.features.leases import FENCE_LUA, Lease, lease_key
from cif.forecast.evaluation import DEFAULT_WINDOW, Evaluator
from cif.forecast.labels import LabelTracker
from cif.forecast.models import ArtifactError, Model, default_model, load_model

log = logging.getLogger(__name__)

#: Consumer group of the forecaster on every symbol's ``features:{sym}``.
GROUP: Final = "cif-forecasts"
#: Lease role: ``lease:forecasts:{sym}``.
LEASE_ROLE: Final = "forecasts"
STATE_FORMAT: Final = "cif-forecaster-state"
STATE_VERSION: Final = 1
#: How far a forecast's probabilities may sum away from 1 (the spec's promise).
PROB_SUM_TOLERANCE: Final = 1e-12


def state_key(symbol: str, namespace: str = "") -> str:
    """The forecaster's checkpoint of ``symbol``: ``forecasts-state:{btcusdt}`` (the same
    hash tag and namespace prefix as the symbol's streams)."""
    key = forecasts_key(symbol, namespace)  # validates the symbol, applies the namespace
    prefix = f"{namespace}:" if namespace else ""
    return prefix + "forecasts-state" + key[len(prefix) + len("forecasts") :]


def forecaster_lease_key(symbol: str, namespace: str = "") -> str:
    """``lease:forecasts:{btcusdt}``."""
    return lease_key(symbol, namespace, role=LEASE_ROLE)


# -- settings ----------------------------------------------------------------------------------


#: Fields of a feature entry in the processor's layout: the header and the features' field.
_ENTRY_FIELDS: Final = len(ROW_FIELDS) + 1


@dataclass(frozen=True)
class ForecasterConfig:
    """Everything the forecaster can be told."""

    symbols: Sequence[str] = ("btcusdt",)
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = ""
    #: model artifact (``<name>-v<version>.json``); None: the seed heuristic (default_model)
    model_path: str | None = None
    lease_ttl_s: float = 10.0
    #: consumer name in the group (default: the owner id, ``host:pid:random``)
    consumer: str | None = None
    #: publish the evaluation summary and checkpoint (ack) this often while there is work
    eval_interval_s: float = 1.0
    #: rolling-metrics window of the evaluator (last N scored forecasts)
    rolling_window: int = DEFAULT_WINDOW
    group: str = GROUP
    read_count: int = 1000
    block_ms: int = 100
    maxlen: int = 1_000_000
    #: ... or checkpoint as soon as this many entries wait to be acked
    checkpoint_entries: int = 100_000
    #: checkpoint bytes written per second and symbol at most: a state larger than this
    #: many bytes per ``eval_interval_s`` is checkpointed (and its summary published) less
    #: often. The evaluator's windows make a state of ~0.7 MB: every second it was an
    #: eighth of Redis's append-only file, whose writes stall the server.
    checkpoint_bytes_per_s: float = 250_000.0
    stats_interval_s: float = 10.0
    retry_cap_s: float = 5.0

    def validate(self) -> None:
        """``ValueError`` naming the first inconsistent setting."""
        if not [s for s in self.symbols if s.strip()]:
            raise ValueError("no symbols to forecast")
        for name in (
            "eval_interval_s",
            "checkpoint_bytes_per_s",
            "lease_ttl_s",
            "stats_interval_s",
            "retry_cap_s",
        ):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.lease_ttl_s < 0.5:
            raise ValueError(f"lease ttl must be at least 0.5 s, got {self.lease_ttl_s}")
        if self.rolling_window < 1:
            raise ValueError(f"rolling window must be >= 1, got {self.rolling_window}")
        for name in ("read_count", "block_ms", "maxlen", "checkpoint_entries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_block_ms(self.block_ms)

    def load_model(self) -> Model:
        """The configured artifact, or the seed heuristic when none is configured."""
        return default_model() if self.model_path is None else load_model(self.model_path)


# -- stats -------------------------------------------------------------------------------------


@dataclass
class ForecastStats:
    """Counters of one symbol, for logs, tests and the API."""

    owned: bool = False
    acquisitions: int = 0
    lease_lost: int = 0
    errors: int = 0
    #: why the symbol was refused (an unreadable checkpoint), if it was
    refused: str | None = None
    restored: int = 0
    #: checkpoints of another model/window: the evaluation started over
    model_changed: int = 0
    #: input entries received (read, or re-read from the pending list)
    entries_in: int = 0
    #: feature rows fed to the evaluator
    rows_in: int = 0
    forecasts_out: int = 0
    #: forecasts Redis already had (re-publication after a restart: a no-op)
    republished: int = 0
    rejected: int = 0
    #: rows already in the state (``seq <= last_seq``), skipped
    seen: int = 0
    claimed: int = 0
    #: pending entries whose data was trimmed from the stream before they were processed
    trimmed: int = 0
    checkpoints: int = 0
    #: fenced transactions sent again after our own lease renewal aborted them
    lease_retries: int = 0
    #: the column copy of an evaluator queue disagreed with it and was rebuilt (a bug)
    queue_rebuilds: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    last_seq: int | None = None
    last_recv_ts_ns: int = 0
    #: batches scored and published, and the time from a read's reply to the publish reply
    batches: int = 0
    publish_ns_total: int = 0
    publish_ns_max: int = 0
    #: time spent feeding the evaluator (after the publish), all batches
    evaluate_ns_total: int = 0
    checkpoint_ns_total: int = 0
    checkpoint_ns_max: int = 0

    @property
    def skipped(self) -> int:
        return self.seen + self.trimmed + sum(self.bad.values())


# -- errors ------------------------------------------------------------------------------------


class StateError(RuntimeError):
    """The checkpoint cannot be read: never guess, refuse the symbol."""


# -- scripts -----------------------------------------------------------------------------------

# KEYS: lease, state, eval summary, features stream (unused: the layout of
# CHECKPOINT_DIGEST_LUA, whose digest hash is KEYS[5]), digest hash, the staged state. ARGV:
# owner, group, '' (unused), summary, digest state ('' = none), digest count, digest hex,
# first seq, last seq, the staged state's length (Fence.eval_staged). State, summary and
# output digest (cif.digest) change together or not at all, so after a crash no
# re-published forecast counts twice in the digest. The inputs are acked afterwards
# (SymbolSession.ack_chunk).
_CHECKPOINT_LUA = (
    FENCE_LUA
    + STAGED_STATE_LUA
    + """
redis.call('SET', KEYS[3], ARGV[4])
"""
    + CHECKPOINT_DIGEST_LUA
    + """
return 0
"""
).encode()

# -- the evaluator's state ---------------------------------------------------------------------

_ROW_DTYPES: Final = (np.dtype("<i8"), np.dtype("<i8"), np.dtype("<f8"))
_ALLOWED_CLASSES: Final = frozenset(
    {
        ("collections", "deque"),
        ("cif.forecast.evaluation", "Evaluator"),
        ("cif.forecast.evaluation", "_Track"),
        ("cif.forecast.evaluation", "_Sum"),
        ("cif.forecast.labels", "LabelTracker"),
    }
)


class _StateUnpickler(pickle.Unpickler):
    """Resolves only the classes a forecaster state is made of: a checkpoint key that
    someone else wrote cannot make the service import or call anything else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_CLASSES:
            raise pickle.UnpicklingError(f"a forecaster state never holds {module}.{name}")
        return super().find_class(module, name)


def check_evaluator_layout(ev: Evaluator) -> None:
    """The checkpoint reads the evaluator's two FIFO queues directly (see the module doc):
    fail loudly at start, not at the first restore, if their layout ever changes."""
    tracker = getattr(ev, "_tracker", None)
    if not isinstance(tracker, LabelTracker):
        raise TypeError("Evaluator has no LabelTracker in _tracker: the checkpoint needs it")
    for owner, name in ((ev, "_pending"), (tracker, "_pending")):
        if not isinstance(getattr(owner, name, None), deque):
            raise TypeError(f"{type(owner).__name__}.{name} is not a deque: update the service")
    probe = Evaluator(ev.classes, 1)
    probe.observe(0, 1.0, [1.0 / len(ev.classes)] * len(ev.classes))
    item, row = probe._pending[0], probe._tracker._pending[0]
    ok_item = (
        len(item) == 3
        and isinstance(item[0], int)
        and all(len(x) == len(ev.classes) for x in item[1:])
    )
    if not ok_item or len(row) != 3 or row[:2] != (0, 0):
        raise TypeError(f"unexpected evaluator queue items {item!r} / {row!r}: update the service")


#: rows a :class:`_ColumnQueue` gathers in Python lists before it converts them to arrays
COMPACT_ROWS: Final = 256


class _ColumnQueue:
    """A column copy of one of the evaluator's FIFO queues (first column: the row index).

    New rows are appended to flat Python lists as the evaluator takes them (a list append
    per value: the cheapest thing the hot loop can do); :meth:`columns` turns them into
    arrays, appends them to the columns kept from the last checkpoint and drops the rows
    the evaluator has settled since (every index below its queue's head: both queues are
    FIFO in row order). A checkpoint thus costs O(rows since the last one) instead of
    re-encoding every waiting forecast from Python tuples each time; and :meth:`compact`,
    called after each batch, turns the lists into arrays every :data:`COMPACT_ROWS` rows,
    so the checkpoint (which runs on the event loop, ahead of the next batch) does not
    convert the thousands of rows of seconds at once: that took 1-6 ms of its 4-11."""

    def __init__(self, dtypes: Sequence[np.dtype[Any]], widths: Sequence[int]) -> None:
        self.dtypes = tuple(dtypes)
        self.widths = tuple(widths)  # 0: a 1-D column, k: (n, k)
        self.new: tuple[list[Any], ...] = tuple([] for _ in self.dtypes)
        self._cols = self.empty_columns()
        #: rows converted by :meth:`compact` since the last :meth:`columns`, oldest first
        self._chunks: list[tuple[NDArray[Any], ...]] = []

    def empty_columns(self) -> tuple[NDArray[Any], ...]:
        return tuple(
            np.empty((0, w) if w else 0, dtype=d)
            for d, w in zip(self.dtypes, self.widths, strict=True)
        )

    def reset(self, cols: Sequence[NDArray[Any]]) -> None:
        self._cols = tuple(cols)
        self._chunks.clear()
        for values in self.new:
            values.clear()

    def _take_new(self) -> tuple[NDArray[Any], ...]:
        added = tuple(
            np.array(values, dtype=d).reshape(-1, w) if w else np.array(values, dtype=d)
            for values, d, w in zip(self.new, self.dtypes, self.widths, strict=True)
        )
        for values in self.new:
            values.clear()
        return added

    def compact(self) -> None:
        """Convert the rows appended so far into arrays, once there are
        :data:`COMPACT_ROWS` of them."""
        if len(self.new[0]) >= COMPACT_ROWS:
            self._chunks.append(self._take_new())

    def columns(self, head: int | None) -> tuple[NDArray[Any], ...]:
        """The rows with index >= ``head`` (None: none), as arrays."""
        cols = self._cols
        parts = self._chunks
        if self.new[0]:
            parts.append(self._take_new())
        if parts:
            cols = tuple(np.concatenate(c) for c in zip(cols, *parts, strict=True))
            parts.clear()
        if head is None:
            cols = self.empty_columns()
        else:
            start = int(np.searchsorted(cols[0], head, side="left"))
            if start:
                cols = tuple(np.ascontiguousarray(c[start:]) for c in cols)
        self._cols = cols
        return cols


def _rows_to_columns(items: Sequence[tuple[int, int, float]]) -> tuple[NDArray[Any], ...]:
    return (
        np.array([r[0] for r in items], dtype=np.int64),
        np.array([r[1] for r in items], dtype=np.int64),
        np.array([r[2] for r in items], dtype=np.float64),
    )


def _forecasts_to_columns(
    items: Sequence[tuple[int, tuple[float, ...], tuple[float, ...]]], k: int
) -> tuple[NDArray[Any], ...]:
    return (
        np.array([f[0] for f in items], dtype=np.int64),
        np.array([f[1] for f in items], dtype=np.float64).reshape(-1, k),
        np.array([f[2] for f in items], dtype=np.float64).reshape(-1, k),
    )


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _fits_i64(value: int | None) -> bool:
    return value is None or _I64_MIN <= value <= _I64_MAX


@dataclass(slots=True)
class _Batch:
    """The valid new rows of one read, as columns (a list per field, no object per row)."""

    seqs: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    recv_ts_ns: list[int] = field(default_factory=list)
    #: the model's input, per row: its features in model order
    xs: list[list[float]] = field(default_factory=list)
    mids: list[float] = field(default_factory=list)
    #: the entry IDs
    ids: list[bytes] = field(default_factory=list)


def _same_item(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return repr(a) == repr(b)  # NaN-aware and sign-of-zero-aware equality of plain tuples


def model_identity(model: Model, window: int) -> dict[str, Any]:
    """What an evaluation belongs to: the model (its parameters by hash: ``created_at`` of
    the built-in heuristic changes every run) and the rolling window."""
    d = model.to_dict()
    d.pop("created_at", None)
    digest = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
    return {
        "name": model.name,
        "version": model.version,
        "kind": model.kind,
        "classes": list(model.classes),
        "horizon_ms": model.horizon_ms,
        "features": list(model.features),
        "sha256": digest,
        "window": window,
    }


# -- one ownership period of one symbol --------------------------------------------------------


class _Session(SymbolSession[ForecastStats]):
    """What the forecaster does with a symbol while it holds the lease: restore, recover the
    pending entries, then read, score, publish, evaluate and checkpoint until stopped (or
    the lease is lost)."""

    def __init__(self, fc: Forecaster, symbol: str, lease: Lease) -> None:
        cfg = fc.config
        model = fc.model
        super().__init__(
            fc,
            symbol,
            lease,
            group=cfg.group,
            read_count=cfg.read_count,
            digest_key=digest_key("forecasts", symbol, cfg.namespace),
        )
        self.fc = fc
        self.cfg = cfg
        self.model = model
        self.features = features_key(symbol, cfg.namespace)
        self.forecasts = forecasts_key(symbol, cfg.namespace)
        self.state = state_key(symbol, cfg.namespace)
        self.eval = eval_key(symbol, cfg.namespace)
        self.k = len(model.classes)
        self.identity = model_identity(model, cfg.rolling_window)
        self.evaluator = self._fresh_evaluator()
        self.last_seq: int | None = None
        self.row_queue = _ColumnQueue(_ROW_DTYPES, (0, 0, 0))
        self.forecast_queue = _ColumnQueue(
            (np.dtype("<i8"), np.dtype("<f8"), np.dtype("<f8")), (0, self.k, self.k)
        )
        #: entry IDs the next checkpoint covers, as RESP bulk strings (``bulk(id)``)
        self.acks: list[bytes] = []
        self.ackable = {self.features: []}
        self.dirty = False
        self.last_checkpoint = time.monotonic()
        #: size of the last checkpoint's state (paces the next one)
        self.state_bytes = 0
        # The forecast entry (spec field order): the fixed fields as RESP bulk strings, in
        # the pieces that come before each varying value (seq, ts, recv_ts_ns, then the
        # probabilities); the ID comes first and published_ns is appended just before the
        # round trip (see _publish).
        classes = model.classes
        i_flat = classes.index("flat") if "flat" in classes else None
        n_fields = 11 if i_flat is None else 12
        self._n_args_entry = 2 + 2 * n_fields
        self._entry_fixed = [
            bulk(b"%d" % n_fields) + bulk(b"symbol") + bulk(symbol.encode()) + bulk(b"seq"),
            bulk(b"ts"),
            bulk(b"recv_ts_ns"),
            bulk(b"horizon")
            + bulk(model.horizon.encode())
            + bulk(b"horizon_ms")
            + bulk(b"%d" % model.horizon_ms)
            + bulk(b"model")
            + bulk(model.name.encode())
            + bulk(b"model_version")
            + bulk(b"%d" % model.version)
            + bulk(b"prob_up"),
            bulk(b"prob_down"),
        ]
        #: the probabilities' class columns, in the entry's order
        self._prob_columns = [classes.index("up"), classes.index("down")]
        if i_flat is not None:
            self._entry_fixed.append(bulk(b"prob_flat"))
            self._prob_columns.append(i_flat)
        self._f_published = bulk(b"published_ns")
        # The entry fields _decode reads: the header (in the order decode_feature_entry
        # reads it, see _decode_carefully), then the values of the model's features and the
        # mid out of the features' field. The layout of that field (its name: the feature
        # names joined by ",") is learnt from the first entry that has it, and the fast path
        # reads the values by position while entries keep that layout.
        self._header_fields = tuple(f.encode() for f in ROW_FIELDS)
        self._used_names = tuple(dict.fromkeys([*model.features, "mid"]))
        #: the learnt layout: (features field name, its number of values, the positions
        #: of the model's features in it, the position of the mid)
        self._layout: tuple[bytes | None, int, list[int], int] = (None, 0, [], 0)
        self.publisher = self.fence.publisher(self.forecasts, cfg.maxlen)
        #: XREADGROUP GROUP g c COUNT n STREAMS features >, packed once (see _read_new)
        self._read_call = pack_command(
            b"XREADGROUP", b"GROUP", cfg.group, self.consumer, b"COUNT", cfg.read_count,
            b"STREAMS", self.features, b">",
        )  # fmt: skip
        #: the last entry ID read from the features stream (where a wait resumes)
        self.last_id: bytes | str = b"$"

    def _fresh_evaluator(self) -> Evaluator:
        m = self.model
        return Evaluator(
            m.classes,
            m.horizon_ms,
            window=self.cfg.rolling_window,
            symbol=self.symbol,
            model=m.name,
            model_version=m.version,
        )

    # -- state -------------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The checkpoint blob (module doc, "Checkpoint format")."""
        ev = self.evaluator
        tracker = ev._tracker
        rows_q, fc_q = tracker._pending, ev._pending
        rows = self.row_queue.columns(rows_q[0][0] if rows_q else None)
        if not self._queue_matches(rows, rows_q):
            self._rebuilt("rows")
            rows = _rows_to_columns(list(rows_q))
            self.row_queue.reset(rows)
        fcs = self.forecast_queue.columns(fc_q[0][0] if fc_q else None)
        if not self._queue_matches(fcs, fc_q):
            self._rebuilt("forecasts")
            fcs = _forecasts_to_columns(list(fc_q), self.k)
            self.forecast_queue.reset(fcs)
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "symbol": self.symbol,
            "identity": self.identity,
            "last_seq": self.last_seq,
            "evaluator": ev,
            "rows": [c.tobytes() for c in rows],
            "forecasts": [c.tobytes() for c in fcs],
        }
        # Detach the queues (they travel as columns); nothing else runs meanwhile.
        tracker._pending = None  # type: ignore[assignment]
        ev._pending = None  # type: ignore[assignment]
        try:
            buf = io.BytesIO()
            pickler = pickle.Pickler(buf, protocol=5)
            # No memo: the bytes depend on the values only, not on which equal objects
            # happen to be shared (a restored evaluator shares fewer strings).
            pickler.fast = True
            pickler.dump(state)
            return buf.getvalue()
        finally:
            tracker._pending = rows_q
            ev._pending = fc_q

    def _queue_matches(self, cols: tuple[NDArray[Any], ...], queue: deque[Any]) -> bool:
        n = len(cols[0])
        if n != len(queue):
            return False
        if n == 0:
            return True
        for pos in (0, n - 1):
            got = tuple(c[pos].tolist() if c.ndim == 1 else tuple(c[pos].tolist()) for c in cols)
            if not _same_item(got, queue[pos]):
                return False
        return True

    def _rebuilt(self, which: str) -> None:
        self.stats.queue_rebuilds += 1
        log.error(
            "%s: the column copy of the evaluator's %s queue disagreed with it; rebuilt "
            "from the evaluator (slow path; please report)",
            self.symbol,
            which,
        )

    def restore(self, blob: bytes) -> None:
        """Load a checkpoint made by :meth:`snapshot` (``StateError`` if unreadable)."""
        try:
            state = _StateUnpickler(io.BytesIO(blob)).load()
            if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
                raise ValueError("not a forecaster state")
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {state.get('version')!r}")
            if state.get("symbol") != self.symbol:
                raise ValueError(f"state of symbol {state.get('symbol')!r}")
            last_seq = state["last_seq"]
            if last_seq is not None and not isinstance(last_seq, int):
                raise ValueError(f"last_seq is {last_seq!r}")
            if state.get("identity") != self.identity:
                self.stats.model_changed += 1
                log.warning(
                    "%s: checkpoint %s was made for %s, configured is %s: the evaluation "
                    "starts over (forecasting resumes after seq %s)",
                    self.symbol,
                    self.state,
                    state.get("identity"),
                    self.identity,
                    last_seq,
                )
                self.evaluator = self._fresh_evaluator()
                self.row_queue.reset(self.row_queue.empty_columns())
                self.forecast_queue.reset(self.forecast_queue.empty_columns())
                self.last_seq = last_seq
                return
            ev = state["evaluator"]
            if not isinstance(ev, Evaluator) or not isinstance(ev._tracker, LabelTracker):
                raise ValueError("no evaluator in the state")
            rows = self._decode_columns(state["rows"], self.row_queue)
            fcs = self._decode_columns(state["forecasts"], self.forecast_queue)
        except StateError:
            raise
        except Exception as exc:  # any malformed blob, whatever the unpickler trips on
            raise StateError(f"checkpoint {self.state} cannot be restored: {exc!r}") from exc
        k = self.k
        ev._tracker._pending = deque(
            zip(rows[0].tolist(), rows[1].tolist(), rows[2].tolist(), strict=True)
        )
        ev._pending = deque(
            zip(
                fcs[0].tolist(),
                map(tuple, fcs[1].reshape(-1, k).tolist()),
                map(tuple, fcs[2].reshape(-1, k).tolist()),
                strict=True,
            )
        )
        self.row_queue.reset(rows)
        self.forecast_queue.reset(fcs)
        self.evaluator = ev
        self.last_seq = last_seq

    @staticmethod
    def _decode_columns(raw: Any, queue: _ColumnQueue) -> tuple[NDArray[Any], ...]:
        if not isinstance(raw, list) or len(raw) != len(queue.dtypes):
            raise ValueError("bad queue columns")
        cols = []
        for data, dtype, width in zip(raw, queue.dtypes, queue.widths, strict=True):
            col = np.frombuffer(data, dtype=dtype).copy()
            cols.append(col.reshape(-1, width) if width else col)
        if len({len(c) for c in cols}) != 1:
            raise ValueError("queue columns of different lengths")
        return tuple(cols)

    async def _load(self) -> None:
        data: Any = await self.client.get(self.state)
        if data is None:
            log.info("%s: no checkpoint, starting a fresh evaluation", self.symbol)
            self.digest = ChainDigest("forecasts")
            return
        self.restore(bytes(data))
        self.stats.restored += 1
        await self.load_digest()
        ev = self.evaluator
        log.info(
            "%s: restored checkpoint (last seq %s, %d rows, %d forecasts scored, %d waiting)",
            self.symbol,
            self.last_seq,
            ev.rows,
            ev.scored,
            ev.pending,
        )

    # -- input -------------------------------------------------------------------------------

    async def _read_new(self, wait: bool) -> list[tuple[Any, dict[Any, Any]]]:
        """New entries, by one fenced, non-blocking ``XREADGROUP >`` (a former owner that
        lost its lease must not pull new entries into its own pending list, where the new
        owner would never see them). With ``wait``, the read is preceded, in the same round
        trip, by a plain ``XREAD BLOCK`` until the stream has entries beyond the last ones
        read (or the block time passes): a blocking read cannot run inside the transaction
        that fences the group read, and a plain one changes nothing in the group."""
        # A chunk of acks rides along in front, in the same round trip.
        before = self.ack_chunk()
        if wait:
            before.append(wait_command(self.cfg.block_ms, [self.features], [self.last_id]))
        reply = await self.fence.watch.call(self._read_call, before)
        entries = stream_entries(reply[0][1]) if reply else []
        if entries:
            self.last_id = entries[-1][0]
        return entries

    async def _read_own_pending(self, stop: asyncio.Event) -> None:
        """Every entry delivered to us and not acked, from ID 0, processed in order."""
        last: Any = "0"
        total = 0
        while not stop.is_set():
            await self.maybe_renew()
            reply: Any = await self.client.xreadgroup(
                self.cfg.group, self.consumer, {self.features: last}, count=self.cfg.read_count
            )
            entries = reply[0][1] if reply else []
            if not entries:
                break
            last = entries[-1][0]
            total += len(entries)
            await self._process(entries)
            if self._checkpoint_due(time.monotonic()):
                await self._checkpoint()
        if total:
            log.info("%s: re-processed %d delivered, unacked entries", self.symbol, total)

    # -- processing --------------------------------------------------------------------------

    def _bad(self, reason: str, entry_id: bytes, fields: Mapping[Any, Any], detail: str) -> None:
        self.fc.bad(self.symbol, reason, entry_id, fields, detail)

    def _decode(self, entries: list[Any]) -> _Batch:
        """The new, valid rows of a batch, as columns.

        Only the header and the values this service uses are read (the model's features
        and the mid, a handful of a row's ~40; by position while the entries keep the
        features field's layout learnt by :meth:`_decode_carefully`): decoding is most of
        the cost of a batch, and a garbage value in a feature nobody here reads is no
        reason to drop the row. An
        entry is skipped for the first of these that applies, in this order: undecodable,
        seen, id_mismatch, ts_decreasing, missing_feature.

        Rows in the learnt layout are read in Rust (:func:`cif._core.decode_feature_rows`,
        Python's ``int()``/``float()`` rules); the first entry it leaves (another layout, a
        value it cannot read) takes :meth:`_decode_one` here, then Rust carries on.
        """
        self.acks.extend([bulk(entry_id) for entry_id, _ in entries])
        last_seq = self.last_seq
        last_ts = self.evaluator.last_ts
        out = _Batch()
        n = len(entries)
        i = 0
        while i < n:
            layout, n_values, idx, i_mid = self._layout
            if layout is not None and _fits_i64(last_seq) and _fits_i64(last_ts):
                (stop, issues, seqs, ts, recv, xs, mids, ids, last_seq, last_ts) = (
                    decode_feature_rows(
                        entries, i, self._header_fields, layout, n_values, idx, i_mid,
                        _ENTRY_FIELDS, last_seq, last_ts,
                    )
                )  # fmt: skip
                out.seqs += seqs
                out.ts += ts
                out.recv_ts_ns += recv
                out.xs += xs
                out.mids += mids
                out.ids += ids
                for index, reason, value, reference in issues:
                    self._set_aside(entries[index], reason, value, reference)
                i = stop
                if i == n:
                    break
            last_seq, last_ts = self._decode_one(entries[i], out, last_seq, last_ts)
            i += 1
        self.last_seq = last_seq
        return out

    def _set_aside(
        self, entry: tuple[bytes, Mapping[Any, Any]], reason: str, value: int, reference: Any
    ) -> None:
        """Count and log an entry :func:`~cif._core.decode_feature_rows` did not keep."""
        entry_id, fields = entry
        if reason == "trimmed":
            self.stats.trimmed += 1
        elif reason == "seen":
            self.seen(entry_id, value, reference)
        elif reason == "id_mismatch":
            self._bad("id_mismatch", entry_id, fields, f"seq field {value}")
        else:
            self._bad("ts_decreasing", entry_id, fields, f"ts {value} < {reference}")

    def _decode_one(
        self, entry: tuple[Any, Any], out: _Batch, last_seq: int | None, last_ts: int | None
    ) -> tuple[int | None, int | None]:
        """One entry by the Python rules (what the Rust path leaves): its row appended to
        ``out`` when it is kept; the order after it."""
        entry_id, fields = entry
        if not fields:  # trimmed from the stream while pending
            self.stats.trimmed += 1
            return last_seq, last_ts
        try:
            seq, ts, recv, x, mid, missing = self._decode_carefully(fields)
        except (KeyError, ValueError, TypeError) as exc:
            self._bad("undecodable", entry_id, fields, repr(exc))
            return last_seq, last_ts
        if last_seq is not None and seq <= last_seq:
            self.seen(entry_id, seq, last_seq)
            return last_seq, last_ts
        if entry_id != b"%d-0" % seq:
            self._bad("id_mismatch", entry_id, fields, f"seq field {seq}")
            return last_seq, last_ts
        if last_ts is not None and ts < last_ts:
            self._bad("ts_decreasing", entry_id, fields, f"ts {ts} < {last_ts}")
            return last_seq, last_ts
        if missing is not None:
            self._bad("missing_feature", entry_id, fields, f"no feature {missing!r}")
            return last_seq, last_ts
        out.seqs.append(seq)
        out.ts.append(ts)
        out.recv_ts_ns.append(recv)
        out.xs.append(x)
        out.mids.append(mid)
        out.ids.append(entry_id)
        return seq, ts

    def _decode_carefully(
        self, fields: Mapping[Any, Any]
    ) -> tuple[int, int, int, list[float], float, str | None]:
        """An entry the fast path of :meth:`_decode` stumbled on: the same conversions one
        field at a time, in the order of :func:`cif.features.entries.decode_feature_entry`
        (seq, ts, recv_ts_ns, kind, then the used features present), so that a bad entry
        is reported with the same error as always: ``KeyError`` naming a missing header
        field, a ``ValueError`` for a features field with more names than values or the
        reverse, or the ``int()``/``float()`` error of the first bad value used. A missing
        feature is not an error here (it is counted after the seq and time checks): it is
        returned by name (the last one missing), with no values. An entry whose one
        features field holds every used feature teaches the fast path its layout."""
        header: list[int] = []
        for name in self._header_fields:
            raw = fields.get(name)
            if raw is None:
                raise KeyError(f"feature entry has no field {name.decode()!r}")
            header.append(int(raw))
        seq, ts, recv, _kind = header
        texts = feature_texts(fields)
        value_keys = [k for k in fields if k not in ROW_FIELD_KEYS]
        values: dict[str, float] = {}
        missing = None
        for used in self._used_names:
            raw = texts.get(used)
            if raw is None:
                missing = used
            else:
                values[used] = float(raw)
        if missing is not None:
            return seq, ts, recv, [], math.nan, missing
        if len(value_keys) == 1 and isinstance(value_keys[0], bytes):
            self._learn_layout(value_keys[0])
        return seq, ts, recv, [values[f] for f in self.model.features], values["mid"], None

    def _learn_layout(self, key: bytes) -> None:
        """Read the values by position from now on, for entries whose features field is
        ``key`` (its names hold every used feature: checked by the caller)."""
        names = key.decode().split(",")
        position = {name: i for i, name in enumerate(names)}
        self._layout = (
            key,
            len(names),
            [position[f] for f in self.model.features],
            position["mid"],
        )

    def _predict(
        self, xs: list[list[float]], ids: list[bytes]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """``model.predict`` on the batch (one scorer call) and the rows whose probabilities
        are publishable; a batch the model fails on is retried row by row."""
        n, k = len(xs), self.k
        x = np.array(xs, dtype=np.float64).reshape(n, len(self.model.features))
        try:
            p = np.asarray(self.model.predict(x), dtype=np.float64)
            if p.shape != (n, k):
                raise ValueError(f"model returned shape {p.shape}, expected {(n, k)}")
        except Exception as exc:  # a model error must not stop the service
            p = np.full((n, k), np.nan)
            for i in range(n):
                try:
                    one = np.asarray(self.model.predict(x[i : i + 1]), dtype=np.float64)
                    p[i] = one.reshape(k)
                except Exception as exc_i:
                    self._bad("model_error", ids[i], {}, f"{exc_i!r} (batch: {exc!r})")
        ok = publishable_rows(p, PROB_SUM_TOLERANCE)
        if not ok.all():
            for i in np.flatnonzero(~ok).tolist():
                if np.isfinite(p[i]).any():  # model_error rows are NaN and counted already
                    self._bad("invalid_probs", ids[i], {}, f"probabilities {p[i].tolist()}")
        return p, ok

    async def _process(self, entries: list[Any]) -> None:
        """One read's entries: decode, score, publish, then evaluate."""
        t0 = time.perf_counter_ns()
        stats = self.stats
        stats.entries_in += len(entries)
        self.dirty = True
        self.bookkeeping.run()  # the last batch's evaluation: decoding reads its last ts
        batch = self._decode(entries)
        if not batch.ids:
            return
        probs, ok = self._predict(batch.xs, batch.ids)
        plist = probs.tolist()
        okl = ok.tolist()
        published = any(okl)
        if published:
            await self._publish(batch, probs, ok)
        t1 = time.perf_counter_ns()
        stats.batches += 1
        stats.publish_ns_total += t1 - t0
        stats.publish_ns_max = max(stats.publish_ns_max, t1 - t0)
        stats.last_recv_ts_ns = batch.recv_ts_ns[-1]
        stats.last_seq = self.last_seq

        def evaluate() -> None:
            t2 = time.perf_counter_ns()
            if published and self.digest is not None:
                seqs = np.array(batch.seqs, dtype=np.int64)
                self.digest.update_forecasts(seqs[ok], probs[ok])
            self._feed(batch.ts, batch.mids, plist, okl, batch.ids)
            stats.evaluate_ns_total += time.perf_counter_ns() - t2

        # The digest and the evaluation wait until the API has sent the forecasts (and the
        # other symbols theirs); the next batch's decoding reads the evaluator, so it runs
        # them first if they are still waiting.
        self.bookkeeping.defer(evaluate)

    async def _publish(
        self, batch: _Batch, probs: NDArray[np.float64], ok: NDArray[np.bool_]
    ) -> None:
        """XADD the forecasts in one fenced transaction (one round trip)."""
        published = self._f_published + bulk(b"%d" % time.time_ns())
        bodies = self._entry_bodies(batch.seqs, batch.ts, batch.recv_ts_ns, probs, ok, published)
        done = await self.publisher.publish(bodies, self._n_args_entry)
        stats = self.stats
        stats.forecasts_out += done.added
        stats.republished += done.duplicates
        if done.rejected:
            stats.rejected += done.rejected
            log.error(
                "%s: redis rejected %d forecasts: %r", self.symbol, done.rejected, done.first_error
            )

    def _entry_bodies(
        self,
        seqs: Sequence[int],
        ts: Sequence[int],
        recv_ts_ns: Sequence[int],
        probs: Any,
        ok: Any,
        suffix: bytes = b"",
    ) -> list[bytes]:
        """The forecast entries of the rows with a forecast, each ending with ``suffix``
        (``published_ns``), in one Rust call. The numbers' text is ``str`` of the ints and
        ``repr`` of the probabilities (the shortest round trip), all ASCII."""
        return pack_forecast_entries(
            self._entry_fixed,
            seqs,
            ts,
            recv_ts_ns,
            np.asarray(probs, dtype=np.float64).reshape(len(seqs), self.k),
            np.asarray(ok, dtype=np.bool_).reshape(len(seqs)),
            self._prob_columns,
            suffix,
        )

    def _feed(
        self,
        ts: list[int],
        mids: list[float],
        probs: list[list[float]],
        ok: list[bool],
        ids: list[bytes],
    ) -> None:
        """Every row to the evaluator (with its forecast when it got one), in order, and
        the column copies of its queues."""
        ev = self.evaluator
        forecasts = [p if good else None for p, good in zip(probs, ok, strict=True)]
        first = ev.rows
        queued: list[tuple[int, tuple[float, ...], tuple[float, ...]]] = []
        try:
            ev.observe_batch(ts, mids, forecasts, queued)
        except ValueError:
            # Not expected (the rows were checked on the way in), and the batch took nothing:
            # feed the rows one by one to count and skip just the ones refused.
            self._feed_one_by_one(ts, mids, forecasts, ids)
            return
        self._copy_queues(first, ts, mids, queued)
        self.stats.rows_in += len(ts)

    def _feed_one_by_one(
        self,
        ts: list[int],
        mids: list[float],
        forecasts: list[list[float] | None],
        ids: list[bytes],
    ) -> None:
        ev = self.evaluator
        for t, mid, p, entry_id in zip(ts, mids, forecasts, ids, strict=True):
            first = ev.rows
            queued: list[tuple[int, tuple[float, ...], tuple[float, ...]]] = []
            try:
                ev.observe_batch((t,), (mid,), (p,), queued)
            except ValueError as exc:
                self._bad("evaluation", entry_id, {}, str(exc))
                continue
            self._copy_queues(first, (t,), (mid,), queued)
            self.stats.rows_in += 1

    def _copy_queues(
        self,
        first: int,
        ts: Sequence[int],
        mids: Sequence[float],
        queued: list[tuple[int, tuple[float, ...], tuple[float, ...]]],
    ) -> None:
        """Append what the evaluator just queued to the column copies: rows ``first``,
        ``first + 1``... (its label tracker keeps ``(index, ts, mid)`` of every row) and
        the forecasts it reported in ``queued``."""
        r_idx, r_ts, r_mid = self.row_queue.new
        r_idx.extend(range(first, first + len(ts)))
        r_ts.extend(map(int, ts))
        r_mid.extend(map(float, mids))
        f_idx, f_probs, f_base = self.forecast_queue.new
        for index, p, base in queued:
            f_idx.append(index)
            f_probs.extend(p)
            f_base.extend(base)
        self.row_queue.compact()
        self.forecast_queue.compact()

    # -- checkpoint --------------------------------------------------------------------------

    def checkpoint_interval(self) -> float:
        """Seconds between checkpoints: ``eval_interval_s``, longer for a large state."""
        cfg = self.cfg
        return paced_interval(cfg.eval_interval_s, self.state_bytes, cfg.checkpoint_bytes_per_s)

    def _checkpoint_due(self, now: float) -> bool:
        if len(self.acks) >= self.cfg.checkpoint_entries:
            return True
        return self.dirty and now - self.last_checkpoint >= self.checkpoint_interval()

    def checkpoint_call(self) -> Coroutine[Any, Any, None]:
        """The fenced call of the state and the summary as they are now; the entries it
        covers become ackable once it has landed."""
        blob = self.snapshot()
        self.state_bytes = len(blob)
        summary = json.dumps(self.evaluator.summary(), allow_nan=False, separators=(",", ":"))
        keys = [self.state, self.eval, self.features, self.digest_key]
        # ARGV[3], once the state, stays empty: the state is staged (Fence.eval_staged)
        args: list[bytes | str | int] = [self.cfg.group, b"", summary, *digest_args(self.digest)]
        acks = self.acks
        self.acks = []
        self.dirty = False
        self.last_checkpoint = time.monotonic()

        async def call() -> None:
            await self.fence.eval_staged(_CHECKPOINT_LUA, keys, args, (), blob)
            self.ackable[self.features] += acks

        return call()

    def checkpoint_landed_hook(self, took_ns: int) -> None:
        super().checkpoint_landed_hook(took_ns)
        stats = self.stats
        stats.checkpoint_ns_total += took_ns
        stats.checkpoint_ns_max = max(stats.checkpoint_ns_max, took_ns)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work on the symbol until ``stop`` (then checkpoint); raises ``LeaseLost``,
        ``StateError`` or Redis errors, which end the ownership period."""
        await self._load()
        await self.ensure_groups(self.features)
        await self.claim_pending(self.features)  # read back with our own pending list
        await self._read_own_pending(stop)
        idle = False
        try:
            while not stop.is_set():
                await self.maybe_renew()
                entries = await self._read_new(wait=idle)
                # Everything there was is read: wait before the next read (the wait returns
                # at once if entries arrived meanwhile).
                idle = len(entries) < self.cfg.read_count
                if entries:
                    await self._process(entries)
                await self.checkpoint_step(self._checkpoint_due(time.monotonic()))
            await self.final_checkpoint(bool(self.dirty or self.acks))
            await self.flush_acks()
        except BaseException:
            self.drop_checkpoint()
            raise


# -- the service -------------------------------------------------------------------------------


class Forecaster(OwnedSymbols[ForecastStats]):
    """Runs one task per configured symbol: stand by for its lease, own it, recover
    (:class:`cif.bus.owned_symbols.OwnedSymbols`)."""

    role = "forecasts"
    title = "forecaster"
    task_noun = "forecast"
    entry_noun = "feature row"
    refusal = StateError
    refusal_hint = " (delete the key to start over)"

    def __init__(
        self,
        config: ForecasterConfig,
        client: aioredis.Redis | None = None,
        model: Model | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.model = model if model is not None else config.load_model()
        header = [f for f in self.model.features if f in ROW_FIELDS]
        if header:
            raise ArtifactError(
                f"model {self.model.name} v{self.model.version} takes {header} as features: "
                "those are the header fields of a feature entry, not features"
            )
        check_evaluator_layout(Evaluator(self.model.classes, self.model.horizon_ms))
        symbols = list(dict.fromkeys(s.strip().lower() for s in config.symbols if s.strip()))
        super().__init__(log, config, symbols, ForecastStats, client)

    def lease_key(self, symbol: str) -> str:
        return forecaster_lease_key(symbol, self.config.namespace)

    def session(self, symbol: str, lease: Lease) -> _Session:
        return _Session(self, symbol, lease)

    def describe(self) -> str:
        cfg = self.config
        m = self.model
        return (
            f"forecaster {self.owner} (consumer {self.consumer}) for {','.join(self.symbols)}: "
            f"model {m.name} v{m.version} ({m.kind}, horizon {m.horizon}, features "
            f"{list(m.features)}); evaluation every {cfg.eval_interval_s:g} s over a window "
            f"of {cfg.rolling_window}; lease ttl {cfg.lease_ttl_s:g} s"
        )

    def symbol_summary(self, s: ForecastStats, state: str, lag: str) -> str:
        """Rows in, forecasts out, duplicates, skipped, cost, lag."""
        per_batch = f"{s.publish_ns_total / s.batches / 1e3:.0f}us" if s.batches else "-"
        return (
            f"rows in {s.rows_in}, forecasts out {s.forecasts_out}, "
            f"duplicates {s.republished}, skipped {s.skipped} (seen {s.seen}, "
            f"bad {dict(s.bad) or 0}, trimmed {s.trimmed}), claimed {s.claimed}, "
            f"lease retries {s.lease_retries}, "
            f"batches {s.batches} ({per_batch} to publish, max "
            f"{s.publish_ns_max / 1e6:.1f}ms), checkpoints {s.checkpoints}, lag {lag}"
        )


async def run_forecaster(
    config: ForecasterConfig,
    stop: asyncio.Event,
    *,
    client: aioredis.Redis | None = None,
    model: Model | None = None,
) -> Forecaster:
    """Run the forecaster until ``stop`` is set (the entry the combined ``cif live`` process
    calls); returns it, with its counters. A bad model artifact raises at once (a deploy
    with a broken model should fail, not run without forecasts)."""
    forecaster = Forecaster(config, client=client, model=model)
    await forecaster.run(stop)
    return forecaster


__all__ = [
    "GROUP",
    "LEASE_ROLE",
    "ForecastStats",
    "Forecaster",
    "ForecasterConfig",
    "LeaseLost",
    "StateError",
    "forecaster_lease_key",
    "model_identity",
    "run_forecaster",
    "state_key",
]
