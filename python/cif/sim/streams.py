"""Stream names and the subscription hub that fans market data out to connections.

A market source publishes, per stream name (``btcusdt@trade``), a batch of ``data``
payloads as bytes. The hub hands each batch to every subscribed session: as is for raw
(``/ws``) connections, wrapped as ``{"stream":..,"data":..}`` for combined ones. The
wrapping is done once per batch and shared by all combined subscribers, and the payload
bytes are never re-encoded, which is what keeps capture replay byte-faithful.

Stream-level faults (a dropped trade, a dropped depth diff) are applied here, before the
fan-out, so every client sees the same gap, as with a real exchange-side loss.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from cif.sim.faults import FaultConfig, FaultLog
from cif.sim.symbols import is_valid_stream_symbol

if TYPE_CHECKING:
    from cif.sim.session import Session

#: Stream kinds served, as written after ``<symbol>@``.
STREAM_KINDS = ("trade", "aggTrade", "depth@100ms", "bookTicker")

#: Binance: "A single connection can listen to a maximum of 1024 streams."
MAX_STREAMS_PER_CONNECTION = 1024


def split_stream(name: str) -> tuple[str, str] | None:
    """``"btcusdt@depth@100ms"`` -> ``("btcusdt", "depth@100ms")``; None if not well formed."""
    symbol, at, kind = name.partition("@")
    if not at or kind not in STREAM_KINDS or not is_valid_stream_symbol(symbol):
        return None
    return symbol, kind


class Hub:
    """Who listens to which stream, and the fan-out of published batches."""

    def __init__(self, symbols: Iterable[str], faults: FaultConfig, fault_log: FaultLog) -> None:
        self.symbols = frozenset(symbols)
        self.faults = faults
        self.fault_log = fault_log
        self.sessions: set[Session] = set()
        self._subs: dict[str, set[Session]] = {}
        self._prefix: dict[str, bytes] = {}
        self._n_trade = 0
        self._n_depth = 0
        self._has_reader = asyncio.Event()

    def is_served(self, name: str) -> bool:
        """True if ``name`` is a well-formed stream of a symbol this simulator serves."""
        parts = split_stream(name)
        return parts is not None and parts[0] in self.symbols

    # -- membership ---------------------------------------------------------------------

    def add_session(self, session: Session) -> None:
        self.sessions.add(session)

    def remove_session(self, session: Session) -> None:
        self.sessions.discard(session)
        for name in list(session.streams):
            self.unsubscribe(session, name)

    def subscribe(self, session: Session, name: str) -> None:
        session.streams[name] = None
        self._subs.setdefault(name, set()).add(session)
        self._has_reader.set()

    def unsubscribe(self, session: Session, name: str) -> None:
        session.streams.pop(name, None)
        subs = self._subs.get(name)
        if subs is not None:
            subs.discard(session)
            if not subs:
                del self._subs[name]
        if not self._subs:
            self._has_reader.clear()

    def has_subscribers(self, name: str) -> bool:
        return name in self._subs

    # -- flow control -------------------------------------------------------------------

    async def wait_for_readers(self) -> None:
        """Return once some session subscribes to some stream."""
        await self._has_reader.wait()

    async def wait_for_room(self) -> None:
        """Return once every live session's backlog is below its low-water mark.

        This is the ``--speed max`` pacing: produce only as fast as the slowest reader.
        """
        for session in list(self.sessions):
            await session.wait_for_room()

    # -- publishing ---------------------------------------------------------------------

    def publish(self, name: str, payloads: list[bytes]) -> None:
        """Send a batch of ``data`` payloads of stream ``name`` to its subscribers."""
        subs = self._subs.get(name)
        if not subs or not payloads:
            return
        faults = self.faults
        if faults.skip_trade_every is not None and name.endswith("@trade"):
            payloads = self._drop_every(payloads, faults.skip_trade_every, "trade", name)
        elif faults.break_depth_every is not None and name.endswith("@depth@100ms"):
            payloads = self._drop_every(payloads, faults.break_depth_every, "depth", name)
        combined: list[bytes] | None = None
        for session in subs:
            if session.combined:
                if combined is None:
                    prefix = self._prefix.get(name)
                    if prefix is None:
                        prefix = self._prefix[name] = b'{"stream":"%s","data":' % name.encode()
                    combined = [prefix + p + b"}" for p in payloads]
                session.push(combined)
            else:
                session.push(payloads)

    def _drop_every(self, payloads: list[bytes], every: int, kind: str, name: str) -> list[bytes]:
        kept: list[bytes] = []
        count = self._n_trade if kind == "trade" else self._n_depth
        for p in payloads:
            count += 1
            if count % every == 0:
                self.fault_log.record(
                    "skip_trade" if kind == "trade" else "break_depth", f"{name} dropped"
                )
            else:
                kept.append(p)
        if kind == "trade":
            self._n_trade = count
        else:
            self._n_depth = count
        return kept
