"""Capture replay: serve recorded Binance frames again, byte for byte, at the recorded pace.

Each capture line ``{"stream":"<name>","data":<payload>}`` is published on stream
``<name>`` with ``<payload>`` sliced out of the recorded bytes, never re-serialised, so a
raw (``/ws``) subscriber receives exactly the recorded ``data`` and a combined
(``/stream``) subscriber exactly the recorded line. Several files are merged by receive
time. Pacing follows the recorded receive times (``speed`` scales them); ``speed=None``
replays as fast as the slowest subscriber reads. By default the replay starts when the
first client subscribes, so that a client connecting to a fresh simulator sees the whole
capture.

REST state follows what has been published:

* ``/api/v3/depth`` returns the capture's own snapshot line (verbatim when no ``limit``
  truncation applies) until a diff beyond it has been published; from then on it returns
  that snapshot with the published diffs applied, and ``lastUpdateId`` = the last applied
  ``u``. Either answer is consistent with the diff stream, so a client following Binance's
  procedure rebuilds the recorded book whenever it asks. A capture without a snapshot
  starts from an empty book.
* ``/api/v3/trades`` and ``historicalTrades`` serve the trades published so far.

Captures do not contain ``aggTrade``; a subscriber to ``<sym>@aggTrade`` gets one aggregate
trade per recorded trade (``a`` = ``f`` = ``l`` = the trade id), an assumption that keeps
ids consistent without inventing which fills belonged to one taker order.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cif.ingest.capture import iter_capture
from cif.sim.fixed import parse8
from cif.sim.streams import Hub, split_stream
from cif.sim.symbols import SymbolSpec, spec_for
from cif.sim.trades import TradeStore

log = logging.getLogger("cif.sim.replay")

_STREAM_PREFIX = b'{"stream":"'
_DATA_SEP = b'","data":'


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One recorded stream message: receive time, stream name, ``data`` payload bytes."""

    recv_ns: int
    stream: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    """A recorded REST depth snapshot and the symbol it belongs to."""

    recv_ns: int
    symbol: str
    body: bytes


def split_frame(payload: bytes) -> tuple[str, bytes] | None:
    """Split a combined-stream frame into (stream, exact ``data`` bytes), or None.

    Only frames of exactly the form ``{"stream":"..","data":..}`` are sliced; anything else
    is left to the caller (which re-serialises it, losing byte-faithfulness, and logs it).
    """
    if not payload.startswith(_STREAM_PREFIX) or not payload.endswith(b"}"):
        return None
    sep = payload.find(_DATA_SEP, len(_STREAM_PREFIX))
    if sep < 0:
        return None
    stream = payload[len(_STREAM_PREFIX) : sep]
    if b'"' in stream or b"\\" in stream:
        return None
    return stream.decode("ascii", "replace"), payload[sep + len(_DATA_SEP) : -1]


def load_capture(path: str | Path) -> tuple[list[ReplayItem], list[SnapshotItem]]:
    """Read one capture file into stream items and snapshots, in file order."""
    items: list[ReplayItem] = []
    snapshots: list[SnapshotItem] = []
    pending: list[tuple[int, bytes]] = []  # snapshots seen before any stream line
    last_symbol: str | None = None
    n_reserialised = 0
    for line in iter_capture(path):
        payload = line.payload
        if payload.startswith(b'{"lastUpdateId"'):
            if last_symbol is None:
                pending.append((line.recv_time_ns, payload))
            else:
                snapshots.append(SnapshotItem(line.recv_time_ns, last_symbol, payload))
            continue
        split = split_frame(payload)
        if split is None:
            try:
                obj = json.loads(payload)
            except ValueError:
                log.warning("%s:%d: not JSON, skipped", path, line.line_no)
                continue
            if not isinstance(obj, dict) or "stream" not in obj or "data" not in obj:
                log.warning("%s:%d: not a combined-stream frame, skipped", path, line.line_no)
                continue
            n_reserialised += 1
            split = (str(obj["stream"]), json.dumps(obj["data"], separators=(",", ":")).encode())
        stream, data = split
        parts = split_stream(stream)
        if parts is None:
            log.warning("%s:%d: unsupported stream %r, skipped", path, line.line_no, stream)
            continue
        if last_symbol is None:
            snapshots.extend(SnapshotItem(t, parts[0], body) for t, body in pending)
            pending.clear()
        if parts[1].startswith("depth") or last_symbol is None:
            last_symbol = parts[0]
        items.append(ReplayItem(line.recv_time_ns, stream, data))
    if n_reserialised:
        log.warning("%s: %d frames re-serialised (not byte-sliceable)", path, n_reserialised)
    return items, snapshots


