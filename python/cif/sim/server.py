"""The simulator's socket: Binance's WebSocket market streams and REST API on one port.

One ``websockets`` server serves both: a request for ``/ws...`` or ``/stream...`` carrying
a WebSocket upgrade becomes a stream connection; any other request is answered as REST
from ``process_request`` (plain HTTP/1.1, one request per connection).

Per connection, as Binance documents: streams from the URL (``/ws/<stream>`` raw,
``/stream?streams=<a>/<b>`` combined), live requests (``cif.sim.control``), at most
``max_incoming_per_s`` incoming messages per second (5; the connection is closed with
1008 beyond that), a server ping every ``ping_interval_s`` (20 s) and a disconnect when its
pong does not arrive within ``pong_timeout_s`` (60 s), at most 1024 streams. The
library's own keepalive is off because the simulator counts pongs per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from cif.sim.control import error_reply, handle_request
from cif.sim.faults import FaultConfig, FaultLog
from cif.sim.rest import RestApi, WeightLimiter
from cif.sim.session import Session
from cif.sim.source import MarketSource
from cif.sim.streams import MAX_STREAMS_PER_CONNECTION, Hub

log = logging.getLogger("cif.sim.server")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Socket and protocol settings (defaults are Binance's)."""

    host: str = "127.0.0.1"
    port: int = 0
    ping_interval_s: float = 20.0
    pong_timeout_s: float = 60.0
    max_incoming_per_s: int = 5
    weight_limit: int = 6000
    max_backlog: int = 500_000
    faults: FaultConfig = field(default_factory=FaultConfig)


def _json_response(status: int, body: bytes, headers: list[tuple[str, str]]) -> Response:
    hdrs = Headers(headers)
    if "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json;charset=UTF-8"
    hdrs["Content-Length"] = str(len(body))
    hdrs["Connection"] = "close"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return Response(status, phrase, hdrs, body)


