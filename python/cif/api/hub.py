"""WebSocket fan-out: one reader per Redis stream, shared by every client.

Each subscribed stream (``forecasts:{btcusdt}``, ...) has exactly one
:class:`~cif.api.streams.StreamTailer`, started by its first subscriber and stopped when the
last one leaves. The tailer decodes each entry once into the JSON text of the push message
and offers it to every subscriber's bounded queue without waiting. A client whose queue is
full is too slow: it is dropped (counted, logged, removed from every stream and closed with
code 1008 and a reason), so it never delays the others. Each client has one sender task
that takes messages off its queue and writes them; ``sent_ns`` (wall clock just before the
write) is spliced into data messages there.

Client protocol (JSON text frames):

- ``{"op": "subscribe", "symbols": [...], "channels": ["forecasts", "features", "trades"]}``
  (``channels`` defaults to ``["forecasts"]``) -> ``{"op": "subscribed", ...}``; every entry
  written after that reply is pushed as ``{"channel", "symbol", "data": {..., "sent_ns"}}``,
  in stream order.
- ``{"op": "unsubscribe", "symbols": [...], "channels": [...]}`` -> ``{"op": "unsubscribed"}``.
- ``/ws?batch=true``: the records queued for the client when its sender takes them go out
  as one JSON array frame ``[{"channel", "symbol", "data"}, ...]`` (in order; replies stay
  single objects, in their place): one frame per burst instead of one per record.
- Anything else gets ``{"error": "..."}`` and the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from fastapi.websockets import WebSocket, WebSocketState
from pydantic import ValidationError
from redis.exceptions import RedisError

from cif._core import forecast_records_json
from cif.api.models import WsCommand
from cif.api.streams import (
    CHANNELS,
    Channel,
    MalformedEntry,
    StreamTailer,
    decode_entry,
    entry_of,
    forecast_json,
    last_id,
    stream_key,
)

log = logging.getLogger(__name__)

#: Close code of a client dropped for being too slow (RFC 6455: policy violation).
SLOW_CLIENT_CLOSE_CODE = 1008
#: Close code when the server shuts down (RFC 6455: going away).
GOING_AWAY_CLOSE_CODE = 1001

#: A queued message: (JSON text, whether ``sent_ns`` is spliced in before sending).
Outgoing = tuple[str, bool]


def _ignore(_entries: list[Any]) -> None:
    pass


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def stamp(text: str, sent_ns: int) -> str:
    """A data message ``{"channel":…,"data":{…}}`` with ``"sent_ns"`` added to ``data``
    (both objects end the text, so the splice goes before the last two braces)."""
    return f'{text[:-2]},"sent_ns":{sent_ns}}}}}'


class Subscriber:
    """One WebSocket client: its subscriptions and bounded outgoing queue."""

    def __init__(self, name: str, queue_size: int, batch: bool = False) -> None:
        self.name = name
        #: send the records queued together as one JSON array frame
        self.batch = batch
        self.queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=queue_size)
        self.subscriptions: set[tuple[Channel, str]] = set()
        self.drop_reason: str | None = None
        self.dropped = asyncio.Event()
        self.sent = 0

    def offer(self, item: Outgoing) -> bool:
        """Queue ``item`` without waiting; ``False`` when the queue is full."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True


class _Stream:
    """A tailed stream and its subscribers (insertion-ordered, so fan-out order is stable)."""

    def __init__(self, channel: Channel, symbol: str, tailer: StreamTailer) -> None:
        self.channel = channel
        self.symbol = symbol
        self.tailer = tailer
        self.subscribers: dict[Subscriber, None] = {}


@dataclass(frozen=True, slots=True)
class HubStats:
    clients: int
    dropped_slow: int
    streams_tailed: int
    malformed_entries: int


