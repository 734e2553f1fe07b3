"""The feature processor against a real Redis, the real btc/eth captures and real processes.

Input is what the gateway publishes for the captures (``capture_stream_entries``), written
with the gateway's own ``StreamWriter``. The expected output is ``compute_features`` over the
same events, uninterrupted: every test requires the ``features:{sym}`` stream to equal it
entry by entry (IDs, field order, values bit for bit), whatever crashed in between.

Waits poll a condition with a deadline (``GUARD_S``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from cif._core import FeatureEngine, compute_features
from cif.bus.fenced import staged_key
from cif.bus.keys import book_key, features_key, trades_key
from cif.bus.stream_writer import StreamEntry, bulk, encode_value
from cif.features.entries import (
    ROW_FIELDS,
    decode_feature_entry,
    decode_features,
    feature_entry,
    packed_rows,
    row_entries,
)
from cif.features.event_log import capture_stream_entries, events_from_entries
from cif.features.leases import Lease, lease_key, state_key
from cif.features.processor import (
    ACK_CHUNK,
    GROUP,
    FeatureProcessor,
    LeaseLost,
    ProcessorConfig,
    _Session,
    parse_duration_ms,
    parse_windows,
)
from support_streams import ModuleProcess, awrite_entries, killed_at_exit, wait_for, write_entries

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)

#: failure guard of any single wait (never a synchronisation device)
GUARD_S = 60.0
BTC_TRADES = 9757
ETH_TRADES = 6106

Row = tuple[bytes, dict[bytes, bytes]]


# -- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc_entries(btc_capture: Path) -> list[StreamEntry]:
    return capture_stream_entries(btc_capture, "btcusdt")


@pytest.fixture(scope="module")
def eth_entries(eth_capture: Path) -> list[StreamEntry]:
    return capture_stream_entries(eth_capture, "ethusdt")


def expected_rows(entries: list[StreamEntry], symbol: str, **settings: Any) -> list[Row]:
    """The features stream of an uninterrupted run: compute_features over the entries."""
    events = events_from_entries(entries, trades_key(symbol), book_key(symbol))
    rows = compute_features(events, **settings)
    return [
        (e.entry_id.encode(), {k.encode(): encode_value(v) for k, v in e.fields.items()})
        for e in row_entries(features_key(symbol), rows)
    ]


@pytest.fixture(scope="module")
def btc_expected(btc_entries: list[StreamEntry]) -> list[Row]:
    rows = expected_rows(btc_entries, "btcusdt")
    assert len(rows) == BTC_TRADES
    return rows


@pytest.fixture(scope="module")
def eth_expected(eth_entries: list[StreamEntry]) -> list[Row]:
    rows = expected_rows(eth_entries, "ethusdt")
    assert len(rows) == ETH_TRADES
    return rows


def assert_stream_equals(client: redis.Redis, symbol: str, expected: list[Row]) -> None:
    got = client.xrange(features_key(symbol))
    assert len(got) == len(expected)
    for (gid, gfields), (eid, efields) in zip(got, expected, strict=True):
        assert gid == eid
        assert list(gfields) == list(efields)  # field order too
        assert gfields == efields, (
            gid,
            {k: (gfields[k], v) for k, v in efields.items() if gfields[k] != v},
        )


def pending(client: redis.Redis, symbol: str) -> int:
    total = 0
    for key in (trades_key(symbol), book_key(symbol)):
        with contextlib.suppress(redis.ResponseError):
            total += int(client.xpending(key, GROUP)["pending"])
    return total


# -- encoding --------------------------------------------------------------------------------


def test_feature_entries_round_trip_bit_exactly() -> None:
    values = [0.1, -0.0, 0.0, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    values += [float(np.nextafter(1.0, 2.0)), 61837.635, -1e-300]
    names = [f"f{i}" for i in range(len(values))]
    entry = feature_entry("features:{btcusdt}", 42, 1723161255308, 17, 0, names, values)
    assert entry.entry_id == "42-0"
    assert list(entry.fields) == [*ROW_FIELDS, ",".join(names)]
    assert entry.fields[",".join(names)].split(",")[3] == "nan"
    stored = {k.encode(): encode_value(v) for k, v in entry.fields.items()}  # as Redis has it
    row = decode_feature_entry(stored)
    assert (row.seq, row.ts, row.recv_ts_ns, row.kind) == (42, 1723161255308, 17, 0)
    assert list(row.values) == names
    for want, got in zip(values, row.values.values(), strict=True):
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert struct.pack("<d", got) == struct.pack("<d", want)
    from_str = decode_features(entry.fields)  # str fields (in-process entries) work too
    assert {k: repr(v) for k, v in from_str.items()} == {k: repr(v) for k, v in row.values.items()}


def test_feature_entries_written_one_field_per_feature_still_decode() -> None:
    """The layout before the features shared one field: every field its own feature (one
    name, one value). Readers take both, and a mix."""
    old = {b"seq": b"7", b"ts": b"8", b"recv_ts_ns": b"9", b"kind": b"1"}
    old |= {b"mid": b"61837.635", b"ofi_1s": b"nan", b"spread,imb": b"0.01,-0.5"}
    row = decode_feature_entry(old)
    assert (row.seq, row.ts, row.recv_ts_ns, row.kind) == (7, 8, 9, 1)
    assert list(row.values) == ["mid", "ofi_1s", "spread", "imb"]
    assert row.values["mid"] == 61837.635
    assert math.isnan(row.values["ofi_1s"])
    assert row.values["imb"] == -0.5


def test_feature_entries_refuse_a_field_whose_names_and_values_differ_in_number() -> None:
    bad = {"seq": "7", "ts": "8", "recv_ts_ns": "9", "kind": "1", "a,b,c": "1.0,2.0"}
    with pytest.raises(ValueError, match="names 3 features but has 2 values"):
        decode_feature_entry(bad)
    with pytest.raises(ValueError, match="contains ','"):
        feature_entry("features:{x}", 1, 2, 3, 0, ["a", "b,c"], [1.0, 2.0])
    with pytest.raises(ValueError, match="could not convert"):
        decode_feature_entry({**bad, "a,b,c": "1.0,x,2.0"})


def test_row_entries_carry_the_engine_rows(btc_entries: list[StreamEntry]) -> None:
    events = events_from_entries(btc_entries[:3000], trades_key("btcusdt"), book_key("btcusdt"))
    rows = compute_features(events)
    entries = row_entries("features:{btcusdt}", rows)
    assert len(entries) == len(rows["seq"]) > 0
    names = [n for n in rows if n not in ROW_FIELDS]
    assert names == FeatureEngine().feature_names
    # The publisher's pre-packed rows are byte for byte the same entries.
    n_fields, packed = packed_rows(rows)
    assert n_fields == len(entries[0].fields)
    for entry, (seq, fields) in zip(entries, packed, strict=True):
        assert entry.entry_id == f"{seq}-0"
        assert fields == b"".join(
            bulk(k.encode()) + bulk(encode_value(v)) for k, v in entry.fields.items()
        )
    for i in (0, len(entries) // 2, len(entries) - 1):
        stored = {k.encode(): encode_value(v) for k, v in entries[i].fields.items()}
        row = decode_feature_entry(stored)
        assert entries[i].entry_id == f"{rows['seq'][i]}-0"
        assert row.seq == rows["seq"][i]
        assert row.kind == rows["kind"][i] == 0
        got = np.array(list(row.values.values()))
        want = np.array([rows[n][i] for n in names])
        same = (got == want) & (np.signbit(got) == np.signbit(want))
        assert np.all(same | (np.isnan(got) & np.isnan(want)))


def test_settings_parsers() -> None:
    assert parse_windows("1s,10s,60s,100t") == ([1000, 10000, 60000], [100])
    assert parse_windows("500ms,1m,20t,5t") == ([500, 60000], [20, 5])
    assert parse_duration_ms("10s") == 10000.0
    assert parse_duration_ms("250ms") == 250.0
    assert parse_duration_ms("2") == 2000.0
    with pytest.raises(ValueError, match="not a window"):
        parse_windows("1s,1x")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_ms("soon")


# -- leases ----------------------------------------------------------------------------------------


def test_leases_are_exclusive_renewable_and_fenced(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    key = lease_key("btcusdt")
    assert key == "lease:features:{btcusdt}"
    assert lease_key("btcusdt", "replay") == "replay:lease:features:{btcusdt}"
    assert state_key("ethusdt", "x") == "x:features-state:{ethusdt}"

    async def go() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        a = Lease(client, key, "host:1:aa", ttl_s=5)
        b = Lease(client, key, "host:2:bb", ttl_s=5)
        assert await a.acquire()
        assert await a.acquire()  # already ours: a renewal
        assert not await b.acquire()
        assert not await b.renew()
        assert not await b.release()  # cannot delete someone else's lease
        assert await a.holder() == "host:1:aa"
        assert 0 < await client.pttl(key) <= 5000
        assert await a.release()
        assert await b.acquire()
        assert not await a.renew()
        await client.aclose()

    asyncio.run(go())


# -- in-process runs ------------------------------------------------------------------------------


def _config(url: str, symbols: tuple[str, ...] = ("btcusdt",), **kw: Any) -> ProcessorConfig:
    base: dict[str, Any] = {
        "symbols": symbols,
        "redis_url": url,
        "checkpoint_interval_s": 0.2,
        "lease_ttl_s": 5.0,
        "stats_interval_s": 60.0,
    }
    base.update(kw)
    return ProcessorConfig(**base)


def run_processor(
    config: ProcessorConfig, done: Callable[[redis.Redis, FeatureProcessor], bool]
) -> FeatureProcessor:
    """Run a processor in this thread's event loop until ``done`` holds, then stop it."""
    probe = redis.Redis.from_url(config.redis_url)

    async def go() -> FeatureProcessor:
        proc = FeatureProcessor(config)
        stop = asyncio.Event()
        task = asyncio.create_task(proc.run(stop))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD_S
        try:
            while not done(probe, proc):
                if task.done():
                    task.result()
                    raise AssertionError("processor stopped by itself")
                if loop.time() > deadline:
                    raise AssertionError(f"processor never got there: {proc.summary()}")
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, GUARD_S)
        return proc

    try:
        return asyncio.run(go())
    finally:
        probe.close()


