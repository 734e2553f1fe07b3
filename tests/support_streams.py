"""Shared helpers of the stream-service tests (feature processor, forecaster): write entries
as the gateway does, poll a condition with a deadline, run a service as a real process
(log in a file) that a test can signal, kill -9 or stop.

Imported like ``event_builders``: ``from support_streams import ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import redis.asyncio as aioredis

from cif.bus.stream_writer import StreamEntry, StreamWriter

#: How long a test waits for anything before it fails.
GUARD_S = 60.0


async def awrite_entries(url: str, entries: Sequence[StreamEntry]) -> None:
    """Publish entries exactly as the gateway does (its StreamWriter)."""
    client = aioredis.Redis.from_url(url)
    writer = StreamWriter(client)
    for e in entries:
        writer.put(e)
    await writer.flush()
    await client.aclose()


def write_entries(url: str, entries: Sequence[StreamEntry]) -> None:
    asyncio.run(awrite_entries(url, entries))


def wait_for(cond: Callable[[], bool], what: str, detail: Callable[[], str] = str) -> None:
    """Poll ``cond`` until it holds; fail after the guard with ``detail()``."""
    deadline = time.monotonic() + GUARD_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; {detail()}")
        time.sleep(0.02)


class ModuleProcess:
    """``python -m ARGS`` as a real process, its stderr (the log) in a file."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(GUARD_S)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(GUARD_S)


@contextlib.contextmanager
def killed_at_exit() -> Iterator[list[ModuleProcess]]:
    """A list to append processes to; every one is killed (-9) on the way out."""
    procs: list[ModuleProcess] = []
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