class Hub:
    """The shared stream readers and the connected clients."""

    def __init__(
        self,
        client: aioredis.Redis,
        redis_url: str,
        namespace: str = "",
        *,
        queue_size: int = 1024,
        read_count: int = 100,
        block_ms: int = 1000,
        close_timeout_s: float = 5.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.client = client
        #: where the stream readers connect (each on a connection of its own)
        self.redis_url = redis_url
        self.namespace = namespace
        self.queue_size = queue_size
        # A batch never exceeds a quarter of a queue, so a client that keeps up is never
        # dropped because one XREAD returned many entries at once.
        self.read_count = max(1, min(read_count, queue_size // 4))
        self.block_ms = block_ms
        self.close_timeout_s = close_timeout_s
        self.clients: set[Subscriber] = set()
        self.dropped_slow = 0
        self.malformed_entries = 0
        self._streams: dict[tuple[Channel, str], _Stream] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def stats(self) -> HubStats:
        return HubStats(
            clients=len(self.clients),
            dropped_slow=self.dropped_slow,
            streams_tailed=len(self._streams),
            malformed_entries=self.malformed_entries,
        )

    # -- clients -------------------------------------------------------------------------------

    def register(self, name: str, batch: bool = False) -> Subscriber:
        sub = Subscriber(name, self.queue_size, batch)
        self.clients.add(sub)
        return sub

    def unregister(self, sub: Subscriber) -> None:
        self.clients.discard(sub)
        for channel, symbol in list(sub.subscriptions):
            self.unsubscribe(sub, channel, symbol)

    def send_control(self, sub: Subscriber, payload: dict[str, Any]) -> None:
        """Queue a reply (ordered with the data messages); a full queue drops the client."""
        if sub.drop_reason is None and not sub.offer((_dumps(payload), False)):
            self.drop(sub)

    def drop(self, sub: Subscriber) -> None:
        """Drop a client whose queue is full: never waits, never touches its socket."""
        if sub.drop_reason is not None:
            return
        sub.drop_reason = f"too slow: {self.queue_size} messages queued and not read"
        self.dropped_slow += 1
        log.warning(
            "dropping slow WebSocket client %s: %s (%d sent; %d dropped so far)",
            sub.name,
            sub.drop_reason,
            sub.sent,
            self.dropped_slow,
        )
        self.unregister(sub)
        sub.dropped.set()

    # -- subscriptions -------------------------------------------------------------------------

    async def subscribe(self, sub: Subscriber, channel: Channel, symbol: str) -> None:
        """Add ``sub`` to the stream; entries written after this returns reach it."""
        if (channel, symbol) in sub.subscriptions:
            return
        async with self._lock:
            if self._closed or sub.drop_reason is not None:
                return
            stream = self._streams.get((channel, symbol))
            if stream is None:
                key = stream_key(channel, symbol, self.namespace)
                start = await last_id(self.client, key)
                if sub.drop_reason is not None:
                    return
                stream = self._start_stream(channel, symbol, key, start)
            stream.subscribers[sub] = None
            sub.subscriptions.add((channel, symbol))

    def unsubscribe(self, sub: Subscriber, channel: Channel, symbol: str) -> None:
        sub.subscriptions.discard((channel, symbol))
        stream = self._streams.get((channel, symbol))
        if stream is None:
            return
        stream.subscribers.pop(sub, None)
        if not stream.subscribers:
            del self._streams[(channel, symbol)]
            stream.tailer.stop()

    def _start_stream(self, channel: Channel, symbol: str, key: str, start: str) -> _Stream:
        # Forecasts are rendered from the reply's bytes in Rust (forecast_records_json):
        # decoding every field to str first cost ~30 % more (reading and rendering a batch
        # of 11: 31 -> 22 us).
        tailer = StreamTailer(
            self.redis_url,
            key,
            start,
            _ignore,
            count=self.read_count,
            block_ms=self.block_ms,
            decode=channel != "forecasts",
        )
        stream = _Stream(channel, symbol, tailer)
        tailer.on_entries = functools.partial(self._dispatch, stream)
        self._streams[(channel, symbol)] = stream
        tailer.start()
        return stream

    def _dispatch(self, stream: _Stream, entries: list[Any]) -> None:
        texts: list[str] = []
        fast = stream.channel == "forecasts"
        # the message around a record, as _dumps writes it: {"channel":…,"symbol":…,"data":{…}}
        head = _dumps({"channel": stream.channel, "symbol": stream.symbol, "data": 0})[:-2]
        # Every forecast's record in one Rust call (the Python build was most of the API's
        # cost per batch); what it declines takes forecast_json, then the general path.
        records = forecast_records_json(entries) if fast else None
        for i, raw in enumerate(entries):
            entry = None
            if records is not None:
                body = records[i]
                if body is None:
                    entry = entry_of(raw)
                    body = forecast_json(entry[1])
                if body is not None:
                    texts.append(f"{head}{body}}}")
                    continue
            try:
                data = decode_entry(stream.channel, stream.symbol, entry or entry_of(raw))
                texts.append(
                    _dumps({"channel": stream.channel, "symbol": stream.symbol, "data": data})
                )
            except (MalformedEntry, ValueError) as exc:
                self.malformed_entries += 1
                if self.malformed_entries <= 5 or self.malformed_entries % 1000 == 0:
                    log.warning(
                        "skipping malformed entry of %s (%d so far): %s",
                        stream.tailer.key,
                        self.malformed_entries,
                        exc,
                    )
        for sub in list(stream.subscribers):
            for text in texts:
                if not sub.offer((text, True)):
                    self.drop(sub)
                    break

    async def close(self) -> None:
        """Stop every reader (server shutdown)."""
        async with self._lock:
            self._closed = True
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.tailer.stop()
        for stream in streams:
            await stream.tailer.wait_stopped()

    # -- one connection ------------------------------------------------------------------------

    async def serve(
        self, websocket: WebSocket, symbols: Sequence[str], *, batch: bool = False
    ) -> None:
        """Run one accepted-to-closed WebSocket connection (``batch``: records in arrays)."""
        await websocket.accept()
        client = websocket.client
        name = f"{client.host}:{client.port}" if client is not None else "?"
        sub = self.register(name, batch)
        sender = asyncio.create_task(self._send_loop(websocket, sub), name=f"ws send {name}")
        receiver = asyncio.create_task(
            self._receive_loop(websocket, sub, symbols), name=f"ws receive {name}"
        )
        dropped = asyncio.create_task(sub.dropped.wait(), name=f"ws drop {name}")
        tasks = {sender, receiver, dropped}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.unregister(sub)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if sub.drop_reason is not None:
            await self._close(websocket, SLOW_CLIENT_CLOSE_CODE, sub.drop_reason)
        elif self._closed:
            await self._close(websocket, GOING_AWAY_CLOSE_CODE, "server shutting down")

    async def _close(self, websocket: WebSocket, code: int, reason: str) -> None:
        """Close with ``code``; a client that never reads cannot take the close frame, so
        this gives up after ``close_timeout_s`` (the transport is closed either way)."""
        if websocket.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code, reason[:120]), self.close_timeout_s)

    async def _send_loop(self, websocket: WebSocket, sub: Subscriber) -> None:
        queue = sub.queue
        while True:
            text, is_data = await queue.get()
            if not (is_data and sub.batch):
                if is_data:
                    text = stamp(text, time.time_ns())
                await websocket.send_text(text)
                sub.sent += 1
                continue
            # Everything queued goes out in one frame: each frame costs the server (and the
            # client) ~20 µs whatever its size, and at thousands of records a second the
            # frames, not the records, were the WebSocket's cost.
            now = time.time_ns()
            batch = [stamp(text, now)]
            control: str | None = None
            while queue.qsize():
                text, is_data = queue.get_nowait()
                if not is_data:  # a reply keeps its place after the records before it
                    control = text
                    break
                batch.append(stamp(text, now))
            await websocket.send_text(f"[{','.join(batch)}]")
            sub.sent += len(batch)
            if control is not None:
                await websocket.send_text(control)
                sub.sent += 1

    async def _receive_loop(
        self, websocket: WebSocket, sub: Subscriber, symbols: Sequence[str]
    ) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.send_control(sub, {"error": "send JSON text frames, not binary frames"})
                continue
            await self._handle(sub, text, symbols)

    async def _handle(self, sub: Subscriber, text: str, symbols: Sequence[str]) -> None:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            self.send_control(sub, {"error": f"invalid JSON: {exc}"})
            return
        try:
            command = WsCommand.model_validate(raw)
        except ValidationError as exc:
            self.send_control(sub, {"error": _describe(exc)})
            return
        wanted = [s.strip().lower() for s in command.symbols]
        unknown = [s for s, w in zip(command.symbols, wanted, strict=True) if w not in symbols]
        if unknown:
            self.send_control(
                sub,
                {
                    "error": f"unknown symbol(s): {', '.join(unknown)}; "
                    f"known symbols: {', '.join(symbols)}",
                    "known_symbols": list(symbols),
                },
            )
            return
        wanted = list(dict.fromkeys(wanted))
        channels = list(dict.fromkeys(command.channels))
        if command.op == "unsubscribe":
            for channel in channels:
                for symbol in wanted:
                    self.unsubscribe(sub, channel, symbol)
            self.send_control(sub, {"op": "unsubscribed", "symbols": wanted, "channels": channels})
            return
        added: list[tuple[Channel, str]] = []
        try:
            for channel in channels:
                for symbol in wanted:
                    if (channel, symbol) not in sub.subscriptions:
                        await self.subscribe(sub, channel, symbol)
                        added.append((channel, symbol))
        except RedisError as exc:
            for channel, symbol in added:  # all or nothing
                self.unsubscribe(sub, channel, symbol)
            self.send_control(sub, {"error": f"Redis unavailable, not subscribed: {exc}"})
            return
        self.send_control(sub, {"op": "subscribed", "symbols": wanted, "channels": channels})


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return (
        "bad message ("
        + "; ".join(parts)
        + '); expected {"op": "subscribe"|"unsubscribe", "symbols": [...], '
        + f'"channels": [{", ".join(json.dumps(c) for c in CHANNELS)}]}}'
    )