def _complete(symbol: str, n_rows: int) -> Callable[[redis.Redis, FeatureProcessor], bool]:
    def done(client: redis.Redis, proc: FeatureProcessor) -> bool:
        return client.xlen(features_key(symbol)) >= n_rows and pending(client, symbol) == 0

    return done


def test_processor_publishes_exactly_the_batch_features_once(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    btc_entries: list[StreamEntry],
    btc_expected: list[Row],
) -> None:
    write_entries(redis_server.url, btc_entries)
    started = time.monotonic()
    proc = run_processor(_config(redis_server.url), _complete("btcusdt", BTC_TRADES))
    elapsed = time.monotonic() - started
    assert_stream_equals(redis_client, "btcusdt", btc_expected)
    s = proc.symbol_stats["btcusdt"]
    assert s.events_in == len(btc_entries)
    assert (s.rows_out, s.rows_republished, s.skipped) == (BTC_TRADES, 0, 0)
    assert s.checkpoints >= 1
    assert redis_client.exists(lease_key("btcusdt")) == 0  # released on stop
    print(f"processed {len(btc_entries)} entries in {elapsed:.2f} s")

    # A second run resumes from the checkpoint: nothing left to do, nothing added.
    again = run_processor(
        _config(redis_server.url), lambda c, p: p.symbol_stats["btcusdt"].acquisitions > 0
    )
    assert again.symbol_stats["btcusdt"].events_in == 0
    assert redis_client.xlen(features_key("btcusdt")) == BTC_TRADES

    # Without the checkpoint and with the group rewound, everything is recomputed and
    # re-published: bit-identical rows, every one a counted no-op.
    redis_client.delete(state_key("btcusdt"))
    for key in (trades_key("btcusdt"), book_key("btcusdt")):
        redis_client.xgroup_setid(key, GROUP, "0")

    def republished(c: redis.Redis, p: FeatureProcessor) -> bool:
        return (
            p.symbol_stats["btcusdt"].rows_republished >= BTC_TRADES and pending(c, "btcusdt") == 0
        )

    third = run_processor(_config(redis_server.url), republished)
    s3 = third.symbol_stats["btcusdt"]
    assert (s3.rows_out, s3.rows_republished) == (0, BTC_TRADES)
    assert_stream_equals(redis_client, "btcusdt", btc_expected)


