"""Work that may wait until the pipeline's urgent work is done: a session's bookkeeping.

A step of the feed (one burst of frames from the exchange) moves through every stage —
gateway, feature processor, forecaster, API — within a few milliseconds, and in one process
all of it runs on one event loop: a forecast reaches its WebSocket clients late by all the
work the loop does before it is sent. Some of that work only keeps books on rows already
published: the forecaster's evaluation (~0.5 ms per batch at 5,000 ticks/s) and the output
digests. Done right after a publish, it stood between the other symbols' stages and the
API's delivery; a moment later, the loop is idle until the next burst.

:class:`DeferredWork` runs such work :data:`DEFER_S` after it was handed over, or as soon
as its owner needs the state it changes (:meth:`DeferredWork.run`: before the next batch,
before a checkpoint), whichever comes first, always in the order handed over. The work's
result is the same as if it had run at once; only the moment changes (event time, not the
wall clock, is in every number it computes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

#: How long deferred work waits. At 5,000 ticks/s a burst leaves the API 1-2 ms after the
#: forecaster has published it; the loop then idles until the next burst (10 ms steps).
DEFER_S: Final = 0.002


class DeferredWork:
    """A FIFO of callables run on the event loop ``delay_s`` after the first one was
    queued, or by :meth:`run`. One owner (a session's task) queues, runs and cancels."""

    def __init__(self, delay_s: float = DEFER_S) -> None:
        if not delay_s >= 0.0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        self.delay_s = delay_s
        self._queue: list[Callable[[], object]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    def __len__(self) -> int:
        """Work queued and not run yet."""
        return len(self._queue)

    def defer(self, work: Callable[[], object]) -> None:
        """Queue ``work`` (called with no arguments) after what is queued already."""
        self._queue.append(work)
        if self._timer is None:
            # The loop is looked up once: each lookup costs a getpid() system call.
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            self._timer = self._loop.call_later(self.delay_s, self._run_later)

    def _run_later(self) -> None:
        self._timer = None
        try:
            self.run()
        except BaseException as exc:
            # The timer has no caller to raise to: the owner's next run() raises it.
            self._error = exc

    def run(self) -> None:
        """Run everything queued, now, in order. Raises the first error of the queued work
        (the rest stays queued), or the one a timed run met, until :meth:`cancel`."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._error is not None:
            raise self._error
        queue = self._queue
        while queue:
            queue.pop(0)()  # a few items at most

    def cancel(self) -> None:
        """Drop what is queued (its owner's state is dropped with it) and any error."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue = []
        self._error = None


__all__ = ["DEFER_S", "DeferredWork"]
