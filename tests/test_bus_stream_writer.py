"""Redis Streams fan-out against a real Redis server: batching, idempotent IDs, outages."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio as aioredis

from cif.bus.keys import book_key, features_key, forecasts_key, trades_key
from cif.bus.stream_writer import RedisUnavailable, StreamEntry, StreamWriter

if TYPE_CHECKING:
    from conftest import RedisServer


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


def test_dead_redis_keeps_entries_and_catches_up(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def go() -> StreamWriter:
        client = aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=1)
        w = StreamWriter(client)
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
        task = asyncio.create_task(w.run(stop, interval=0.01))
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