def test_a_checkpoint_of_other_settings_is_refused(
    redis_server: RedisServer, redis_client: redis.Redis, btc_entries: list[StreamEntry]
) -> None:
    write_entries(redis_server.url, btc_entries[:2000])
    n_rows = sum(1 for e in btc_entries[:2000] if e.key == trades_key("btcusdt"))
    run_processor(_config(redis_server.url), _complete("btcusdt", n_rows))
    other = _config(redis_server.url, time_windows_ms=(5000,))
    proc = run_processor(other, lambda c, p: p.symbol_stats["btcusdt"].refused is not None)
    refused = proc.symbol_stats["btcusdt"].refused or ""
    assert "was made with" in refused
    assert redis_client.xlen(features_key("btcusdt")) == n_rows  # nothing mixed in
    assert redis_client.exists(lease_key("btcusdt")) == 0  # left for a matching processor


def test_bad_entries_are_counted_and_skipped(
    redis_server: RedisServer, redis_client: redis.Redis, btc_entries: list[StreamEntry]
) -> None:
    entries = list(btc_entries[:8000])
    trades = [i for i, e in enumerate(entries) if e.key == trades_key("btcusdt")]
    books = [i for i, e in enumerate(entries) if e.key == book_key("btcusdt")]
    broken = {
        trades[100]: {"price": "garbage"},  # undecodable
        books[500]: {"bids": "[[broken"},  # broken JSON
        trades[700]: {"qty": "-1.5"},  # decodes, but the engine refuses it
        trades[900]: {"seq": "not-a-seq"},  # cannot even be placed in the merge
    }
    for i, change in broken.items():
        e = entries[i]
        entries[i] = StreamEntry(e.key, e.entry_id, {**e.fields, **change})
    write_entries(redis_server.url, entries)
    good = [e for i, e in enumerate(entries) if i not in broken]
    expected = expected_rows(good, "btcusdt")
    proc = run_processor(_config(redis_server.url), _complete("btcusdt", len(expected)))
    s = proc.symbol_stats["btcusdt"]
    assert dict(s.bad) == {
        "undecodable_trade": 1,
        "undecodable_book": 1,
        "invalid_event": 1,
        "bad_seq": 1,
    }
    assert s.events_in == len(entries) - len(broken)
    assert_stream_equals(redis_client, "btcusdt", expected)
    assert pending(redis_client, "btcusdt") == 0  # skipped entries are acked too


