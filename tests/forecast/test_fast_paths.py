"""The forecaster's per-row hot paths against the plain row-by-row code they replaced.

``Evaluator.observe_batch`` (``observe`` is the same code for one row), the label tracker's
``push_batch``, the evaluator's tracks (now in Rust), and the service's ``_decode``,
``_feed`` and forecast encoding were rewritten for speed. The previous implementations are
kept here as references (copied, since they are no longer in the package), and the new code
must match them exactly: the same evaluator state, field for field and bit for bit (so
existing checkpoints restore and continue identically), the same summaries, the same
published bytes, and the same skipped entries with the same reasons and messages, in the
same order.

No Redis: the sessions are built without connecting and publish to a fake publisher.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import pickle
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cif._core import ScoreTrack, decode_feature_rows, pack_forecast_entries, publishable_rows
from cif.bus.fenced import Published
from cif.bus.stream_writer import bulk
from cif.features.entries import ROW_FIELDS, decode_feature_entry
from cif.features.leases import Lease
from cif.forecast.evaluation import P_MIN, Evaluator, _Sum, _Track, auc_bin
from cif.forecast.labels import CLASSES_2, CLASSES_3, DOWN, FLAT, NO_LABEL, UP, LabelTracker
from cif.forecast.models import ArtifactError, LogisticModel, Model
from cif.forecast.service import (
    COMPACT_ROWS,
    Forecaster,
    ForecasterConfig,
    _ColumnQueue,
    _Session,
    _StateUnpickler,
    forecaster_lease_key,
)

SYMBOL = "btcusdt"
NAN = math.nan

Forecast = tuple[float, ...]

# -- the reference: the row-by-row evaluator as it was -----------------------------------------


class RefTrack:
    """The evaluator's track as the Python class kept it: the attributes a checkpoint of
    that time holds (:func:`as_checkpointed` writes it under the package's class name)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.n = 0
        self.credit = _Sum()
        self.brier = _Sum()
        self.ll = _Sum()
        self.hist_up = [0] * 1000
        self.hist_not = [0] * 1000
        self.cal_n = [0] * 10
        self.cal_p = [_Sum() for _ in range(10)]
        self.cal_up = [0] * 10
        self.recent: deque[tuple[float, float, float, float, bool]] = deque()
        self.r_credit = _Sum()
        self.r_brier = _Sum()
        self.r_ll = _Sum()
        self._removals = 0


def ref_evaluator(classes: Sequence[str], horizon: int, **kw: Any) -> Evaluator:
    """An evaluator whose tracks are the Python reference's (scored by ref_observe only)."""
    ev = Evaluator(classes, horizon, **kw)
    ev._model = RefTrack(ev.window)  # type: ignore[assignment]
    ev._base = RefTrack(ev.window)  # type: ignore[assignment]
    return ev


def track_parts(tr: Any) -> tuple[Any, ...]:
    """Every field of a track, the Rust one's or the reference's, in one form."""
    if isinstance(tr, _Track):
        return tuple(tr.core.parts())
    sums = [(x.s, x.c) for x in (tr.credit, tr.brier, tr.ll)]
    r_sums = [(x.s, x.c) for x in (tr.r_credit, tr.r_brier, tr.r_ll)]
    return (
        tr.window,
        tr.n,
        tr._removals,
        sums,
        list(tr.hist_up),
        list(tr.hist_not),
        list(tr.cal_n),
        [(x.s, x.c) for x in tr.cal_p],
        list(tr.cal_up),
        list(tr.recent),
        r_sums,
    )


def ref_sum_add(s: _Sum, x: float) -> None:
    t = s.s + x
    if abs(s.s) >= abs(x):
        s.c += (s.s - t) + x
    else:
        s.c += (x - t) + s.s
    s.s = t


def ref_track_add(tr: RefTrack, probs: Sequence[float], c: int, up: int) -> None:
    top = max(probs)
    n_top = sum(1 for q in probs if q == top)
    credit = 1.0 / n_top if probs[c] == top else 0.0
    brier = 0.0
    for k, q in enumerate(probs):
        d = q - (1.0 if k == c else 0.0)
        brier += d * d
    ll = -math.log(min(max(probs[c], P_MIN), 1.0))
    pu = probs[up]
    is_up = c == up
    tr.n += 1
    ref_sum_add(tr.credit, credit)
    ref_sum_add(tr.brier, brier)
    ref_sum_add(tr.ll, ll)
    (tr.hist_up if is_up else tr.hist_not)[auc_bin(pu)] += 1
    b = min(int(pu * 10), 9)
    tr.cal_n[b] += 1
    ref_sum_add(tr.cal_p[b], pu)
    tr.cal_up[b] += int(is_up)
    tr.recent.append((credit, brier, ll, pu, is_up))
    ref_sum_add(tr.r_credit, credit)
    ref_sum_add(tr.r_brier, brier)
    ref_sum_add(tr.r_ll, ll)
    if len(tr.recent) > tr.window:
        old = tr.recent.popleft()
        ref_sum_add(tr.r_credit, -old[0])
        ref_sum_add(tr.r_brier, -old[1])
        ref_sum_add(tr.r_ll, -old[2])
        tr._removals += 1
        if tr._removals > max(len(tr.recent), 64):
            tr.r_credit, tr.r_brier, tr.r_ll = _Sum(), _Sum(), _Sum()
            for credit, brier, ll, _pu, _up in tr.recent:
                ref_sum_add(tr.r_credit, credit)
                ref_sum_add(tr.r_brier, brier)
                ref_sum_add(tr.r_ll, ll)
            tr._removals = 0


def ref_score(tr: RefTrack | _Track, probs: Sequence[float], c: int, up: int) -> None:
    """One forecast scored row by row: by the reference's math (:func:`ref_evaluator`), or
    by the package's track (the service's tests, which compare checkpoint bytes)."""
    if isinstance(tr, _Track):
        tr.add_batch(list(probs), [c], len(probs), up)
    else:
        ref_track_add(tr, probs, c, up)


def ref_label(m0: float, m1: float) -> int:
    if not (math.isfinite(m0) and math.isfinite(m1)):
        return NO_LABEL
    if m1 > m0:
        return UP
    if m1 < m0:
        return DOWN
    return FLAT


def ref_push(tr: LabelTracker, ts: int, mid: float) -> list[tuple[int, int, int]]:
    ts = int(ts)
    mid = float(mid)
    if tr._last_ts is not None and ts < tr._last_ts:
        raise ValueError(
            f"row {tr._rows}: ts {ts} is before the previous row's {tr._last_ts}; "
            "rows must be in non-decreasing time order"
        )
    tr._last_ts = ts
    index = tr._rows
    tr._rows += 1
    out = []
    pending = tr._pending
    if tr.horizon_ms > 0:
        limit = ts - tr.horizon_ms
        while pending and pending[0][1] <= limit:
            i, _t, m0 = pending.popleft()
            out.append((i, ref_label(m0, mid), index))
    elif math.isfinite(mid) and mid != tr._last_finite_mid:
        while pending:
            i, _t, m0 = pending.popleft()
            out.append((i, ref_label(m0, mid), index))
    if math.isfinite(mid):
        tr._last_finite_mid = mid
    pending.append((index, ts, mid))
    return out


def ref_check_probs(ev: Evaluator, probs: Sequence[float]) -> Forecast:
    p = tuple(float(q) for q in probs)
    if len(p) != ev._k:
        raise ValueError(f"expected {ev._k} probabilities {list(ev.classes)}, got {p}")
    if not all(math.isfinite(q) and 0.0 <= q <= 1.0 for q in p):
        raise ValueError(f"probabilities must be finite and in [0, 1], got {p}")
    if abs(math.fsum(p) - 1.0) > 1e-9:
        raise ValueError(f"probabilities must sum to 1, got {p} (sum {math.fsum(p)!r})")
    return p


def ref_base_rate(ev: Evaluator) -> Forecast:
    down, flat, up = ev._outcomes
    if ev._binary:
        total = down + up + 2.0
        return ((down + 1.0) / total, (up + 1.0) / total)
    total = down + flat + up + 3.0
    return ((down + 1.0) / total, (flat + 1.0) / total, (up + 1.0) / total)


def ref_observe(ev: Evaluator, ts: int, mid: float, probs: Sequence[float] | None) -> int:
    forecast: Forecast | None = None
    base: Forecast = ()
    if probs is not None:
        forecast = ref_check_probs(ev, probs)
        base = ref_base_rate(ev)
    index = ev._tracker._rows
    resolved = ref_push(ev._tracker, ts, mid)
    ev.last_ts = int(ts)
    scored = 0
    pending = ev._pending
    for r_index, label, _realized in resolved:
        if label != NO_LABEL:
            ev._outcomes[label + 1] += 1
        if not pending or pending[0][0] != r_index:
            continue
        _, p, b = pending.popleft()
        if label == NO_LABEL:
            ev.unlabeled += 1
        elif ev._binary and label == FLAT:
            ev.flat_excluded += 1
        else:
            c = (0 if label == DOWN else 1) if ev._binary else label + 1
            ref_score(ev._model, p, c, ev._up)
            ref_score(ev._base, b, c, ev._up)
            scored += 1
    if forecast is not None:
        ev.forecasts += 1
        pending.append((index, forecast, base))
    return scored


class _OldCheckpoint(_StateUnpickler):
    """The forecaster's unpickler, reading a reference track as the Python ``_Track`` that
    checkpoints of that time named: the class by name, then its attributes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (RefTrack.__module__, RefTrack.__qualname__):
            module, name = _Track.__module__, _Track.__qualname__
        return super().find_class(module, name)


def as_checkpointed(ev: Evaluator) -> Evaluator:
    """``ev`` through a checkpoint and back (the forecaster's unpickler): a reference
    evaluator's tracks come back as the package's, read from their Python attributes."""
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=5).dump(ev)
    restored = _OldCheckpoint(io.BytesIO(buf.getvalue())).load()
    assert isinstance(restored, Evaluator)
    return restored


def state(obj: Any) -> bytes:
    """Everything an object holds, as bytes (the checkpoint's pickling: no memo), an
    evaluator's tracks field by field whichever class holds them."""
    if isinstance(obj, Evaluator):
        fields = dict(vars(obj))
        fields["_model"] = track_parts(obj._model)
        fields["_base"] = track_parts(obj._base)
        obj = fields
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.fast = True
    pickler.dump(obj)
    return buf.getvalue()


# -- inputs ------------------------------------------------------------------------------------


def random_rows(
    rng: np.random.Generator, n: int, k: int
) -> tuple[list[int], list[float], list[Forecast | None]]:
    """Times with repeats and jumps, mids with flats, NaN and inf, forecasts on most rows:
    random, coarse (ties at the max), uniform, certain (a 0 on the outcome costs the clip)."""
    ts = (1_000 + np.cumsum(rng.choice([0, 0, 1, 1, 2, 7, 40], size=n))).tolist()
    mids = (100.0 + np.cumsum(rng.choice([-0.5, 0.0, 0.0, 0.5], size=n))).tolist()
    for i in np.flatnonzero(rng.random(n) < 0.04).tolist():
        mids[i] = NAN if i % 3 else math.inf
    probs: list[Forecast | None] = []
    for _ in range(n):
        kind = rng.integers(0, 6)
        if kind == 0:
            probs.append(None)
        elif kind == 1:
            probs.append(tuple([1.0 / k] * k))
        elif kind == 2:
            hot = [0.0] * k
            hot[int(rng.integers(0, k))] = 1.0
            probs.append(tuple(hot))
        elif kind == 3:
            coarse = np.round(rng.dirichlet(np.ones(k)) * 4) + 0.25
            probs.append(tuple((coarse / coarse.sum()).tolist()))
        else:
            probs.append(tuple(rng.dirichlet(np.ones(k)).tolist()))
    return ts, mids, probs


def feed_in_batches(
    ev: Evaluator,
    rng: np.random.Generator,
    ts: list[int],
    mids: list[float],
    probs: Sequence[Sequence[float] | None],
) -> int:
    scored = 0
    i = 0
    while i < len(ts):
        size = int(rng.integers(0, 30))  # empty batches too
        scored += ev.observe_batch(ts[i : i + size], mids[i : i + size], probs[i : i + size])
        i += size
    return scored


# -- the evaluator -----------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [CLASSES_3, CLASSES_2])
@pytest.mark.parametrize(("horizon", "window"), [(0, 7), (5, 1), (5, 100), (60, 37), (1, 1000)])
def test_observe_batch_is_observe_row_by_row_bit_for_bit(
    classes: tuple[str, ...], horizon: int, window: int
) -> None:
    """Batches of random sizes, one row at a time through observe, and the reference: the
    same pickled state (every counter, compensated sum, histogram and queue) at every
    checkpoint-like moment, and the same summary."""
    seed = len(classes) * 1000 + horizon * 10 + window
    rng = np.random.default_rng(seed)
    ts, mids, probs = random_rows(rng, 3000, len(classes))
    ref = ref_evaluator(classes, horizon, window=window, symbol="s")
    one, batch = (Evaluator(classes, horizon, window=window, symbol="s") for _ in range(2))
    for start in range(0, 3000, 500):  # compare along the way, not only at the end
        part = slice(start, start + 500)
        n_ref = sum(
            ref_observe(ref, t, m, p)
            for t, m, p in zip(ts[part], mids[part], probs[part], strict=True)
        )
        n_one = sum(
            one.observe(t, m, p) for t, m, p in zip(ts[part], mids[part], probs[part], strict=True)
        )
        n_batch = feed_in_batches(batch, rng, ts[part], mids[part], probs[part])
        assert n_ref == n_one == n_batch
        assert state(ref) == state(one) == state(batch)
    # forecasts left the window, enough of them for the rolling sums to be rebuilt too
    assert window >= 1000 or ref._model.n > window + 65
    summary = json.dumps(as_checkpointed(ref).summary())
    assert json.dumps(one.summary()) == summary == json.dumps(batch.summary())
    assert ref.scored > 200


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),  # time step
            st.sampled_from([-1.0, 0.0, 0.0, 1.0, NAN]),  # mid step (NaN: no mid)
            st.sampled_from([None, (0.5, 0.5), (0.25, 0.75), (1.0, 0.0), (0.0, 1.0), (0.9, 0.1)]),
        ),
        max_size=120,
    ),
    cuts=st.lists(st.integers(0, 120), max_size=12),
    horizon=st.sampled_from([0, 1, 3]),
    window=st.sampled_from([1, 2, 5]),
)
def test_observe_batch_equals_the_reference_for_any_split(
    rows: list[tuple[int, float, Forecast | None]], cuts: list[int], horizon: int, window: int
) -> None:
    ts, mids, probs = [], [], []
    t, m = 0, 100.0
    for dt, dm, p in rows:
        t += dt
        m = 100.0 if math.isnan(m) else m
        mid = NAN if math.isnan(dm) else m + dm
        m = mid
        ts.append(t)
        mids.append(mid)
        probs.append(p)
    ref = ref_evaluator(CLASSES_2, horizon, window=window)
    batch = Evaluator(CLASSES_2, horizon, window=window)
    n_ref = sum(ref_observe(ref, *row) for row in zip(ts, mids, probs, strict=True))
    bounds = sorted({0, len(ts), *(c for c in cuts if c <= len(ts))})
    n_batch = sum(
        batch.observe_batch(ts[a:b], mids[a:b], probs[a:b]) for a, b in itertools.pairwise(bounds)
    )
    assert n_ref == n_batch
    assert state(ref) == state(batch)


