"""Shared fixtures: a real Redis-protocol server, fresh DuckDB files and the real Binance captures.

Fixtures only: test modules must not import from here (``conftest`` can name another
directory's conftest.py when pytest collects part of the tree). Helpers they import live in
plain modules: the Redis server and ``free_port`` in ``local_servers``.

Redis: the server is a real ``redis-server`` (or ``valkey-server``) process started by the
session, never a fake or a mock; see ``local_servers`` for how the binary is found.

Data: the captures live in ``<repo>/../shared/data/binance`` unless ``CIF_DATA_DIR`` says
otherwise. A missing directory or file fails the tests that need it, naming the path tried.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import redis

from local_servers import RedisServer, find_redis_server, start_on_free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "binance"


# --------------------------------------------------------------------------------------------
# Redis (the server itself: tests/local_servers.py)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis server for the whole session; stopped at the end."""
    binary = find_redis_server()
    workdir = tmp_path_factory.mktemp("redis")
    server = start_on_free_port(lambda: RedisServer(binary, workdir))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A bytes client on the session server, with an empty keyspace.

    If an earlier test left the server stopped, it is started again first.
    """
    if not redis_server.is_running:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    try:
        yield client
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# DuckDB
# --------------------------------------------------------------------------------------------


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    """A path for a fresh DuckDB file (not created yet)."""
    path = tmp_path / "cif.duckdb"
    assert not path.exists()
    return path


@pytest.fixture
def duckdb_conn(duckdb_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection on the fresh DuckDB file, closed after the test."""
    conn = duckdb.connect(str(duckdb_path))
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Real captures
# --------------------------------------------------------------------------------------------


def resolve_data_dir() -> Path:
    env = os.environ.get("CIF_DATA_DIR")
    return Path(env) if env else DEFAULT_DATA_DIR


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = resolve_data_dir()
    if not path.is_dir():
        pytest.fail(
            f"Binance capture directory not found: {path} "
            f"(from {'CIF_DATA_DIR' if os.environ.get('CIF_DATA_DIR') else 'the repo layout'}); "
            "set CIF_DATA_DIR to the directory holding btcusdt_20240808.gz",
            pytrace=False,
        )
    return path


def _capture(data_dir: Path, name: str) -> Path:
    path = data_dir / name
    if not path.is_file():
        pytest.fail(f"Binance capture file not found: {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def btc_capture(data_dir: Path) -> Path:
    return _capture(data_dir, "btcusdt_20240808.gz")


@pytest.fixture(scope="session")
def eth_capture(data_dir: Path) -> Path:
    return _capture(data_dir, "ethusdt_20240808.gz")
