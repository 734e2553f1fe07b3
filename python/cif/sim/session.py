"""The outgoing side of one WebSocket connection: its backlog, writer task and timed faults.

Market data is queued by the hub and written by a dedicated task in batches: every frame
of a batch is encoded by the ``websockets`` protocol object (so framing and connection
state stay the library's) and the batch goes to the socket in one write, followed by the
library's own flow control (``drain``). One write per batch instead of one per frame is
what makes tens of thousands of frames per second affordable in Python.

Replies to client requests go through a separate, higher-priority queue, so they are not
stuck behind a market-data backlog.

A session whose backlog grows beyond ``max_backlog`` messages is a slow consumer; as
Binance does, it is disconnected rather than allowed to exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from cif.sim.faults import FaultConfig, FaultLog

log = logging.getLogger("cif.sim.session")

_BATCH = 2048

#: the event type field of a trade message, raw or wrapped in a combined-stream envelope.
_TRADE_MARK = b'"e":"trade"'

#: strong references to fire-and-forget close tasks (the loop keeps only weak ones).
_background: set[asyncio.Task[None]] = set()


class Session:
    """State of one client connection as the data path sees it."""

    def __init__(
        self,
        conn: ServerConnection,
        session_id: int,
        combined: bool,
        faults: FaultConfig,
        fault_log: FaultLog,
        max_backlog: int = 500_000,
        high_water: int = 20_000,
    ) -> None:
        self.conn = conn
        self.id = session_id
        self.combined = combined
        self.faults = faults
        self.fault_log = fault_log
        self.max_backlog = max_backlog
        self.high_water = high_water
        #: subscribed streams, in subscription order (a dict as an ordered set).
        self.streams: dict[str, None] = {}
        self.sent = 0
        self.pongs = 0
        self.pong_event = asyncio.Event()
        self.stalled = False
        self.closed = False
        #: set while the session is being closed: market data is dropped, as frames in
        #: flight are when a real connection goes down; the event fires on a lost trade.
        self.losing = False
        self.lost_trade = asyncio.Event()
        self._data: deque[bytes] = deque()
        self._control: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._n_data = 0
        self._incoming: deque[float] = deque()

    def __repr__(self) -> str:
        return f"Session(id={self.id}, streams={len(self.streams)})"

    # -- queueing -----------------------------------------------------------------------

    def push(self, messages: list[bytes]) -> None:
        """Queue market-data frames (already in this session's raw/combined form)."""
        if self.closed:
            return
        if self.stalled:
            self.fault_log.record("stall_dropped", f"session {self.id}", len(messages))
            return
        if self.losing:
            self.fault_log.record("close_dropped", f"session {self.id}", len(messages))
            if any(_TRADE_MARK in m for m in messages):
                self.lost_trade.set()
            return
        every = self.faults.malformed_every
        if every is None:
            self._data.extend(messages)
        else:
            for m in messages:
                self._n_data += 1
                if self._n_data % every == 0:
                    self._data.append(m[: max(1, len(m) // 2)])
                    self.fault_log.record("malformed_frame", f"session {self.id}")
                self._data.append(m)
        backlog = len(self._data)
        if backlog > self.high_water:
            self._room.clear()
        if backlog > self.max_backlog:
            self.fault_log.record("slow_consumer_disconnect", f"session {self.id}")
            log.warning("session %d: backlog %d, disconnecting slow consumer", self.id, backlog)
            self._data.clear()
            self.closed = True
            self._room.set()
            task = asyncio.get_running_loop().create_task(
                self.conn.close(1008, "Slow consumer: too many pending messages")
            )
            _background.add(task)
            task.add_done_callback(_background.discard)
        self._wakeup.set()

    def push_control(self, message: bytes) -> None:
        """Queue a reply to a client request (sent before pending market data)."""
        self._control.append(message)
        self._wakeup.set()

    async def wait_for_room(self) -> None:
        if not self.closed and not self.stalled:
            await self._room.wait()

    def allow_incoming(self, limit: int, per_s: float = 1.0) -> bool:
        """Binance's incoming-message limit: at most ``limit`` messages per ``per_s``."""
        now = time.monotonic()
        window = self._incoming
        window.append(now)
        while window and window[0] <= now - per_s:
            window.popleft()
        return len(window) <= limit

    # -- writing ------------------------------------------------------------------------

    async def run_writer(self) -> None:
        """Write queued frames until the connection closes."""
        conn = self.conn
        proto = conn.protocol
        data = self._data
        control = self._control
        try:
            while True:
                if not data and not control:
                    self._room.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if proto.state is not State.OPEN:
                    break
                while control:
                    proto.send_text(control.popleft())
                if self.stalled:
                    data.clear()
                n = min(len(data), _BATCH)
                for _ in range(n):
                    proto.send_text(data.popleft())
                self.sent += n
                self._flush()
                if len(data) <= self.high_water // 2:
                    self._room.set()
                await conn.drain()
        except (ConnectionError, RuntimeError) as exc:
            log.info("session %d: writer stopped: %s", self.id, exc)
        finally:
            self.closed = True
            self._data.clear()
            self._room.set()

    def _flush(self) -> None:
        """Write everything the protocol has framed as one socket write."""
        chunks = self.conn.protocol.data_to_send()
        payload = b"".join(chunks)
        if payload:
            self.conn.transport.write(payload)
        if any(not c for c in chunks):
            # The protocol asks for end-of-stream (it only does so when closing).
            with contextlib.suppress(Exception):
                self.conn.transport.write_eof()

    def send_now(self, message: bytes) -> None:
        """Send a frame immediately, ahead of anything queued (connection events)."""
        if self.conn.protocol.state is State.OPEN:
            self.conn.protocol.send_text(message)
            self._flush()

    def stop(self) -> None:
        self.closed = True
        self._data.clear()
        self._room.set()
        self._wakeup.set()
