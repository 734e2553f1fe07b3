"""The forecaster service against a real Redis, the real btc capture and a real process.

Input is the feature processor's output for the capture: ``compute_features`` over the
capture's events, encoded with the processor's own entry encoder (``row_entries``) and
written with the gateway's ``StreamWriter``. The expected output is computed directly from
the same rows: ``model.predict`` on the whole table (the forecasts, bit for bit) and the
evaluator fed the rows in one go, checked against the batch metrics (``label_rows`` +
``evaluate``). Every test requires the service's streams and summary to equal them, whatever
crashed in between.

Waits poll a condition with a deadline (``GUARD_S``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import pickle
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import redis
from numpy.typing import ArrayLike, NDArray

from cif.bus.fenced import ACK_CHUNK
from cif.bus.keys import eval_key, features_key, forecasts_key
from cif.bus.stream_writer import StreamEntry, encode_value
from cif.features.entries import ROW_FIELDS, FeatureRow, row_entries
from cif.features.leases import Lease
from cif.forecast.evaluation import Evaluator, evaluate
from cif.forecast.labels import CLASSES_3, class_index, label_rows
from cif.forecast.models import HeuristicModel, Model, default_model, feature_matrix
from cif.forecast.service import (
    GROUP,
    Forecaster,
    ForecasterConfig,
    LeaseLost,
    StateError,
    _Session,
    forecaster_lease_key,
    state_key,
)
from cif.forecast.train import fit_logistic
from support_streams import ModuleProcess, awrite_entries, killed_at_exit, wait_for, write_entries

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)

#: failure guard of any single wait (never a synchronisation device)
GUARD_S = 60.0
SYMBOL = "btcusdt"
#: rolling window holding every row, so the rolling AUC is the exact AUC of all of them
WINDOW = 20_000
FIELDS_2 = [
    b"symbol",
    b"seq",
    b"ts",
    b"recv_ts_ns",
    b"horizon",
    b"horizon_ms",
    b"model",
    b"model_version",
    b"prob_up",
    b"prob_down",
    b"published_ns",
]
FIELDS_3 = [*FIELDS_2[:-1], b"prob_flat", b"published_ns"]

Table = dict[str, NDArray[Any]]
Stream = list[tuple[bytes, dict[bytes, bytes]]]


# -- inputs and expectations ---------------------------------------------------------------------


def feature_entries(table: Table, namespace: str = "") -> list[StreamEntry]:
    """The ``features:{sym}`` entries of the rows, as the feature processor publishes them."""
    return row_entries(features_key(SYMBOL, namespace), table)


def select(table: Table, keep: ArrayLike) -> Table:
    return {k: v[keep] for k, v in table.items()}


def expected_summary(
    model: Model, table: Table, probs: NDArray[Any], with_forecast: NDArray[Any] | None = None
) -> dict[str, Any]:
    """An uninterrupted evaluation of the rows (forecasts on ``with_forecast`` rows)."""
    ev = Evaluator(
        model.classes,
        model.horizon_ms,
        window=WINDOW,
        symbol=SYMBOL,
        model=model.name,
        model_version=model.version,
    )
    mask = np.ones(len(table["seq"]), dtype=bool) if with_forecast is None else with_forecast
    for t, m, p, f in zip(
        table["ts"].tolist(), table["mid"].tolist(), probs.tolist(), mask.tolist(), strict=True
    ):
        ev.observe(t, m, p if f else None)
    out: dict[str, Any] = json.loads(json.dumps(ev.summary(), allow_nan=False))
    return out


def assert_matches_batch(summary: dict[str, Any], model: Model, table: Table) -> None:
    """The live summary against the batch metrics over the same rows (labels.py)."""
    probs = model.predict_table(table)
    lab = label_rows(table["ts"], table["mid"], model.horizon_ms)
    batch = evaluate(probs, lab.label, model.classes)
    assert summary["scored"] == summary["cumulative"]["n"] == batch["n"] > 1000
    assert summary["flat_excluded"] == batch["flat_excluded"]
    assert summary["unlabeled"] + summary["pending"] == batch["unlabeled"]
    assert summary["rows"] == summary["forecasts"] == len(table["seq"])
    for key in ("accuracy", "brier", "log_loss"):
        assert summary["cumulative"][key] == pytest.approx(batch[key], abs=1e-12), key
    assert summary["rolling"]["n"] == batch["n"]  # the window holds everything
    assert summary["rolling"]["auc"] == pytest.approx(batch["auc"], abs=1e-12)
    assert summary["cumulative"]["auc"] == pytest.approx(batch["auc"], abs=1e-3)  # histogram
    for got, want in zip(summary["calibration"], batch["calibration"], strict=True):
        assert got["count"] == want["count"]
        if want["count"]:
            assert got["mean_predicted"] == pytest.approx(want["mean_predicted"], abs=1e-12)
            assert got["observed_up"] == pytest.approx(want["observed_up"], abs=1e-12)


def assert_forecasts(
    client: redis.Redis,
    namespace: str,
    model: Model,
    table: Table,
    probs: NDArray[Any],
    published: tuple[int, int] | None = None,
) -> Stream:
    """``forecasts:{sym}`` holds exactly one forecast per row, bit for bit ``probs``."""
    got = client.xrange(forecasts_key(SYMBOL, namespace))
    seqs = table["seq"].tolist()
    assert [g[0] for g in got] == [b"%d-0" % s for s in seqs]
    names = FIELDS_3 if model.classes == CLASSES_3 else FIELDS_2
    index = {c: i for i, c in enumerate(model.classes)}
    ts, recv = table["ts"].tolist(), table["recv_ts_ns"].tolist()
    for (_, f), seq, t, r, p in zip(got, seqs, ts, recv, probs.tolist(), strict=True):
        assert list(f) == names
        assert f[b"symbol"] == SYMBOL.encode()
        assert (int(f[b"seq"]), int(f[b"ts"]), int(f[b"recv_ts_ns"])) == (seq, t, r)
        assert f[b"horizon"] == model.horizon.encode()
        assert int(f[b"horizon_ms"]) == model.horizon_ms
        assert (f[b"model"], int(f[b"model_version"])) == (model.name.encode(), model.version)
        for cls in model.classes:
            raw = f[b"prob_" + cls.encode()]
            assert raw == repr(p[index[cls]]).encode()  # bit for bit
        values = [float(f[b"prob_" + c.encode()]) for c in model.classes]
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
        assert abs(math.fsum(values) - 1.0) <= 1e-12
        if published is not None:
            assert published[0] <= int(f[b"published_ns"]) <= published[1]
    return got


def without_published(stream: Stream) -> Stream:
    return [(i, {k: v for k, v in f.items() if k != b"published_ns"}) for i, f in stream]


def eval_summary(client: redis.Redis, namespace: str = "") -> dict[str, Any] | None:
    raw = client.get(eval_key(SYMBOL, namespace))
    if raw is None:
        return None
    out: dict[str, Any] = json.loads(raw)
    return out


def unacked(client: redis.Redis, namespace: str = "") -> int:
    try:
        return int(client.xpending(features_key(SYMBOL, namespace), GROUP)["pending"])
    except redis.ResponseError:
        return 0


def finished(namespace: str, n_rows: int) -> Callable[..., bool]:
    """Every row evaluated, the summary published and every entry acked."""

    def done(client: redis.Redis, *_: Any) -> bool:
        s = eval_summary(client, namespace)
        return s is not None and s["rows"] >= n_rows and unacked(client, namespace) == 0

    return done


def _config(url: str, namespace: str = "", **kw: Any) -> ForecasterConfig:
    base: dict[str, Any] = {
        "symbols": (SYMBOL,),
        "redis_url": url,
        "namespace": namespace,
        "eval_interval_s": 0.2,
        "lease_ttl_s": 5.0,
        "rolling_window": WINDOW,
        "stats_interval_s": 60.0,
    }
    base.update(kw)
    return ForecasterConfig(**base)


def run_service(
    config: ForecasterConfig,
    done: Callable[[redis.Redis, Forecaster], bool],
    model: Model | None = None,
) -> Forecaster:
    """Run a forecaster in this thread's event loop until ``done`` holds, then stop it."""
    probe = redis.Redis.from_url(config.redis_url)

    async def go() -> Forecaster:
        fc = Forecaster(config, model=model)
        stop = asyncio.Event()
        task = asyncio.create_task(fc.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD_S
        try:
            while not done(probe, fc):
                if task.done():
                    task.result()
                    raise AssertionError("forecaster stopped by itself")
                if loop.time() > deadline:
                    raise AssertionError(f"forecaster never got there: {fc.summary()}")
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, GUARD_S)
        return fc

    try:
        return asyncio.run(go())
    finally:
        probe.close()