class ReplayBook:
    """One symbol's book as of the diffs published so far, on top of the recorded snapshot."""

    def __init__(self, snapshot: bytes | None) -> None:
        self.snapshot = snapshot
        self.bids: dict[int, tuple[str, str]] = {}
        self.asks: dict[int, tuple[str, str]] = {}
        self.last_update_id = 0
        self.evolved = False
        if snapshot is not None:
            obj = json.loads(snapshot)
            self.last_update_id = int(obj["lastUpdateId"])
            for side, rows in ((self.bids, obj["bids"]), (self.asks, obj["asks"])):
                for price, qty in rows:
                    side[parse8(price)] = (price, qty)

    def apply(self, diff: dict[str, object]) -> None:
        """Apply one published diff (those at or before the snapshot are ignored)."""
        first = diff.get("U")
        last = diff.get("u")
        if not isinstance(first, int) or not isinstance(last, int):
            return
        if self.snapshot is None and not self.evolved:
            self.last_update_id = first - 1
        if last <= self.last_update_id:
            return
        for key, side in (("b", self.bids), ("a", self.asks)):
            rows = diff.get(key)
            if not isinstance(rows, list):
                continue
            for price, qty in rows:
                p8 = parse8(price)
                if parse8(qty) == 0:
                    side.pop(p8, None)
                else:
                    side[p8] = (price, qty)
        self.last_update_id = last
        self.evolved = True

    def body(self, limit: int) -> bytes:
        """The REST depth response for ``limit`` levels per side."""
        fits = len(self.bids) <= limit and len(self.asks) <= limit
        if not self.evolved and self.snapshot is not None and fits:
            return self.snapshot
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:limit]]
        asks = [self.asks[p] for p in sorted(self.asks)[:limit]]
        return json.dumps(
            {"lastUpdateId": self.last_update_id, "bids": bids, "asks": asks},
            separators=(",", ":"),
        ).encode()