def _one_row(seq: int) -> dict[str, Any]:
    return {
        "seq": np.array([seq], dtype=np.int64),
        "ts": np.array([1], dtype=np.int64),
        "recv_ts_ns": np.array([2], dtype=np.int64),
        "kind": np.array([0], dtype=np.uint8),
        "x": np.array([1.0]),
    }


async def _owned_session(config: ProcessorConfig) -> tuple[FeatureProcessor, _Session]:
    """A processor holding btcusdt's lease, and a session on it with a fresh engine and the
    consumer groups in place (the pieces of ``run`` a test drives one by one)."""
    proc = FeatureProcessor(config)
    lease = Lease(proc.client, lease_key("btcusdt"), proc.owner, 5.0)
    assert await lease.acquire()
    session = _Session(proc, "btcusdt", lease)
    session.engine = FeatureEngine()
    await session._ensure_groups()
    return proc, session


def test_reads_claims_publishing_and_checkpoints_are_fenced_by_the_lease(
    redis_server: RedisServer, redis_client: redis.Redis, btc_entries: list[StreamEntry]
) -> None:
    """A processor that lost its lease (e.g. paused past its TTL) can neither publish,
    checkpoint or ack, nor pull entries into its pending list, where the new owner would
    never see them."""
    write_entries(redis_server.url, btc_entries[:50])

    async def go() -> None:
        proc, session = await _owned_session(_config(redis_server.url))
        await session._publish(*packed_rows(_one_row(7)))
        await proc.client.set(lease_key("btcusdt"), "someone-else")
        with pytest.raises(LeaseLost):
            await session._publish(*packed_rows(_one_row(8)))
        with pytest.raises(LeaseLost):
            await session._checkpoint()
        for wait in (False, True):  # the read alone, and pipelined after the wait
            with pytest.raises(LeaseLost):
                await session._read_new(wait=wait)
        with pytest.raises(LeaseLost):
            await session._claim()
        await proc.client.aclose()

    asyncio.run(go())
    assert [r[0] for r in redis_client.xrange(features_key("btcusdt"))] == [b"7-0"]
    assert redis_client.exists(state_key("btcusdt")) == 0
    assert pending(redis_client, "btcusdt") == 0  # nothing was delivered to the loser
    for key in (trades_key("btcusdt"), book_key("btcusdt")):
        (group,) = redis_client.xinfo_groups(key)
        assert group["last-delivered-id"] == b"0-0"