@pytest.mark.parametrize("classes", [CLASSES_3, CLASSES_2])
def test_a_checkpoint_of_the_python_tracks_restores_and_continues_bit_for_bit(
    classes: tuple[str, ...],
) -> None:
    """A checkpoint written while the tracks were Python objects (``_Sum``, lists, a deque)
    restores into the Rust tracks with every field, and scoring goes on as the Python code
    would have; the Rust state survives its own checkpoint too."""
    rng = np.random.default_rng(11)
    ts, mids, probs = random_rows(rng, 4000, len(classes))
    ref = ref_evaluator(classes, 5, window=50)
    for row in zip(ts[:2000], mids[:2000], probs[:2000], strict=True):
        ref_observe(ref, *row)
    restored = as_checkpointed(ref)
    assert isinstance(restored._model, _Track)
    assert state(restored) == state(ref)
    for row in zip(ts[2000:], mids[2000:], probs[2000:], strict=True):
        ref_observe(ref, *row)
    feed_in_batches(restored, rng, ts[2000:], mids[2000:], probs[2000:])
    assert restored._model.n > 1000
    assert state(restored) == state(ref)
    again = as_checkpointed(restored)
    assert state(again) == state(restored)
    assert again.summary() == restored.summary() == as_checkpointed(ref).summary()


