"""Fault injection: what can go wrong with a real exchange feed, on demand.

Every injected fault is counted and logged (``cif.sim.faults`` logger), so a test or an
operator can tell what the client was exposed to; the counts are also served at
``GET /sim/stats`` and logged once more when the server stops.

Faults and where they act:

* ``close_every_s``: each connection is closed (code 1000) that many seconds after it opened,
  like Binance's 24-hour disconnect, only sooner. Market data produced just before the
  close is dropped until at least one trade is lost (``close_dropped``), as frames in flight
  are on a real disconnect, so each close leaves a trade-id gap.
* ``skip_trade_every`` / ``break_depth_every``: every N-th trade message / depth diff is
  not sent to anyone (a trade-id gap / a broken ``U == prev u + 1`` chain).
* ``malformed_every``: on each connection, every N-th data message is preceded by an extra
  frame holding truncated, invalid JSON.
* ``shutdown_after_s`` (+ ``shutdown_delay_s``): that long after a connection opened, it gets
  ``{"e":"serverShutdown","E":ms}`` (not wrapped, also on combined streams: it is a
  connection event, not stream data) and is closed ``shutdown_delay_s`` later.
* ``snapshot_delay_s`` / ``snapshot_fail_every``: the REST depth snapshot is answered late /
  every N-th one fails with HTTP 503 and Binance's ``-1001`` error.
* ``stall_after_s`` (+ ``stall_for_s``): that long after a connection opened, data stops
  while the socket stays open (pings and replies to requests continue, as a stuck feed
  handler would do); data produced during the stall is dropped, not queued, so a finite
  stall also shows up as a gap. No ``stall_for_s`` means the stall lasts until the client
  gives up.

The same log also counts what the simulator does to protect itself (not injected, but just
as relevant to a client): ``slow_consumer_disconnect`` and ``stall_dropped`` messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger("cif.sim.faults")

#: After this many occurrences of one fault, only every 1000th is logged individually.
_LOG_EACH_UP_TO = 20


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which faults to inject; ``None`` (or 0 delay) disables each one."""

    close_every_s: float | None = None
    skip_trade_every: int | None = None
    break_depth_every: int | None = None
    malformed_every: int | None = None
    shutdown_after_s: float | None = None
    shutdown_delay_s: float = 1.0
    snapshot_delay_s: float = 0.0
    snapshot_fail_every: int | None = None
    stall_after_s: float | None = None
    stall_for_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("skip_trade_every", "break_depth_every", "malformed_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.snapshot_fail_every is not None and self.snapshot_fail_every < 1:
            raise ValueError("snapshot_fail_every must be >= 1")
        for name in ("close_every_s", "shutdown_after_s", "stall_after_s", "stall_for_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.shutdown_delay_s < 0 or self.snapshot_delay_s < 0:
            raise ValueError("delays must be >= 0")

    def enabled(self) -> list[str]:
        """Names of the faults switched on, for the startup banner."""
        names = []
        for name in (
            "close_every_s",
            "skip_trade_every",
            "break_depth_every",
            "malformed_every",
            "shutdown_after_s",
            "snapshot_fail_every",
            "stall_after_s",
        ):
            if getattr(self, name) is not None:
                names.append(name)
        if self.snapshot_delay_s:
            names.append("snapshot_delay_s")
        return names


class FaultLog:
    """Counts injected faults (and other notable events) and logs them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._changed: asyncio.Event | None = None

    def record(self, kind: str, detail: str = "", n: int = 1) -> None:
        """Count ``n`` occurrences of ``kind`` and log the event."""
        before = self.counts[kind]
        self.counts[kind] = before + n
        total = before + n
        if total <= _LOG_EACH_UP_TO or total // 1000 != before // 1000:
            log.warning("fault injected: %s (%s), %d so far", kind, detail, total)
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, kind: str, at_least: int = 1) -> None:
        """Return once ``kind`` has been recorded ``at_least`` times (for tests and tools)."""
        while self.counts[kind] < at_least:
            if self._changed is None:
                self._changed = asyncio.Event()
            self._changed.clear()
            await self._changed.wait()

    def summary(self) -> str:
        """One line with every count, for the shutdown log."""
        if not self.counts:
            return "no faults injected"
        return ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