class ReplaySource:
    """A ``MarketSource`` replaying one or more capture files."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        speed: float | None = 1.0,
        start_on_subscribe: bool = True,
        retain_trades: int = 1_000_000,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        self.paths = [Path(p) for p in paths]
        self.speed = speed
        self.start_on_subscribe = start_on_subscribe
        per_file = [load_capture(p) for p in self.paths]
        self.items: list[ReplayItem] = list(
            heapq.merge(*(items for items, _ in per_file), key=lambda it: it.recv_ns)
        )
        symbols: dict[str, None] = {}
        for item in self.items:
            parts = split_stream(item.stream)
            if parts is not None:
                symbols[parts[0]] = None
        self.specs: dict[str, SymbolSpec] = {s: spec_for(s) for s in symbols}
        snapshots: dict[str, bytes] = {}
        for _, snaps in per_file:
            for snap in snaps:
                if snap.symbol in snapshots:
                    log.warning("more than one snapshot for %s; using the first", snap.symbol)
                    continue
                snapshots[snap.symbol] = snap.body
        self.books = {s: ReplayBook(snapshots.get(s)) for s in self.specs}
        self.stores = {s: TradeStore(retain_trades) for s in self.specs}
        self.position = 0
        self.finished = asyncio.Event()
        self._now_ms = 0
        for item in self.items:
            if item.stream.endswith("@trade") or item.stream.endswith("@depth@100ms"):
                event_time = json.loads(item.data).get("E")
                if isinstance(event_time, int):
                    self._now_ms = event_time
                    break

    def now_ms(self) -> int:
        return self._now_ms

    def depth_snapshot(self, symbol: str, limit: int) -> bytes:
        return self.books[symbol].body(limit)

    def trade_store(self, symbol: str) -> TradeStore:
        return self.stores[symbol]

    def describe(self) -> str:
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        names = ", ".join(p.name for p in self.paths)
        symbols = ",".join(self.specs)
        return f"replay of {names} ({len(self.items)} messages, {symbols}), speed {speed}"

    def _note(self, item: ReplayItem) -> bytes | None:
        """Update REST state for a message about to be published; aggTrade derived from it."""
        stream = item.stream
        if stream.endswith("@trade"):
            t = json.loads(item.data)
            symbol = stream.partition("@")[0]
            self._now_ms = int(t.get("E", self._now_ms))
            maker = bool(t["m"])
            self.stores[symbol].append(
                int(t["t"]), parse8(t["p"]), parse8(t["q"]), int(t["T"]), maker
            )
            return (
                f'{{"e":"aggTrade","E":{t["E"]},"s":"{t["s"]}","a":{t["t"]},"p":"{t["p"]}",'
                f'"q":"{t["q"]}","f":{t["t"]},"l":{t["t"]},"T":{t["T"]},'
                f'"m":{"true" if maker else "false"},"M":true}}'
            ).encode()
        if stream.endswith("@depth@100ms"):
            d = json.loads(item.data)
            self._now_ms = int(d.get("E", self._now_ms))
            self.books[stream.partition("@")[0]].apply(d)
        return None

    def _publish(self, hub: Hub, batch: list[ReplayItem]) -> None:
        """Publish items in order, grouping consecutive items of one stream."""
        run: list[bytes] = []
        run_stream = ""
        aggs: dict[str, list[bytes]] = {}
        for item in batch:
            try:
                agg = self._note(item)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("replay: cannot interpret %s message: %s", item.stream, exc)
                agg = None
            if agg is not None:
                name = item.stream[: -len("trade")] + "aggTrade"
                if hub.has_subscribers(name):
                    aggs.setdefault(name, []).append(agg)
            if item.stream != run_stream:
                if run:
                    hub.publish(run_stream, run)
                run = []
                run_stream = item.stream
            run.append(item.data)
        if run:
            hub.publish(run_stream, run)
        for name, payloads in aggs.items():
            hub.publish(name, payloads)

    def _batches(self, size: int) -> Iterator[list[ReplayItem]]:
        items = self.items
        while self.position < len(items):
            batch = items[self.position : self.position + size]
            self.position += len(batch)
            yield batch

    async def run(self, hub: Hub) -> None:
        loop = asyncio.get_running_loop()
        if self.start_on_subscribe:
            await hub.wait_for_readers()
        log.info("replay started: %s", self.describe())
        items = self.items
        if self.speed is None:
            for batch in self._batches(512):
                await hub.wait_for_room()
                self._publish(hub, batch)
                await asyncio.sleep(0)
        elif items:
            wall0 = loop.time()
            t0 = items[0].recv_ns
            scale = 1e-9 / self.speed
            while self.position < len(items):
                now = loop.time() - wall0
                end = self.position
                while end < len(items) and (items[end].recv_ns - t0) * scale <= now:
                    end += 1
                if end > self.position:
                    self._publish(hub, items[self.position : end])
                    self.position = end
                if self.position < len(items):
                    due = (items[self.position].recv_ns - t0) * scale
                    await asyncio.sleep(max(0.0, due - (loop.time() - wall0)))
        log.info("replay finished: %d messages published", len(items))
        self.finished.set()