def test_a_track_state_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a score track state"):
        _Track.__new__(_Track).__setstate__({"core": b"cif-score-track\x01" + b"\0" * 7})
    parts = list(_Track(3).core.parts())
    parts[9] = [(1.0, 0.0, 0.0, 0.5, True)] * 4  # more rows than the window holds
    with pytest.raises(ValueError, match="more than its size"):
        ScoreTrack.from_parts(tuple(parts))


def test_observe_batch_takes_all_or_nothing() -> None:
    ev = Evaluator(CLASSES_3, 10, window=5)
    rng = np.random.default_rng(3)
    ts, mids, probs = random_rows(rng, 200, 3)
    ev.observe_batch(ts, mids, probs)
    before = state(ev)
    good = (0.2, 0.3, 0.5)
    t = ts[-1]
    cases: list[tuple[list[int], list[Forecast | None], str]] = [
        ([t, t + 1, t + 2], [good, (0.5, 0.5), good], "expected 3 probabilities"),
        ([t, t + 1, t + 2], [good, None, (0.5, NAN, 0.5)], "finite and in"),
        ([t, t + 1, t + 2], [good, good, (0.5, 0.5, 0.5)], "sum to 1"),
        ([t, t + 1, t - 1], [good, good, good], "before the previous row's"),
    ]
    for times, forecasts, message in cases:
        with pytest.raises(ValueError, match=message):
            ev.observe_batch(times, [1.0, 2.0, 3.0], forecasts)
        assert state(ev) == before
    with pytest.raises(ValueError, match=r"row 201: ts 5 is before the previous row's"):
        ev.observe_batch([t + 3, 5], [1.0, 1.0], [None, None])
    with pytest.raises(ValueError, match="3 times, 2 mids"):
        ev.observe_batch([t, t, t], [1.0, 1.0], [None, None, None])
    assert state(ev) == before