# -- in-process runs ---------------------------------------------------------------------------


def test_heuristic_forecasts_and_evaluation_equal_the_batch(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    model = default_model()
    n = len(btc_features["seq"])
    write_entries(redis_server.url, feature_entries(btc_features))
    started = time.time_ns()
    fc = run_service(_config(redis_server.url), finished("", n))
    ended = time.time_ns()
    probs = model.predict_table(btc_features)
    assert_forecasts(redis_client, "", model, btc_features, probs, (started, ended))
    summary = eval_summary(redis_client)
    assert summary is not None
    assert summary == expected_summary(model, btc_features, probs)
    assert_matches_batch(summary, model, btc_features)
    s = fc.symbol_stats[SYMBOL]
    assert (s.rows_in, s.forecasts_out, s.republished, s.skipped) == (n, n, 0, 0)
    assert s.checkpoints >= 1
    assert redis_client.exists(state_key(SYMBOL)) == 1
    assert redis_client.exists(forecaster_lease_key(SYMBOL)) == 0  # released on stop
    print(
        f"{n} rows in {s.batches} batches: {s.publish_ns_total / s.batches / 1e3:.0f} us per "
        f"batch to publish (max {s.publish_ns_max / 1e6:.2f} ms), evaluation "
        f"{s.evaluate_ns_total / n / 1e3:.1f} us per row, checkpoint max "
        f"{s.checkpoint_ns_max / 1e6:.2f} ms"
    )

    # A second run resumes from the checkpoint: nothing left to do, nothing added.
    again = run_service(_config(redis_server.url), lambda c, f: f.symbol_stats[SYMBOL].owned)
    assert again.symbol_stats[SYMBOL].acquisitions == 1
    assert again.symbol_stats[SYMBOL].entries_in == 0
    assert redis_client.xlen(forecasts_key(SYMBOL)) == n
    assert eval_summary(redis_client) == summary

    # The group rewound: every entry is re-delivered and skipped as already processed.
    redis_client.xgroup_setid(features_key(SYMBOL), GROUP, "0")
    third = run_service(
        _config(redis_server.url),
        lambda c, f: f.symbol_stats[SYMBOL].seen >= n and unacked(c) == 0,
    )
    assert third.symbol_stats[SYMBOL].seen == n
    assert third.symbol_stats[SYMBOL].forecasts_out == 0
    assert eval_summary(redis_client) == summary


def test_logistic_artifact_under_a_namespace(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table, tmp_path: Path
) -> None:
    """A 3-class logistic model trained with the train module's API, loaded from its
    artifact file; keys under a namespace."""
    features = ["ofi_10s", "ofi_depth_1s", "queue_imbalance", "trade_imbalance_volume_1s"]
    horizon_ms = 5000
    lab = label_rows(btc_features["ts"], btc_features["mid"], horizon_ms)
    idx, mask = class_index(lab.label, CLASSES_3)
    x = feature_matrix(btc_features, features)
    trained = fit_logistic(
        x[mask],
        idx[mask],
        CLASSES_3,
        c=0.01,
        max_iter=500,
        name="test-logistic",
        version=3,
        features=features,
        horizon_ms=horizon_ms,
    )
    path = trained.save(tmp_path)
    ns = "ns1"
    n = len(btc_features["seq"])
    write_entries(redis_server.url, feature_entries(btc_features, ns))
    fc = run_service(_config(redis_server.url, ns, model_path=str(path)), finished(ns, n))
    model = fc.model
    assert (model.name, model.version, model.kind) == ("test-logistic", 3, "logistic")
    probs = model.predict_table(btc_features)
    assert np.array_equal(probs, trained.predict_table(btc_features))
    assert_forecasts(redis_client, ns, model, btc_features, probs)
    summary = eval_summary(redis_client, ns)
    assert summary is not None
    assert summary == expected_summary(model, btc_features, probs)
    assert_matches_batch(summary, model, btc_features)
    assert summary["horizon"] == "5s"
    assert redis_client.exists(forecasts_key(SYMBOL)) == 0  # nothing outside the namespace
    assert redis_client.exists(eval_key(SYMBOL)) == 0


BOOM = 123456.0  # the flaky model raises on this ofi_10s
WRONG = 654321.0  # ... and returns probabilities that do not sum to 1 on this one


class FlakyModel(HeuristicModel):
    """The heuristic, except that it fails on two sentinel inputs."""

    def predict(self, x: ArrayLike) -> NDArray[np.float64]:
        arr = self._x(x)
        if np.any(arr[:, 0] == BOOM):
            raise ValueError("boom")
        p = super().predict(arr)
        p[arr[:, 0] == WRONG] = [0.7, 0.7]
        return p


def edited(fields: Mapping[str, Any], change: Mapping[str, str | None]) -> dict[str, Any]:
    """``fields`` with ``change`` applied: a header field directly, a feature inside the
    features' field; ``None`` leaves the field or feature out."""
    out = {k: v for k, v in fields.items() if k in ROW_FIELDS}
    ((key, value),) = [(k, v) for k, v in fields.items() if k not in ROW_FIELDS]
    values = dict(zip(key.split(","), value.split(","), strict=True))
    for name, v in change.items():
        target = out if name in ROW_FIELDS else values
        if v is None:
            target.pop(name, None)
        else:
            target[name] = v
    out[",".join(values)] = ",".join(values.values())
    return out


def test_bad_entries_and_model_errors_are_counted_and_skipped(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    table = select(btc_features, slice(0, 3000))
    table["ofi_10s"] = table["ofi_10s"].copy()
    table["ofi_10s"][600] = BOOM
    table["ofi_10s"][700] = WRONG
    entries = feature_entries(table)
    ts = table["ts"].tolist()
    broken: dict[int, dict[str, Any]] = {
        100: {"ofi_10s": "garbage"},  # undecodable
        200: {"mid": None},  # a feature the labels need is missing
        300: {"seq": str(int(table["seq"][300]) + 1)},  # the ID is not <seq>-0
        400: {"ts": str(ts[399] - 1000)},  # time going backwards
    }
    for i, change in broken.items():
        e = entries[i]
        entries[i] = StreamEntry(e.key, e.entry_id, edited(e.fields, change))
    write_entries(redis_server.url, entries)
    keep = np.ones(len(ts), dtype=bool)
    keep[list(broken)] = False
    good = select(table, keep)
    model = FlakyModel(name="flaky", version=1, horizon_ms=10_000)
    with_forecast = ~np.isin(good["ofi_10s"], [BOOM, WRONG])
    fc = run_service(_config(redis_server.url), finished("", len(good["seq"])), model=model)
    s = fc.symbol_stats[SYMBOL]
    assert dict(s.bad) == {
        "undecodable": 1,
        "missing_feature": 1,
        "id_mismatch": 1,
        "ts_decreasing": 1,
        "model_error": 1,
        "invalid_probs": 1,
    }
    assert s.rows_in == len(good["seq"])  # the rows without a forecast still feed the labels
    assert s.forecasts_out == int(with_forecast.sum())
    probs = default_model().predict_table(good)
    assert_forecasts(redis_client, "", model, select(good, with_forecast), probs[with_forecast])
    summary = eval_summary(redis_client)
    assert summary == expected_summary(model, good, probs, with_forecast)
    assert unacked(redis_client) == 0  # skipped entries are acked too


# -- state, fencing --------------------------------------------------------------------------------


def test_checkpoints_are_exact_and_refuse_forged_or_foreign_state(
    redis_server: RedisServer, btc_features: Table
) -> None:
    """The checkpoint of an evaluation in mid-flight restores to the same evaluator (same
    bytes again, same summary, same future); a state holding anything else is refused."""
    model = default_model()
    probs = model.predict_table(btc_features).tolist()
    rows = [
        FeatureRow(seq=s, ts=t, recv_ts_ns=0, kind=0, values={})
        for s, t in zip(btc_features["seq"].tolist(), btc_features["ts"].tolist(), strict=True)
    ]
    mids = btc_features["mid"].tolist()
    n = len(rows)
    half = n // 2

    async def go() -> None:
        fc = Forecaster(_config(redis_server.url), model=model)
        lease = Lease(fc.client, forecaster_lease_key(SYMBOL), fc.owner, 5.0)
        a, b = _Session(fc, SYMBOL, lease), _Session(fc, SYMBOL, lease)
        ok = [True] * n
        ids = [b"x"] * n
        for start in range(0, half, 97):  # uneven batches
            end = min(start + 97, half)
            sl = slice(start, end)
            a._feed([r.ts for r in rows[sl]], mids[sl], probs[sl], ok[sl], ids[sl])
            if start % 970 == 0:
                a.snapshot()  # trims the column copies as it goes
        a.last_seq = 42
        blob = a.snapshot()
        b.restore(blob)
        assert b.last_seq == 42
        assert b.snapshot() == blob
        assert b.evaluator.summary() == a.evaluator.summary()
        assert b.evaluator.pending == a.evaluator.pending > 0
        for s in (a, b):
            s._feed([r.ts for r in rows[half:]], mids[half:], probs[half:], ok[half:], ids[half:])
        assert b.evaluator.summary() == a.evaluator.summary()
        assert b.snapshot() == a.snapshot()
        assert fc.symbol_stats[SYMBOL].queue_rebuilds == 0

        class Evil:
            def __reduce__(self) -> tuple[Any, ...]:
                return (os.system, ("echo pwned",))

        for forged in (pickle.dumps({"format": "cif-forecaster-state", "x": Evil()}), b"junk"):
            with pytest.raises(StateError, match="cannot be restored"):
                b.restore(forged)

        # Another model's checkpoint: the evaluation starts over, the position is kept.
        other = _Session(
            Forecaster(_config(redis_server.url), model=default_model(threshold=10.0)),
            SYMBOL,
            lease,
        )
        other.restore(blob)
        assert other.last_seq == 42
        assert other.evaluator.rows == 0
        await fc.client.aclose()

    asyncio.run(go())


def test_reads_publishing_and_checkpoints_are_fenced_by_the_lease(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    """A forecaster that lost its lease can neither publish nor checkpoint, nor pull new
    entries into its pending list, where the new owner would never see them."""
    table = select(btc_features, slice(0, 5))
    entries = feature_entries(table)
    write_entries(redis_server.url, entries[:2])

    async def go() -> None:
        fc = Forecaster(_config(redis_server.url))
        lease = Lease(fc.client, forecaster_lease_key(SYMBOL), fc.owner, 5.0)
        assert await lease.acquire()
        session = _Session(fc, SYMBOL, lease)
        await session.ensure_groups(features_key(SYMBOL))
        raw = await session._read_new(wait=False)
        assert [entry_id for entry_id, _ in raw] == [e.entry_id.encode() for e in entries[:2]]
        await session._process(raw)
        await fc.client.set(forecaster_lease_key(SYMBOL), "someone-else")
        await awrite_entries(redis_server.url, entries[2:])
        for wait in (False, True):  # the read alone, and after the wait
            with pytest.raises(LeaseLost):
                await session._read_new(wait=wait)
        with pytest.raises(LeaseLost):
            await session._process(
                [  # as Redis returns them
                    (
                        e.entry_id.encode(),
                        {k.encode(): encode_value(v) for k, v in e.fields.items()},
                    )
                    for e in entries[2:]
                ]
            )
        with pytest.raises(LeaseLost):
            await session._checkpoint()
        await fc.client.aclose()

    asyncio.run(go())
    (group,) = redis_client.xinfo_groups(features_key(SYMBOL))
    assert group["last-delivered-id"] == entries[1].entry_id.encode()  # nothing after the loss
    assert group["pending"] == 2
    assert redis_client.xlen(forecasts_key(SYMBOL)) == 2
    assert redis_client.exists(state_key(SYMBOL)) == 0
    assert redis_client.exists(eval_key(SYMBOL)) == 0


async def _owned_session(config: ForecasterConfig) -> tuple[Forecaster, _Session]:
    """A forecaster holding the symbol's lease, and a session on it with the consumer group
    in place (the pieces of ``run`` a test drives one by one)."""
    fc = Forecaster(config)
    lease = Lease(fc.client, forecaster_lease_key(SYMBOL), fc.owner, 5.0)
    assert await lease.acquire()
    session = _Session(fc, SYMBOL, lease)
    await session.ensure_groups(features_key(SYMBOL))
    return fc, session


def test_entries_are_acked_in_chunks_once_a_checkpoint_covers_them(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    """Scored entries stay pending until a checkpoint has landed; then each read carries
    one fenced chunk of their acks (not the checkpoint, whose one big ack held Redis up);
    a former owner's acks are refused."""
    n = 2 * ACK_CHUNK + 50
    entries = feature_entries(select(btc_features, slice(0, n)))
    write_entries(redis_server.url, entries)

    async def go() -> list[int]:
        fc, session = await _owned_session(_config(redis_server.url, read_count=n))
        seen: list[int] = []
        raw = await session._read_new(wait=False)
        assert len(raw) == n
        await session._process(raw)
        seen.append(unacked(redis_client))  # scored, not covered
        await session._checkpoint()
        seen.append(unacked(redis_client))  # covered, not yet acked
        for _ in range(2):
            assert await session._read_new(wait=False) == []  # one chunk of acks each
            seen.append(unacked(redis_client))
        await fc.client.set(forecaster_lease_key(SYMBOL), "someone-else")
        with pytest.raises(LeaseLost):
            await session.flush_acks()
        seen.append(unacked(redis_client))
        await session.link.close()
        await fc.client.aclose()
        return seen

    assert asyncio.run(go()) == [n, n, n - ACK_CHUNK, 50, 50]


def test_evaluation_waits_until_the_forecasts_are_out_and_checkpoints_include_it(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    """A batch's forecasts are published at once; its evaluation and digest are deferred
    (cif.bus.deferred_work), but run before the next batch is decoded and before a
    checkpoint takes the state, so the checkpoint and the summary cover every row."""
    n = 300
    table = select(btc_features, slice(0, 2 * n))
    write_entries(redis_server.url, feature_entries(select(table, slice(0, n))))

    async def go() -> list[int]:
        fc, session = await _owned_session(_config(redis_server.url, read_count=n))
        seen: list[int] = []
        await session._process(await session._read_new(wait=False))
        published = redis_client.xlen(forecasts_key(SYMBOL))
        seen += [published, session.evaluator.rows, len(session.bookkeeping)]
        await awrite_entries(redis_server.url, feature_entries(select(table, slice(n, 2 * n))))
        await session._process(await session._read_new(wait=False))
        seen += [session.evaluator.rows, len(session.bookkeeping)]
        await session._checkpoint()
        seen += [session.evaluator.rows, len(session.bookkeeping)]
        await session.link.close()
        await fc.client.aclose()
        return seen

    assert asyncio.run(go()) == [n, 0, 1, n, 1, 2 * n, 0]
    summary = eval_summary(redis_client)
    assert summary is not None
    assert summary["rows"] == 2 * n


def test_a_redis_outage_stops_the_symbol_not_the_process(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    """Redis dies mid-stream and comes back empty (no persistence): the symbol's task
    stops, retries with backoff and starts over on the new server; the output is exact."""
    url = redis_server.url
    model = default_model()
    n = len(btc_features["seq"])
    entries = feature_entries(btc_features)
    probe = redis_server.probe()

    def xlen() -> int:
        try:
            return int(probe.xlen(forecasts_key(SYMBOL)))
        except (redis.ConnectionError, redis.TimeoutError):
            return -1

    async def until(cond: Callable[[], bool], what: str, fc: Forecaster) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD_S
        while not cond():
            assert loop.time() < deadline, f"gave up waiting for {what}: {fc.summary()}"
            await asyncio.sleep(0.02)

    async def go() -> Forecaster:
        await awrite_entries(url, entries[:3000])
        fc = Forecaster(_config(url, retry_cap_s=0.5))
        stop = asyncio.Event()
        task = asyncio.create_task(fc.run(stop))
        try:
            await until(lambda: xlen() >= 3000, "the first forecasts", fc)
            redis_server.kill()
            await until(lambda: fc.symbol_stats[SYMBOL].errors >= 1, "the error", fc)
            assert not task.done()
            redis_server.start()
            await awrite_entries(url, entries)
            await until(lambda: finished("", n)(probe), "the end", fc)
        finally:
            stop.set()
            await asyncio.wait_for(task, GUARD_S)
        return fc

    try:
        fc = asyncio.run(go())
    finally:
        probe.close()
    stats = fc.symbol_stats[SYMBOL]
    assert stats.errors >= 1
    assert stats.acquisitions >= 2  # once per server
    probs = model.predict_table(btc_features)
    assert_forecasts(redis_client, "", model, btc_features, probs)
    assert eval_summary(redis_client) == expected_summary(model, btc_features, probs)


# -- a real process, killed -----------------------------------------------------------------------


class ServiceProcess(ModuleProcess):
    """``python -m cif.live --components forecast ARGS`` (the forecaster alone) with its log
    in a file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        super().__init__(["cif.live", "--components", "forecast", *args], log_path)


processes = killed_at_exit


def test_kill_9_mid_stream_changes_nothing(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table, tmp_path: Path
) -> None:
    url = redis_server.url
    n = len(btc_features["seq"])
    # The uninterrupted in-process run, under its own namespace.
    write_entries(url, feature_entries(btc_features, "ref"))
    run_service(_config(url, "ref"), finished("ref", n))
    ref_stream = without_published(redis_client.xrange(forecasts_key(SYMBOL, "ref")))
    ref_summary = eval_summary(redis_client, "ref")
    assert len(ref_stream) == n

    ns = "k9"
    entries = feature_entries(btc_features, ns)
    chunk = 250  # small: many chances to freeze the service between two checkpoints
    chunks = [entries[i : i + chunk] for i in range(0, n, chunk)]
    flags = [
        "--symbols",
        SYMBOL,
        "--redis-url",
        url,
        "--namespace",
        ns,
        "--eval-window",
        str(WINDOW),
    ]
    out_key = forecasts_key(SYMBOL, ns)

    def published() -> int:
        return int(redis_client.xlen(out_key))

    with processes() as procs:
        first = ServiceProcess(
            [*flags, "--consumer", "first", "--lease-ttl", "1", "--eval-interval", "0.2"],
            tmp_path / "first.log",
        )
        procs.append(first)
        # Feed gradually, the service at most one chunk behind, until it has published
        # 3,000 forecasts; freeze it holding unacked entries after a checkpoint, kill -9.
        fed = 0
        while True:
            assert fed < len(chunks), "the service was never caught holding unacked entries"
            write_entries(url, chunks[fed])
            fed += 1
            behind = (fed - 1) * chunk
            wait_for(lambda b=behind: published() >= b, "forecasts", first.log)
            if published() < 3000:
                continue
            first.signal(signal.SIGSTOP)
            if unacked(redis_client, ns) > 0 and redis_client.exists(state_key(SYMBOL, ns)):
                break
            first.signal(signal.SIGCONT)  # just checkpointed everything: feed on
        first.kill()
        at_kill = published()
        pending_at_kill = unacked(redis_client, ns)
        checkpointed = pickle.loads(redis_client.get(state_key(SYMBOL, ns)))["last_seq"]
        republish = at_kill - int((btc_features["seq"] <= checkpointed).sum())
        assert 0 < at_kill < n
        for rest in chunks[fed:]:
            write_entries(url, rest)

        second = ServiceProcess(
            [*flags, "--consumer", "second", "--lease-ttl", "5", "--eval-interval", "0.2"],
            tmp_path / "second.log",
        )
        procs.append(second)
        wait_for(
            lambda: finished(ns, n)(redis_client) and published() >= n,
            "the second process to finish",
            second.log,
        )
        assert second.stop() == 0
    log = second.log()
    assert "restored checkpoint" in log
    # A checkpoint already sent when SIGSTOP landed may ack everything after the check
    # above; then there is nothing to claim (and nothing logged about it).
    if pending_at_kill:
        assert f"claimed {pending_at_kill} pending entries" in log
    # the forecasts published after the checkpoint were recomputed and refused: no-ops
    (last_stats,) = [line for line in log.splitlines() if "forecaster stopped" in line]
    assert f"duplicates {republish}," in last_stats
    stream = redis_client.xrange(out_key)
    assert without_published(stream) == ref_stream
    assert eval_summary(redis_client, ns) == ref_summary
    names = {
        c["name"].decode() for c in redis_client.xinfo_consumers(features_key(SYMBOL, ns), GROUP)
    }
    assert names == {"second"}
    assert redis_client.exists(forecaster_lease_key(SYMBOL, ns)) == 0


def test_state_blob_is_a_plain_pickle_of_known_classes(
    redis_server: RedisServer, redis_client: redis.Redis, btc_features: Table
) -> None:
    """What the module doc promises about the checkpoint key (operators may inspect it)."""
    table = select(btc_features, slice(0, 500))
    write_entries(redis_server.url, feature_entries(table))
    run_service(_config(redis_server.url), finished("", 500))
    raw = redis_client.get(state_key(SYMBOL))
    assert raw is not None
    state = pickle.Unpickler(io.BytesIO(raw)).load()
    assert state["format"] == "cif-forecaster-state"
    assert state["version"] == 1
    assert state["last_seq"] == int(table["seq"][-1])
    assert state["identity"]["name"] == "heuristic"
    idx = np.frombuffer(state["rows"][0], dtype="<i8")
    assert len(idx) > 0
    assert idx[-1] == state["evaluator"].rows - 1 == 499


@pytest.mark.usefixtures("redis_client")  # an empty keyspace: no lease left by other tests
def test_a_large_state_is_checkpointed_less_often(
    redis_server: RedisServer, btc_features: Table
) -> None:
    """The checkpoint (and the summary with it) goes out every ``eval_interval_s`` until the
    state is larger than ``checkpoint_bytes_per_s`` allows; the entry bound still holds."""
    entries = feature_entries(select(btc_features, slice(0, 300)))

    async def go() -> None:
        fc = Forecaster(_config(redis_server.url, checkpoint_bytes_per_s=1000.0))
        lease = Lease(fc.client, forecaster_lease_key(SYMBOL), fc.owner, 5.0)
        assert await lease.acquire()
        session = _Session(fc, SYMBOL, lease)
        assert session.checkpoint_interval() == 0.2  # nothing written yet
        raw = [
            (e.entry_id.encode(), {k.encode(): encode_value(v) for k, v in e.fields.items()})
            for e in entries
        ]
        await session._process(raw)
        await session._checkpoint()
        size = len(await fc.client.get(state_key(SYMBOL)))  # type: ignore[arg-type]
        assert size == session.state_bytes > 1000
        assert session.checkpoint_interval() == pytest.approx(size / 1000.0)
        session.dirty = True
        t0 = session.last_checkpoint
        assert not session._checkpoint_due(t0 + 1.0)  # past eval_interval_s
        assert session._checkpoint_due(t0 + size / 1000.0 + 0.01)
        session.acks = [b"x"] * fc.config.checkpoint_entries  # the entry bound still holds
        assert session._checkpoint_due(t0)
        await fc.client.aclose()

    asyncio.run(go())
    with pytest.raises(ValueError, match="checkpoint_bytes_per_s must be > 0"):
        _config(redis_server.url, checkpoint_bytes_per_s=0.0).validate()
