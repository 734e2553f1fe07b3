"""Fault injection: each fault is observable by a plain client and counted in the log."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
import websockets
from sim_testkit import GUARD_S, http_get, run, running, ws_connect

from cif.sim.faults import FaultConfig
from cif.sim.synthetic import SyntheticSource

pytestmark = pytest.mark.timeout(60)


def _source() -> SyntheticSource:
    return SyntheticSource(["btcusdt"], rate=3000, seed=2, speed=1.0)


async def _recv(ws: Any) -> Any:
    return await asyncio.wait_for(ws.recv(), GUARD_S)


async def _until_closed(ws: Any) -> websockets.ConnectionClosed:
    """Read (and discard) until the server closes the connection."""
    try:
        while True:
            await _recv(ws)
    except websockets.ConnectionClosed as exc:
        return exc


def _logged(caplog: pytest.LogCaptureFixture, kind: str) -> bool:
    return any(f"fault injected: {kind}" in r.getMessage() for r in caplog.records)


def test_trade_gap(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with (
            running(_source(), faults=FaultConfig(skip_trade_every=50)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade") as ws,
        ):
            ids = [json.loads(await _recv(ws))["t"] for _ in range(300)]
            gaps = sum(1 for a, b in itertools.pairwise(ids) if b != a + 1)
            assert gaps >= 4
            assert all(b - a in (1, 2) for a, b in itertools.pairwise(ids))
            assert srv.fault_log.counts["skip_trade"] >= gaps

    run(body())
    assert _logged(caplog, "skip_trade")


def test_depth_chain_break(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with (
            running(_source(), faults=FaultConfig(break_depth_every=3)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@depth@100ms") as ws,
        ):
            diffs = [json.loads(await _recv(ws)) for _ in range(6)]
            breaks = sum(1 for a, b in itertools.pairwise(diffs) if b["U"] != a["u"] + 1)
            assert breaks >= 1
            assert srv.fault_log.counts["break_depth"] >= breaks

    run(body())
    assert _logged(caplog, "break_depth")


def test_malformed_frames(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with (
            running(_source(), faults=FaultConfig(malformed_every=10)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade") as ws,
        ):
            bad = 0
            for _ in range(55):
                try:
                    json.loads(await _recv(ws))
                except ValueError:
                    bad += 1
            assert bad == 5
            assert srv.fault_log.counts["malformed_frame"] >= bad

    run(body())
    assert _logged(caplog, "malformed_frame")


def test_server_shutdown_then_close(caplog: pytest.LogCaptureFixture) -> None:
    faults = FaultConfig(shutdown_after_s=0.1, shutdown_delay_s=0.05)

    async def body() -> None:
        async with (
            running(_source(), faults=faults) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/stream?streams=btcusdt@trade") as ws,
        ):
            while True:
                msg = json.loads(await _recv(ws))
                if msg.get("e") == "serverShutdown":
                    assert isinstance(msg["E"], int)
                    break
                assert msg["stream"] == "btcusdt@trade"
            closed = await _until_closed(ws)
            assert closed.rcvd is not None
            assert closed.rcvd.code == 1001

    run(body())
    assert _logged(caplog, "server_shutdown")


def test_periodic_close(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with running(_source(), faults=FaultConfig(close_every_s=0.1)) as srv:
            for _ in range(2):  # every new connection is closed again
                async with ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade") as ws:
                    ids: list[int] = []
                    closed = None
                    try:
                        while True:
                            ids.append(json.loads(await _recv(ws))["t"])
                    except websockets.ConnectionClosed as exc:
                        closed = exc
                    assert closed is not None
                    assert closed.rcvd is not None
                    assert closed.rcvd.code == 1000
                    assert ids == list(range(ids[0], ids[0] + len(ids)))
            assert srv.fault_log.counts["periodic_close"] == 2
            # Each close lost trades in flight, as a real disconnect does.
            assert srv.fault_log.counts["close_dropped"] >= 2

    run(body())
    assert _logged(caplog, "periodic_close")


def test_snapshot_delay_and_failure(caplog: pytest.LogCaptureFixture) -> None:
    faults = FaultConfig(snapshot_delay_s=0.01, snapshot_fail_every=2)

    async def body() -> None:
        async with running(_source(), faults=faults) as srv:
            ok = await http_get(srv.port, "/api/v3/depth?symbol=BTCUSDT")
            assert ok.status == 200
            failed = await http_get(srv.port, "/api/v3/depth?symbol=BTCUSDT")
            assert failed.status == 503
            assert failed.json()["code"] == -1001
            assert srv.fault_log.counts["snapshot_fail"] == 1
            assert srv.fault_log.counts["snapshot_delay"] == 2

    run(body())
    assert _logged(caplog, "snapshot_fail")


def test_stall_keeps_socket_open_but_sends_no_data(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with (
            running(_source(), faults=FaultConfig(stall_after_s=0.05)) as srv,
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade") as ws,
        ):
            assert json.loads(await _recv(ws))["e"] == "trade"
            await asyncio.wait_for(srv.fault_log.wait_for("stall"), GUARD_S)
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            while json.loads(await _recv(ws)).get("id") != 1:
                pass  # trades written before the stall began
            # The market goes on (its data is dropped for this connection) ...
            dropped = srv.fault_log.counts["stall_dropped"]
            await asyncio.wait_for(srv.fault_log.wait_for("stall_dropped", dropped + 50), GUARD_S)
            # ... and the socket still answers, with no data in between.
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":2}')
            assert json.loads(await _recv(ws)) == {"result": ["btcusdt@trade"], "id": 2}

    run(body())
    assert _logged(caplog, "stall")


def test_slow_consumer_is_disconnected(caplog: pytest.LogCaptureFixture) -> None:
    """Not an injected fault but the same log: a client that stops reading is dropped."""

    async def body() -> None:
        source = SyntheticSource(["btcusdt"], rate=20_000, seed=2, speed=1.0)
        async with (
            running(source, max_backlog=2000) as srv,
            # max_queue=1: the client library stops reading the socket almost at once.
            ws_connect(f"ws://127.0.0.1:{srv.port}/ws/btcusdt@trade", max_queue=1) as ws,
        ):
            await asyncio.wait_for(srv.fault_log.wait_for("slow_consumer_disconnect"), GUARD_S)
            # This client cannot complete a close handshake (it does not read); drop it.
            ws.transport.abort()

    run(body())
    assert _logged(caplog, "slow_consumer_disconnect")