@pytest.mark.parametrize("horizon", [0, 1, 4])
def test_push_batch_is_push_row_by_row(horizon: int) -> None:
    rng = np.random.default_rng(horizon)
    ts, mids, _ = random_rows(rng, 2000, 2)
    ref, one, batch = LabelTracker(horizon), LabelTracker(horizon), LabelTracker(horizon)
    want = [r for t, m in zip(ts, mids, strict=True) for r in ref_push(ref, t, m)]
    got_one = [
        (r.index, r.label, r.realized)
        for t, m in zip(ts, mids, strict=True)
        for r in one.push(t, m)
    ]
    got_batch = []
    i = 0
    while i < len(ts):
        size = int(rng.integers(0, 25))
        got_batch += batch.push_batch(ts[i : i + size], mids[i : i + size])
        i += size
    assert want == got_one == got_batch
    assert state(ref) == state(one) == state(batch)


# -- the service: decode, feed, publish --------------------------------------------------------


def logistic(
    name: str, version: int, classes: tuple[str, ...], features: list[str], horizon_ms: int
) -> LogisticModel:
    """A logistic model with unit scaling and small fixed coefficients."""
    k, n = len(classes), len(features)
    return LogisticModel(
        name=name,
        version=version,
        classes=classes,
        features=features,
        horizon_ms=horizon_ms,
        mean=[0.0] * n,
        scale=[1.0] * n,
        coef=[[0.1 * (j + 1) for j in range(n)]] * k,
        intercept=[0.0] * k,
    )


def model_3() -> Model:
    return logistic("lr3", 2, CLASSES_3, ["ofi_10s", "spread_bps", "imbalance_1"], 50)


def model_2_with_mid() -> Model:
    """Binary, with the mid among its features (read once, used twice)."""
    return logistic("lr2", 7, CLASSES_2, ["mid", "ofi_10s"], 0)


class FakePublisher:
    def __init__(self) -> None:
        self.calls: list[tuple[list[bytes], int]] = []

    async def publish(self, bodies: Sequence[bytes], args_per_body: int) -> Published:
        self.calls.append((list(bodies), args_per_body))
        return Published(added=len(bodies))


def session(model: Model, window: int = 50) -> tuple[_Session, list[tuple[Any, ...]]]:
    """A session that never connects (no Redis is touched), and the log of what it
    skipped: ``(reason, entry ID, detail)`` or ``("seen", entry ID, seq, last seq)``."""
    cfg = ForecasterConfig(
        symbols=(SYMBOL,), redis_url="redis://127.0.0.1:1/0", rolling_window=window
    )
    fc = Forecaster(cfg, model=model)
    s = _Session(fc, SYMBOL, Lease(fc.client, forecaster_lease_key(SYMBOL), fc.owner, 5.0))
    s.publisher = FakePublisher()  # type: ignore[assignment]
    skipped: list[tuple[Any, ...]] = []
    bad, seen = s._bad, s.seen

    def record_bad(reason: str, entry_id: bytes, fields: Any, detail: str) -> None:
        skipped.append((reason, entry_id, detail))
        bad(reason, entry_id, fields, detail)

    def record_seen(entry_id: bytes, seq: int, last_seq: int) -> None:
        skipped.append(("seen", entry_id, seq, last_seq))
        seen(entry_id, seq, last_seq)

    s._bad = record_bad  # type: ignore[method-assign]
    s.seen = record_seen  # type: ignore[method-assign]
    return s, skipped


