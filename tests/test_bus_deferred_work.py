"""DeferredWork on a real event loop: later, in order, at once on request, errors raised to
the owner, nothing after a cancel. Waits are on events the work sets, under a guard."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cif.bus.deferred_work import DEFER_S, DeferredWork

#: failure guard of a wait (never a synchronisation device)
GUARD_S = 10.0


def _recorder(log: list[str], name: str, done: asyncio.Event | None = None) -> Callable[[], None]:
    def work() -> None:
        log.append(name)
        if done is not None:
            done.set()

    return work


def test_work_runs_later_and_in_order() -> None:
    async def go() -> tuple[list[str], list[str], int]:
        log: list[str] = []
        done = asyncio.Event()
        work = DeferredWork()
        work.defer(_recorder(log, "a"))
        work.defer(_recorder(log, "b", done))
        before = list(log)  # nothing runs while the owner goes on
        await asyncio.wait_for(done.wait(), GUARD_S)
        return before, log, len(work)

    assert asyncio.run(go()) == ([], ["a", "b"], 0)
    assert DEFER_S > 0


def test_run_does_it_now_and_the_timer_not_again() -> None:
    async def go() -> list[str]:
        log: list[str] = []
        work = DeferredWork(0.0)
        work.defer(_recorder(log, "a"))
        work.defer(_recorder(log, "b"))
        work.run()
        log.append("ran")
        # A timer left armed would fire before this later one: "a" would come again.
        done = asyncio.Event()
        work.defer(_recorder(log, "c", done))
        await asyncio.wait_for(done.wait(), GUARD_S)
        return log

    assert asyncio.run(go()) == ["a", "b", "ran", "c"]


def test_an_error_of_timed_work_is_raised_to_the_owner_until_cancelled() -> None:
    async def go() -> tuple[list[str], int]:
        log: list[str] = []
        reached = asyncio.Event()
        work = DeferredWork(0.0)

        def fail() -> None:
            raise RuntimeError("bookkeeping failed")

        work.defer(_recorder(log, "a", reached))
        work.defer(fail)
        work.defer(_recorder(log, "after"))
        await asyncio.wait_for(reached.wait(), GUARD_S)
        # The timed run has stopped at the error; no caller was there to take it.
        for _ in range(2):
            with pytest.raises(RuntimeError, match="bookkeeping failed"):
                work.run()
        left = len(work)
        work.cancel()
        work.run()
        return log, left

    assert asyncio.run(go()) == (["a"], 1)


def test_an_error_of_work_run_by_the_owner_leaves_the_rest_queued() -> None:
    async def go() -> tuple[list[str], int]:
        log: list[str] = []
        work = DeferredWork(60.0)

        def fail() -> None:
            raise ValueError("bad batch")

        work.defer(fail)
        work.defer(_recorder(log, "next"))
        with pytest.raises(ValueError, match="bad batch"):
            work.run()
        left = len(work)
        work.run()
        return log, left

    assert asyncio.run(go()) == (["next"], 1)


def test_cancel_drops_what_is_queued() -> None:
    async def go() -> list[str]:
        log: list[str] = []
        work = DeferredWork(0.0)
        work.defer(_recorder(log, "dropped"))
        work.cancel()
        done = asyncio.Event()
        work.defer(_recorder(log, "kept", done))
        await asyncio.wait_for(done.wait(), GUARD_S)
        return log

    assert asyncio.run(go()) == ["kept"]


@pytest.mark.parametrize("delay", [-0.001, float("nan")])
def test_a_bad_delay_is_refused(delay: float) -> None:
    with pytest.raises(ValueError, match="delay_s"):
        DeferredWork(delay)
