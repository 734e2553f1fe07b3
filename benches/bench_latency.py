"""Measure the end-to-end latency of the whole live stack: tick received by the gateway →
forecast delivered on the API's WebSocket.

For each requested rate, starts ``cif sim --synthetic --symbols S --rate R`` and
``python -m cif.live`` (all components: ingest, features, forecast, api; on the embedded
Redis it starts itself, or on ``--redis-url``) as subprocesses, connects a WebSocket client
to ``/ws`` subscribed to the forecasts of the symbols, and after ``--warmup`` s records for
``--seconds`` s, per forecast received,

    latency = client receive wall time (time.time_ns()) − the forecast's ``recv_ts_ns``

where ``recv_ts_ns`` is the gateway's wall clock when the trade behind the feature row
arrived. Everything runs on this machine, so both ends read the same clock. Reported per
rate: forecasts received and per second, p50/p95/p99/max latency (ms), p50 of the first and
last quarter of the window (a growing latency means the stack falls behind), the ticks/s the
simulator sent, the CPU % of the ``cif live`` process(es) and, apart (``redis%``), that of
the embedded Redis (``-`` on ``--redis-url``). A second line splits the latency into
stages by the forecast's own timestamps: tick received → forecast published
(``published_ns``: gateway, feature processor and forecaster), published → sent by the API
(``sent_ns``), sent → received by the client. When the embedded Redis logged something that
holds its clients up (a slow append-only-file fsync, a rewrite or a save in the background),
a ``redis:`` line counts those log lines (``--log-dir`` keeps the server's log too).
The client connects to ``/ws?batch=true`` (the forecasts queued together come as one JSON
array frame, as a client that reads thousands a second should take them); ``--per-record``
measures one frame per forecast.
``--processes split`` measures ``cif live --processes split``: ingest, features and
forecast+api as three child processes of the command.

A third line gives the machine's speed during the window (``speed_probe.py``, a process
of its own that times a fixed piece of work every 10 ms, ~2 % of a core): the probe's
median, the share of 250 ms windows that ran ≥ 1.3× slower than the run's fast level,
and the latency of the forecasts outside those slow spells and inside them. On this
project's virtual machine the same work takes up to ~1.8× longer in spells of a few
hundred ms, and most of the p99 falls in them; ``--no-speed-probe`` leaves it out.

``--rate`` (and ``--rates`` here) counts synthetic *trades* per second, all symbols. The
gateway receives more *ticks* than that: every trade frame plus the bookTicker and depth-diff
frames of the same streams; "ticks/s" in the output is the frames/s the simulator sent.

    PYTHONPATH=python python benches/bench_latency.py --rates 1000,5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "live"))

from live_testkit import SimProcess
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from speed_probe import Speed, speed_of

#: failure guard of the waits below
GUARD_S = 60.0
_API_RE = re.compile(r"API on http://127\.0\.0\.1:(\d+)")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sent(sim: SimProcess) -> int:
    return sum(int(s["sent"]) for s in sim.stats()["sessions"])


def _descendants(pid: int) -> list[int]:
    """``pid`` and its child processes, recursively (Linux ``/proc``)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out.extend(_descendants(int(child)))
    return out


def _spawn(
    sim: SimProcess,
    tmp: Path,
    symbols: str,
    redis_url: str | None,
    processes: str,
    name: str,
    extra: list[str],
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = tmp / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k != "CIF_REDIS_URL"}
    env.update(PYTHONUNBUFFERED="1", CIF_EXCHANGE_URL=sim.ws_url, CIF_REST_URL=sim.rest_url)
    cmd = [sys.executable, "-m", "cif.live", "--symbols", symbols, "--api-port", "0"]
    cmd += ["--db", str(tmp / "data" / "cif.duckdb"), "--history-dir", str(tmp / "hist")]
    cmd += ["--processes", processes]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    cmd += extra
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env
        )
    return proc, log_path


#: What the embedded Redis logs when it held its clients up: a slow append-only-file fsync
#: (with ``appendfsync everysec`` the server then delays writes, up to 2 s), a rewrite or
#: a save in the background.
_REDIS_STALL_RE = re.compile(r"fsync is taking too long|Background (append only|saving)")


def _redis_warnings(logs: list[Path]) -> str:
    """The embedded Redis's log lines that explain a stall, counted (empty: none)."""
    found: Counter[str] = Counter()
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            m = _REDIS_STALL_RE.search(line)
            if m:
                found[m.group(0)] += 1
    return ", ".join(f"{n} x {what!r}" for what, n in sorted(found.items()))