def ref_decode(
    s: _Session, entries: list[Any]
) -> tuple[list[Any], list[list[float]], list[float], list[bytes]]:
    """The session's ``_decode`` as it was: rows (FeatureRow), model inputs, mids, IDs."""
    features = s.model.features
    last_seq = s.last_seq
    last_ts = s.evaluator.last_ts
    rows, xs, mids, ids = [], [], [], []
    header = [f.encode() for f in ROW_FIELDS]
    used = [f.encode() for f in dict.fromkeys([*features, "mid"])]
    for entry_id, fields in entries:
        s.acks.append(bulk(entry_id))
        if not fields:
            s.stats.trimmed += 1
            continue
        picked = {name: fields[name] for name in header if name in fields}
        missing = None
        try:
            decode_feature_entry(picked)  # the header's errors come first
            texts: dict[bytes, bytes] = {}
            for key, value in fields.items():
                if key in header:
                    continue
                names, parts = key.split(b","), value.split(b",")
                if len(names) != len(parts):
                    raise ValueError(
                        f"feature field {key.decode()[:60]!r} names {len(names)} features "
                        f"but has {len(parts)} values"
                    )
                texts.update(zip(names, parts, strict=True))
            for name in used:
                value = texts.get(name)
                if value is None:
                    missing = name.decode()
                else:
                    picked[name] = value
            row = decode_feature_entry(picked)
        except (KeyError, ValueError, TypeError) as exc:
            s._bad("undecodable", entry_id, fields, repr(exc))
            continue
        if last_seq is not None and row.seq <= last_seq:
            s.seen(entry_id, row.seq, last_seq)
            continue
        if entry_id != b"%d-0" % row.seq:
            s._bad("id_mismatch", entry_id, fields, f"seq field {row.seq}")
            continue
        if last_ts is not None and row.ts < last_ts:
            s._bad("ts_decreasing", entry_id, fields, f"ts {row.ts} < {last_ts}")
            continue
        if missing is not None:
            s._bad("missing_feature", entry_id, fields, f"no feature {missing!r}")
            continue
        values = row.values
        rows.append(row)
        xs.append([values[f] for f in features])
        mids.append(values["mid"])
        ids.append(entry_id)
        last_seq = row.seq
        last_ts = row.ts
    s.last_seq = last_seq
    return rows, xs, mids, ids


def ref_evaluate(
    s: _Session,
    ts: list[int],
    mids: list[float],
    probs: list[list[float]],
    ok: list[bool],
    ids: list[bytes],
) -> None:
    """The session's ``_evaluate`` as it was (row by row, copying the queues' tails)."""
    ev = s.evaluator
    tracker_q = ev._tracker._pending
    forecast_q = ev._pending
    r_idx, r_ts, r_mid = s.row_queue.new
    f_idx, f_probs, f_base = s.forecast_queue.new
    fed = 0
    for t, mid, p, good, entry_id in zip(ts, mids, probs, ok, ids, strict=True):
        try:
            ref_observe(ev, t, mid, p if good else None)
        except ValueError as exc:
            s._bad("evaluation", entry_id, {}, str(exc))
            continue
        fed += 1
        index, t_stored, m = tracker_q[-1]
        r_idx.append(index)
        r_ts.append(t_stored)
        r_mid.append(m)
        if good:
            index, p_stored, base = forecast_q[-1]
            f_idx.append(index)
            f_probs.extend(p_stored)
            f_base.extend(base)
    s.stats.rows_in += fed


def ref_body(s: _Session, seq: int, ts: int, recv: int, p: list[float]) -> bytes:
    """One forecast entry as the session encoded it (up to published_ns), field by field."""
    m = s.model
    n_fields = 11 if len(p) == 2 else 12
    i_up, i_down = m.classes.index("up"), m.classes.index("down")
    parts = [
        bulk(b"%d-0" % seq),
        bulk(b"%d" % n_fields),
        bulk(b"symbol") + bulk(SYMBOL.encode()),
        bulk(b"seq"),
        bulk(b"%d" % seq),
        bulk(b"ts"),
        bulk(b"%d" % ts),
        bulk(b"recv_ts_ns"),
        bulk(b"%d" % recv),
        bulk(b"horizon") + bulk(m.horizon.encode()),
        bulk(b"horizon_ms") + bulk(b"%d" % m.horizon_ms),
        bulk(b"model") + bulk(m.name.encode()) + bulk(b"model_version"),
        bulk(b"%d" % m.version),
        bulk(b"prob_up"),
        bulk(repr(p[i_up]).encode()),
        bulk(b"prob_down"),
        bulk(repr(p[i_down]).encode()),
    ]
    if len(p) == 3:
        parts += [bulk(b"prob_flat"), bulk(repr(p[m.classes.index("flat")]).encode())]
    return b"".join(parts)


def entry(
    seq: int,
    ts: int,
    features: dict[str, float],
    override: dict[str, bytes | None],
    joined: bool = True,
) -> tuple[bytes, dict[bytes, bytes]]:
    """A ``features:{sym}`` entry as Redis returns it; ``override``: field or feature ->
    raw value (None: left out), and ``entry_id`` -> the entry's ID. ``joined``: the
    features in one field (the processor's layout), else one field per feature (the
    layout before)."""
    override = dict(override)
    entry_id = override.pop("entry_id", None) or b"%d-0" % seq
    fields: dict[bytes, bytes] = {
        b"seq": b"%d" % seq,
        b"ts": b"%d" % ts,
        b"recv_ts_ns": b"%d" % (ts * 1_000_000 + 7),
        b"kind": b"1",
    }
    values = {name.encode(): repr(value).encode() for name, value in features.items()}
    for name, raw in override.items():
        target = fields if name.encode() in fields or name in ROW_FIELDS else values
        if raw is None:
            target.pop(name.encode(), None)
        else:
            target[name.encode()] = raw
    if joined:
        fields[b",".join(values)] = b",".join(values.values())
    else:
        fields.update(values)
    return entry_id, fields


