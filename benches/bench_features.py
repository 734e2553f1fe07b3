"""Feature throughput on the real btc capture: Rust ``cif._core`` vs the pure-Python reference.

Run (from the repo root, with the extension built in release mode — ``maturin develop
--release`` — a debug build is several times slower and may miss the gate)::

    python -m pytest benches/ --benchmark-only --benchmark-columns=min,median,rounds

Both benchmarks compute every feature with the default settings (1 s, 10 s, 1 m and 100-trade
windows, depth levels 5 and 10, a row per trade) over the event log of
``btcusdt_20240808.gz`` (37,797 events: 9,757 trades and 28,040 book events, built once with
``events_from_capture`` outside the timing): ``cif._core.compute_features`` and
``tests/reference/features_ref.compute_features``. Each records ``events_per_s`` (all events,
trades and book, per second of the mean round) in ``extra_info`` (see ``--benchmark-json``).
Gate: the Python-reference benchmark fails unless Rust is at least ``MIN_SPEEDUP``× faster,
both measured in the same run (best round of each; no absolute time limits). The streaming
path (one ``push_trade`` / ``push_book`` call per event) is benchmarked for information only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from pytest_benchmark.fixture import BenchmarkFixture

import cif._core as core
from cif.features.event_log import events_from_capture
from reference import features_ref as ref

# Measured 120-170x on the 2-core dev machine (best rounds: Rust 7-11 ms, i.e. 3.4-5.3 M
# events/s, against 1.0-1.4 s for the reference) with other jobs running. The gate is the
# issue's goal, 30x: a quarter of the lowest measured ratio, so noise does not trip it while
# a real regression of the Rust path (or a debug build) does.
MIN_SPEEDUP = 30.0
SYMBOL = "btcusdt"
GROUP = "compute_features: every event of the btc capture"
N_EVENTS = 37_797
N_TRADES = 9_757

#: Best seconds per full computation, by implementation, measured in this run.
BEST_SECONDS: dict[str, float] = {}

Events = dict[str, NDArray[Any]]


@pytest.fixture(scope="module")
def btc(btc_capture: Path) -> Events:
    return events_from_capture(btc_capture, SYMBOL)


def _check_output(out: dict[str, NDArray[Any]]) -> None:
    names = ref.feature_names()
    assert list(out) == ["seq", "ts", "recv_ts_ns", "kind", *names]
    assert all(len(col) == N_TRADES for col in out.values())
    assert int(np.isfinite(out["ofi_1m"]).sum()) == N_TRADES


def _best_seconds(benchmark: BenchmarkFixture, fn: Callable[[], Any], rounds: int) -> float:
    """Best round from pytest-benchmark, or a plain best-of timing when benchmarks are off."""
    if benchmark.enabled and benchmark.stats is not None:
        best: float = benchmark.stats.stats.min
        return best
    return min(_plain_timing(fn, rounds))


def _mean_seconds(benchmark: BenchmarkFixture, fn: Callable[[], Any], rounds: int) -> float:
    if benchmark.enabled and benchmark.stats is not None:
        mean: float = benchmark.stats.stats.mean
        return mean
    timings = _plain_timing(fn, rounds)
    return sum(timings) / len(timings)


def _plain_timing(fn: Callable[[], Any], rounds: int) -> list[float]:
    timings: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return timings


def test_compute_features_rust(benchmark: BenchmarkFixture, btc: Events) -> None:
    assert len(btc["kind"]) == N_EVENTS

    def run() -> dict[str, NDArray[Any]]:
        return core.compute_features(btc)

    benchmark.group = GROUP
    out = benchmark.pedantic(run, rounds=30, warmup_rounds=3, iterations=1)
    _check_output(out)
    best = _best_seconds(benchmark, run, rounds=10)
    mean = _mean_seconds(benchmark, run, rounds=10)
    BEST_SECONDS["rust"] = best
    benchmark.extra_info.update(
        impl="rust", events=N_EVENTS, rows=N_TRADES, events_per_s=round(N_EVENTS / mean)
    )
    print(
        f"\ncompute_features (Rust) on {N_EVENTS} events: {N_EVENTS / mean:,.0f} events/s "
        f"(mean {mean * 1e3:.2f} ms, best {best * 1e3:.2f} ms)"
    )


def test_compute_features_python_reference_and_speedup_gate(
    benchmark: BenchmarkFixture, btc: Events
) -> None:
    def run() -> dict[str, NDArray[Any]]:
        return ref.compute_features(btc)

    benchmark.group = GROUP
    out = benchmark.pedantic(run, rounds=3, warmup_rounds=0, iterations=1)
    _check_output(out)
    python_best = _best_seconds(benchmark, run, rounds=2)
    python_mean = _mean_seconds(benchmark, run, rounds=2)
    BEST_SECONDS["python"] = python_best

    rust_best = BEST_SECONDS.get("rust")
    if rust_best is None:  # the Rust benchmark was deselected: time it here, same method
        rust_best = min(_plain_timing(lambda: core.compute_features(btc), 10))
    speedup = python_best / rust_best
    benchmark.extra_info.update(
        impl="python-reference",
        events=N_EVENTS,
        events_per_s=round(N_EVENTS / python_mean),
        rust_events_per_s_best=round(N_EVENTS / rust_best),
        speedup=round(speedup, 1),
        min_speedup=MIN_SPEEDUP,
    )
    print(
        f"\ncompute_features on {N_EVENTS} events: Rust {N_EVENTS / rust_best:,.0f} events/s, "
        f"Python reference {N_EVENTS / python_best:,.0f} events/s (best rounds), "
        f"speedup {speedup:.1f}x"
    )
    assert speedup >= MIN_SPEEDUP, (
        f"Rust compute_features is only {speedup:.1f}x the pure-Python reference "
        f"(Rust {N_EVENTS / rust_best:,.0f} events/s, Python {N_EVENTS / python_best:,.0f} "
        f"events/s); the gate is {MIN_SPEEDUP:.0f}x (is the extension a release build?)"
    )


# Information only (no gate): the streaming entry points over the same events.


def test_push_loop_rust(benchmark: BenchmarkFixture, btc: Events) -> None:
    """The live path: one ``push_trade`` / ``push_book`` call per event."""
    cols = {k: v.tolist() for k, v in btc.items()}

    def run() -> int:
        eng = core.FeatureEngine()
        push_trade, push_book = eng.push_trade, eng.push_book
        rows = 0
        for i, kind in enumerate(cols["kind"]):
            if kind == 0:
                push_trade(
                    cols["seq"][i],
                    cols["ts"][i],
                    cols["recv_ts_ns"][i],
                    cols["price"][i],
                    cols["qty"][i],
                    cols["side"][i],
                )
                rows += 1
            else:
                push_book(
                    cols["seq"][i],
                    cols["ts"][i],
                    cols["recv_ts_ns"][i],
                    cols["bid_price"][i],
                    cols["bid_qty"][i],
                    cols["ask_price"][i],
                    cols["ask_qty"][i],
                    cols["bid_depth"][i],
                    cols["ask_depth"][i],
                )
        return rows

    benchmark.group = "rust entry points (information)"
    assert benchmark.pedantic(run, rounds=5, warmup_rounds=1) == N_TRADES
    mean = _mean_seconds(benchmark, run, rounds=3)
    benchmark.extra_info.update(events=N_EVENTS, events_per_s=round(N_EVENTS / mean))
