"""A minimal Redis connection for streaming pre-encoded commands at full speed.

Why not redis-py: its per-reply ``read_response`` costs several microseconds of Python per
reply, more than Redis spends on an XADD. Here the caller hands over commands already
encoded as RESP (many per buffer), they are written as they are, and the replies are parsed
in bulk by ``hiredis.Reader`` as the bytes arrive (in the protocol's ``data_received``, no
reader task, no per-reply await). Only the count of replies and the error replies reach
Python code; a non-error reply is counted and dropped.

Commands on one connection are applied by Redis in the order sent, which is the ordering
guarantee the replay relies on (:mod:`cif.replay.republish`).

Backpressure: at most ``max_commands`` commands and ``max_bytes`` bytes whose replies have
not all arrived, so neither this process nor Redis's reply buffer grows with the log, and
the transport's own pause/resume is honoured.

The URL means what it means to redis-py (:mod:`cif.bus.redis_url`: TCP, TLS, Unix socket,
credentials, database). The handshake runs in :meth:`RawRedis.open`, so refused
credentials, or a password the server requires but the URL lacks, fail there (with
:class:`ConnectionError`, whose message never holds the password) rather than every command
after it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

from cif.bus.redis_url import handshake, open_connection
from cif.bus.stream_writer import pack_command

#: Default in-flight bounds: enough to keep Redis busy between two reads of ours, small
#: enough that Redis's reply buffer for the connection stays far below any client limit.
MAX_COMMANDS = 20_000
MAX_BYTES = 16 << 20
#: Longest wait for a reply (or for the socket to take more) before the connection is
#: given up: a stuck or paused server must end a replay with an error, not hang it.
REPLY_TIMEOUT_S = 60.0


class RawRedisError(Exception):
    """Redis answered a handshake or :meth:`RawRedis.call` with an error."""


class _Protocol(asyncio.Protocol):
    """Feeds every received byte to hiredis and tallies the replies as they complete."""

    def __init__(self, on_error: Callable[[str], None] | None) -> None:
        self._reader = hiredis.Reader()
        self._on_error = on_error
        self.transport: asyncio.Transport | None = None
        self.replies = 0
        #: replies of :meth:`RawRedis.call` go here instead of being tallied
        self.captured: list[Any] | None = None
        self.exc: BaseException | None = None
        self.writable = True
        #: set when replies arrive, writing resumes or the connection fails
        self.wake = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its API
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        n = 0
        captured = self.captured
        on_error = self._on_error
        try:
            reply = reader.gets()
            while reply is not False:
                n += 1
                if captured is not None:
                    captured.append(reply)
                elif isinstance(reply, hiredis.ReplyError) and on_error is not None:
                    on_error(str(reply))
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            # The stream cannot be resynchronised: fail everything in flight.
            self._fail(ConnectionError(f"redis protocol error: {exc}"))
            if self.transport is not None:
                self.transport.abort()
        if n:
            self.replies += n
            self.wake.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("redis closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self.exc is None:
            self.exc = exc
        self.wake.set()

    def pause_writing(self) -> None:
        self.writable = False

    def resume_writing(self) -> None:
        self.writable = True
        self.wake.set()


class RawRedis:
    """One connection for pipelined, pre-encoded commands (made by :meth:`open`); see the
    module docstring.

    ``on_error`` receives the message of every error reply to :meth:`send`'s commands
    (called from the event loop as replies arrive); other replies are only counted.
    """

    def __init__(
        self,
        protocol: _Protocol,
        *,
        max_commands: int = MAX_COMMANDS,
        max_bytes: int = MAX_BYTES,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
    ) -> None:
        if max_commands <= 0 or max_bytes <= 0 or not reply_timeout_s > 0:
            raise ValueError("max_commands, max_bytes and reply_timeout_s must be positive")
        self._p = protocol
        self._max_commands = max_commands
        self._max_bytes = max_bytes
        self._reply_timeout_s = reply_timeout_s
        self.sent = 0  # commands written
        # per write still unanswered: (reply count that completes it, its bytes)
        self._chunks: deque[tuple[int, int]] = deque()
        self._bytes_in_flight = 0

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        on_error: Callable[[str], None] | None = None,
        max_commands: int = MAX_COMMANDS,
        max_bytes: int = MAX_BYTES,
        timeout: float = 10.0,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
    ) -> RawRedis:
        """Connect to ``url``, authenticate and select its database (see the module
        docstring)."""
        protocol = _Protocol(on_error)
        opts = await open_connection(url, lambda: protocol, timeout)
        conn = cls(
            protocol,
            max_commands=max_commands,
            max_bytes=max_bytes,
            reply_timeout_s=reply_timeout_s,
        )
        step = ""
        try:
            for name, command in handshake(opts):
                step = name
                try:
                    await asyncio.wait_for(conn.call(*command), timeout)
                except RawRedisError as exc:
                    # NOPERM (a user without PING) is an answer from a server taking commands
                    if not (command == ("PING",) and str(exc).startswith("NOPERM")):
                        raise
        except RawRedisError as exc:
            conn.abort()
            # refused credentials or database: the connection is unusable, as if refused
            # (the message is Redis's error, never the command: that would hold the password)
            hint = " (the URL gives no password)" if str(exc).startswith("NOAUTH") else ""
            raise ConnectionError(f"redis refused {step}: {exc}{hint}") from exc
        except BaseException:
            conn.abort()
            raise
        # the counts are of the caller's commands: the handshake (all answered) is not in them
        conn.sent = protocol.replies = 0
        return conn

    @property
    def replies(self) -> int:
        """Replies received so far (to every command since :meth:`open` returned,
        :meth:`call`'s included)."""
        return self._p.replies

    @property
    def in_flight(self) -> int:
        """Commands sent whose reply has not arrived yet."""
        return self.sent - self._p.replies

    async def call(self, *args: bytes | str | int) -> Any:
        """Send one command after everything in flight and return its reply (an error
        reply raises :class:`RawRedisError`)."""
        await self.drain()
        p = self._p
        p.captured = []
        try:
            await self.send(pack_command(*args), 1)
            await self.drain()
            (reply,) = p.captured
        finally:
            p.captured = None
        if isinstance(reply, hiredis.ReplyError):
            raise RawRedisError(str(reply))
        return reply

    async def send(self, payload: bytes | bytearray | memoryview, n_commands: int) -> None:
        """Write ``n_commands`` complete RESP commands; first wait while the in-flight
        bounds (commands, bytes, the transport's buffer) leave no room for them, unless
        nothing is in flight (a payload larger than the bounds still goes)."""
        p = self._p
        size = len(payload)
        while True:
            self._check()
            self._retire()
            room = (
                self.in_flight + n_commands <= self._max_commands
                and self._bytes_in_flight + size <= self._max_bytes
            )
            if (room or not self._chunks) and p.writable:
                break
            await self._wait()
        assert p.transport is not None
        p.transport.write(payload)
        self.sent += n_commands
        self._chunks.append((self.sent, size))
        self._bytes_in_flight += size

    async def drain(self) -> None:
        """Wait until every command sent has its reply."""
        while self.in_flight > 0:
            self._check()
            await self._wait()
        self._retire()
        self._check()

    def abort(self) -> None:
        """Close at once, dropping anything in flight."""
        if self._p.transport is not None:
            self._p.transport.abort()

    async def close(self) -> None:
        """Close the connection (replies still in flight are not waited for)."""
        t = self._p.transport
        if t is None or t.is_closing():
            return
        t.close()
        # let connection_lost run, so the socket is released before the loop ends
        await asyncio.sleep(0)

    async def __aenter__(self) -> RawRedis:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                await self.drain()
            finally:
                await self.close()
        else:
            self.abort()

    def _retire(self) -> None:
        done = self._p.replies
        chunks = self._chunks
        while chunks and chunks[0][0] <= done:
            self._bytes_in_flight -= chunks.popleft()[1]

    async def _wait(self) -> None:
        # no await between the caller's check and the clear: nothing can be missed
        wake = self._p.wake
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), self._reply_timeout_s)
        except TimeoutError:
            self.abort()  # the replies still due would be misattributed on reuse
            raise TimeoutError(
                f"no reply from redis for {self._reply_timeout_s:g} s "
                f"({self.in_flight} commands in flight)"
            ) from None

    def _check(self) -> None:
        exc = self._p.exc
        if exc is not None:
            raise ConnectionError(f"redis connection lost: {exc}") from exc
