"""The small parts of ingestion: endpoints, stream splitting, backoff, bad-frame counting."""

from __future__ import annotations

import logging
import random

import pytest

from cif._core import ParseError, parse_frame
from cif.ingest.backoff import Backoff
from cif.ingest.bad_frames import BadFrames, reason_of
from cif.ingest.endpoints import (
    MAX_URL_CHARS,
    combined_url,
    normalize_symbols,
    split_streams,
    streams_for,
)


def test_symbols_are_normalized_and_checked() -> None:
    assert normalize_symbols("BTCUSDT, ethusdt,,btcusdt") == ["btcusdt", "ethusdt"]
    with pytest.raises(ValueError, match="no symbols"):
        normalize_symbols(" , ")
    with pytest.raises(ValueError, match="invalid symbol"):
        normalize_symbols("btc/usdt")


def test_streams_split_at_1024_keeping_symbols_together() -> None:
    symbols = [f"s{i}usdt" for i in range(700)]
    streams = streams_for(symbols)
    assert len(streams) == 2100
    chunks = split_streams(streams, 1024)
    assert [len(c) for c in chunks] == [1023, 1023, 54]
    assert [s for c in chunks for s in c] == streams
    for chunk in chunks:
        # A symbol's three streams never straddle two connections.
        assert len({s.split("@")[0] for s in chunk}) * 3 == len(chunk)
    with pytest.raises(ValueError, match=r"1\.\.1024"):
        split_streams(streams, 1025)


def test_long_stream_lists_are_subscribed_after_connecting() -> None:
    url, later = combined_url("ws://h:1/", ["btcusdt@trade", "btcusdt@depth@100ms"])
    assert url == "ws://h:1/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
    assert later == []
    many = streams_for([f"s{i}usdt" for i in range(300)])
    url, later = combined_url("ws://h:1", many)
    assert url == "ws://h:1/stream"
    assert later == many
    assert len("ws://h:1/stream?streams=" + "/".join(many)) > MAX_URL_CHARS


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    b = Backoff(base_s=0.5, cap_s=8.0, rng=random.Random(3))
    ceilings = []
    delays = []
    for _ in range(12):
        ceilings.append(b.ceiling())
        delays.append(b.next_delay())
    assert ceilings[:5] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert set(ceilings[4:]) == {8.0}
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays), "jittered, not lockstep"
    for _ in range(10_000):
        b.next_delay()  # no overflow however long the outage
    assert b.ceiling() == 8.0
    b.reset()
    assert b.ceiling() == 0.5


def test_bad_frames_are_counted_per_reason_and_sampled(caplog: pytest.LogCaptureFixture) -> None:
    bad = BadFrames()
    frames = {
        b'{"stream":"btcusdt@trade","data":{"e":"trade"': "malformed_frame",
        b'{"e":"mystery","E":1,"s":"BTCUSDT"}': "unknown_event",
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":1.5,"q":"1","T":1,"m":true,"M":true}': (
            "wrong_type"
        ),
        b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"-1","q":"1","T":1,"m":true,"M":true}': (
            "invalid_value"
        ),
        b'{"e":"trade","E":1,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":true,"M":true}': (
            "missing_field"
        ),
    }
    with caplog.at_level(logging.WARNING, logger="cif.ingest.bad_frames"):
        for _ in range(20):
            for frame, expected in frames.items():
                with pytest.raises(ParseError) as info:
                    parse_frame(frame)
                assert reason_of(info.value) == expected
                bad.skip(reason_of(info.value), frame, str(info.value), "feed-0")
    assert dict(bad.counts) == dict.fromkeys(frames.values(), 20)
    assert bad.total == 100
    # The first five of each reason are logged with a sample of the frame, then silence.
    assert len(caplog.records) == 25
    assert "feed-0: skipped frame #1 with reason malformed_frame" in caplog.records[0].message
