"""The gateway's stream entries, packed in Rust: byte for byte what the field-by-field
encoder wrote, on every trade and book event of the real capture, and through a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
import redis.asyncio as aioredis

from cif._core import (
    DepthSnapshot,
    DepthUpdate,
    Trade,
    pack_book_entry,
    pack_trade_entry,
    pack_xadds,
)
from cif.bus.fanout import BOOK_FIELDS, TRADE_FIELDS
from cif.bus.stream_writer import (
    PackedEntry,
    StreamEntry,
    StreamWriter,
    bulk,
    encode_value,
    xadd_command,
    xadd_head,
)
from cif.ingest.book_events import BookEvent
from cif.ingest.offline import _NullSink, feed_capture

if TYPE_CHECKING:
    from local_servers import RedisServer


def _reference_trade(trade: Trade, seq: int, backfilled: bool) -> dict[str, object]:
    """The fields the gateway published before the Rust encoder (its Python encoder)."""
    return {
        "seq": seq,
        "trade_id": trade.trade_id,
        "ts": trade.trade_time_ms,
        "event_ts": trade.event_time_ms,
        "recv_ts_ns": trade.recv_time_ns,
        "price": repr(trade.price),
        "qty": repr(trade.qty),
        "side": trade.side,
        "backfilled": 1 if backfilled else 0,
    }


def _reference_book(ev: BookEvent) -> dict[str, object]:
    return {
        "seq": ev.seq,
        "update_id": ev.update_id,
        "event_ts": ev.event_ts,
        "recv_ts_ns": ev.recv_ts_ns,
        "source": ev.source,
        "bid_price": repr(ev.bid_price),
        "bid_qty": repr(ev.bid_qty),
        "ask_price": repr(ev.ask_price),
        "ask_qty": repr(ev.ask_qty),
        "book_update_id": ev.book_update_id,
        "bids": ev.bids_json,
        "asks": ev.asks_json,
    }


def _reference_body(entry_id: str, fields: dict[str, object]) -> bytes:
    parts = [bulk(entry_id.encode()), bulk(b"%d" % len(fields))]
    for name, value in fields.items():
        parts += [bulk(name.encode()), bulk(encode_value(value))]  # type: ignore[arg-type]
    return b"".join(parts)


class _Recorder(_NullSink):
    """Keeps what the gateway stores next to what it publishes."""

    def __init__(self) -> None:
        self.trades: list[tuple[Trade, int, bool]] = []
        self.book_events: list[BookEvent] = []

    def add_trade(self, trade: Trade, seq: int, backfilled: bool) -> None:
        self.trades.append((trade, seq, backfilled))

    def add_depth_update(self, update: DepthUpdate, seq: int) -> None:
        pass

    def add_depth_snapshot(self, snapshot: DepthSnapshot, seq: int) -> None:
        pass

    def add_book_event(self, event: BookEvent) -> None:
        self.book_events.append(event)


def test_every_entry_of_the_real_capture_is_byte_identical(btc_capture: Path) -> None:
    sink = _Recorder()
    published: list[PackedEntry] = []
    feed_capture(btc_capture, "btcusdt", sink, published.append)
    trades = [e for e in published if e.key == "trades:{btcusdt}"]
    books = [e for e in published if e.key == "book:{btcusdt}"]
    assert len(trades) == len(sink.trades) > 9000
    assert len(books) == len(sink.book_events) > 20000
    for entry, (trade, seq, backfilled) in zip(trades, sink.trades, strict=True):
        want = _reference_trade(trade, seq, backfilled)
        assert entry.entry_id == f"{trade.trade_id}-0"
        assert entry.body == _reference_body(entry.entry_id, want)
    sources: set[str] = set()
    for entry, ev in zip(books, sink.book_events, strict=True):
        want = _reference_book(ev)
        sources.add(ev.source)
        assert entry.entry_id == f"{ev.seq}-0"
        assert entry.body == _reference_body(entry.entry_id, want)
        assert entry.fields == {k: encode_value(v).decode() for k, v in want.items()}  # type: ignore[arg-type]
    assert "ticker" in sources
    assert list(trades[0].fields) == list(TRADE_FIELDS)
    assert list(books[0].fields) == list(BOOK_FIELDS)


def test_xadds_of_every_real_entry_are_the_reference_commands(btc_capture: Path) -> None:
    """``pack_xadds`` (one Rust call per batch) against ``xadd_command`` (the Python
    reference), on every entry the gateway makes of the real capture, in batches."""
    published: list[PackedEntry] = []
    feed_capture(btc_capture, "btcusdt", _NullSink(), published.append)
    heads = {key: xadd_head(key, 100_000) for key in {e.key for e in published}}
    assert len(heads) == 2
    for start in range(0, len(published), 997):
        batch = published[start : start + 997]
        want = b"".join(xadd_command(heads[e.key], e.body, e.n_fields) for e in batch)
        got = pack_xadds(
            [heads[e.key] for e in batch], [e.body for e in batch], [e.n_fields for e in batch]
        )
        assert got == want
    assert pack_xadds([], [], []) == b""


def test_xadds_refuse_bodies_that_are_not_entries() -> None:
    head = xadd_head("k", 10)
    good = bulk(b"1-0") + bulk(b"1") + bulk(b"a") + bulk(b"b")
    with pytest.raises(ValueError, match="field count 2"):
        pack_xadds([head], [good], [2])  # the body says 1 field
    with pytest.raises(ValueError, match="ID bulk string"):
        pack_xadds([head], [b"garbage"], [1])
    with pytest.raises(ValueError, match="1 heads, 2 bodies"):
        pack_xadds([head], [good, good], [1, 1])
    with pytest.raises(TypeError):
        pack_xadds([head], ["text"], [1])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "value", [0.0, -0.0, 1e-05, 0.1, 1e16, 123456789.123, 5e-324, 1.7976931348623157e308]
)
def test_doubles_are_written_as_python_repr(value: float) -> None:
    body = pack_book_entry(1, 2, 3, 4, "depth", value, value, value, value, 5, "[]", "[]")
    entry = PackedEntry("book:{x}", "1-0", len(BOOK_FIELDS), body)
    assert entry.fields["bid_price"] == repr(value)
    assert float(entry.fields["ask_qty"]) == value


def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError):
        pack_trade_entry("not a trade", 1, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pack_book_entry(1, 2, 3, 4, None, 1.0, 1.0, 1.0, 1.0, 5, "[]", "[]")  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        pack_book_entry(2**63, 2, 3, 4, "depth", 1.0, 1.0, 1.0, 1.0, 5, "[]", "[]")


def test_a_corrupt_body_is_a_clear_error() -> None:
    entry = PackedEntry("book:{x}", "1-0", 12, b"$3\r\n1-0\r\n$2\r\n12\r\n")
    with pytest.raises(ValueError, match="not 12 fields"):
        _ = entry.fields
    with pytest.raises(ValueError, match="not a RESP bulk string"):
        _ = PackedEntry("book:{x}", "1-0", 0, b"garbage").fields


def test_packed_and_field_entries_share_a_batch_in_order(
    redis_server: RedisServer, redis_client: redis.Redis, btc_capture: Path
) -> None:
    published: list[PackedEntry] = []
    feed_capture(btc_capture, "btcusdt", _NullSink(), published.append)
    # The gateway's entries with a field-mapping entry of another symbol in between: both
    # kinds go out in one script call per symbol, in their order.
    head = published[:300]
    other = StreamEntry("trades:{ethusdt}", "7-0", {"seq": 1, "price": "2.5"})

    async def go() -> int:
        client = aioredis.Redis.from_url(redis_server.url)
        w = StreamWriter(client)
        for i, e in enumerate(head):
            w.put(e)
            if i == 150:
                w.put(other)
        n = await w.flush()
        await client.aclose()
        assert w.stats.calls == 2
        return n

    assert asyncio.run(go()) == 301
    for key in ("trades:{btcusdt}", "book:{btcusdt}"):
        want = [e for e in head if e.key == key]
        got = redis_client.xrange(key)
        assert [r[0].decode() for r in got] == [e.entry_id for e in want]
        assert [{k.decode(): v.decode() for k, v in r[1].items()} for r in got] == [
            e.fields for e in want
        ]
    assert redis_client.xrange("trades:{ethusdt}") == [(b"7-0", {b"seq": b"1", b"price": b"2.5"})]
