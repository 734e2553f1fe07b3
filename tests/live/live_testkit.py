"""Helpers of the gateway tests: the simulator as a real process, the gateway in-process.

The simulator runs as ``python -m cif.sim`` in its own process, exactly as an operator
starts it, so the gateway talks to it over real sockets and the two do not share a GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from cif.ingest.gateway import Gateway, GatewayConfig

#: failure guard for any single wait (never a synchronisation device).
GUARD_S = 60.0

_URL_RE = re.compile(r"ws://127\.0\.0\.1:(\d+)/")


class SimProcess:
    """``python -m cif.sim ARGS`` on a free port (or ``port``), stopped on exit."""

    def __init__(self, args: list[str], log_path: Path, port: int = 0) -> None:
        self.args = args
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cif.sim", "--port", str(self.port), *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = _URL_RE.search(line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise RuntimeError(f"simulator did not start; log:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.proc = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.rest_url}/sim/stats", timeout=GUARD_S) as r:
            result: dict[str, Any] = json.load(r)
            return result


@contextlib.contextmanager
def sim_process(args: list[str], tmp_path: Path, port: int = 0) -> Iterator[SimProcess]:
    sim = SimProcess(args, tmp_path / "sim.log", port)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def gateway_config(
    sim: SimProcess, tmp_path: Path, redis_url: str | None, **kw: Any
) -> GatewayConfig:
    """A gateway configuration pointed at ``sim``, with files under ``tmp_path``."""
    base: dict[str, Any] = {
        "ws_url": sim.ws_url,
        "rest_url": sim.rest_url,
        "redis_url": redis_url,
        "db_path": tmp_path / "live.duckdb",
        "history_dir": tmp_path / "history",
        "flush_interval_s": 0.2,
        "stats_interval_s": 5.0,
    }
    base.update(kw)
    return GatewayConfig(**base)


@contextlib.asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[Gateway]:
    """A gateway running in this event loop; stopped (and flushed) on exit."""
    gateway = Gateway(config)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    started = asyncio.create_task(gateway.started.wait())
    await asyncio.wait({task, started}, timeout=GUARD_S, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what made it fail
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, GUARD_S)


async def until(
    gateway: Gateway, predicate: Callable[[], bool], what: str, guard_s: float = GUARD_S
) -> None:
    """Wait until ``predicate()`` holds (checked as the loop runs); fail after the guard."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + guard_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}; gateway: {gateway.summary()}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
