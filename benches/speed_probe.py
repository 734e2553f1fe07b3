"""How fast this machine's CPU is from moment to moment, measured beside a benchmark.

Every ``--interval-ms`` the probe runs one fixed piece of pure-Python work and records
the CPU time it took (``time.thread_time``, so being preempted by another process does
not count). On a quiet, dedicated machine that time is constant. On this project's
2-vCPU virtual machine it is not: the same work takes from ~0.85 to ~1.8 times its usual
CPU time, in spells of a few hundred milliseconds, whatever the load inside the VM
(measured in session 15; an idle VM shows the same spread). A stack at 70 % of a core
that runs 1.6 times slower for 250 ms is past saturation for that long, and the latency
of everything in it climbs. ``bench_latency.py`` runs this probe in a process of its own
next to every measurement and reports how much of the window ran slow, so runs on
different stretches of the machine can be told apart and a slow spell is not taken for
a change of the code.

    python benches/speed_probe.py --seconds 40 --out probe.json

writes ``[[wall time ns, work CPU µs], ...]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: iterations of the fixed work: ~0.15-0.3 ms of CPU here, ~2 % of a core at 10 ms
WORK_ITERATIONS = 3000
#: length of the windows the probe's samples are grouped in
WINDOW_NS = 250_000_000
#: a window is slow when its median work time is this many times the run's fast level
SLOW_FACTOR = 1.3


def work() -> int:
    """The fixed work: a loop of integer additions (the interpreter's own speed)."""
    total = 0
    for i in range(WORK_ITERATIONS):
        total += i
    return total


def probe(seconds: float, interval_s: float) -> list[tuple[int, float]]:
    """Sample the work's CPU time every ``interval_s`` for ``seconds``."""
    samples: list[tuple[int, float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.thread_time_ns()
        work()
        samples.append((time.time_ns(), (time.thread_time_ns() - start) / 1e3))
        time.sleep(interval_s)
    return samples


@dataclass(frozen=True)
class Speed:
    """A run's speed as the probe saw it."""

    #: median work time over the run, µs (lower is faster)
    median_us: float
    #: the run's fast level: the 10th percentile of the windows' medians, µs
    fast_us: float
    #: start (wall ns) of each window whose median was ``SLOW_FACTOR`` × the fast level
    slow_windows: frozenset[int]
    #: windows with samples
    windows: int

    @property
    def slow_share(self) -> float:
        return len(self.slow_windows) / self.windows if self.windows else 0.0

    def is_slow(self, wall_ns: int) -> bool:
        """Whether ``wall_ns`` falls in a slow window or the one after it (a backlog
        built in a slow spell takes a while to drain)."""
        w = wall_ns - wall_ns % WINDOW_NS
        return w in self.slow_windows or (w - WINDOW_NS) in self.slow_windows


def speed_of(samples: Sequence[tuple[int, float]]) -> Speed | None:
    """Summarise probe samples; ``None`` without enough of them (under two windows)."""
    by_window: dict[int, list[float]] = {}
    for wall_ns, us in samples:
        by_window.setdefault(wall_ns - wall_ns % WINDOW_NS, []).append(us)
    if len(by_window) < 2:
        return None
    medians = {w: statistics.median(v) for w, v in sorted(by_window.items())}
    fast = statistics.quantiles(medians.values(), n=10)[0]
    slow = frozenset(w for w, m in medians.items() if m > SLOW_FACTOR * fast)
    return Speed(
        median_us=statistics.median(us for _, us in samples),
        fast_us=fast,
        slow_windows=slow,
        windows=len(medians),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--interval-ms", type=float, default=10.0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.seconds <= 0 or args.interval_ms <= 0:
        ap.error("--seconds and --interval-ms must be positive")
    args.out.write_text(json.dumps(probe(args.seconds, args.interval_ms / 1e3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
