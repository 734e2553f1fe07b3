"""``cif replay --redis`` writes exactly the gateway's entries: on the real btc and eth
captures (a real ``cif import`` DuckDB, a real Redis), every entry of both streams of each
symbol under the namespace has the ID and fields, byte for byte, of the entry the gateway
publishes for the capture (:func:`cif.ingest.offline.capture_stream_entries`), in order,
whatever the batching or pacing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import redis

from cif.bus.keys import book_key, trades_key
from cif.bus.stream_writer import encode_value
from cif.ingest.offline import capture_stream_entries
from cif.replay.republish import Pacing, republish

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(240)

Entries = list[tuple[bytes, dict[bytes, bytes]]]


@pytest.fixture(scope="module")
def both_db(btc_capture: Path, eth_capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("republish") / "cif.duckdb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cif",
            "import",
            str(btc_capture),
            str(eth_capture),
            "--db",
            str(db),
        ],
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return db


def gateway(capture: Path, symbol: str) -> dict[str, Entries]:
    """The gateway's entries per live stream key, as Redis returns them."""
    out: dict[str, Entries] = {}
    for e in capture_stream_entries(capture, symbol):
        fields = {k.encode(): encode_value(v) for k, v in e.fields.items()}
        out.setdefault(e.key, []).append((e.entry_id.encode(), fields))
    return out


def stream(client: redis.Redis, key: str) -> Entries:
    return [(i, dict(f)) for i, f in client.xrange(key)]


def run(db: Path, url: str, ns: str, **kwargs: object) -> dict[str, object]:
    with duckdb.connect(str(db), read_only=True) as con:
        return asyncio.run(republish(con, ["btcusdt", "ethusdt"], url, ns, **kwargs))  # type: ignore[arg-type]


def test_republished_entries_are_the_gateways(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    both_db: Path,
    btc_capture: Path,
    eth_capture: Path,
) -> None:
    expected = {
        "btcusdt": gateway(btc_capture, "btcusdt"),
        "ethusdt": gateway(eth_capture, "ethusdt"),
    }
    total = sum(len(v) for g in expected.values() for v in g.values())
    cases: list[tuple[str, dict[str, object]]] = [
        ("rp_max", {}),
        ("rp_small", {"batch_size": 777}),
        ("rp_paced", {"pacing": Pacing(speed=1e6), "batch_size": 3000}),
    ]
    for ns, kwargs in cases:
        stats = run(both_db, redis_server.url, ns, reset=True, **kwargs)
        assert stats["events"] == stats["written"] == total, (ns, stats)
        assert stats["duplicates"] == stats["rejected"] == 0
        for sym, streams in expected.items():
            assert set(streams) == {trades_key(sym), book_key(sym)}
            for live, ns_key in (
                (trades_key(sym), trades_key(sym, ns)),
                (book_key(sym), book_key(sym, ns)),
            ):
                got = stream(redis_client, ns_key)
                assert len(got) == len(streams[live]), (ns, ns_key)
                assert got == streams[live], (ns, ns_key)
    # re-sending is a no-op: every entry is counted as a duplicate
    again = run(both_db, redis_server.url, "rp_max")
    assert again["written"] == 0
    assert again["duplicates"] == total
    assert redis_client.exists(trades_key("btcusdt")) == 0  # live names untouched


def test_fixed_delay_writes_one_entry_per_call(
    redis_server: RedisServer, redis_client: redis.Redis, both_db: Path, btc_capture: Path
) -> None:
    expected = gateway(btc_capture, "btcusdt")
    with duckdb.connect(str(both_db), read_only=True) as con:
        (t0,) = con.execute(
            "SELECT min(event_ts) FROM book_events WHERE symbol = 'BTCUSDT'"
        ).fetchone() or (0,)
        stats = asyncio.run(
            republish(
                con,
                ["btcusdt"],
                redis_server.url,
                "rp_delay",
                pacing=Pacing(delay_ms=0),
                to_ms=int(t0) + 200,
                reset=True,
            )
        )
    n = stats["events"]
    assert isinstance(n, int)
    assert 0 < n == stats["written"]
    got = stream(redis_client, trades_key("btcusdt", "rp_delay")) + stream(
        redis_client, book_key("btcusdt", "rp_delay")
    )
    want = {i: f for v in expected.values() for i, f in v}
    assert len(got) == n
    for entry_id, fields in got:
        assert want[entry_id] == fields


