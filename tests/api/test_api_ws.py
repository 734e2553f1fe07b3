"""The WebSocket ``/ws``: real server, real Redis, real ``websockets`` clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from test_api_kit import (
    GUARD_S,
    ApiServer,
    add_feature_rows,
    add_forecasts,
    add_trades,
    base_config,
    forecast_fields,
    running_api,
    wait_until_async,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cif.bus.keys import forecasts_key
from local_servers import free_port

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api(redis_server: RedisServer) -> Iterator[ApiServer]:
    with running_api(base_config(redis_server.url)) as server:
        yield server


def _connect(api: ApiServer, **kwargs: Any) -> connect:
    kwargs.setdefault("max_queue", None)  # a client that keeps up: read everything at once
    return connect(api.ws_url, proxy=None, compression=None, open_timeout=GUARD_S, **kwargs)


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), GUARD_S)
    assert isinstance(message, str)
    value: dict[str, Any] = json.loads(message)
    return value


async def _send(ws: ClientConnection, payload: Any) -> dict[str, Any]:
    await ws.send(payload if isinstance(payload, str | bytes) else json.dumps(payload))
    return await _recv(ws)


async def _subscribe(ws: ClientConnection, symbols: list[str], **extra: Any) -> dict[str, Any]:
    reply = await _send(ws, {"op": "subscribe", "symbols": symbols, **extra})
    assert reply.get("op") == "subscribed", reply
    return reply


async def _ws_stats(api: ApiServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api.url, timeout=10.0) as http:
        body: dict[str, Any] = (await http.get("/health")).json()
    return dict(body["websocket"])


async def _wait_stats(api: ApiServer, what: str, **expected: int) -> None:
    async def check() -> bool:
        stats = await _ws_stats(api)
        return all(stats[k] == v for k, v in expected.items())

    await wait_until_async(check, f"{what}: {expected}")


def test_subscribed_client_gets_every_new_forecast_in_order_with_sent_ns(
    api: ApiServer, redis_client: redis.Redis
) -> None:
    add_forecasts(redis_client, "btcusdt", [1, 2, 3])  # before the subscription: not pushed

    async def scenario() -> None:
        async with _connect(api) as ws:
            reply = await _subscribe(ws, ["BTCUSDT"])
            assert reply == {"op": "subscribed", "symbols": ["btcusdt"], "channels": ["forecasts"]}
            seqs = list(range(10, 510))
            before_ns = time.time_ns()
            add_forecasts(redis_client, "btcusdt", seqs)
            got = [await _recv(ws) for _ in seqs]
            assert [m["data"]["seq"] for m in got] == seqs
            first = got[0]
            assert first["channel"] == "forecasts"
            assert first["symbol"] == "btcusdt"
            data = first["data"]
            expected = forecast_fields("btcusdt", 10)
            for name in ("ts", "recv_ts_ns", "horizon_ms", "model_version"):
                assert data[name] == expected[name]
            assert (data["model"], data["horizon"], data["prob_flat"]) == ("heuristic", "10s", None)
            assert data["prob_up"] == 0.6
            for m in got:
                d = m["data"]
                assert before_ns <= d["published_ns"] <= d["sent_ns"] <= time.time_ns()

    asyncio.run(scenario())


def test_a_batching_client_gets_the_same_records_in_arrays_and_replies_alone(
    api: ApiServer, redis_client: redis.Redis
) -> None:
    async def frames(ws: ClientConnection, n_records: int) -> list[Any]:
        got: list[Any] = []
        while sum(len(f) if isinstance(f, list) else 1 for f in got) < n_records:
            message = await asyncio.wait_for(ws.recv(), GUARD_S)
            assert isinstance(message, str)
            got.append(json.loads(message))
        return got

    async def scenario() -> None:
        async with (
            _connect(api) as plain,
            connect(
                api.ws_url + "?batch=true", proxy=None, open_timeout=GUARD_S, max_queue=None
            ) as batched,
        ):
            await _subscribe(plain, ["ethusdt"])
            await _subscribe(batched, ["ethusdt"])
            seqs = list(range(100, 600))
            add_forecasts(redis_client, "ethusdt", seqs)
            one_by_one = await frames(plain, len(seqs))
            arrays = await frames(batched, len(seqs))
            # Every data frame is an array, and the records came together (500 at once).
            assert all(isinstance(f, list) and f for f in arrays)
            assert len(arrays) < len(seqs)
            records = [m for f in arrays for m in f]
            assert [m["data"]["seq"] for m in records] == seqs
            # The same records as one-by-one, up to the time they were sent; one stamp a frame.
            for m in [*records, *one_by_one]:
                del m["data"]["sent_ns"]
            assert records == one_by_one
            # A reply is a single object, after the records queued before it.
            reply = await _send(batched, {"op": "unsubscribe", "symbols": ["ethusdt"]})
            assert reply["op"] == "unsubscribed"
            assert (await _send(batched, {"op": "nope"}))["error"].startswith("bad message")

    asyncio.run(scenario())


def test_a_bad_batch_parameter_is_refused_at_the_handshake(api: ApiServer) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(api.ws_url + "?batch=maybe", proxy=None, open_timeout=GUARD_S):
                pass
        assert info.value.response.status_code == 403

    asyncio.run(scenario())


def test_channels_features_and_trades_and_unsubscribe(
    api: ApiServer, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with _connect(api) as ws:
            reply = await _subscribe(
                ws, ["ethusdt", "solusdt"], channels=["features", "trades", "features"]
            )
            assert reply["channels"] == ["features", "trades"]
            await _wait_stats(api, "4 streams tailed", streams_tailed=4)
            add_feature_rows(redis_client, "ethusdt", [5])
            msg = await _recv(ws)
            assert msg["channel"] == "features"
            assert msg["symbol"] == "ethusdt"
            assert msg["data"]["seq"] == 5
            assert msg["data"]["features"]["trade_imbalance_count_1s"] is None
            assert msg["data"]["features"]["ofi_10s"] == 5.0
            assert isinstance(msg["data"]["sent_ns"], int)
            add_trades(redis_client, "solusdt", [42])
            msg = await _recv(ws)
            assert (msg["channel"], msg["symbol"]) == ("trades", "solusdt")
            assert msg["data"]["trade_id"] == 42
            assert msg["data"]["side"] == "sell"
            reply = await _send(
                ws, {"op": "unsubscribe", "symbols": ["ethusdt"], "channels": ["features"]}
            )
            assert reply == {"op": "unsubscribed", "symbols": ["ethusdt"], "channels": ["features"]}
            await _wait_stats(api, "one stream less", streams_tailed=3)
            add_feature_rows(redis_client, "ethusdt", [6])
            add_trades(redis_client, "ethusdt", [43])
            msg = await _recv(ws)
            assert (msg["channel"], msg["symbol"], msg["data"]["trade_id"]) == (
                "trades",
                "ethusdt",
                43,
            )
        await _wait_stats(api, "all gone after the close", clients=0, streams_tailed=0)

    asyncio.run(scenario())


def test_clients_share_one_reader_per_stream(api: ApiServer, redis_client: redis.Redis) -> None:
    async def scenario() -> None:
        async with _connect(api) as a, _connect(api) as b:
            await _subscribe(a, ["btcusdt"])
            await _subscribe(b, ["btcusdt"])
            await _wait_stats(api, "two clients, one reader", clients=2, streams_tailed=1)
            add_forecasts(redis_client, "btcusdt", range(1, 51))
            for ws in (a, b):
                assert [(await _recv(ws))["data"]["seq"] for _ in range(50)] == list(range(1, 51))
        await _wait_stats(api, "readers stopped", clients=0, streams_tailed=0)

    asyncio.run(scenario())


BAD_MESSAGES: list[tuple[Any, str]] = [
    ("not json", "invalid JSON"),
    ("[1, 2]", "bad message"),
    ({"op": "publish", "symbols": ["btcusdt"]}, "op: Input should be 'subscribe' or 'unsubscribe'"),
    ({"op": "subscribe"}, "symbols: Field required"),
    ({"op": "subscribe", "symbols": []}, "symbols: List should have at least 1 item"),
    ({"op": "subscribe", "symbols": ["btcusdt"], "channels": ["book"]}, "channels.0"),
    ({"op": "subscribe", "symbols": ["btcusdt"], "extra": 1}, "extra: Extra inputs"),
    ({"op": "subscribe", "symbols": "btcusdt"}, "symbols: Input should be a valid list"),
    (
        {"op": "subscribe", "symbols": ["btcusdt", "dogeusdt"]},
        "unknown symbol(s): dogeusdt; known symbols: btcusdt, ethusdt, solusdt",
    ),
    (b"\x00binary", "send JSON text frames"),
]


def test_bad_messages_get_errors_and_the_connection_stays_open(
    api: ApiServer, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with _connect(api) as ws:
            for payload, expected in BAD_MESSAGES:
                reply = await _send(ws, payload)
                assert set(reply) <= {"error", "known_symbols"}, reply
                assert expected in reply["error"], (payload, reply)
            reply = await _send(ws, {"op": "subscribe", "symbols": ["dogeusdt"]})
            assert reply["known_symbols"] == ["btcusdt", "ethusdt", "solusdt"]
            # Nothing was subscribed by the rejected messages; the connection still works.
            assert (await _ws_stats(api))["streams_tailed"] == 0
            await _subscribe(ws, ["solusdt"])
            add_forecasts(redis_client, "solusdt", [7])
            assert (await _recv(ws))["data"]["seq"] == 7

    asyncio.run(scenario())


def _small_buffer_socket(port: int) -> socket.socket:
    """A connected socket whose receive buffer is tiny, so a client that stops reading
    pushes back on the server after a few kB instead of megabytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def test_a_slow_client_is_dropped_and_never_delays_the_others(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    config = base_config(redis_server.url, ws_queue_size=64, ws_close_timeout_s=GUARD_S)
    chunk = 1000

    async def scenario(api: ApiServer) -> None:
        writer = aioredis.Redis(host=redis_server.host, port=redis_server.port)
        received: list[int] = []
        async with (
            _connect(api) as fast,
            _connect(api, sock=_small_buffer_socket(api.port), max_queue=1) as slow,
        ):
            await _subscribe(fast, ["btcusdt"])
            await _subscribe(slow, ["btcusdt"])
            # From here on ``slow`` never reads (its library stops at one queued frame).

            async def read_fast() -> None:
                while True:
                    received.append((await _recv(fast))["data"]["seq"])

            reader = asyncio.create_task(read_fast())
            written = 0

            async def write_chunk() -> None:
                nonlocal written
                pipe = writer.pipeline(transaction=False)
                for seq in range(written + 1, written + chunk + 1):
                    pipe.xadd(
                        forecasts_key("btcusdt"), forecast_fields("btcusdt", seq), id=f"{seq}-0"
                    )
                await pipe.execute()
                written += chunk

                async def fast_has_all() -> bool:
                    return len(received) == written

                await wait_until_async(fast_has_all, f"the fast client to get {written}")

            async def dropped() -> bool:
                return (await _ws_stats(api))["dropped_slow"] == 1

            deadline = time.monotonic() + GUARD_S
            while not await dropped():
                assert time.monotonic() < deadline, f"slow client not dropped after {written}"
                await write_chunk()
            await write_chunk()  # after the drop the fast client still gets everything
            assert received == list(range(1, written + 1))
            stats = await _ws_stats(api)
            assert (stats["clients"], stats["streams_tailed"]) == (1, 1)
            reader.cancel()

            # The slow client reads at last: an in-order prefix, then the close 1008.
            got: list[int] = []

            async def drain() -> None:
                while True:
                    got.append((await _recv(slow))["data"]["seq"])

            with pytest.raises(ConnectionClosed) as closed:
                await drain()
            assert got == list(range(1, len(got) + 1))
            assert len(got) < written
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "too slow: 64 messages queued and not read"
        await writer.aclose()

    with running_api(config) as api:
        asyncio.run(scenario(api))


def test_stopping_the_server_closes_subscribed_clients(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        with running_api(base_config(redis_server.url)) as api:
            ws = await _connect(api)
            await _subscribe(ws, ["btcusdt"], channels=["forecasts", "trades"])
            add_forecasts(redis_client, "btcusdt", [1])
            assert (await _recv(ws))["data"]["seq"] == 1
        # running_api has returned: the server stopped with the client still subscribed.
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code in (1001, 1012)

    asyncio.run(scenario())


def test_readers_resume_after_a_redis_restart(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        with running_api(base_config(redis_server.url)) as api:
            async with _connect(api) as ws:
                await _subscribe(ws, ["ethusdt"])
                add_forecasts(redis_client, "ethusdt", [1])
                assert (await _recv(ws))["data"]["seq"] == 1
                redis_server.restart()  # no persistence: the stream is gone, the reader stays
                fresh = redis_server.client()
                add_forecasts(fresh, "ethusdt", [2, 3])
                fresh.close()
                assert [(await _recv(ws))["data"]["seq"] for _ in range(2)] == [2, 3]

    asyncio.run(scenario())


def test_subscribing_while_redis_is_down_is_an_error_message() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario(api: ApiServer) -> None:
        async with _connect(api) as ws:
            reply = await _send(ws, {"op": "subscribe", "symbols": ["btcusdt"]})
            assert reply["error"].startswith("Redis unavailable, not subscribed: ")
            assert (await _ws_stats_or_none(api)) is None  # /health is 503 meanwhile
            reply = await _send(ws, {"op": "unsubscribe", "symbols": ["btcusdt"]})
            assert reply["op"] == "unsubscribed"

    with running_api(base_config(dead, redis_timeout_s=1.0)) as api:
        asyncio.run(scenario(api))


async def _ws_stats_or_none(api: ApiServer) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=api.url, timeout=10.0) as http:
        resp = await http.get("/health")
    if resp.status_code != 200:
        body: dict[str, Any] = resp.json()
        assert body["websocket"]["streams_tailed"] == 0
        return None
    return dict(resp.json()["websocket"])


@pytest.mark.parametrize("enabled", [False, True])
def test_compression_is_offered_only_when_configured(
    redis_server: RedisServer, enabled: bool
) -> None:
    """Off by default (small messages: deflating each costs both ends more than it saves);
    ``ws_compression`` turns permessage-deflate on for clients that ask for it."""
    config = replace(base_config(redis_server.url), ws_compression=enabled)

    async def scenario(api: ApiServer) -> None:
        # The client asks for permessage-deflate (websockets' default).
        async with connect(api.ws_url, proxy=None, open_timeout=GUARD_S) as ws:
            assert ws.response is not None
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert ("permessage-deflate" in extensions) is enabled
            reply = await _subscribe(ws, ["btcusdt"])
            assert reply["op"] == "subscribed"

    with running_api(config) as api:
        asyncio.run(scenario(api))