def test_a_checkpoint_stores_the_snapshot_prepared_off_the_loop_unless_the_engine_moved_on(
    redis_server: RedisServer, redis_client: redis.Redis, btc_entries: list[StreamEntry]
) -> None:
    """``prepare_checkpoint`` takes the engine snapshot in a worker thread; the checkpoint
    stores it. If the engine took events after it (no checkpoint path does that, but a
    stale state must never land), the checkpoint takes a fresh one."""
    events = events_from_entries(btc_entries[:4000], trades_key("btcusdt"), book_key("btcusdt"))
    first = {k: v[:2000] for k, v in events.items()}
    later = {k: v[2000:] for k, v in events.items()}

    async def go() -> tuple[bytes, bytes, bytes, bytes]:
        proc, session = await _owned_session(_config(redis_server.url))
        assert session.engine is not None
        session.engine.process(first)
        await session.prepare_checkpoint()
        await session.checkpoint_call()
        prepared_state = await proc.client.get(state_key("btcusdt"))
        want_prepared = session.engine.snapshot()
        await session.prepare_checkpoint()
        session.engine.process(later)  # the engine moves on after the snapshot
        await session.checkpoint_call()
        fresh_state = await proc.client.get(state_key("btcusdt"))
        await proc.client.aclose()
        return bytes(prepared_state), want_prepared, bytes(fresh_state), session.engine.snapshot()

    prepared_state, want_prepared, fresh_state, want_fresh = asyncio.run(go())
    assert prepared_state == want_prepared
    assert fresh_state == want_fresh != want_prepared
    assert FeatureEngine.restore(fresh_state).events == 4000


