"""The feed's WebSocket connection: the server's data messages handed on as they arrive,
cut out of the received bytes in Rust.

``websockets`` parses every frame in Python (a generator per frame, ~12 µs of CPU each),
then queues it for a ``recv()`` call. At 5,000 frames/s that was ~6 % of a core on the
event loop. :class:`FeedConnection` is the library's own client connection with one
change: once the opening handshake is done, each chunk of received bytes is scanned by
:func:`cif._core.split_ws_frames`, and the payload of every plain data frame (FIN set, text
or binary, unmasked, no RSV bit, within ``max_size``) goes straight to ``sink(payload,
recv_time_ns)`` (or, all of a chunk's at once, to ``sink_many(payloads, recv_time_ns)``).
Every other frame (pings, pongs, the close frame, fragments, and whatever the library
would refuse) is handed to the library whole, in order, so it answers pings, runs the
closing handshake and fails the connection on a protocol error exactly as before.
Fragmented messages come back from it frame by frame and are joined here.

All frames of one chunk share its receive time (they arrived together). Bytes of an
incomplete frame wait for the next chunk. ``recv()`` is not used: the messages are not
queued anywhere, so there is nothing for a slow reader to fill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from cif._core import split_ws_frames

#: ``sink(payload, recv_time_ns)``: one data message, in arrival order.
MessageSink = Callable[[bytes, int], None]
#: ``sink_many(payloads, recv_time_ns)``: the data messages cut out of one chunk, in order.
MessagesSink = Callable[[list[bytes], int], None]

_HEADERS_END = b"\r\n\r\n"


class FeedConnection(ClientConnection):
    """A ``websockets`` client connection that hands data messages to ``sink`` (module
    doc). Made by ``websockets.asyncio.client.connect(..., create_connection=...)``."""

    def __init__(
        self,
        *args: Any,
        sink: MessageSink,
        max_size: int,
        sink_many: MessagesSink | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._sink = sink
        # The messages of a chunk in one call (the gateway's way: fewer calls per message);
        # the library's fragments still go to sink.
        self._sink_many = sink_many
        self._max_size = max_size
        self._opened = False  # the handshake response is behind us
        self._head_tail = b""  # the last bytes of the response so far (a split "\r\n\r\n")
        self._partial = b""  # an incomplete frame waiting for the rest of its bytes
        self._fragments: list[bytes] | None = None  # a fragmented message so far
        #: data messages handed on by the Rust scan, and by the library (fragments)
        self.split_messages = 0
        self.library_messages = 0

    def data_received(self, data: bytes) -> None:
        if not self._opened:
            data = self._after_handshake(data)
            if not data:
                return
        if self._partial:
            data = self._partial + data
            self._partial = b""
        if self.protocol.state is not State.OPEN:
            super().data_received(data)  # closing: the library's to finish
            return
        recv_ns = time.time_ns()
        sink, sink_many = self._sink, self._sink_many
        pos = 0
        while True:
            payloads, pos, special = split_ws_frames(
                data, pos, self._max_size, self._fragments is None
            )
            self.split_messages += len(payloads)
            if sink_many is not None:
                if payloads:
                    sink_many(payloads, recv_ns)
            else:
                for payload in payloads:
                    sink(payload, recv_ns)
            if not special:
                break
            end = pos + special
            super().data_received(data[pos:end])
            pos = end
            if self.protocol.state is not State.OPEN:
                if pos < len(data):
                    super().data_received(data[pos:])
                return
        if pos < len(data):
            self._partial = data[pos:]

    def _after_handshake(self, data: bytes) -> bytes:
        """Hand the library the handshake response; returns the bytes after it (frames)."""
        seen = self._head_tail + data
        at = seen.find(_HEADERS_END)
        if at < 0:
            self._head_tail = seen[-(len(_HEADERS_END) - 1) :]
            super().data_received(data)
            return b""
        end = at + len(_HEADERS_END) - len(self._head_tail)
        self._head_tail = b""
        self._opened = True
        super().data_received(data[:end])
        return data[end:]

    def process_event(self, event: Any) -> None:
        # Data frames the library parsed (fragments, or frames after the handshake's
        # chunk): join and hand on; everything else is the library's.
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self._library_frame(event)
            return
        super().process_event(event)

    def _library_frame(self, frame: Frame) -> None:
        data = bytes(frame.data)
        if frame.opcode is not Opcode.CONT:
            if frame.fin:
                self.library_messages += 1
                self._sink(data, time.time_ns())
                return
            self._fragments = [data]
            return
        if self._fragments is None:  # the library refuses this before it gets here
            return
        self._fragments.append(data)
        if frame.fin:
            message, self._fragments = b"".join(self._fragments), None
            self.library_messages += 1
            self._sink(message, time.time_ns())


__all__ = ["FeedConnection", "MessageSink", "MessagesSink"]
