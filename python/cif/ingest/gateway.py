"""The ingestion gateway: Binance WebSocket + REST into Redis Streams and DuckDB.

Data flow, one way: ``FeedGroup`` connections deliver raw frames; they are parsed (Rust),
routed to the symbol's ``SymbolIngest`` (dedupe, trade sequencing and backfill, local book,
ingest ``seq``), which hands stored events to the ``LiveWriter`` (DuckDB, flushed at least
every ``flush_interval_s``, sealed to Parquet segments for concurrent readers) and trades
and book events to the ``StreamWriter`` (Redis, pipelined, buffered across outages). The
two sinks are independent: a dead Redis does not slow or stop persistence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from cif._core import BookTicker, DepthUpdate, ParseError, ServerShutdown, Trade, parse_frame
from cif.bus.fanout import FanoutKeys
from cif.bus.link import RedisLink
from cif.bus.stream_writer import PackedEntry, StreamWriter
from cif.ingest.bad_frames import BadFrames, reason_of
from cif.ingest.connection import FeedGroup
from cif.ingest.endpoints import (
    DEFAULT_REST_URL,
    DEFAULT_WS_URL,
    MAX_STREAMS_PER_CONNECTION,
    split_streams,
    streams_for,
)
from cif.ingest.rest_client import RestClient
from cif.ingest.symbol_ingest import SymbolIngest
from cif.settings import redact_url
from cif.store.live_writer import LiveWriter

log = logging.getLogger(__name__)

_STREAM_PREFIX = b'{"stream"'


@dataclass
class GatewayConfig:
    """Everything the gateway can be told (the ``cif live`` flags map onto it)."""

    symbols: list[str] = field(default_factory=lambda: ["btcusdt"])
    ws_url: str = DEFAULT_WS_URL
    rest_url: str = DEFAULT_REST_URL
    redis_url: str | None = "redis://127.0.0.1:6379/0"
    namespace: str = ""
    db_path: Path = Path("data/cif.duckdb")
    history_dir: Path | None = Path("data/history")
    streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    watchdog_s: float = 10.0
    max_connection_age_s: float = 23.5 * 3600
    handover_s: float = 5.0
    depth_limit: int = 1000
    top_k: int = 10
    rest_weight_budget: int = 4800
    max_backfill_trades: int = 5_000_000
    flush_interval_s: float = 0.5
    seal_interval_s: float = 60.0
    redis_maxlen: int = 1_000_000
    redis_buffer: int = 1_000_000
    stats_interval_s: float = 10.0


class Gateway:
    """Runs ingestion for a set of symbols until stopped."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.bad = BadFrames()
        self.control_replies = 0
        self.writer = LiveWriter(
            config.db_path,
            config.history_dir,
            flush_interval_s=config.flush_interval_s,
            seal_interval_s=config.seal_interval_s,
        )
        self.redis: aioredis.Redis | None = None
        self.link: RedisLink | None = None
        self.streams: StreamWriter | None = None
        self.rest = RestClient(config.rest_url, weight_budget=config.rest_weight_budget)
        self.keys = FanoutKeys(config.namespace)
        self.symbols: dict[str, SymbolIngest] = {}
        self.groups: list[FeedGroup] = []
        self.started = asyncio.Event()

    # -- setup -------------------------------------------------------------------------

    async def _last_redis_seq(self, symbol: str) -> int:
        """Highest ``seq`` already in the symbol's streams (0 if none or Redis is down)."""
        assert self.redis is not None
        best = 0
        for key in (self.keys.trades(symbol), self.keys.book(symbol)):
            try:
                rows = await self.redis.xrevrange(key, count=1)
            except (RedisError, OSError) as exc:
                log.warning("redis unavailable at startup (%s): seq from DuckDB only", exc)
                return 0
            for _id, fields in rows or []:
                raw = (fields or {}).get(b"seq")
                if raw is not None:
                    best = max(best, int(raw))
        return best

    async def _setup(self) -> None:
        cfg = self.config
        await asyncio.to_thread(self.writer.open)
        last_ids = self.writer.last_trade_ids()
        stored_seq = self.writer.max_seq()
        publish: Callable[[PackedEntry], None] | None = None
        if cfg.redis_url:
            self.redis = aioredis.from_url(
                cfg.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0
            )
            # The writer's round trips on a connection of their own (cif.bus.link).
            self.link = RedisLink(cfg.redis_url)
            self.streams = StreamWriter(
                self.link, maxlen=cfg.redis_maxlen, max_buffer=cfg.redis_buffer
            )
            publish = self.streams.put
        for sym in cfg.symbols:
            upper = sym.upper()
            seq = stored_seq.get(upper, 0)
            if self.redis is not None:
                seq = max(seq, await self._last_redis_seq(sym))
            self.symbols[upper] = SymbolIngest(
                upper,
                self.writer,
                publish,
                trades_key=self.keys.trades(sym),
                book_key=self.keys.book(sym),
                last_trade_id=last_ids.get(upper),
                last_seq=seq,
                top_k=cfg.top_k,
                max_backfill_trades=cfg.max_backfill_trades,
                call_soon=asyncio.get_running_loop().call_soon,
            )
        chunks = split_streams(streams_for(cfg.symbols), cfg.streams_per_connection)
        for i, chunk in enumerate(chunks):
            owned = {s.split("@", 1)[0].upper() for s in chunk}
            group = FeedGroup(
                f"feed-{i}",
                cfg.ws_url,
                chunk,
                lambda f, t: None,
                watchdog_s=cfg.watchdog_s,
                max_age_s=cfg.max_connection_age_s,
                handover_s=cfg.handover_s,
            )
            group.on_frame = self._handler(group, {s: self.symbols[s] for s in owned})
            self.groups.append(group)
        log.info(
            "ingesting %s over %d connection(s) from %s (REST %s); DuckDB %s; redis %s",
            ",".join(cfg.symbols),
            len(self.groups),
            cfg.ws_url,
            cfg.rest_url,
            cfg.db_path,
            "off" if not cfg.redis_url else redact_url(cfg.redis_url),
        )

    # -- frames ------------------------------------------------------------------------

    def _handler(
        self, group: FeedGroup, owned: dict[str, SymbolIngest]
    ) -> Callable[[bytes, int], None]:
        bad = self.bad
        name = group.name

        def on_frame(frame: bytes, recv_ns: int) -> None:
            if not frame.startswith(_STREAM_PREFIX) and self._control_reply(frame, name):
                return
            try:
                ev = parse_frame(frame, recv_ns)
            except ParseError as exc:
                bad.skip(reason_of(exc), frame, str(exc), name)
                return
            if isinstance(ev, ServerShutdown):
                group.request_handover("server_shutdown")
                return
            st = owned.get(ev.symbol)
            if st is None:
                bad.skip("wrong_symbol", frame, f"{ev.symbol} is not on this connection", name)
            elif isinstance(ev, Trade):
                st.on_trade(ev)
            elif isinstance(ev, BookTicker):
                st.on_ticker(ev)
            elif isinstance(ev, DepthUpdate):
                st.on_depth(ev)
            else:
                bad.skip("unexpected_event", frame, f"{type(ev).__name__} not subscribed", name)

        return on_frame

    def _control_reply(self, frame: bytes, where: str) -> bool:
        """Replies to SUBSCRIBE requests: ``{"result":null,"id":1}`` or an error."""
        try:
            obj = json.loads(frame)
        except ValueError:
            return False
        if not isinstance(obj, dict) or "id" not in obj:
            return False
        self.control_replies += 1
        if obj.get("error") is not None:
            log.error("%s: request %s refused: %s", where, obj.get("id"), obj["error"])
        return True

    # -- running -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until ``stop`` is set, then flush both sinks and return."""
        await self._setup()
        feed_stop = asyncio.Event()
        sink_stop = asyncio.Event()
        feeds = [asyncio.create_task(g.run(feed_stop), name=g.name) for g in self.groups]
        repairs: list[asyncio.Task[None]] = []
        for st in self.symbols.values():
            repairs.append(
                asyncio.create_task(st.run_snapshots(self.rest, self.config.depth_limit, feed_stop))
            )
            repairs.append(asyncio.create_task(st.run_backfill(self.rest, feed_stop)))
        sinks = [asyncio.create_task(self.writer.run(sink_stop), name="duckdb-writer")]
        if self.streams is not None:
            sinks.append(asyncio.create_task(self.streams.run(sink_stop), name="redis-writer"))
        stats_task = asyncio.create_task(self._log_stats(feed_stop))
        self.started.set()
        try:
            await stop.wait()
        finally:
            log.info("stopping: closing connections, then flushing DuckDB and Redis")
            feed_stop.set()
            await asyncio.gather(*feeds, return_exceptions=True)
            for t in repairs:
                t.cancel()
            await asyncio.gather(*repairs, stats_task, return_exceptions=True)
            for st in self.symbols.values():
                st.drain()  # what the last frames produced, before the sinks stop
            sink_stop.set()
            results = await asyncio.gather(*sinks, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    log.error("sink failed while stopping: %r", r)
            await self.rest.aclose()
            if self.redis is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.aclose()
            if self.link is not None:
                await self.link.close()
            await asyncio.to_thread(self.writer.close)
            log.info("stopped; %s", self.summary())

    async def _log_stats(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.stats_interval_s)
            if not stop.is_set():
                log.info("%s", self.summary())

    # -- reporting ---------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A snapshot of every counter, for logs, tests and the API."""
        feed: Counter[str] = Counter()
        for g in self.groups:
            feed.update(asdict(g.stats))
        symbols: dict[str, Any] = {}
        for sym, st in self.symbols.items():
            s: dict[str, Any] = asdict(st.stats)
            s["sequencer"] = st.sequencer.stats()
            s["book"] = st.book.stats()
            s["book_synced"] = st.book.synced
            s["seq"] = st.seq
            symbols[sym] = s
        out: dict[str, Any] = {
            "feed": dict(feed),
            "bad_frames": dict(self.bad.counts),
            "symbols": symbols,
            "rest": asdict(self.rest.stats),
            "duckdb": {"pending_rows": self.writer.pending_rows, **asdict(self.writer.stats)},
        }
        if self.streams is not None:
            out["redis"] = {
                "pending": self.streams.pending,
                "connected": self.streams.connected,
                **asdict(self.streams.stats),
            }
        return out

    def summary(self) -> str:
        """One log line of the counters that matter."""
        parts = []
        for sym, st in self.symbols.items():
            s = st.stats
            seqs = st.sequencer.stats()
            parts.append(
                f"{sym}: trades {s.trades} (backfilled {s.backfilled}, gaps {seqs['gaps']}, "
                f"lost {seqs['lost']}, dup {seqs['duplicates']}), diffs {s.diffs}, "
                f"tickers {s.tickers}, resyncs {s.resyncs}, "
                f"book {'synced' if st.book.synced else 'unsynced'} "
                f"agree {s.book_agree}/{s.book_checks}, lag {s.feed_lag_ms:.0f}ms"
            )
        f: Counter[str] = Counter()
        for g in self.groups:
            f["connects"] += g.stats.connects
            f["disconnects"] += g.stats.disconnects
            f["handovers"] += g.stats.handovers
            f["watchdog"] += g.stats.watchdog_reconnects
        parts.append(
            "feed: "
            + ", ".join(f"{k} {v}" for k, v in f.items())
            + f"; bad frames {dict(self.bad.counts) or 0}"
        )
        parts.append(f"duckdb pending {self.writer.pending_rows}")
        if self.streams is not None:
            rs = self.streams.stats
            parts.append(
                f"redis written {rs.written} pending {self.streams.pending} "
                f"dropped {rs.dropped_buffer_full} {'up' if self.streams.connected else 'DOWN'}"
            )
        return "; ".join(parts)
