"""Measure the synthetic trade rate the simulator sustains to one WebSocket client.

For each requested rate, starts ``cif.sim`` in a subprocess (synthetic, one symbol, paced at
speed 1), connects one plain ``websockets`` client to ``/ws/<symbol>@trade``, counts the
trades received over ``--seconds`` after a warm-up, and reads the server's CPU time from
/proc. ``--rates max`` runs at ``--speed max`` (as fast as the client reads).

    PYTHONPATH=python python benches/bench_sim_rate.py --rates 20000,50000,80000,max
    PYTHONPATH=python python benches/bench_sim_rate.py --rates 50000,max --all-streams

A rate is "sustained" when the client receives at least 97% of the requested trades per
second (the Poisson draw alone makes the count vary by well under 1%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import websockets

_LAUNCH = (
    "import argparse, sys\n"
    "from cif.sim import cli\n"
    "p = argparse.ArgumentParser()\n"
    "cli.add_arguments(p)\n"
    "sys.exit(cli.run(p.parse_args(sys.argv[1:])))\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def _measure(
    port: int, symbol: str, warmup: float, seconds: float, all_streams: bool
) -> tuple[int, int]:
    url = f"ws://127.0.0.1:{port}/ws/{symbol}@trade"
    if all_streams:
        kinds = ("trade", "aggTrade", "depth@100ms", "bookTicker")
        url = f"ws://127.0.0.1:{port}/stream?streams=" + "/".join(f"{symbol}@{k}" for k in kinds)
    for _ in range(100):
        try:
            ws = await websockets.connect(url, max_queue=None, compression=None)
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        raise RuntimeError("server did not come up")
    loop = asyncio.get_running_loop()
    count = 0
    gaps = 0
    last_id = -1
    start = loop.time()
    counting_from = start + warmup
    end = counting_from + seconds
    async with ws:
        async for msg in ws:
            now = loop.time()
            if now >= end:
                break
            text = msg if isinstance(msg, str) else msg.decode()
            if all_streams and not text.startswith('{"stream":"' + symbol + '@trade"'):
                continue
            i = text.index('"t":') + 4
            tid = int(text[i : text.index(",", i)])
            if last_id >= 0 and tid != last_id + 1:
                gaps += 1
            last_id = tid
            if now >= counting_from:
                count += 1
    return count, gaps


def run_one(rate: str, symbol: str, warmup: float, seconds: float, all_streams: bool) -> None:
    port = _free_port()
    speed = "max" if rate == "max" else "1"
    numeric = "200000" if rate == "max" else rate
    cmd = [sys.executable, "-c", _LAUNCH, "--synthetic", "--symbols", symbol, "--rate", numeric,
           "--speed", speed, "--port", str(port)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", "python"))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        cpu0 = _cpu_seconds(proc.pid)
        t0 = time.monotonic()
        count, gaps = asyncio.run(_measure(port, symbol, warmup, seconds, all_streams))
        wall = time.monotonic() - t0
        cpu = _cpu_seconds(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    got = count / seconds
    verdict = ""
    if rate != "max":
        verdict = "sustained" if got >= 0.97 * float(rate) else "NOT sustained"
    print(
        f"rate={rate:>7} received={got:10.0f} trades/s  server CPU={100 * cpu / wall:5.1f}%  "
        f"id gaps={gaps}  {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20000,50000,80000,max")
    parser.add_argument("--symbol", default="btcusdt")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--all-streams",
        action="store_true",
        help="subscribe to trade, aggTrade, depth@100ms and bookTicker (counts trades)",
    )
    args = parser.parse_args()
    for rate in args.rates.split(","):
        run_one(rate.strip(), args.symbol, args.warmup, args.seconds, args.all_streams)


if __name__ == "__main__":
    main()
