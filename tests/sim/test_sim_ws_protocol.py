"""WebSocket protocol points, over real sockets with a plain ``websockets`` client.

URL forms (raw ``/ws/<stream>``, combined ``/stream?streams=``), live requests and their
replies/errors, the incoming-message limit, the 1024-stream limit, server pings and the
disconnect on a missing pong.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest
import websockets
from sim_testkit import GUARD_S, StaticSource, http_get, run, running, ws_connect
from websockets.asyncio.client import ClientConnection

from cif.sim.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(60)


def _synthetic(**kw: Any) -> SyntheticSource:
    # Paced, modest rate: protocol tests must not build backlogs that slow the close handshake.
    return SyntheticSource(["btcusdt", "ethusdt"], rate=2000, seed=7, speed=1.0, **kw)


async def _recv_json(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))


async def _reply(ws: ClientConnection, request_id: Any) -> dict[str, Any]:
    """The next reply to request ``request_id``, skipping market data."""
    while True:
        msg = await _recv_json(ws)
        is_reply = isinstance(msg, dict) and ("result" in msg or "error" in msg)
        if is_reply and msg.get("id") == request_id:
            reply: dict[str, Any] = msg
            return reply


def test_raw_and_combined_urls() -> None:
    async def body() -> None:
        async with running(_synthetic()) as srv:
            url = f"ws://127.0.0.1:{srv.port}"
            async with ws_connect(f"{url}/ws/btcusdt@trade") as ws:
                msg = await _recv_json(ws)
                assert msg["e"] == "trade"
                assert msg["s"] == "BTCUSDT"
                assert set(msg) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}
                assert msg["p"].count(".") == 1
                assert len(msg["p"].split(".")[1]) == 8
            streams = "btcusdt@bookTicker/ethusdt@depth@100ms/btcusdt@aggTrade"
            seen: set[str] = set()
            async with ws_connect(f"{url}/stream?streams={streams}") as ws:
                while len(seen) < 3:
                    msg = await _recv_json(ws)
                    assert set(msg) == {"stream", "data"}
                    seen.add(msg["stream"])
                    data = msg["data"]
                    if msg["stream"].endswith("bookTicker"):
                        assert set(data) == {"u", "s", "b", "B", "a", "A"}
                    elif msg["stream"].endswith("aggTrade"):
                        assert set(data) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}
                    else:
                        assert data["e"] == "depthUpdate"
                        assert data["s"] == "ETHUSDT"
            assert seen == set(streams.split("/"))

    run(body())


def test_live_subscribe_unsubscribe_list_and_properties() -> None:
    async def body() -> None:
        async with (
            running(_synthetic(), max_incoming_per_s=100) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws") as ws,
        ):
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}))
            assert await _reply(ws, 1) == {"result": None, "id": 1}
            msg = await _recv_json(ws)
            assert msg["e"] == "trade"  # raw stream: no wrapper
            sub = {"method": "SUBSCRIBE", "params": ["ethusdt@bookTicker"], "id": 2}
            await ws.send(json.dumps(sub))
            assert await _reply(ws, 2) == {"result": None, "id": 2}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
            listed = await _reply(ws, 3)
            assert listed == {"result": ["btcusdt@trade", "ethusdt@bookTicker"], "id": 3}
            await ws.send(
                json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 4})
            )
            assert await _reply(ws, 4) == {"result": None, "id": 4}
            await ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 5}))
            assert await _reply(ws, 5) == {"result": False, "id": 5}
            prop = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 6}
            await ws.send(json.dumps(prop))
            assert await _reply(ws, 6) == {"result": None, "id": 6}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}))
            assert await _reply(ws, 7) == {"result": ["ethusdt@bookTicker"], "id": 7}
            # After the unsubscribe and SET_PROPERTY, only wrapped bookTickers arrive.
            for _ in range(20):
                msg = await _recv_json(ws)
                if "stream" in msg:
                    assert msg["stream"] == "ethusdt@bookTicker"
                else:
                    assert "result" in msg  # a late reply

    run(body())


@pytest.mark.parametrize(
    ("request_text", "code", "msg_start"),
    [
        ("not json", 3, "Invalid JSON"),
        ("[1,2]", 2, "Invalid request"),
        ('{"method":"FOO","id":1}', 2, "Invalid request: unknown variant `FOO`"),
        ('{"params":[],"id":1}', 2, "Invalid request: missing field `method`"),
        ('{"method":"SUBSCRIBE","params":["nosuch@trade"],"id":1}', 2, "Invalid request"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@kline_1m"],"id":1}', 2, "Invalid request"),
        ('{"method":"SUBSCRIBE","params":"btcusdt@trade","id":1}', 2, "Invalid request"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":-4}', 2, "Invalid request"),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}', 1, "Invalid value"),
        ('{"method":"GET_PROPERTY","params":["colour"],"id":1}', 0, "Unknown property"),
    ],
)
def test_bad_requests_get_binance_errors(request_text: str, code: int, msg_start: str) -> None:
    async def body() -> None:
        async with (
            running(StaticSource(["btcusdt"])) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws") as ws,
        ):
            await ws.send(request_text)
            reply = await _recv_json(ws)
            assert set(reply) == {"error", "id"}
            assert reply["error"]["code"] == code
            assert reply["error"]["msg"].startswith(msg_start)
            # The connection survives bad input.
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":9}')
            assert await _recv_json(ws) == {"result": [], "id": 9}

    run(body())


def test_incoming_message_limit_disconnects() -> None:
    async def body() -> None:
        async with (
            running(StaticSource(["btcusdt"])) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws") as ws,
        ):
            for i in range(5):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            for i in range(5):
                assert await _recv_json(ws) == {"result": [], "id": i}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await _recv_json(ws)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1008
            assert srv.events["incoming_rate_disconnect"] == 1

    run(body())


def test_stream_limit_per_connection() -> None:
    symbols = [f"s{i:03d}usdt" for i in range(300)]
    streams = [f"{s}@{k}" for s in symbols for k in ("trade", "aggTrade", "bookTicker")]
    streams += [f"{s}@depth@100ms" for s in symbols]

    async def body() -> None:
        async with running(StaticSource(symbols)) as srv:
            url = f"ws://127.0.0.1:{srv.port}"
            async with ws_connect(f"{url}/ws", max_size=None) as ws:
                await ws.send(
                    json.dumps({"method": "SUBSCRIBE", "params": streams[:1024], "id": 1})
                )
                assert await _recv_json(ws) == {"result": None, "id": 1}
                await ws.send(
                    json.dumps({"method": "SUBSCRIBE", "params": streams[1024:], "id": 2})
                )
                reply = await _recv_json(ws)
                assert reply["error"]["code"] == 2
                assert "1024" in reply["error"]["msg"]
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3}))
                assert len((await _recv_json(ws))["result"]) == 1024
            # Over the limit in the URL: the handshake is refused (1025 stream names do not
            # fit in the 8 KiB request line, so the HTTP layer answers 414 before we see it).
            with pytest.raises(websockets.InvalidStatus) as info:
                async with ws_connect(f"{url}/stream?streams={'/'.join(streams[:1025])}"):
                    pass
            assert info.value.response.status_code in (400, 414)

    run(body())


def test_invalid_url_stream_and_plain_http_on_ws_path() -> None:
    async def body() -> None:
        async with running(StaticSource(["btcusdt"])) as srv:
            with pytest.raises(websockets.InvalidStatus) as info:
                async with ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@nope"):
                    pass
            assert info.value.response.status_code == 400
            assert json.loads(info.value.response.body)["code"] == -1100
            res = await http_get(srv.port, "/ws/btcusdt@trade")
            assert res.status == 426

    run(body())


def test_server_pings_and_client_pongs_keep_connection() -> None:
    async def body() -> None:
        async with (
            running(_synthetic(), ping_interval_s=0.05, pong_timeout_s=5.0) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade", ping_interval=None) as ws,
        ):
            (session,) = srv.hub.sessions
            received: list[Any] = []

            async def reader() -> None:
                # Pongs are sent by the client library while it reads.
                async for msg in ws:
                    received.append(msg)

            task = asyncio.create_task(reader())
            while session.pongs < 3:
                await asyncio.wait_for(session.pong_event.wait(), GUARD_S)
                session.pong_event.clear()
            assert not task.done()
            task.cancel()
            assert srv.events["pong_timeout_disconnect"] == 0

    run(body())


async def _raw_ws_handshake(port: int, path: str) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD_S)
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


def test_missing_pong_disconnects() -> None:
    """A client that never answers pings (raw socket) gets a ping, then is dropped."""

    async def body() -> None:
        async with running(
            StaticSource(["btcusdt"]), ping_interval_s=0.05, pong_timeout_s=0.2
        ) as srv:
            reader, writer = await _raw_ws_handshake(srv.port, "/ws/btcusdt@trade")
            opcodes = []
            while True:
                header = await asyncio.wait_for(reader.read(2), GUARD_S)
                if len(header) < 2:
                    break  # EOF: the server dropped us
                length = header[1] & 0x7F
                await asyncio.wait_for(reader.readexactly(length), GUARD_S)
                opcodes.append(header[0] & 0x0F)
            writer.close()
            assert opcodes
            assert opcodes[0] == 0x9  # ping
            assert srv.events["pong_timeout_disconnect"] == 1

    run(body())
