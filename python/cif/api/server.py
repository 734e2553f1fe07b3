"""``cif api``: serve the REST + WebSocket API with uvicorn.

Flags default to ``CIF_*`` environment variables (flag wins): ``CIF_API_HOST`` (127.0.0.1),
``CIF_API_PORT`` (8000), ``CIF_REDIS_URL``, ``CIF_NAMESPACE``, ``CIF_HISTORY_DIR``,
``CIF_SYMBOLS``, ``CIF_MODEL``. Stops cleanly on SIGINT/SIGTERM.

:func:`serve` runs the server inside an existing event loop until an ``asyncio.Event`` is
set, so ``cif live`` can run it next to the other components. It leaves signal handling to
the embedding process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import uvicorn

from cif import event_loop, gc_policy
from cif.api.app import ApiConfig, Scorer, create_app
from cif.event_loop import add_event_loop_argument
from cif.forecast.models import default_model, load_model
from cif.ingest.endpoints import normalize_symbols
from cif.settings import (
    add_listen_arguments,
    add_symbols_argument,
    env,
    positive,
    positive_int,
    redact_url,
)

log = logging.getLogger("cif.api")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listen_arguments(parser)
    parser.add_argument(
        "--redis-url",
        default=env("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis the pipeline writes to (default: $CIF_REDIS_URL or local)",
    )
    parser.add_argument(
        "--namespace", default=env("NAMESPACE", ""), help="prefix of every Redis key read"
    )
    parser.add_argument(
        "--history-dir",
        type=Path,
        default=env("HISTORY_DIR", "") or None,
        help="sealed history segments for trades Redis no longer has (default: "
        "$CIF_HISTORY_DIR; none: Redis only)",
    )
    add_symbols_argument(parser)
    parser.add_argument(
        "--model",
        type=Path,
        default=env("MODEL", "") or None,
        help="model artifact JSON for POST /forecast (default: $CIF_MODEL, else the "
        "default OFI heuristic)",
    )
    parser.add_argument(
        "--ws-queue-size",
        type=positive_int,
        default=1024,
        help="messages queued per WebSocket client before it is dropped as too slow",
    )
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--duration", type=positive, default=None, help="stop after N s")
    add_event_loop_argument(parser)


def load_scorer(path: Path | None) -> Scorer:
    """The model artifact at ``path``, or the default model (the OFI heuristic)."""
    if path is None:
        return default_model()
    try:
        return load_model(path)
    except FileNotFoundError:
        raise ValueError(f"model file not found: {path}") from None


def build_config(args: argparse.Namespace) -> ApiConfig:
    """The service configuration from parsed arguments (``ValueError`` if inconsistent)."""
    return ApiConfig(
        symbols=tuple(normalize_symbols(args.symbols)),
        redis_url=args.redis_url,
        namespace=args.namespace,
        history_dir=args.history_dir,
        host=args.host,
        port=int(args.port),
        scorer=load_scorer(args.model),
        ws_queue_size=args.ws_queue_size,
        ws_compression=args.ws_compression == "deflate",
        access_log=args.access_log,
    )


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers (the embedding process owns them) and
    with an event set once it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


async def _run_server(server: _Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits the process on a failed startup
        raise RuntimeError(f"the API server failed to start (exit code {exc.code})") from None


async def serve(
    config: ApiConfig,
    stop_event: asyncio.Event,
    *,
    on_started: Callable[[int], None] | None = None,
) -> None:
    """Serve the API until ``stop_event`` is set. ``on_started(port)`` is called once it
    listens (``config.port`` 0 picks a free port). Raises ``ValueError`` on an invalid
    configuration and ``OSError`` when the address cannot be bound."""
    app = create_app(config)
    sock = _bind(config.host, config.port)
    port = int(sock.getsockname()[1])
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=port,
        log_config=None,
        access_log=config.access_log,
        lifespan="on",
        ws="websockets-sansio",
        ws_per_message_deflate=config.ws_compression,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(uv_config)
    run_task = asyncio.create_task(_run_server(server, sock), name="cif api")
    waiters = [
        asyncio.create_task(server.listening.wait()),
        asyncio.create_task(stop_event.wait()),
    ]
    try:
        done, _ = await asyncio.wait(
            {run_task, waiters[0], waiters[1]}, return_when=asyncio.FIRST_COMPLETED
        )
        if waiters[0] in done:
            log.info(
                "API on http://%s:%d (redis %s, namespace %r, symbols %s, model %s)",
                config.host,
                port,
                redact_url(config.redis_url),
                config.namespace,
                ",".join(config.symbols),
                "none" if config.scorer is None else config.scorer.name,
            )
            if on_started is not None:
                on_started(port)
            await asyncio.wait({run_task, waiters[1]}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(run_task, *waiters, return_exceptions=True)
        sock.close()
    run_task.result()
    log.info("API stopped")


def _tune_gc(_port: int) -> None:
    gc_policy.tune_for_latency()  # startup is done once the server listens


async def _main(config: ApiConfig, duration: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)
    try:
        await serve(config, stop, on_started=_tune_gc)
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        gc_policy.thresholds_from_env(os.environ.get(gc_policy.ENV))
        event_loop.loop_factory(args.event_loop)
    except ValueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return event_loop.run(_main(config, args.duration), args.event_loop)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cif.api.server``: the same as ``cif api`` once it is registered."""
    parser = argparse.ArgumentParser(
        prog="cif api", description="serve forecasts over REST and WebSocket"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