def feature_values(rng: np.random.Generator, mid: float) -> dict[str, float]:
    values = {"mid": mid, "ofi_10s": float(rng.normal()), "spread_bps": float(rng.normal())}
    values["imbalance_1"] = float(rng.normal())
    values.update({f"f{i}": float(rng.normal()) for i in range(6)})
    return values


def edge_case_stream(rng: np.random.Generator, n: int) -> list[list[tuple[bytes, Any]]]:
    """Batches of entries: mostly good rows, and every kind of bad one, some several ways."""
    out: list[tuple[bytes, Any]] = []
    seq, ts, mid = 100, 1_000, 100.0
    for i in range(n):
        seq += 1
        ts += int(rng.choice([0, 1, 3, 20]))
        mid += float(rng.choice([-0.5, 0.0, 0.5]))
        values = feature_values(rng, mid)
        case = i % 29
        bad: dict[str, bytes | None] = {}
        if case == 1:
            bad = {str(rng.choice(ROW_FIELDS)): None}  # a header field missing
        elif case == 2:
            bad = {"seq": b"12x"}
        elif case == 3:
            bad = {"kind": b"trade"}
        elif case == 4:
            bad = {"recv_ts_ns": b"1.5e9"}
        elif case == 5:
            bad = {"spread_bps": b"abc"}  # a used feature: undecodable
        elif case == 6:
            bad = {"mid": b"--1"}
        elif case == 7:
            bad = {"f3": b"garbage"}  # unused: still a good row
        elif case == 8:
            bad = {"imbalance_1": None}  # missing feature
        elif case == 9:
            bad = {"ofi_10s": None, "mid": None}  # two missing: the last one is named
        elif case == 10:
            bad = {"mid": None, "spread_bps": b"x"}  # a bad value wins over a missing one
        elif case == 11:
            bad = {"entry_id": b"%d-1" % seq}
        elif case == 12:
            bad = {"seq": b"%d" % (seq + 5)}  # id mismatch
        elif case == 13:
            bad = {"ts": b"%d" % (ts - 100)}  # time going backwards
        elif case == 14:
            bad = {"seq": b"3"}  # seen
        elif case == 15:
            bad = {"seq": b"3", "imbalance_1": None}  # seen before missing
        elif case == 16:
            bad = {"seq": b"00%d" % seq, "ts": b" %d " % ts}  # not canonical, still good
        elif case == 17:
            bad = {"mid": b"nan", "ofi_10s": b"inf"}  # good: undefined label
        elif case == 18:
            bad = {"ts": b"%d" % (ts - 100), "spread_bps": None}  # ts before missing
        elif case == 19:
            bad = {"seq": b"%d" % (seq + 5), "ts": b"%d" % (ts - 100)}  # id before ts
        if case == 20:
            out.append((b"%d-0" % seq, {}))  # trimmed while pending
        elif case == 21:
            eid, fields = entry(seq, ts, values, {})
            key = next(k for k in fields if b"," in k)
            fields[key] = fields[key].rsplit(b",", 1)[0]  # a value short: undecodable
            out.append((eid, fields))
        elif case == 22:
            shuffled = dict(sorted(values.items(), key=lambda kv: -len(kv[0])))
            out.append(entry(seq, ts, shuffled, {}))  # another order: a new layout
        else:
            # one entry in five in the layout before (one field per feature)
            out.append(entry(seq, ts, values, bad, joined=bool(rng.random() > 0.2)))
    batches = []
    i = 0
    while i < len(out):
        size = int(rng.integers(1, 20))
        batches.append(out[i : i + size])
        i += size
    return batches


