"""A dedicated Redis connection for one hot loop: pre-packed commands in, hiredis replies out.

Why not redis-py here: one asyncio round trip through redis-py costs ~160 µs of client CPU
on this project's machine (taking a pooled connection, its locks, a timeout scope per
read, the reply callbacks), and the feature processor and the forecaster make a few per
batch and symbol: hundreds per second, a sixth of a core at 5,000 ticks/s, on the event
loop every other stage waits for. The same round trip on its own protocol costs ~60 µs: the
bytes go out as they are, and ``hiredis.Reader`` parses the replies as they arrive (in
``data_received``: no reader task, one future per round trip).

What a caller can rely on:

- Replies come back in the order the commands were sent. Round trips may overlap (each
  waits for its own replies, first in first out).
- An error reply is redis-py's :class:`~redis.exceptions.ResponseError` (returned in
  :meth:`RedisLink.round_trip`'s list, raised by :meth:`RedisLink.command`), so callers
  treat both clients' errors alike (``LEASE_LOST``, ``BUSYGROUP``).
- A connection failure fails every round trip in flight with redis-py's
  :class:`~redis.exceptions.ConnectionError`; no reply within ``reply_timeout_s``, with its
  :class:`~redis.exceptions.TimeoutError` (and the connection is dropped: a late reply
  would be taken for the next command's). The next call connects again.
- A caller cancelled while it waits does not desynchronise the link: its replies are read
  and dropped when they come.
- The URL means what it means to redis-py (:mod:`cif.bus.redis_url`); errors never show
  the password.

The link is lazy: it connects on its first call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cif.bus.redis_url import handshake, open_connection
from cif.bus.stream_writer import pack_command

#: Defaults as the services' redis-py clients have them (``socket_connect_timeout`` and
#: ``socket_timeout``): a blocking read must ask for less than the reply timeout.
CONNECT_TIMEOUT_S = 2.0
REPLY_TIMEOUT_S = 5.0


class _Call:
    """A round trip waiting for its ``n`` replies."""

    __slots__ = ("future", "n", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], n: int) -> None:
        self.future = future
        self.n = n
        self.replies: list[Any] = []


class _LinkProtocol(asyncio.Protocol):
    def __init__(self, decode: bool) -> None:
        # Kept: asyncio.get_running_loop() costs a getpid() system call per call (CPython
        # checks for a fork), and a round trip needs the loop for its future and timer.
        self.loop = asyncio.get_running_loop()
        self.reader = (
            # text replies, as redis-py's decode_responses gives them (bad UTF-8 replaced)
            hiredis.Reader(replyError=ResponseError, encoding="utf-8", errors="replace")
            if decode
            else hiredis.Reader(replyError=ResponseError)
        )
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[_Call] = deque()
        #: why the connection is unusable (set once)
        self.failure: BaseException | None = None
        #: which of the link's connections this is (1, 2, ...): set once it is usable
        self.number = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its API
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        try:
            reply = reader.gets()
            while reply is not False:
                call = waiting[0]
                call.replies.append(reply)
                if len(call.replies) == call.n:
                    waiting.popleft()
                    if not call.future.done():  # done: its caller was cancelled
                        call.future.set_result(call.replies)
                reply = reader.gets()
        except (hiredis.ProtocolError, IndexError) as exc:
            # Garbage, or a reply nobody asked for: the stream cannot be trusted any more.
            self.fail(RedisConnectionError(f"redis protocol error: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"redis connection lost: {exc or 'closed by the server'}"))

    def fail(self, exc: BaseException) -> None:
        """Make the connection unusable: every round trip in flight raises ``exc``."""
        if self.failure is None:
            self.failure = exc
        while self.waiting:
            call = self.waiting.popleft()
            if not call.future.done():
                call.future.set_exception(exc)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class RedisLink:
    """One connection to the server of ``url`` (see the module docstring); ``decode``:
    replies as ``str`` (UTF-8), not ``bytes``."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        decode: bool = False,
    ) -> None:
        if not (connect_timeout_s > 0 and reply_timeout_s > 0):
            raise ValueError("connect_timeout_s and reply_timeout_s must be positive")
        self._url = url
        self.connect_timeout_s = connect_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.decode = decode
        self._p: _LinkProtocol | None = None
        self._connecting = asyncio.Lock()
        #: connections opened so far (the first one included)
        self.connects = 0

    @property
    def connected(self) -> bool:
        p = self._p
        return p is not None and p.failure is None

    @property
    def connection(self) -> int | None:
        """The number of the open connection (1 for the first, ...), ``None`` if there is
        none: a caller that keeps state on a connection (``WATCH``) tells them apart."""
        p = self._p
        return p.number if p is not None and p.failure is None else None

    async def round_trip(
        self, payload: bytes, n_replies: int, *, connection: int | None = None
    ) -> list[Any]:
        """Send ``payload`` (``n_replies`` complete RESP commands, see
        :func:`~cif.bus.stream_writer.pack_command`) and return their replies, error
        replies as :class:`~redis.exceptions.ResponseError` in their place.

        ``connection``: send only on that connection (see :attr:`connection`); when it is
        gone, raise :class:`~redis.exceptions.ConnectionError` instead of connecting again.
        """
        return (await self.numbered_round_trip(payload, n_replies, connection=connection))[1]

    async def numbered_round_trip(
        self, payload: bytes, n_replies: int, *, connection: int | None = None
    ) -> tuple[int, list[Any]]:
        """:meth:`round_trip`, and the number of the connection it went over."""
        p = self._p
        if connection is not None:
            if p is None or p.failure is not None or p.number != connection:
                raise RedisConnectionError(f"redis connection {connection} of the link is gone")
        elif p is None or p.failure is not None:
            p = await self._connect()
        return p.number, await self._send(p, payload, n_replies)

    async def command(self, *args: bytes | str | int) -> Any:
        """One command's reply; an error reply raises it."""
        return await self.call(pack_command(*args))

    async def call(self, packed: bytes) -> Any:
        """:meth:`command` of one command already packed (a loop's fixed read)."""
        (reply,) = await self.round_trip(packed, 1)
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def close(self) -> None:
        """Close the connection; round trips in flight fail. A later call reconnects."""
        if self.abort():
            # let connection_lost run, so the socket is released before the loop ends
            await asyncio.sleep(0)

    def abort(self) -> bool:
        """:meth:`close` without waiting (for a ``finally`` of a cancelled task); whether
        there was a connection."""
        p, self._p = self._p, None
        if p is None:
            return False
        p.fail(RedisConnectionError("the link was closed"))
        return True

    async def _send(self, p: _LinkProtocol, payload: bytes, n_replies: int) -> list[Any]:
        loop = p.loop
        future: asyncio.Future[list[Any]] = loop.create_future()
        p.waiting.append(_Call(future, n_replies))
        assert p.transport is not None
        p.transport.write(payload)
        timer = loop.call_later(self.reply_timeout_s, self._time_out, p, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _time_out(self, p: _LinkProtocol, future: asyncio.Future[list[Any]]) -> None:
        if not future.done():
            p.fail(RedisTimeoutError(f"no reply from redis within {self.reply_timeout_s:g} s"))

    async def _connect(self) -> _LinkProtocol:
        async with self._connecting:
            p = self._p
            if p is not None and p.failure is None:
                return p  # another caller connected meanwhile
            p = _LinkProtocol(self.decode)
            try:
                opts = await open_connection(self._url, lambda: p, self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to redis: {exc!r}") from exc
            step = ""
            try:
                for name, cmd in handshake(opts):
                    step = name
                    (reply,) = await self._send(p, pack_command(*cmd), 1)
                    # NOPERM (a user without PING) is an answer from a server taking commands
                    if isinstance(reply, ResponseError) and not (
                        cmd == ("PING",) and str(reply).startswith("NOPERM")
                    ):
                        raise RedisConnectionError(f"redis refused {step}: {reply}")
            except BaseException:
                p.fail(RedisConnectionError("handshake failed"))
                raise
            self._p = p
            self.connects += 1
            p.number = self.connects
            return p


def check_block_ms(block_ms: int, reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
    """A blocking read's ``BLOCK`` over a link must end before the link's reply timeout
    (or every idle read would drop the connection): ``ValueError`` otherwise."""
    if block_ms >= reply_timeout_s * 1000:
        raise ValueError(
            f"block_ms must be below the redis reply timeout ({reply_timeout_s * 1000:g} ms), "
            f"got {block_ms}"
        )


def wait_command(block_ms: int, keys: Sequence[str], after: Sequence[Any]) -> bytes:
    """A plain ``XREAD COUNT 1 BLOCK block_ms`` on ``keys``: returns once any has an entry
    after its ID in ``after`` (or the block time passed). It changes nothing in a consumer
    group, so it needs no fence, and a fenced group read can follow it in the same round
    trip (a blocking read cannot run inside the transaction that fences it)."""
    return pack_command(b"XREAD", b"COUNT", 1, b"BLOCK", block_ms, b"STREAMS", *keys, *after)


def stream_entries(raw: Sequence[Any] | None) -> list[tuple[Any, dict[Any, Any]]]:
    """The entries of one stream in a raw ``XREAD``/``XREADGROUP``/``XRANGE`` reply, as
    redis-py returns them: ``(id, {field: value})`` (``bytes``, or ``str`` from a decoding
    link); an entry trimmed while pending (no fields) has ``{}``."""
    return [(i, dict(zip(f[::2], f[1::2], strict=True)) if f else {}) for i, f in raw or ()]


__all__ = [
    "CONNECT_TIMEOUT_S",
    "REPLY_TIMEOUT_S",
    "RedisLink",
    "check_block_ms",
    "stream_entries",
    "wait_command",
]