def test_the_staged_snapshot_moves_into_place_only_while_the_lease_is_held(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The engine snapshot goes to a staging key and the fenced script renames it into
    place: a checkpoint after the lease is lost leaves the last good state as it was (no
    expiry either), its own snapshot stranded in the staging key."""

    class Zombie:
        events = 0

        def snapshot(self) -> bytes:
            return b"zombie state"

    async def go() -> tuple[bytes, str]:
        proc, session = await _owned_session(_config(redis_server.url))
        await session._checkpoint()
        good = await proc.client.get(state_key("btcusdt"))
        assert good
        await proc.client.set(lease_key("btcusdt"), "someone-else")
        session.engine = Zombie()  # type: ignore[assignment]
        with pytest.raises(LeaseLost):
            await session._checkpoint()
        await proc.client.aclose()
        return bytes(good), proc.owner

    good, owner = asyncio.run(go())
    assert redis_client.get(state_key("btcusdt")) == good
    assert redis_client.ttl(state_key("btcusdt")) == -1
    assert redis_client.get(staged_key(state_key("btcusdt"), owner)) == b"zombie state"


def test_entries_are_acked_in_chunks_once_a_checkpoint_covers_them(
    redis_server: RedisServer, redis_client: redis.Redis, btc_entries: list[StreamEntry]
) -> None:
    """Processed entries stay pending until a checkpoint has landed; then each read carries
    one fenced chunk of their acks (not the checkpoint, whose one big ack held Redis up);
    a former owner's acks are refused."""
    write_entries(redis_server.url, btc_entries[:1200])

    async def go() -> list[int]:
        proc, session = await _owned_session(_config(redis_server.url, read_count=2000))
        seen: list[int] = []
        bound, n = await session._read_new(wait=False)
        assert n == 1200
        await session._process(session._ready(bound))
        seen.append(pending(redis_client, "btcusdt"))  # processed, not covered
        await session._checkpoint()
        seen.append(pending(redis_client, "btcusdt"))  # covered, not yet acked
        for _ in range(2):
            await session._read_new(wait=False)  # nothing new: one chunk of acks each
            seen.append(pending(redis_client, "btcusdt"))
        await proc.client.set(lease_key("btcusdt"), "someone-else")
        with pytest.raises(LeaseLost):
            await session.flush_acks()
        seen.append(pending(redis_client, "btcusdt"))
        await proc.client.aclose()
        return seen

    left = 1200 - 2 * ACK_CHUNK
    assert left > 0
    assert asyncio.run(go()) == [1200, 1200, 1200 - ACK_CHUNK, left, left]


def test_a_redis_outage_stops_the_symbol_not_the_process(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    btc_entries: list[StreamEntry],
    btc_expected: list[Row],
) -> None:
    """Redis dies mid-stream and comes back empty (no persistence): the symbol's task
    stops, retries with backoff, and starts over on the new server; the output is exact."""
    url = redis_server.url
    first = btc_entries[:6000]
    n_first = sum(1 for e in first if e.key == trades_key("btcusdt"))
    probe = redis_server.probe()

    def xlen() -> int:
        try:
            return int(probe.xlen(features_key("btcusdt")))
        except (redis.ConnectionError, redis.TimeoutError):
            return -1

    async def until(cond: Callable[[], bool], what: str, proc: FeatureProcessor) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GUARD_S
        while not cond():
            assert loop.time() < deadline, f"gave up waiting for {what}: {proc.summary()}"
            await asyncio.sleep(0.02)

    async def go() -> FeatureProcessor:
        await awrite_entries(url, first)
        proc = FeatureProcessor(_config(url, lease_ttl_s=1.0))
        stop = asyncio.Event()
        task = asyncio.create_task(proc.run(stop))
        try:
            await until(lambda: xlen() >= n_first, "the first rows", proc)
            redis_server.kill()
            await until(lambda: proc.symbol_stats["btcusdt"].errors >= 1, "the error", proc)
            assert not task.done()
            redis_server.start()
            await awrite_entries(url, btc_entries)
            await until(
                lambda: xlen() >= BTC_TRADES and pending(probe, "btcusdt") == 0, "the end", proc
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, GUARD_S)
        return proc

    try:
        proc = asyncio.run(go())
    finally:
        probe.close()
    s = proc.symbol_stats["btcusdt"]
    assert s.acquisitions == 2
    assert_stream_equals(redis_client, "btcusdt", btc_expected)


# -- real processes --------------------------------------------------------------------------------


class LiveProcess(ModuleProcess):
    """``python -m cif.live --components features ARGS`` with its log in a file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        super().__init__(["cif.live", "--components", "features", *args], log_path)


live_processes = killed_at_exit


def _flags(url: str, symbols: str, *extra: str) -> list[str]:
    return ["--symbols", symbols, "--redis-url", url, "--stats-interval", "1", *extra]


def _rows_at_least(client: redis.Redis, symbol: str, n: int) -> Callable[[], bool]:
    return lambda: client.xlen(features_key(symbol)) >= n


def _holder_pid(client: redis.Redis, symbol: str) -> int | None:
    raw = client.get(lease_key(symbol))
    return None if raw is None else int(raw.decode().split(":")[-2])


def test_kill_9_resumes_from_the_checkpoint_without_a_trace(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    btc_entries: list[StreamEntry],
    btc_expected: list[Row],
    tmp_path: Path,
) -> None:
    url = redis_server.url
    chunk = 1500
    chunks = [btc_entries[i : i + chunk] for i in range(0, len(btc_entries), chunk)]
    fed_trades = 0
    fed = 0
    with live_processes() as procs:
        first = LiveProcess(
            _flags(
                url,
                "btcusdt",
                "--consumer",
                "first",
                "--lease-ttl",
                "2",
                "--checkpoint-interval",
                "30",
                "--checkpoint-events",
                "4000",
            ),
            tmp_path / "first.log",
        )
        procs.append(first)
        # Feed gradually, the processor at most one chunk behind, until it has published
        # 3,000 rows; freeze it and make sure it holds unacked entries, then kill -9.
        while True:
            assert fed < len(chunks), "the processor never got to 3,000 rows"
            write_entries(url, chunks[fed])
            behind = fed_trades
            fed_trades += sum(1 for e in chunks[fed] if e.key == trades_key("btcusdt"))
            fed += 1
            wait_for(_rows_at_least(redis_client, "btcusdt", behind), "rows", first.log)
            if redis_client.xlen(features_key("btcusdt")) < 3000:
                continue
            first.signal(signal.SIGSTOP)
            if pending(redis_client, "btcusdt") > 0 and redis_client.exists(state_key("btcusdt")):
                break
            first.signal(signal.SIGCONT)  # just checkpointed everything: feed on
        first.kill()
        published_at_kill = redis_client.xlen(features_key("btcusdt"))
        pending_at_kill = pending(redis_client, "btcusdt")
        assert published_at_kill < BTC_TRADES
        for rest in chunks[fed:]:
            write_entries(url, rest)

        second = LiveProcess(
            _flags(
                url,
                "btcusdt",
                "--consumer",
                "second",
                "--lease-ttl",
                "2",
                "--checkpoint-interval",
                "0.3",
            ),
            tmp_path / "second.log",
        )
        procs.append(second)
        wait_for(
            lambda: (
                redis_client.xlen(features_key("btcusdt")) >= BTC_TRADES
                and pending(redis_client, "btcusdt") == 0
            ),
            "the second process to finish",
            second.log,
        )
        assert _holder_pid(redis_client, "btcusdt") == second.pid
        assert second.stop() == 0
    log = second.log()
    assert "restored checkpoint" in log
    assert f"claimed {pending_at_kill} pending entries" in log
    assert_stream_equals(redis_client, "btcusdt", btc_expected)
    # The dead consumer was forgotten once its entries were taken over; the lease released.
    for key in (trades_key("btcusdt"), book_key("btcusdt")):
        names = {c["name"].decode() for c in redis_client.xinfo_consumers(key, GROUP)}
        assert names == {"second"}, names
    assert redis_client.exists(lease_key("btcusdt")) == 0


def test_two_processes_split_symbols_and_fail_over(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    btc_entries: list[StreamEntry],
    eth_entries: list[StreamEntry],
    btc_expected: list[Row],
    eth_expected: list[Row],
    tmp_path: Path,
) -> None:
    url = redis_server.url
    half = len(eth_entries) // 2
    flags = ["--lease-ttl", "2", "--checkpoint-interval", "0.3"]
    with live_processes() as procs:
        both = LiveProcess(_flags(url, "btcusdt,ethusdt", *flags), tmp_path / "both.log")
        procs.append(both)
        wait_for(
            lambda: (
                _holder_pid(redis_client, "btcusdt") == both.pid
                and _holder_pid(redis_client, "ethusdt") == both.pid
            ),
            "the first process to own both symbols",
            both.log,
        )
        eth_only = LiveProcess(_flags(url, "ethusdt", *flags), tmp_path / "eth.log")
        procs.append(eth_only)
        wait_for(lambda: "ethusdt: lease held by" in eth_only.log(), "a stand-by", eth_only.log)
        write_entries(url, btc_entries)
        write_entries(url, eth_entries[:half])
        wait_for(
            lambda: (
                redis_client.xlen(features_key("btcusdt")) >= BTC_TRADES
                and redis_client.xlen(features_key("ethusdt")) >= 1000
            ),
            "the first process to publish",
            both.log,
        )
        # Each symbol has exactly one owner: the stand-by did not take anything.
        assert _holder_pid(redis_client, "btcusdt") == both.pid
        assert _holder_pid(redis_client, "ethusdt") == both.pid
        assert eth_only.log().count("lease acquired") == 0
        both.kill()
        write_entries(url, eth_entries[half:])
        wait_for(
            lambda: (
                redis_client.xlen(features_key("ethusdt")) >= ETH_TRADES
                and pending(redis_client, "ethusdt") == 0
            ),
            "the stand-by to take ethusdt over and finish it",
            eth_only.log,
        )
        assert _holder_pid(redis_client, "ethusdt") == eth_only.pid
        assert "ethusdt: lease acquired" in eth_only.log()
        assert eth_only.stop() == 0
    assert_stream_equals(redis_client, "btcusdt", btc_expected)
    assert_stream_equals(redis_client, "ethusdt", eth_expected)


def test_a_large_engine_state_is_checkpointed_less_often(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The checkpoint interval stretches so that at most ``checkpoint_bytes_per_s`` of
    engine state is written per second (a one-minute window at high rates is megabytes);
    small states keep ``checkpoint_interval_s``."""

    async def go() -> None:
        config = _config(redis_server.url, checkpoint_bytes_per_s=1000.0)
        proc, session = await _owned_session(config)
        assert session.checkpoint_interval() == 0.2  # nothing written yet
        for i in range(2000):  # a minute-window state of a few tens of kB
            session.engine.push_trade(i + 1, 1_000 + i, 0, 100.0 + i % 7, 1.0, 1 - 2 * (i % 2))
        session.dirty = True
        await session._checkpoint()
        size = len(await proc.client.get(state_key("btcusdt")))  # type: ignore[arg-type]
        assert size == session.snapshot_bytes > 10_000
        assert session.checkpoint_interval() == pytest.approx(size / 1000.0)
        session.dirty = True
        t0 = session.last_checkpoint
        assert not session._checkpoint_due(t0 + 1.0)  # past checkpoint_interval_s
        assert session._checkpoint_due(t0 + size / 1000.0 + 0.01)
        session.since_checkpoint = proc.config.checkpoint_events  # the event bound still holds
        assert session._checkpoint_due(t0)
        await proc.client.aclose()

    asyncio.run(go())


def test_a_background_checkpoint_lands_or_raises_on_the_next_step(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The loop's checkpoint goes out without waiting: state and acks are taken when it
    starts (later work is not in it), it lands as a whole, and a lost lease is raised by
    the next collection, with nothing written."""

    async def go() -> tuple[bytes, bytes]:
        proc, session = await _owned_session(_config(redis_server.url))
        for i in range(500):
            session.engine.push_trade(i + 1, 1_000 + i, 0, 100.0 + i % 7, 1.0, 1 - 2 * (i % 2))
        session.dirty = True
        taken = session.engine.snapshot()
        session.start_checkpoint()
        assert not session.dirty
        assert session._inflight is not None
        session.engine.push_trade(501, 2_000, 0, 99.0, 1.0, 1)  # after the start: not in it
        await session.checkpoint_landed(wait=True)
        assert session._inflight is None
        assert session.stats.checkpoints == 1
        landed = await proc.client.get(state_key("btcusdt"))
        await proc.client.set(lease_key("btcusdt"), "someone-else")
        session.dirty = True
        session.start_checkpoint()
        with pytest.raises(LeaseLost):
            await session.checkpoint_landed(wait=True)
        assert session.stats.checkpoints == 1
        await proc.client.aclose()
        return taken, landed  # type: ignore[return-value]

    taken, landed = asyncio.run(go())
    assert landed == taken
    assert redis_client.get(state_key("btcusdt")) == taken  # the fenced one wrote nothing