@pytest.mark.parametrize("model_fn", [model_3, model_2_with_mid])
def test_decode_feed_and_publish_match_the_previous_code(model_fn: Any) -> None:
    """The same entries through the previous code (session A) and the current one (B):
    the same rows, skipped entries (reason, detail, order), acks, counters, published
    bytes and checkpoint bytes; a checkpoint made by the previous code restores into a
    new session (C) that carries on exactly like the others."""
    model = model_fn()
    k = len(model.classes)
    a, skipped_a = session(model)
    b, skipped_b = session(model)
    c: _Session | None = None
    rng = np.random.default_rng(k)
    batches = edge_case_stream(rng, 1500)
    p_rng = np.random.default_rng(99)
    published_a: list[bytes] = []
    for n, entries in enumerate(batches):
        rows, xs, mids, ids = ref_decode(a, entries)
        got = b._decode(entries)
        assert got.ids == ids
        assert got.seqs == [r.seq for r in rows]
        assert got.ts == [r.ts for r in rows]
        assert got.recv_ts_ns == [r.recv_ts_ns for r in rows]
        assert repr(got.xs) == repr(xs)  # NaN-aware
        assert repr(got.mids) == repr(mids)
        assert skipped_b == skipped_a
        assert b.acks == a.acks
        assert b.last_seq == a.last_seq
        probs = p_rng.dirichlet(np.ones(k), size=len(ids)).tolist()
        ok = (p_rng.random(len(ids)) > 0.1).tolist()
        published_a += [
            ref_body(a, r.seq, r.ts, r.recv_ts_ns, p)
            for r, p, good in zip(rows, probs, ok, strict=True)
            if good
        ]
        if any(ok):
            asyncio.run(b._publish(got, probs, ok))
        ref_evaluate(a, got.ts, mids, probs, ok, ids)
        b._feed(got.ts, got.mids, probs, ok, got.ids)
        if c is not None:
            got_c = c._decode(entries)
            assert repr(got_c) == repr(got)  # NaN-aware
            c._feed(got_c.ts, got_c.mids, probs, ok, got_c.ids)
        if n % 7 == 0:
            assert b.snapshot() == a.snapshot()
        if n == len(batches) // 2:
            c, _ = session(model)
            c.restore(a.snapshot())
            assert c.snapshot() == a.snapshot()
    assert c is not None
    assert b.snapshot() == a.snapshot() == c.snapshot()
    assert b.evaluator.summary() == a.evaluator.summary() == c.evaluator.summary()
    assert b.stats.forecasts_out == len(published_a)  # (A has no publisher)
    a.stats.forecasts_out = b.stats.forecasts_out
    assert vars(b.stats) == vars(a.stats)
    assert b.stats.queue_rebuilds == 0
    assert b.evaluator.scored > 100
    assert b._layout[0] is not None  # the fast path learnt the joined layout
    reasons = {r[0] for r in skipped_a}
    assert reasons == {
        "undecodable",
        "seen",
        "id_mismatch",
        "ts_decreasing",
        "missing_feature",
    }
    # the published entries, byte for byte (published_ns appended after each body)
    publisher = b.publisher
    assert isinstance(publisher, FakePublisher)
    published_b = [body for bodies, _ in publisher.calls for body in bodies]
    assert len(published_b) == len(published_a) > 400
    for got_body, want in zip(published_b, published_a, strict=True):
        head, tail = got_body[: len(want)], got_body[len(want) :]
        assert head == want
        assert tail.startswith(b"$12\r\npublished_ns\r\n$19\r\n")
    n_fields = 11 if k == 2 else 12
    assert {n_args for _, n_args in publisher.calls} == {2 + 2 * n_fields}


def test_column_queue_compaction_changes_no_column() -> None:
    """Rows converted to arrays a few hundred at a time between batches (compact) give the
    columns of the rows converted all at once at the checkpoint, whatever the heads."""
    dtypes = (np.dtype("<i8"), np.dtype("<f8"), np.dtype("<f8"))
    compacted, plain = _ColumnQueue(dtypes, (0, 3, 3)), _ColumnQueue(dtypes, (0, 3, 3))
    rng = np.random.default_rng(5)
    index = head = 0
    compactions = 0
    for step in range(200):
        n = int(rng.integers(0, 60))
        probs, base = rng.random(3 * n).tolist(), rng.random(3 * n).tolist()
        for q in (compacted, plain):
            q.new[0].extend(range(index, index + n))
            q.new[1].extend(probs)
            q.new[2].extend(base)
        index += n
        waiting = len(compacted.new[0])
        compacted.compact()
        compactions += waiting >= COMPACT_ROWS
        if step % 13 == 12:
            head = min(index, head + int(rng.integers(0, 400)))
            at = None if step % 65 == 64 else head
            got, want = compacted.columns(at), plain.columns(at)
            assert [c.tolist() for c in got] == [c.tolist() for c in want]
            assert [c.dtype for c in got] == [c.dtype for c in want]
    assert compactions > 5


def test_feed_falls_back_to_one_row_at_a_time_on_a_row_the_evaluator_refuses() -> None:
    """Rows that never went through _decode (so nothing checked their times): the batch
    is refused as a whole, then fed row by row, skipping and counting just the bad rows,
    as the row-by-row code did."""
    model = model_3()
    a, skipped_a = session(model)
    b, skipped_b = session(model)
    rng = np.random.default_rng(5)
    ts, mids, probs = random_rows(rng, 400, 3)
    ts[100] = ts[99] - 1  # backwards
    ts[250] = 0
    plist = [list(p) if p is not None else [1 / 3] * 3 for p in probs]
    ok = [p is not None for p in probs]
    ids = [b"%d-0" % i for i in range(len(ts))]
    for start in range(0, 400, 37):
        part = slice(start, start + 37)
        ref_evaluate(a, ts[part], mids[part], plist[part], ok[part], ids[part])
        b._feed(ts[part], mids[part], plist[part], ok[part], ids[part])
        assert b.snapshot() == a.snapshot()
    assert [r[:2] for r in skipped_b] == [("evaluation", b"100-0"), ("evaluation", b"250-0")]
    assert skipped_b == skipped_a
    assert b.stats.rows_in == a.stats.rows_in == 398
    assert b.stats.queue_rebuilds == 0


def test_entry_encoding_of_awkward_numbers() -> None:
    """Extreme ints and floats (subnormal, exponent forms, 0, 1, the last bit set)."""
    floats = [5e-324, 1e-05, 0.30000000000000004, 1.0, 0.0, 1 / 3, 0.1, 2.5e-16, 0.9999999999]
    for model in (model_3(), model_2_with_mid()):
        s, _ = session(model)
        k = len(model.classes)
        rows = [(0, 0, 0), (1, 2**63 - 1, 2**63 - 1), (10**18, 1_700_000_000_000, 17)]
        probs = [[floats[(i + j) % len(floats)] for j in range(k)] for i in range(len(rows))]
        seqs, ts, recv = (list(col) for col in zip(*rows, strict=True))
        got = s._entry_bodies(seqs, ts, recv, probs, [True, False, True])
        want = [ref_body(s, *rows[i], probs[i]) for i in (0, 2)]
        assert got == want