class SimServer:
    """Serves one ``MarketSource``; use ``async with SimServer(...)`` or start()/stop()."""

    def __init__(
        self,
        source: MarketSource,
        config: ServerConfig | None = None,
        weight_clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.config = config or ServerConfig()
        self.faults = self.config.faults
        self.fault_log = FaultLog()
        self.events: Counter[str] = Counter()
        self.hub = Hub(source.specs, self.faults, self.fault_log)
        self.rest = RestApi(
            source,
            self.faults,
            self.fault_log,
            WeightLimiter(self.config.weight_limit, clock=weight_clock),
            stats=self.stats,
        )
        self.port = 0
        self.source_task: asyncio.Task[None] | None = None
        self._server: Server | None = None
        self._pending: dict[ServerConnection, tuple[list[str], bool]] = {}
        self._next_id = 0
        self._session_opened = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the socket and start the market source."""
        self._server = await serve(
            self._handle_connection,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=1 << 20,
            close_timeout=2.0,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.source_task = asyncio.create_task(self._run_source(), name="cif-sim-source")
        log.info("serving %s on port %d", self.source.describe(), self.port)

    async def _run_source(self) -> None:
        try:
            await self.source.run(self.hub)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("market source failed")

    async def stop(self) -> None:
        """Stop the source, close every connection, and log the fault summary."""
        if self.source_task is not None:
            self.source_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.source_task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        log.info("stopped; faults: %s", self.fault_log.summary())

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None, "start() first"
        await self._server.serve_forever()

    def urls(self) -> list[str]:
        """What the server serves, for the startup banner."""
        base = f"{self.config.host}:{self.port}"
        first = next(iter(self.source.specs))
        return [
            f"ws://{base}/ws/{first}@trade",
            f"ws://{base}/stream?streams={first}@trade/{first}@depth@100ms/{first}@bookTicker",
            f"http://{base}/api/v3/depth?symbol={first.upper()}&limit=1000",
            f"http://{base}/api/v3/historicalTrades?symbol={first.upper()}&fromId=0&limit=1000",
            f"http://{base}/api/v3/exchangeInfo",
            f"http://{base}/sim/stats",
        ]

    def stats(self) -> dict[str, object]:
        """Counts served at ``/sim/stats``."""
        return {
            "source": self.source.describe(),
            "serverTime": self.source.now_ms(),
            "faults": dict(self.fault_log.counts),
            "events": dict(self.events),
            "sessions": [
                {
                    "id": s.id,
                    "streams": len(s.streams),
                    "combined": s.combined,
                    "sent": s.sent,
                    "pongs": s.pongs,
                }
                for s in sorted(self.hub.sessions, key=lambda s: s.id)
            ],
        }

    # -- HTTP ---------------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        target = request.path
        path = urlsplit(target).path
        if path == "/ws" or path.startswith("/ws/") or path.rstrip("/") == "/stream":
            if "websocket" not in request.headers.get("Upgrade", "").lower():
                return _json_response(
                    426, b'{"code":-1000,"msg":"WebSocket upgrade required."}', []
                )
            parsed = self._parse_ws_target(target)
            if isinstance(parsed, Response):
                return parsed
            self._pending[conn] = parsed
            return None
        reply = await self.rest.handle(target)
        return _json_response(reply.status, reply.body, reply.headers)

    def _parse_ws_target(self, target: str) -> tuple[list[str], bool] | Response:
        parts = urlsplit(target)
        if parts.path.startswith("/ws"):
            combined = False
            names = [n for n in parts.path[len("/ws") :].split("/") if n]
        else:
            combined = True
            query = parse_qs(parts.query)
            names = [n for v in query.get("streams", []) for n in v.split("/") if n]
        unique = list(dict.fromkeys(names))
        if len(unique) > MAX_STREAMS_PER_CONNECTION:
            self.events["too_many_streams_rejected"] += 1
            return _json_response(
                400,
                b'{"code":-1100,"msg":"Too many streams; a connection can listen to at most'
                b' 1024 streams."}',
                [],
            )
        for name in unique:
            if not self.hub.is_served(name):
                log.info("rejected WebSocket connection for invalid stream %r", name[:100])
                self.events["invalid_stream_rejected"] += 1
                msg = f'{{"code":-1100,"msg":"Invalid stream name \'{name[:100]}\'."}}'
                return _json_response(400, msg.encode(), [])
        return unique, combined

    # -- WebSocket ----------------------------------------------------------------------

    async def _handle_connection(self, conn: ServerConnection) -> None:
        streams, combined = self._pending.pop(conn, ([], False))
        self._next_id += 1
        session = Session(
            conn,
            self._next_id,
            combined,
            self.faults,
            self.fault_log,
            max_backlog=self.config.max_backlog,
        )
        self.hub.add_session(session)
        for name in streams:
            self.hub.subscribe(session, name)
        log.info("session %d opened from %s: %s", session.id, conn.remote_address, streams)
        self.events["sessions_opened"] += 1
        tasks = [
            asyncio.create_task(session.run_writer()),
            asyncio.create_task(self._keepalive(session)),
            *self._fault_tasks(session),
        ]
        try:
            async for message in conn:
                if not session.allow_incoming(self.config.max_incoming_per_s):
                    self.events["incoming_rate_disconnect"] += 1
                    log.warning(
                        "session %d: more than %d incoming messages per second, disconnecting",
                        session.id,
                        self.config.max_incoming_per_s,
                    )
                    await conn.close(1008, "Too many requests")
                    break
                try:
                    reply = handle_request(message, session, self.hub)
                except Exception:
                    log.exception("session %d: request handling failed", session.id)
                    reply = error_reply(2, "Invalid request")
                session.push_control(reply)
        except ConnectionClosed:
            pass
        finally:
            session.stop()
            self.hub.remove_session(session)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info(
                "session %d closed (code %s), %d messages sent",
                session.id,
                conn.close_code,
                session.sent,
            )

    async def _keepalive(self, session: Session) -> None:
        conn = session.conn
        while True:
            await asyncio.sleep(self.config.ping_interval_s)
            try:
                pong = await conn.ping()
            except ConnectionClosed:
                return
            try:
                async with asyncio.timeout(self.config.pong_timeout_s):
                    await pong
            except TimeoutError:
                self.events["pong_timeout_disconnect"] += 1
                log.warning("session %d: no pong within %gs, disconnecting", session.id,
                            self.config.pong_timeout_s)  # fmt: skip
                conn.transport.abort()
                return
            except ConnectionClosed:
                return
            session.pongs += 1
            session.pong_event.set()

    def _fault_tasks(self, session: Session) -> list[asyncio.Task[None]]:
        f = self.faults
        tasks = []
        if f.close_every_s is not None:
            tasks.append(asyncio.create_task(self._fault_close(session, f.close_every_s)))
        if f.shutdown_after_s is not None:
            tasks.append(asyncio.create_task(self._fault_shutdown(session, f.shutdown_after_s)))
        if f.stall_after_s is not None:
            tasks.append(asyncio.create_task(self._fault_stall(session, f.stall_after_s)))
        return tasks

    async def _fault_close(self, session: Session, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.fault_log.record("periodic_close", f"session {session.id}")
        # A real disconnect loses what was in flight. Losing at least one trade (when any is
        # produced within a second) makes every periodic close a trade-id gap for the
        # client to repair, instead of a gap only when its reconnect happens to be slow.
        session.losing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.lost_trade.wait(), timeout=1.0)
        await session.conn.close(1000, "periodic close (fault injection)")

    async def _fault_shutdown(self, session: Session, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.fault_log.record("server_shutdown", f"session {session.id}")
        session.send_now(b'{"e":"serverShutdown","E":%d}' % self.source.now_ms())
        await asyncio.sleep(self.faults.shutdown_delay_s)
        await session.conn.close(1001, "server shutdown")

    async def _fault_stall(self, session: Session, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.fault_log.record("stall", f"session {session.id}")
        session.stalled = True
        if self.faults.stall_for_s is not None:
            await asyncio.sleep(self.faults.stall_for_s)
            session.stalled = False
            log.warning("session %d: stall over", session.id)