def _start_live(
    sim: SimProcess,
    tmp: Path,
    symbols: str,
    redis_url: str | None,
    processes: str,
    extra: list[str],
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """The ``cif live`` process (all components), once its API port is known."""
    proc, log_path = _spawn(sim, tmp, symbols, redis_url, processes, "live", extra)
    deadline = time.monotonic() + GUARD_S
    while True:
        m = _API_RE.search(log_path.read_text())
        if m:
            return proc, int(m.group(1)), log_path
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"cif live did not start; log:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.05)  # poll interval, bounded by the deadline


async def _measure(
    api_port: int,
    batch: bool,
    symbols: list[str],
    warmup: float,
    seconds: float,
    sim: SimProcess,
    pids: list[int],
    redis_pids: list[int],
    probe_out: Path | None,
) -> dict[str, Any]:
    # per forecast: (client receive, tick received, forecast published, API sent), ns
    times: list[tuple[int, int, int, int]] = []
    # per message in the window: (client receive ns, the text); parsed after the window, so
    # the client stamps each message as soon as it has it and spends little CPU meanwhile
    # (it shares the cores with what it measures)
    window: list[tuple[int, str | bytes]] = []
    note = ""
    url = f"ws://127.0.0.1:{api_port}/ws" + ("?batch=true" if batch else "")
    async with connect(url, max_size=None) as ws:
        await ws.send(
            json.dumps({"op": "subscribe", "symbols": symbols, "channels": ["forecasts"]})
        )
        loop = asyncio.get_running_loop()
        t_start = loop.time()
        t_end = t_start + warmup + seconds
        recv, stamp = ws.recv, time.time_ns
        try:
            async with asyncio.timeout_at(t_start + warmup):
                while True:
                    await recv()
        except TimeoutError:
            pass
        except ConnectionClosed as exc:
            note = f"closed by the server: {exc}"
        sent0, t0 = _sent(sim), loop.time()
        cpu0, redis0 = sum(map(_cpu_s, pids)), sum(map(_cpu_s, redis_pids))
        probe = None
        if probe_out is not None and not note:
            script = str(Path(__file__).with_name("speed_probe.py"))
            probe = subprocess.Popen(
                [sys.executable, script, "--seconds", str(seconds), "--out", str(probe_out)]
            )
        if not note:
            append = window.append
            try:
                # one deadline for the window (a wait_for per message cost a task each)
                async with asyncio.timeout_at(t_end):
                    while True:
                        raw = await recv()
                        append((stamp(), raw))
            except TimeoutError:
                pass
            except ConnectionClosed as exc:
                note = f"closed by the server: {exc}"
        t1 = loop.time()
        sent1, cpu1 = _sent(sim), sum(map(_cpu_s, pids))
        redis1 = sum(map(_cpu_s, redis_pids))
    speed = None
    if probe is not None and probe_out is not None and probe.wait(GUARD_S) == 0:
        speed = speed_of([(int(t), float(us)) for t, us in json.loads(probe_out.read_text())])
    for received, raw in window:
        parsed = json.loads(raw)
        for msg in parsed if isinstance(parsed, list) else [parsed]:
            if msg.get("channel") == "forecasts":
                d = msg["data"]
                times.append((received, d["recv_ts_ns"], d["published_ns"], d["sent_ns"]))
    if not times:
        return {"n": 0, "note": note or "no forecast after the warm-up"}
    dt = t1 - t0
    lat_ns = [r - tick for r, tick, _, _ in times]
    ms = sorted(v / 1e6 for v in lat_ns)
    q = max(1, len(lat_ns) // 4)

    def pct(p: float, values: list[float] = ms) -> float:
        return values[min(len(values) - 1, int(p / 100 * len(values)))]

    stages = {
        "tick->published": sorted((pub - tick) / 1e6 for _, tick, pub, _ in times),
        "published->sent": sorted((sent - pub) / 1e6 for _, _, pub, sent in times),
        "sent->received": sorted((r - sent) / 1e6 for r, _, _, sent in times),
    }
    return {
        "times": times,
        "stages": {name: (pct(50, v), pct(99, v)) for name, v in stages.items()},
        "n": len(ms),
        "per_s": len(ms) / dt,
        "ticks_per_s": (sent1 - sent0) / dt,
        "cpu_pct": 100 * (cpu1 - cpu0) / dt,
        "redis_cpu_pct": 100 * (redis1 - redis0) / dt if redis_pids else None,
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": ms[-1],
        "first_q_p50": statistics.median(v / 1e6 for v in lat_ns[:q]),
        "last_q_p50": statistics.median(v / 1e6 for v in lat_ns[-q:]),
        "speed": speed,
        "note": note,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="1000,5000", help="synthetic trades/s, all symbols")
    ap.add_argument("--symbols", default="btcusdt,ethusdt")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument(
        "--redis-url", default=None, help="Redis to use (default: cif live's embedded one)"
    )
    ap.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep cif live's and the embedded Redis's logs here (live-RATE[-RUN].log, "
        "redis-RATE[-RUN]-I.log; RUN with --repeat)",
    )
    ap.add_argument(
        "--dump",
        type=Path,
        default=None,
        help="write each forecast's [client receive, tick received, published, sent] ns "
        "as JSON to DUMP-<rate>.json",
    )
    ap.add_argument(
        "--processes",
        choices=("one", "split"),
        default="one",
        help="cif live --processes: one process, or ingest / features / forecast+api apart",
    )
    ap.add_argument(
        "--live-args",
        default="",
        help='more arguments for cif live, one string (e.g. "--flush-interval 0.2")',
    )
    ap.add_argument(
        "--per-record",
        action="store_true",
        help="one WebSocket frame per forecast (default: /ws?batch=true, the forecasts "
        "queued together in one array frame)",
    )
    ap.add_argument(
        "--split-by-second",
        action="store_true",
        help="also report the latency of forecasts whose tick came in an even and in an odd "
        "second apart: an A/B test inside one run, for a build that switches between two "
        "variants by the wall clock's second (see benches/README.md)",
    )
    ap.add_argument(
        "--no-speed-probe",
        action="store_true",
        help="do not run speed_probe.py beside the measurement (see the module docstring)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per rate, interleaved across the rates; with more than one, a last table "
        "gives the median and range over the runs (single runs differ by up to 2x near "
        "saturation)",
    )
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    symbols = [s.strip().lower() for s in args.symbols.split(",") if s.strip()]
    print(
        "latency = forecast received on the WebSocket - gateway receive time of its tick; "
        "rate = synthetic trades/s offered (all symbols); ticks/s = frames/s the simulator "
        "sent (trades + bookTicker + depth diffs)"
    )
    print(
        f"{'rate':>6} {'ticks/s':>8} {'fc/s':>6} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'p50 1st/last q':>15} {'cpu%':>5} {'redis%':>6}"
    )
    rates = [int(r) for r in args.rates.split(",")]
    done: dict[int, list[dict[str, Any]]] = {rate: [] for rate in rates}
    # Interleaved (every rate once, then again): a slow spell of the machine hits all alike.
    for rep, rate in [(rep, rate) for rep in range(args.repeat) for rate in rates]:
        if args.redis_url:
            import redis

            redis.Redis.from_url(args.redis_url).flushall()
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            sim = SimProcess(
                ["--synthetic", "--symbols", ",".join(symbols), "--rate", str(rate), "--seed", "3"],
                tmp / "sim.log",
            )
            sim.start()
            try:
                sym_list = ",".join(symbols)
                proc, api_port, log_path = _start_live(
                    sim, tmp, sym_list, args.redis_url, args.processes, shlex.split(args.live_args)
                )
                # cif live and its component processes; the embedded redis-server apart
                pids: list[int] = []
                redis_pids: list[int] = []
                for p in _descendants(proc.pid):
                    is_redis = Path(f"/proc/{p}/comm").read_text().strip() == "redis-server"
                    (redis_pids if is_redis else pids).append(p)
                try:
                    r = asyncio.run(
                        _measure(
                            api_port,
                            not args.per_record,
                            symbols,
                            args.warmup,
                            args.seconds,
                            sim,
                            pids,
                            redis_pids,
                            None if args.no_speed_probe else tmp / "probe.json",
                        )
                    )
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        code = proc.wait(GUARD_S)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        code = proc.wait(GUARD_S)
                    if code != 0:
                        print(f"cif live exited {code}:\n{log_path.read_text()[-3000:]}")
                    redis_logs = sorted(tmp.rglob("redis-server.log"))
                    if args.log_dir is not None:
                        # one set per run: with --repeat, a later run must not overwrite
                        run = f"-{rep + 1}" if args.repeat > 1 else ""
                        args.log_dir.mkdir(parents=True, exist_ok=True)
                        shutil.copy(log_path, args.log_dir / f"live-{rate}{run}.log")
                        for i, path in enumerate(redis_logs):
                            shutil.copy(path, args.log_dir / f"redis-{rate}{run}-{i}.log")
                    redis_note = _redis_warnings(redis_logs)
            finally:
                sim.stop()
        if r["n"] == 0:
            print(f"{rate:>6}  no measurement: {r['note']}", flush=True)
            continue
        quarters = f"{r['first_q_p50']:.1f}/{r['last_q_p50']:.1f}"
        redis_cpu = "-" if r["redis_cpu_pct"] is None else f"{r['redis_cpu_pct']:.0f}"
        print(
            f"{rate:>6} {r['ticks_per_s']:>8.0f} {r['per_s']:>6.0f} {r['n']:>7} {r['p50']:>8.1f} "
            f"{r['p95']:>8.1f} {r['p99']:>8.1f} {r['max']:>8.1f} {quarters:>15} "
            f"{r['cpu_pct']:>5.0f} {redis_cpu:>6}  {r['note']}",
            flush=True,
        )
        if redis_note:
            print(f"        redis: {redis_note}", flush=True)
        print(
            "        stages p50/p99 ms: "
            + ", ".join(f"{k} {p50:.1f}/{p99:.1f}" for k, (p50, p99) in r["stages"].items()),
            flush=True,
        )
        done[rate].append(r)
        if r["speed"] is not None:
            print("        " + _by_speed(r["speed"], r["times"]), flush=True)
        if args.split_by_second:
            print("        " + _by_second(r["times"]), flush=True)
        if args.dump is not None:
            run = f"-{rep + 1}" if args.repeat > 1 else ""
            path = args.dump.with_name(f"{args.dump.stem}-{rate}{run}{args.dump.suffix}")
            path.write_text(json.dumps(r["times"]))
    if args.repeat > 1:
        _print_medians(done)
    return 0


#: forecasts whose tick came this soon after a second began are left out of the split: the
#: variant that handled them may be the previous second's
SPLIT_MARGIN_NS = 10_000_000


def _by_second(times: list[tuple[int, int, int, int]]) -> str:
    """Latency percentiles of the forecasts of even and of odd seconds (of the tick)."""
    halves: tuple[list[float], list[float]] = ([], [])
    for received, tick, _, _ in times:
        if tick % 1_000_000_000 >= SPLIT_MARGIN_NS:
            halves[(tick // 1_000_000_000) % 2].append((received - tick) / 1e6)
    groups = {"even seconds": halves[0], "odd seconds": halves[1]}
    return " | ".join(_percentiles(groups, (50, 90, 95, 99), 2))


def _percentiles(groups: dict[str, list[float]], points: tuple[int, ...], digits: int) -> list[str]:
    """``name n=N p50 x ...`` of each group of latencies (ms), or ``name: none``."""
    parts = []
    for name, values in groups.items():
        if not values:
            parts.append(f"{name}: none")
            continue
        v = sorted(values)
        stats = " ".join(
            f"p{p} {v[min(len(v) - 1, int(p / 100 * len(v)))]:.{digits}f}" for p in points
        )
        parts.append(f"{name} n={len(v)} {stats}")
    return parts


def _by_speed(speed: Speed, times: list[tuple[int, int, int, int]]) -> str:
    """The machine's speed in the window, and the latency outside and inside slow spells."""
    groups: dict[str, list[float]] = {"steady": [], "slow spells": []}
    for received, tick, _, _ in times:
        groups["slow spells" if speed.is_slow(tick) else "steady"].append((received - tick) / 1e6)
    head = (
        f"speed: probe p50 {speed.median_us:.0f} us (fast level {speed.fast_us:.0f}), "
        f"slow windows {100 * speed.slow_share:.0f} %"
    )
    return " | ".join([head, *_percentiles(groups, (50, 95, 99), 1)])


def _print_medians(done: dict[int, list[dict[str, Any]]]) -> None:
    print("median (min-max) over the runs:")
    for rate, runs in done.items():
        if not runs:
            continue

        def spread(key: str, runs: list[dict[str, Any]] = runs) -> str:
            values = [float(r[key]) for r in runs]
            return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"

        print(
            f"{rate:>6} runs {len(runs)}: p50 {spread('p50')}, p95 {spread('p95')}, "
            f"p99 {spread('p99')} ms; cpu% {spread('cpu_pct')}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