def test_republishing_over_a_prefix_counts_the_prefix_as_duplicates(
    redis_server: RedisServer, redis_client: redis.Redis, both_db: Path, btc_capture: Path
) -> None:
    with duckdb.connect(str(both_db), read_only=True) as con:
        (mid,) = con.execute(
            "SELECT median(event_ts)::BIGINT FROM book_events WHERE symbol = 'BTCUSDT'"
        ).fetchone() or (0,)

        def go(**kwargs: object) -> dict[str, object]:
            return asyncio.run(republish(con, ["btcusdt"], redis_server.url, "rp_dup", **kwargs))  # type: ignore[arg-type]

        first = go(to_ms=int(mid))
        full = go()
    n_first = first["events"]
    assert isinstance(n_first, int)
    assert 0 < n_first == first["written"]
    assert full["duplicates"] == n_first
    assert full["written"] == full["events"] - n_first  # type: ignore[operator]
    assert full["rejected"] == 0
    expected = gateway(btc_capture, "btcusdt")
    for live, ns_key in (
        (trades_key("btcusdt"), trades_key("btcusdt", "rp_dup")),
        (book_key("btcusdt"), book_key("btcusdt", "rp_dup")),
    ):
        assert stream(redis_client, ns_key) == expected[live]


def test_a_refused_xadd_is_counted_as_rejected(
    redis_server: RedisServer,
    redis_client: redis.Redis,
    both_db: Path,
    btc_capture: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis_client.set(trades_key("btcusdt", "rp_rej"), "not a stream")
    with duckdb.connect(str(both_db), read_only=True) as con:
        stats = asyncio.run(republish(con, ["btcusdt"], redis_server.url, "rp_rej"))
    expected = gateway(btc_capture, "btcusdt")
    n_trades = len(expected[trades_key("btcusdt")])
    n_book = len(expected[book_key("btcusdt")])
    assert stats["rejected"] == n_trades
    assert stats["written"] == n_book
    assert stats["duplicates"] == 0
    assert str(stats["first_error"]).startswith("WRONGTYPE")
    assert "redis rejected" in caplog.text
    # the other stream is complete and in order: a refusal does not stop the symbol
    assert stream(redis_client, book_key("btcusdt", "rp_rej")) == expected[book_key("btcusdt")]


def test_the_url_selects_the_database(
    redis_server: RedisServer, redis_client: redis.Redis, both_db: Path
) -> None:
    url = f"redis://{redis_server.host}:{redis_server.port}/7"
    with duckdb.connect(str(both_db), read_only=True) as con:
        (t0,) = con.execute(
            "SELECT min(event_ts) FROM book_events WHERE symbol = 'ETHUSDT'"
        ).fetchone() or (0,)
        stats = asyncio.run(
            republish(con, ["ethusdt"], url, "rp_db", to_ms=int(t0) + 1000, reset=True)
        )
    n = stats["events"]
    assert isinstance(n, int)
    assert 0 < n == stats["written"]
    assert redis_client.exists(book_key("ethusdt", "rp_db")) == 0  # nothing in db 0
    with redis_server.client(db=7) as db7:
        assert (
            db7.xlen(trades_key("ethusdt", "rp_db")) + db7.xlen(book_key("ethusdt", "rp_db")) == n
        )
        db7.flushdb()


def test_non_ascii_text_gets_its_length_in_bytes() -> None:
    import hiredis

    from cif.replay.resp_entries import _bulks

    reader = hiredis.Reader()
    values = ["ask", "café", "買"]
    reader.feed(b"*3\r\n" + "".join(_bulks(values, "text")).encode())
    assert reader.gets() == [v.encode() for v in values]
