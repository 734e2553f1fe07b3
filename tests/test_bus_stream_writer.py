"""Redis Streams fan-out against a real Redis server: batching, idempotent IDs, outages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio as aioredis

from cif.bus.keys import book_key, features_key, forecasts_key, trades_key
from cif.bus.link import RedisLink
from cif.bus.stream_writer import RedisUnavailable, StreamEntry, StreamWriter

if TYPE_CHECKING:
    from local_servers import RedisServer


def _trades(n: int, first_id: int = 1000, key: str = "trades:{btcusdt}") -> list[StreamEntry]:
    return [
        StreamEntry(
            key=key,
            entry_id=f"{first_id + i}-0",
            fields={"trade_id": first_id + i, "price": repr(100.0 + i / 8), "side": "buy"},
        )
        for i in range(n)
    ]


def test_keys_are_cluster_ready_and_namespaced() -> None:
    assert trades_key("BTCUSDT") == "trades:{btcusdt}"
    assert book_key("btcusdt") == "book:{btcusdt}"
    assert features_key("ethusdt", namespace="replay") == "replay:features:{ethusdt}"
    assert forecasts_key("ethusdt") == "forecasts:{ethusdt}"
    with pytest.raises(ValueError, match="invalid symbol"):
        trades_key("btc}usdt")


def test_batches_land_in_order_with_their_ids(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def go() -> int:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client, batch_size=100)
        for e in _trades(1050):
            w.put(e)
        n = await w.flush()
        await client.aclose()
        assert w.stats.flushes == 11  # 1050 entries in batches of 100
        return n

    assert asyncio.run(go()) == 1050
    rows = redis_client.xrange("trades:{btcusdt}")
    assert [r[0] for r in rows] == [f"{1000 + i}-0".encode() for i in range(1050)]
    assert rows[3][1] == {b"trade_id": b"1003", b"price": b"100.375", b"side": b"buy"}


def test_resending_is_a_counted_no_op(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    async def go() -> StreamWriter:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client)
        for e in _trades(10):
            w.put(e)
        await w.flush()
        for e in _trades(12):  # 10 re-sent + 2 new
            w.put(e)
        await w.flush()
        await client.aclose()
        return w

    w = asyncio.run(go())
    assert w.stats.written == 12
    assert w.stats.duplicates == 10
    assert redis_client.xlen("trades:{btcusdt}") == 12


@pytest.mark.parametrize("connection", ["pool", "link"])
def test_dead_redis_keeps_entries_and_catches_up(
    redis_server: RedisServer, redis_client: redis.Redis, connection: str
) -> None:
    """Over a redis-py client's pool or a connection of its own (the gateway's link)."""

    async def go() -> StreamWriter:
        client = aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=1)
        link = RedisLink(redis_server.url, connect_timeout_s=1)
        w = StreamWriter(client if connection == "pool" else link)
        entries = _trades(300)
        for e in entries[:100]:
            w.put(e)
        await w.flush()
        redis_server.stop()
        for e in entries[100:]:
            w.put(e)
        with pytest.raises(RedisUnavailable):
            await w.flush()
        assert w.pending == 200
        assert not w.connected
        redis_server.start()
        await w.flush()
        await client.aclose()
        await link.close()
        return w

    w = asyncio.run(go())
    assert w.connected
    assert w.stats.outages == 1
    assert w.pending == 0
    # The restarted server has no persistence: only what was written after the outage.
    ids = [r[0] for r in redis_client.xrange("trades:{btcusdt}")]
    assert ids == [f"{1100 + i}-0".encode() for i in range(200)]


def test_full_buffer_drops_oldest_and_counts(redis_server: RedisServer) -> None:
    async def go() -> tuple[StreamWriter, list[bytes]]:
        client = aioredis.Redis.from_url(redis_server.url)
        await client.flushall()
        w = StreamWriter(client, max_buffer=50)
        for e in _trades(80):
            w.put(e)
        assert w.pending == 50
        await w.flush()
        ids = [r[0] for r in await client.xrange("trades:{btcusdt}")]
        await client.aclose()
        return w, ids

    w, ids = asyncio.run(go())
    assert w.stats.dropped_buffer_full == 30
    assert ids[0] == b"1030-0"
    assert len(ids) == 50


def test_maxlen_trims_approximately(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client, maxlen=100, batch_size=500)
        for e in _trades(5000):
            w.put(e)
        await w.flush()
        await client.aclose()

    asyncio.run(go())
    n = redis_client.xlen("trades:{btcusdt}")
    assert 100 <= n < 1000, n
    last = redis_client.xrevrange("trades:{btcusdt}", count=1)[0][0]
    assert last == b"5999-0"


def test_run_loop_flushes_until_stopped(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def go() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client)
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        for e in _trades(500):
            w.put(e)
        stop.set()
        await task
        assert w.pending == 0
        await client.aclose()

    asyncio.run(go())
    assert redis_client.xlen("trades:{btcusdt}") == 500


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamWriter(aioredis.Redis(), maxlen=0)


def _interleaved(symbol: str, n: int, pad: int = 0) -> list[StreamEntry]:
    """``n`` entries of one symbol alternating trade/book, ``seq`` 1..n (as the gateway
    publishes: trades keyed by trade id, book events by seq); book entries carry ``pad``
    bytes of depth."""
    out: list[StreamEntry] = []
    for seq in range(1, n + 1):
        if seq % 3 == 0:
            out.append(
                StreamEntry(
                    trades_key(symbol),
                    f"{5000 + seq}-0",
                    {"seq": seq, "price": repr(60000.0 + seq / 4), "side": "sell"},
                )
            )
        else:
            fields = {"seq": seq, "bids": "[" + "1" * pad + "]"}
            out.append(StreamEntry(book_key(symbol), f"{seq}-0", fields))
    return out


def test_a_symbols_streams_are_written_in_one_transaction(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    btc, eth = _interleaved("btcusdt", 30), _interleaved("ethusdt", 12)
    mixed = [e for pair in zip(btc, eth + [None] * 18, strict=True) for e in pair if e is not None]

    async def go() -> StreamWriter:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client)
        # The packed transaction of one symbol names both of its keys.
        payload = w._pack_group(btc)
        assert b"trades:{btcusdt}" in payload
        assert b"book:{btcusdt}" in payload
        assert payload.count(b"MULTI") == payload.count(b"EXEC") == 1
        redis_client.config_resetstat()
        for e in mixed:
            w.put(e)
        assert await w.flush() == 42
        await client.aclose()
        return w

    w = asyncio.run(go())
    assert w.stats.calls == 2  # one per symbol, not one per stream
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_exec"]["calls"] == 2
    assert stats["cmdstat_xadd"]["calls"] == 42
    assert "cmdstat_eval" not in stats
    for sym, entries in (("btcusdt", btc), ("ethusdt", eth)):
        for key in (trades_key(sym), book_key(sym)):
            want = [e for e in entries if e.key == key]
            got = redis_client.xrange(key)
            assert [r[0].decode() for r in got] == [e.entry_id for e in want]
            assert [int(r[1][b"seq"]) for r in got] == [e.fields["seq"] for e in want]
    # Re-sending both streams of a symbol is a counted no-op of the same one transaction.
    w2 = asyncio.run(_resend(redis_server.url, btc))
    assert (w2.stats.written, w2.stats.duplicates, w2.stats.calls) == (0, 30, 1)


async def _resend(url: str, entries: list[StreamEntry]) -> StreamWriter:
    client = aioredis.Redis.from_url(url)
    w = StreamWriter(client)
    for e in entries:
        w.put(e)
    await w.flush()
    await client.aclose()
    return w


def test_readers_never_see_one_stream_ahead_of_the_other(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """While batches are written, an atomic reader (MULTI over both streams) always sees, for
    every ``seq`` on one stream, all smaller ``seq`` on the other: the total count equals the
    highest ``seq`` seen (the ``seq`` are 1..n without gaps). The batches are large enough
    that Redis reads a round trip in several socket reads (other clients' commands can run
    between two calls of one round trip: with a call per stream, this test fails)."""
    import threading

    entries = _interleaved("btcusdt", 30_000, pad=100)
    done = threading.Event()
    observations: list[tuple[int, int]] = []

    def reader() -> None:
        client = redis_server.client()
        try:
            while not done.is_set():
                pipe = client.pipeline(transaction=True)
                pipe.xlen(trades_key("btcusdt"))
                pipe.xlen(book_key("btcusdt"))
                pipe.xrevrange(trades_key("btcusdt"), count=1)
                pipe.xrevrange(book_key("btcusdt"), count=1)
                n_t, n_b, top_t, top_b = pipe.execute()
                top = max([int(r[1][b"seq"]) for r in (*top_t, *top_b)], default=0)
                observations.append((n_t + n_b, top))
        finally:
            client.close()

    async def write() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client, batch_size=500)
        for i in range(0, len(entries), 1500):
            for e in entries[i : i + 1500]:
                w.put(e)
            await w.flush()
        await client.aclose()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        asyncio.run(write())
    finally:
        done.set()
        thread.join(30)
    assert len(observations) > 10
    assert all(count == top for count, top in observations), [
        o for o in observations if o[0] != o[1]
    ][:5]
    assert redis_client.xlen(trades_key("btcusdt")) == 10_000
