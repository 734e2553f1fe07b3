"""The feed's WebSocket connection (``cif.ingest.feed_connection``) against a real
``websockets`` server on 127.0.0.1: every message arrives, whole and in order, whatever
the frames and however the bytes are cut; pings are answered, fragments joined, and what
the protocol forbids still fails the connection with the right close code."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from cif.ingest.feed_connection import FeedConnection

GUARD_S = 10.0

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def feed(
    handler: Handler, max_size: int = 1 << 20, batches: list[int] | None = None
) -> AsyncIterator[tuple[FeedConnection, list[bytes]]]:
    """A FeedConnection to a server running ``handler``, and the messages it hands on;
    with ``batches``, a chunk's messages come in one call (their counts noted there)."""
    got: list[bytes] = []

    def sink(message: bytes, recv_ns: int) -> None:
        assert recv_ns > 0
        got.append(message)

    def sink_many(messages: list[bytes], recv_ns: int) -> None:
        assert recv_ns > 0
        assert batches is not None
        assert messages
        batches.append(len(messages))
        got.extend(messages)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        factory = functools.partial(
            FeedConnection,
            sink=sink,
            max_size=max_size,
            sink_many=None if batches is None else sink_many,
        )
        ws = await connect(
            f"ws://127.0.0.1:{port}",
            compression=None,
            ping_interval=None,
            max_size=max_size,
            open_timeout=GUARD_S,
            create_connection=cast("type[ClientConnection]", factory),
        )
        assert isinstance(ws, FeedConnection)
        try:
            yield ws, got
        finally:
            await ws.close()


def wire(*frames: Frame) -> bytes:
    """Frames as a server sends them (unmasked)."""
    return b"".join(f.serialize(mask=False, extensions=[]) for f in frames)


def messages(n: int, rng: random.Random) -> list[bytes]:
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000]
    out = [b'{"stream":"x","i":%d}' % i for i in range(n)]
    for size in sizes:
        out.insert(rng.randrange(len(out)), bytes(rng.randrange(97, 123) for _ in range(size)))
    return out


@pytest.mark.parametrize("many", [False, True])
def test_messages_pings_fragments_and_the_close_go_through_a_real_server(many: bool) -> None:
    """(``many``: each chunk's messages in one call, as the gateway takes them.)"""
    rng = random.Random(1)
    batches: list[int] | None = [] if many else None
    sent = messages(2000, rng)
    fragmented = [b"part one,", b" part two,", b" end"]
    pongs: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        for i, message in enumerate(sent):
            await ws.send(message.decode() if i % 3 else message)  # text and binary
            if i == 1000:
                await ws.send(fragmented)  # one message in three frames
                pong = await ws.ping(b"are you there")
                pongs.append(await asyncio.wait_for(pong, GUARD_S))
        await ws.close(1000, "done")

    async def run() -> tuple[list[bytes], FeedConnection]:
        async with feed(handler, batches=batches) as (ws, got):
            await asyncio.wait_for(ws.wait_closed(), GUARD_S)
            return got, ws

    got, ws = asyncio.run(run())
    want = [*sent[:1001], b"".join(fragmented), *sent[1001:]]
    assert got == want
    if batches is not None:
        assert sum(batches) == len(sent)  # the fragmented one came through sink
        assert len(batches) < len(sent)  # chunks held several messages
    assert len(pongs) == 1  # the library answered the ping
    assert ws.close_code == 1000
    assert ws.close_reason == "done"
    assert ws.library_messages == 1  # the fragmented one; the rest split in Rust
    assert ws.split_messages == len(sent)


def test_every_cut_of_the_received_bytes_gives_the_same_messages() -> None:
    """Bytes handed to ``data_received`` of a live connection in pieces cut everywhere (as
    TCP may cut them): the same messages, in order, and the pong goes out."""
    pings: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    frames = [
        Frame(Opcode.TEXT, b'{"a":1}'),
        Frame(Opcode.BINARY, b"\x00\x01" * 100),  # a 16-bit length
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.TEXT, b"frag-", fin=False),
        Frame(Opcode.PONG, b"unsolicited"),  # control frames may sit inside a message
        Frame(Opcode.CONT, b"ment", fin=True),
        Frame(Opcode.TEXT, b"x" * 70_000),  # a 64-bit length
        Frame(Opcode.TEXT, b""),
    ]
    stream = wire(*frames)
    want = [b'{"a":1}', b"\x00\x01" * 100, b"frag-ment", b"x" * 70_000, b""]

    async def run() -> None:
        async with feed(handler) as (ws, got):
            original = ws.protocol.send_frame

            def send_frame(frame: Frame) -> None:
                if frame.opcode is Opcode.PONG:
                    pings.append(bytes(frame.data))
                original(frame)

            ws.protocol.send_frame = send_frame  # type: ignore[method-assign]
            rng = random.Random(7)
            small = len(wire(*frames[:6]))  # every single cut over the small frames
            cuts: list[list[int]] = [[c] for c in range(1, small + 3)]
            cuts += [sorted(rng.sample(range(1, len(stream)), k)) for k in (2, 5, 40, 300)]
            for cut in cuts:
                got.clear()
                for a, b in zip([0, *cut], [*cut, len(stream)], strict=True):
                    ws.data_received(stream[a:b])
                assert got == want, cut
                assert ws._partial == b""
                assert ws._fragments is None
            assert ws.protocol.state is State.OPEN
            assert pings == [b"p"] * len(cuts)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (wire(Frame(Opcode.TEXT, b"y" * 5000)), 1009),  # over max_size
        (Frame(Opcode.TEXT, b"masked").serialize(mask=True, extensions=[]), 1002),
    ],
    ids=["too-large", "masked"],
)
def test_a_frame_the_protocol_forbids_fails_the_connection(bad: bytes, code: int) -> None:
    """What came before is handed on; the library fails the connection with the close code
    of the error, and nothing after it is handed on."""

    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async def run() -> tuple[list[bytes], Any]:
        async with feed(handler, max_size=1000) as (ws, got):
            good = wire(Frame(Opcode.TEXT, b"ok"))
            ws.data_received(good + bad + good)
            await asyncio.wait_for(ws.wait_closed(), GUARD_S)
            return got, ws.protocol.close_sent

    got, close_sent = asyncio.run(run())
    assert got == [b"ok"]
    assert close_sent is not None
    assert close_sent.code == code