def test_entry_encoding_of_ints_past_int64_and_numpy_ints() -> None:
    """``str()`` of any int: past int64 (a row the Python path kept) and NumPy's ints."""
    s, _ = session(model_3())
    rows = [(2**64 + 5, -(2**70), 3), (np.int64(7), np.int64(-8), np.int64(9))]
    probs = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
    seqs, ts, recv = (list(col) for col in zip(*rows, strict=True))
    got = s._entry_bodies(seqs, ts, recv, probs, [True, True])
    assert got == [ref_body(s, *(int(v) for v in rows[i]), probs[i]) for i in (0, 1)]


def test_entry_packing_refuses_parts_that_do_not_fit() -> None:
    one = np.array([[0.5, 0.5]])
    ok = np.array([True])
    args: list[Any] = [[b"a", b"b", b"c", b"d", b"e"], [1], [2], [3], one, ok, [0, 1], b""]
    assert len(pack_forecast_entries(*args)) == 1
    for at, bad, match in [
        (0, [b"a"], "fixed parts"),
        (6, [0, 2], "not one of the 2 classes"),
        (2, [2, 3], "ts has 2 rows"),
        (5, np.array([True, False]), "ok has 2 rows"),
    ]:
        with pytest.raises(ValueError, match=match):
            pack_forecast_entries(*args[:at], bad, *args[at + 1 :])


NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(lambda x: repr(x).encode()),
    st.integers(-(10**20), 10**20).map(lambda i: str(i).encode()),
    st.text(alphabet="0123456789+-.eE_ naifIN", max_size=12).map(str.encode),
    st.sampled_from([b"1_000.5", b" 2.5 ", b"\xd9\xa3", b"1e400", b"-nan", b"Infinity", b"."]),
)


@settings(max_examples=400, deadline=None)
@given(seq=NUMBER_TEXTS, ts=NUMBER_TEXTS, value=NUMBER_TEXTS, mid=NUMBER_TEXTS)
def test_the_rust_decode_reads_numbers_as_python_does_or_leaves_the_row(
    seq: bytes, ts: bytes, value: bytes, mid: bytes
) -> None:
    """Whatever the texts, a row the Rust path keeps has Python's ``int()``/``float()``
    values, bit for bit; any other row is left to the Python path (``stop`` at it)."""
    header = (b"seq", b"ts", b"recv_ts_ns", b"kind")
    fields = {
        b"seq": seq,
        b"ts": ts,
        b"recv_ts_ns": b"5",
        b"kind": b"0",
        b"a,b,c": b"9,%s,%s" % (value, mid),
    }
    stop, issues, seqs, tss, _, xs, mids, _, _, _ = decode_feature_rows(
        [(seq + b"-0", fields)], 0, header, b"a,b,c", 3, [1], 2, 5, None, None
    )
    try:
        want = (int(seq), int(ts), float(value), float(mid))
        python_reads = -(2**63) <= want[0] < 2**63 and -(2**63) <= want[1] < 2**63
    except ValueError:
        python_reads = False
    if stop == 0:
        return  # left to the Python path: nothing decided here
    assert python_reads, (seq, ts, value, mid)
    assert (
        issues == []
        if seq == str(want[0]).encode()
        else issues == [(0, "id_mismatch", want[0], None)]
    )
    got = (*seqs, *tss, *(x for row in xs for x in row), *mids)
    if not issues:
        assert repr(got) == repr(want)
        assert [math.copysign(1, v) for v in got[2:]] == [math.copysign(1, v) for v in want[2:]]


def test_publishable_rows_is_the_numpy_check_it_replaced() -> None:
    """Finite, in [0, 1], summing to 1 within the tolerance: as the NumPy expression had it,
    for arrays in any memory order."""
    rng = np.random.default_rng(5)
    for k in (2, 3):
        p = rng.dirichlet(np.ones(k), size=4000)
        bad = rng.random(4000)
        p[bad < 0.05, 0] = np.nan
        p[(bad >= 0.05) & (bad < 0.1), -1] += 1e-9
        p[(bad >= 0.1) & (bad < 0.15), 0] = -0.0
        p[(bad >= 0.15) & (bad < 0.2)] *= -1
        p[(bad >= 0.2) & (bad < 0.25), 0] = np.inf
        p[(bad >= 0.25) & (bad < 0.3)] = np.eye(k)[0]
        with np.errstate(invalid="ignore"):
            want = np.isfinite(p).all(axis=1) & (p >= 0.0).all(axis=1) & (p <= 1.0).all(axis=1)
            want &= np.abs(p.sum(axis=1) - 1.0) <= 1e-12
        assert 1000 < want.sum() < 4000
        for arr in (p, np.asfortranarray(p), p[::2], p[:, ::-1][:, ::-1]):
            n = len(arr)
            assert publishable_rows(arr, 1e-12).tolist() == want[:: 4000 // n].tolist()
    assert publishable_rows(np.zeros((3, 0)), 1e-12).tolist() == [False] * 3


def test_a_model_reading_a_header_field_as_a_feature_is_refused() -> None:
    """``ts`` is an entry's header, not a feature: such a model failed on every row
    before; now it is refused when the service starts."""
    model = logistic("bad", 1, CLASSES_2, ["ofi_10s", "ts"], 1000)
    cfg = ForecasterConfig(symbols=(SYMBOL,), redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ArtifactError, match=r"\['ts'\] as features"):
        Forecaster(cfg, model=model)
