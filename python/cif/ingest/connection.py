"""One group of streams on the exchange's WebSocket, kept alive whatever happens.

A ``FeedGroup`` owns the connection carrying its streams (at most 1024) and replaces it:

* after a close or a failed connect: reconnect with exponential backoff and jitter, capped,
  retried forever (the backoff resets once a connection delivers data);
* when it goes silent (no data for ``watchdog_s``; pings alone do not count, since a stuck
  feed keeps answering them): close it and reconnect;
* on ``serverShutdown`` and before Binance's 24-hour limit: make-before-break. A replacement
  is opened while the old connection keeps delivering; once the replacement has data on
  every stream (or ``handover_s`` after its first message, or when the old one closes) the
  old one is closed and the replacement's buffered frames are handed on. The consumer drops
  what it has already seen (trade ids, update ids), so the overlap yields no duplicates and,
  since the replacement started before the old one stopped, no gap.

Pings are answered by the WebSocket library with a pong echoing the ping's payload, as
Binance requires. Frames are handed to ``on_frame(frame, recv_time_ns)`` unparsed, in
arrival order, from one connection at a time, as they arrive
(:class:`cif.ingest.feed_connection.FeedConnection`: no ``recv()`` queue in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from cif.ingest.backoff import Backoff
from cif.ingest.endpoints import combined_url
from cif.ingest.feed_connection import FeedConnection

log = logging.getLogger(__name__)

FrameHandler = Callable[[bytes, int], None]

#: Largest frame accepted (a 5000-level depth snapshot is ~250 KB; stream frames are small).
MAX_FRAME_BYTES = 4 << 20
#: SUBSCRIBE requests carry this many streams each, paced under Binance's 5 messages/s.
_SUBSCRIBE_CHUNK = 200
_SUBSCRIBE_PACE_S = 0.25
_STREAM_PREFIX = b'{"stream":"'


@dataclass(slots=True)
class FeedStats:
    """Counters of one group (summed over groups in the gateway's stats)."""

    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    watchdog_reconnects: int = 0
    handovers: int = 0
    server_shutdowns: int = 0
    frames: int = 0
    handler_errors: int = 0


class _Conn:
    """One socket and what the group knows about it."""

    _ids = itertools.count(1)

    def __init__(self, streams: int) -> None:
        self.id = next(self._ids)
        self.ws: ClientConnection | None = None  # set once the handshake is done
        self.opened = time.monotonic()
        self.last_data = self.opened
        self.first_data: float | None = None
        self.primary = False
        self.buffer: deque[tuple[bytes, int]] = deque()
        self.seen: set[bytes] = set()
        self.n_streams = streams
        self.task: asyncio.Task[None] | None = None

    def alive(self) -> bool:
        """True while its reader runs (the socket is open)."""
        return self.task is not None and not self.task.done()

    def all_streams_seen(self) -> bool:
        return len(self.seen) >= self.n_streams


class FeedGroup:
    """Keeps one combined-stream connection (and its replacements) delivering frames."""

    def __init__(
        self,
        name: str,
        base_url: str,
        streams: Sequence[str],
        on_frame: FrameHandler,
        *,
        watchdog_s: float = 10.0,
        max_age_s: float = 23.5 * 3600,
        handover_s: float = 5.0,
        open_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        if not streams:
            raise ValueError("a feed group needs at least one stream")
        if watchdog_s <= 0 or max_age_s <= 0 or handover_s <= 0:
            raise ValueError("watchdog_s, max_age_s and handover_s must be positive")
        self.name = name
        self.streams = list(streams)
        self.url, self._subscribe = combined_url(base_url, self.streams)
        self.on_frame = on_frame
        self.watchdog_s = watchdog_s
        self.max_age_s = max_age_s
        self.handover_s = handover_s
        self.open_timeout_s = open_timeout_s
        self.backoff = backoff or Backoff(base_s=0.25, cap_s=30.0)
        self.stats = FeedStats()
        self._wake = asyncio.Event()
        self._handover_reason: str | None = None
        self._current: _Conn | None = None
        self._replacement: _Conn | None = None
        self._opening: asyncio.Task[_Conn] | None = None
        self._replacement_backoff = Backoff(base_s=0.5, cap_s=30.0)
        self._replacement_not_before = 0.0

    @property
    def connected(self) -> bool:
        """True while a connection is delivering."""
        cur = self._current
        return cur is not None and cur.alive()

    def request_handover(self, reason: str) -> None:
        """Replace the connection make-before-break (on ``serverShutdown``, say)."""
        if reason == "server_shutdown":
            self.stats.server_shutdowns += 1
        if self._handover_reason is None:
            log.info("%s: %s: opening a replacement connection", self.name, reason)
            self._handover_reason = reason
        self._wake.set()

    # -- connection lifecycle ----------------------------------------------------------

    async def _open(self) -> _Conn:
        conn = _Conn(len(self.streams))

        def sink(frame: bytes, recv_ns: int) -> None:
            self._on_message(conn, frame, recv_ns)

        def sink_many(frames: list[bytes], recv_ns: int) -> None:
            self._on_messages(conn, frames, recv_ns)

        ws = await connect(
            self.url,
            open_timeout=self.open_timeout_s,
            ping_interval=None,  # the server pings; the watchdog covers a dead socket
            max_size=MAX_FRAME_BYTES,
            compression=None,
            close_timeout=2.0,
            # Messages go to sink as they arrive (cif.ingest.feed_connection). The library
            # documents this as a factory ("a wrapper or a subclass"); its type says class.
            create_connection=cast(
                "type[ClientConnection]",
                functools.partial(
                    FeedConnection, sink=sink, sink_many=sink_many, max_size=MAX_FRAME_BYTES
                ),
            ),
        )
        conn.ws = ws
        for i in range(0, len(self._subscribe), _SUBSCRIBE_CHUNK):
            if i:
                await asyncio.sleep(_SUBSCRIBE_PACE_S)
            chunk = self._subscribe[i : i + _SUBSCRIBE_CHUNK]
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": chunk, "id": i + 1}))
        conn.task = asyncio.create_task(self._read(conn), name=f"cif-feed-{self.name}-{conn.id}")
        self.stats.connects += 1
        log.info("%s: connection %d open (%d streams)", self.name, conn.id, len(self.streams))
        return conn

    async def _read(self, conn: _Conn) -> None:
        """Runs while the connection is open (its messages arrive in :meth:`_on_message`)."""
        ws = conn.ws
        assert ws is not None
        try:
            await ws.wait_closed()
            log.info("%s: connection %d closed: %s", self.name, conn.id, ws.protocol.close_exc)
        finally:
            self._wake.set()

    def _on_messages(self, conn: _Conn, frames: list[bytes], recv_ns: int) -> None:
        """The messages of one received chunk: :meth:`_on_message` on each, in one call."""
        if not conn.primary:
            for frame in frames:
                self._on_message(conn, frame, recv_ns)
            return
        conn.last_data = time.monotonic()
        if conn.first_data is None:
            conn.first_data = conn.last_data
            self.backoff.reset()
        on_frame = self.on_frame
        for frame in frames:
            self.stats.frames += 1
            try:
                on_frame(frame, recv_ns)
            except Exception:
                self._handler_failed(frame)

    def _on_message(self, conn: _Conn, frame: bytes, recv_ns: int) -> None:
        conn.last_data = time.monotonic()
        if conn.first_data is None:
            conn.first_data = conn.last_data
            self.backoff.reset()
        if conn.primary:
            self._deliver(frame, recv_ns)
            return
        conn.buffer.append((frame, recv_ns))
        if frame.startswith(_STREAM_PREFIX):
            end = frame.find(b'"', len(_STREAM_PREFIX))
            conn.seen.add(frame[len(_STREAM_PREFIX) : end])
        if len(conn.buffer) == 1 or conn.all_streams_seen():
            self._wake.set()

    def _deliver(self, frame: bytes, recv_ns: int) -> None:
        self.stats.frames += 1
        try:
            self.on_frame(frame, recv_ns)
        except Exception:
            self._handler_failed(frame)

    def _handler_failed(self, frame: bytes) -> None:
        # A bug in handling one frame must not take the feed down; it is loud instead.
        self.stats.handler_errors += 1
        log.exception("%s: frame handler failed on %r", self.name, frame[:200])

    async def _close(self, conn: _Conn | None) -> None:
        if conn is None:
            return
        conn.primary = False
        with contextlib.suppress(WebSocketException, OSError):
            if conn.ws is not None:
                await conn.ws.close()
        if conn.task is not None:
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.task

    def _promote(self, conn: _Conn) -> None:
        """Make ``conn`` the delivering connection, handing on what it buffered."""
        # No await in here: the reader cannot deliver a frame between drain and flag.
        while conn.buffer:
            self._deliver(*conn.buffer.popleft())
        conn.primary = True
        conn.seen.clear()
        self._current = conn

    # -- supervision -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver frames until ``stop`` is set."""
        stop_task = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                conn = await self._connect_with_backoff(stop, stop_task)
                if conn is None:
                    break
                self._promote(conn)
                await self._supervise(stop, stop_task)
        finally:
            stop_task.cancel()
            for task in (self._opening,):
                if task is not None and not task.done():
                    task.cancel()
            await self._close(self._replacement)
            await self._close(self._current)
            self._current = self._replacement = None

    async def _connect_with_backoff(
        self, stop: asyncio.Event, stop_task: asyncio.Task[bool]
    ) -> _Conn | None:
        while not stop.is_set():
            opening = asyncio.create_task(self._open())
            await asyncio.wait({opening, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                opening.cancel()
                with contextlib.suppress(BaseException):
                    await opening
                return None
            try:
                return opening.result()
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.stats.connect_failures += 1
                delay = self.backoff.next_delay()
                log.warning(
                    "%s: connect to %s failed (%s: %s): retry %d in %.2fs",
                    self.name,
                    self.url[:120],
                    type(exc).__name__,
                    exc,
                    self.backoff.attempt,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        return None

    async def _supervise(self, stop: asyncio.Event, stop_task: asyncio.Task[bool]) -> None:
        """Watch the current connection; return when it is gone without a replacement."""
        tick = min(1.0, self.watchdog_s / 4)
        while not stop.is_set():
            cur = self._current
            if cur is None:
                return
            now = time.monotonic()
            self._collect_opening()
            rep = self._replacement
            if not cur.alive():
                self.stats.disconnects += 1
                if rep is None and self._opening is not None:
                    # Closed during a handover: the replacement is on its way.
                    with contextlib.suppress(BaseException):
                        await self._opening
                    self._collect_opening()
                    rep = self._replacement
                if rep is not None and rep.alive():
                    self._finish_handover(rep)
                    await self._close(cur)
                    continue
                await self._close(cur)
                self._current = None
                self._handover_reason = None
                return
            if now - cur.last_data > self.watchdog_s:
                self.stats.watchdog_reconnects += 1
                log.warning(
                    "%s: no data on connection %d for %.1fs: reconnecting",
                    self.name,
                    cur.id,
                    now - cur.last_data,
                )
                await self._close(cur)
                self._current = None
                await self._close(self._replacement)
                self._replacement = None
                self._handover_reason = None
                return
            if self._handover_reason is None and now - cur.opened > self.max_age_s:
                self.request_handover("connection age limit")
            if (
                self._handover_reason is not None
                and rep is None
                and self._opening is None
                and now >= self._replacement_not_before
            ):
                self._opening = asyncio.create_task(self._open())
                self._opening.add_done_callback(lambda _t: self._wake.set())
            if rep is not None:
                if not rep.alive():
                    log.warning("%s: replacement connection %d died", self.name, rep.id)
                    self._replacement = None
                elif rep.first_data is not None and (
                    rep.all_streams_seen() or now - rep.first_data > self.handover_s
                ):
                    self._finish_handover(rep)
                    await self._close(cur)
                    continue
            self._wake.clear()
            wake = asyncio.create_task(self._wake.wait())
            await asyncio.wait({wake, stop_task}, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()

    def _collect_opening(self) -> None:
        task = self._opening
        if task is None or not task.done():
            return
        self._opening = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.stats.connect_failures += 1
            delay = self._replacement_backoff.next_delay()
            self._replacement_not_before = time.monotonic() + delay
            log.warning(
                "%s: replacement connect failed (%s): retry in %.2fs", self.name, exc, delay
            )
            return
        self._replacement_backoff.reset()
        self._replacement = task.result()

    def _finish_handover(self, rep: _Conn) -> None:
        old = self._current
        if old is not None:
            old.primary = False
        self.stats.handovers += 1
        log.info(
            "%s: handed over from connection %d to %d (%s; %d frames buffered)",
            self.name,
            old.id if old is not None else 0,
            rep.id,
            self._handover_reason,
            len(rep.buffer),
        )
        self._replacement = None
        self._handover_reason = None
        self._promote(rep)
