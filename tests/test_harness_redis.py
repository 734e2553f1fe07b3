"""Smoke tests of the test harness itself: the real Redis server and the DuckDB fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import redis

if TYPE_CHECKING:  # annotations only
    from local_servers import RedisServer


def test_xadd_xrange_xread_roundtrip(redis_client: redis.Redis) -> None:
    stream = b"cif:test:stream"
    payloads = [
        {b"frame": b'{"e":"trade","p":"61837.63000000"}', b"recv_ns": b"1723161254087896568"},
        {b"frame": b"\xff\x00binary\x80", b"recv_ns": b"2"},
        {b"frame": b"", b"recv_ns": b"3"},
    ]
    ids = [redis_client.xadd(stream, fields) for fields in payloads]  # type: ignore[arg-type]
    assert len(set(ids)) == 3
    assert all(isinstance(i, bytes) for i in ids)

    entries = redis_client.xrange(stream)
    assert isinstance(entries, list)
    assert [entry_id for entry_id, _ in entries] == ids
    assert [fields for _, fields in entries] == payloads

    assert redis_client.xrevrange(stream, count=1) == [(ids[2], payloads[2])]

    everything = redis_client.xread({stream: b"0-0"})
    assert everything == [[stream, list(zip(ids, payloads, strict=True))]]

    after_first = redis_client.xread({stream: ids[0]})
    assert after_first == [[stream, list(zip(ids[1:], payloads[1:], strict=True))]]

    assert redis_client.xread({stream: ids[2]}) == []
    assert redis_client.xlen(stream) == 3


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_starts_with_an_empty_keyspace(redis_client: redis.Redis, round_: int) -> None:
    # Both rounds write the same keys: the second only sees an empty db if FLUSHALL ran.
    assert redis_client.dbsize() == 0
    redis_client.set(b"cif:test:key", round_)
    redis_client.xadd(b"cif:test:stream", {b"k": b"v"})
    assert redis_client.dbsize() == 2


def test_server_is_a_separate_real_process(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    info = redis_client.info("server")
    assert info["tcp_port"] == redis_server.port
    assert info["process_id"] != os.getpid()
    assert info["process_id"] == redis_server.pid
    assert info["redis_mode"] == "standalone"
    persistence = redis_client.info("persistence")
    assert persistence["aof_enabled"] == 0
    assert redis_client.config_get("save") == {"save": ""}
    assert redis_client.config_get("bind")["bind"] == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_stop_then_start_reuses_the_port_and_loses_data(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    old_pid = redis_server.pid
    port = redis_server.port
    redis_client.set(b"cif:test:volatile", b"1")

    redis_server.stop()
    assert not redis_server.is_running
    assert not redis_server.is_accepting()
    with pytest.raises(redis.ConnectionError):
        redis_server.probe().ping()

    redis_server.start()
    assert redis_server.is_running
    assert redis_server.port == port
    fresh = redis_server.client()
    try:
        assert fresh.ping()
        assert fresh.info("server")["process_id"] not in (old_pid, os.getpid())
        # No persistence: a restarted server starts empty.
        assert fresh.get(b"cif:test:volatile") is None
    finally:
        fresh.close()


def test_kill_then_start(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    port = redis_server.port
    redis_server.kill()
    assert not redis_server.is_running
    assert not redis_server.is_accepting()
    redis_server.start()
    assert redis_server.is_accepting()
    assert redis_server.port == port
    # The old client reconnects by itself once the server is back.
    assert redis_client.ping()


def test_duckdb_file_is_fresh_and_persists(
    duckdb_path: Path, duckdb_conn: duckdb.DuckDBPyConnection
) -> None:
    assert duckdb_path.exists()
    assert duckdb_path.name == "cif.duckdb"
    tables = duckdb_conn.execute("SELECT count(*) FROM information_schema.tables").fetchone()
    assert tables == (0,)

    duckdb_conn.execute("CREATE TABLE trades (trade_id BIGINT, price DOUBLE, side TINYINT)")
    rows = [(3735683259, 61837.63, -1), (3735683260, 61837.64, 1)]
    duckdb_conn.executemany("INSERT INTO trades VALUES (?, ?, ?)", rows)
    got = duckdb_conn.execute("SELECT * FROM trades ORDER BY trade_id").fetchall()
    assert got == rows
    # The rows are in the file itself: reopen it after closing (closing twice is harmless).
    duckdb_conn.close()
    with duckdb.connect(str(duckdb_path), read_only=True) as reopened:
        assert reopened.execute("SELECT * FROM trades ORDER BY trade_id").fetchall() == rows


def test_duckdb_paths_differ_between_tests(duckdb_path: Path, tmp_path: Path) -> None:
    assert duckdb_path.parent == tmp_path
    assert not duckdb_path.exists()
