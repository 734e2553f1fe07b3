"""``python -m cif.sim`` as a user runs it: a subprocess that prints its URLs, serves them,
and stops cleanly on SIGTERM with the fault summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from sim_testkit import GUARD_S, capture, http_get, run, ws_connect

import cif

pytestmark = pytest.mark.timeout(90)


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = dict(os.environ)
    package_root = str(Path(cif.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cif.sim", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("http") for line in lines):
        raw = await asyncio.wait_for(proc.stdout.readline(), GUARD_S)
        assert raw, "simulator exited before printing its URLs"
        lines.append(raw.decode().strip())
    return proc, lines


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), GUARD_S)
    assert proc.returncode == 0
    return err.decode()


def test_synthetic_cli_prints_urls_and_serves_them() -> None:
    async def body() -> None:
        proc, lines = await _start(
            "--synthetic", "--symbols", "btcusdt,ethusdt", "--rate", "500", "--seed", "4",
            "--fault-malformed-every", "1000000",
        )  # fmt: skip
        try:
            ws_url = next(line for line in lines if line.startswith("ws://"))
            http_url = next(line for line in lines if line.startswith("http://"))
            port = int(http_url.split(":")[2].split("/")[0])
            async with ws_connect(ws_url) as ws:
                trade = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
                assert trade["e"] == "trade"
            res = await http_get(port, http_url.split(str(port), 1)[1])
            assert res.status == 200
        finally:
            err = await _stop(proc)
        assert "faults:" in err

    run(body())


def test_capture_cli_replays() -> None:
    path = capture("ethusdt_20240808.gz")

    async def body() -> None:
        proc, lines = await _start("--capture", str(path), "--speed", "max")
        try:
            assert "replay of ethusdt_20240808.gz" in lines[0]
            ws_url = next(line for line in lines if line.startswith("ws://"))
            assert ws_url.endswith("/ws/ethusdt@trade")
            async with ws_connect(ws_url) as ws:
                trade = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
                assert trade["s"] == "ETHUSDT"
        finally:
            await _stop(proc)

    run(body())
