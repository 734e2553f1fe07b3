"""Shared helpers of the simulator tests: data location, in-process server, plain HTTP client.

The HTTP client is deliberately minimal (asyncio streams, HTTP/1.1, one request per
connection) so that REST is checked over a real socket without any HTTP library.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from cif.sim.server import ServerConfig, SimServer
from cif.sim.source import MarketSource
from cif.sim.streams import Hub
from cif.sim.symbols import SymbolSpec, spec_for
from cif.sim.trades import TradeStore

REPO_ROOT = Path(__file__).resolve().parents[2]

#: failure guard for any single await in a test (never a synchronisation device).
GUARD_S = 30.0


def data_dir() -> Path:
    """The real captures: ``$CIF_DATA_DIR`` or ``<repo>/../shared/data/binance``."""
    env = os.environ.get("CIF_DATA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data" / "binance").resolve()


def capture(name: str) -> Path:
    """Path of a capture file; a missing file fails the test, naming the path tried."""
    path = data_dir() / name
    if not path.exists():
        pytest.fail(f"capture {path} not found (set CIF_DATA_DIR to the captures' directory)")
    return path


@contextlib.asynccontextmanager
async def running(source: MarketSource, **config: Any) -> AsyncIterator[SimServer]:
    """A started in-process server on a free port of 127.0.0.1, stopped on exit."""
    server = SimServer(source, ServerConfig(port=0, **config))
    await server.start()
    try:
        yield server
    finally:
        await asyncio.wait_for(server.stop(), GUARD_S)


@contextlib.contextmanager
def running_in_thread(
    make_source: Callable[[], MarketSource], **config: Any
) -> Iterator[SimServer]:
    """A server on its own event loop in a thread.

    For high-rate tests: an in-process client on the same event loop gets one ``recv`` per
    loop iteration while the producer makes a whole step of messages, so it would never
    catch up; in its own thread the server behaves as it does for an external client.
    """
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, SimServer] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)
        server = SimServer(make_source(), ServerConfig(port=0, **config))
        loop.run_until_complete(server.start())
        holder["server"] = server
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="cif-sim-test-server", daemon=True)
    thread.start()
    assert started.wait(GUARD_S), "server thread did not start"
    server = holder["server"]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(GUARD_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(GUARD_S)
        loop.close()


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def http_get(port: int, target: str) -> HttpResult:
    """``GET target`` on 127.0.0.1:port; returns status, headers (lowercase names), body."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), GUARD_S)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), GUARD_S)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        assert len(body) == int(headers["content-length"])
    return HttpResult(status, headers, body)


class StaticSource:
    """A market source that publishes nothing: for protocol tests that need many symbols."""

    def __init__(self, symbols: list[str]) -> None:
        self.specs: dict[str, SymbolSpec] = {s: spec_for(s) for s in symbols}
        self.stores = {s: TradeStore(10) for s in symbols}

    def now_ms(self) -> int:
        return 1_700_000_000_000

    def depth_snapshot(self, symbol: str, limit: int) -> bytes:
        return b'{"lastUpdateId":1,"bids":[],"asks":[]}'

    def trade_store(self, symbol: str) -> TradeStore:
        return self.stores[symbol]

    def describe(self) -> str:
        return "static"

    async def run(self, hub: Hub) -> None:
        return None


def run(coro: Any) -> Any:
    """Run a test coroutine."""
    return asyncio.run(coro)


def ws_connect(url: str, **kwargs: Any) -> Any:
    """A plain ``websockets`` client connection.

    ``max_queue=None``: with a bounded queue the client library stops reading the socket
    while unread frames pile up, and then cannot see the server's close frame behind them,
    so closing a connection mid-stream would wait for the close timeout.
    """
    kwargs.setdefault("max_queue", None)
    return websockets.connect(url, **kwargs)
