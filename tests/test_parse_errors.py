"""Explicit cases for every input shape and error class of the ``cif._core`` parser contract.

Good frames of each kind (combined stream and raw ``/ws``), partial depth, serverShutdown,
REST bodies and capture text are checked against hand-written expected values and the
pure-Python reference; bad frames against the ``ParseError`` subclass the contract names,
and in the batch API against the matching ``reason_code`` while the good frames around them
still parse.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

import cif._core as core
from reference import binance_ref as ref
from reference.agreement import (
    assert_entry_points_agree,
    batch_of,
    reason_name,
    ref_record,
    single_record,
)
from reference.records import event_record

RECV = 1_723_161_254_087_896_568

TRADE: dict[str, Any] = {
    "e": "trade",
    "E": 1723161255343,
    "s": "BTCUSDT",
    "t": 3735683259,
    "p": "61837.63000000",
    "q": "0.02000000",
    "T": 1723161255342,
    "m": True,
    "M": True,
}
AGG_TRADE: dict[str, Any] = {
    "e": "aggTrade",
    "E": 1723161255343,
    "s": "BTCUSDT",
    "a": 26129,
    "p": "0.01633102",
    "q": "4.70443515",
    "f": 27781,
    "l": 27781,
    "T": 1723161255342,
    "m": False,
    "M": True,
}
DEPTH: dict[str, Any] = {
    "e": "depthUpdate",
    "E": 1723161255208,
    "s": "BTCUSDT",
    "U": 50093239189,
    "u": 50093239202,
    "b": [["61737.63000000", "0.00000000"], ["61730.17000000", "0.10000000"]],
    "a": [["61837.64000000", "1.54698000"]],
}
TICKER: dict[str, Any] = {
    "u": 50093239212,
    "s": "BTCUSDT",
    "b": "61837.63000000",
    "B": "3.78826000",
    "a": "61837.64000000",
    "A": "1.54698000",
}
PARTIAL: dict[str, Any] = {
    "lastUpdateId": 50093239218,
    "bids": [["61837.63000000", "3.78826000"], ["61837.62000000", "0.61700000"]],
    "asks": [["61837.64000000", "1.54698000"]],
}
SHUTDOWN: dict[str, Any] = {"e": "serverShutdown", "E": 1723161255999}


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def combined(stream: str, data: dict[str, Any]) -> bytes:
    return dumps({"stream": stream, "data": data})


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    out.update(changes)
    return out


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


# --------------------------------------------------------------------------------------------
# The module surface
# --------------------------------------------------------------------------------------------

ERROR_CLASSES = [
    core.MalformedFrame,
    core.MissingField,
    core.WrongType,
    core.InvalidValue,
    core.UnknownEvent,
]


def test_error_hierarchy_and_reasons() -> None:
    assert issubclass(core.ParseError, ValueError)
    for cls in ERROR_CLASSES:
        assert issubclass(cls, core.ParseError)
    assert isinstance(core.ERROR_REASONS, tuple)
    assert all(isinstance(r, str) for r in core.ERROR_REASONS)
    assert len(set(core.ERROR_REASONS)) == len(core.ERROR_REASONS)
    for cls in ERROR_CLASSES:
        assert reason_name(cls) in core.ERROR_REASONS, (cls, core.ERROR_REASONS)
    assert isinstance(core.__version__, str)
    assert core.__version__


# --------------------------------------------------------------------------------------------
# Good frames
# --------------------------------------------------------------------------------------------


def test_trade_values() -> None:
    for frame in (dumps(TRADE), combined("btcusdt@trade", TRADE)):
        ev = core.parse_frame(frame, RECV)
        assert isinstance(ev, core.Trade)
        assert ev.symbol == "BTCUSDT"
        assert ev.trade_id == 3735683259
        assert ev.event_time_ms == 1723161255343
        assert ev.trade_time_ms == 1723161255342
        assert ev.price == 61837.63
        assert ev.qty == 0.02
        assert ev.is_buyer_maker is True
        assert ev.side == "sell"
        assert ev.recv_time_ns == RECV
    buyer_taker = core.parse_frame(dumps(with_(TRADE, m=False)), RECV)
    assert isinstance(buyer_taker, core.Trade)
    assert buyer_taker.side == "buy"
    assert buyer_taker.is_buyer_maker is False


def test_agg_trade_values() -> None:
    for frame in (dumps(AGG_TRADE), combined("btcusdt@aggTrade", AGG_TRADE)):
        ev = core.parse_frame(frame, RECV)
        assert isinstance(ev, core.AggTrade)
        assert (ev.symbol, ev.agg_trade_id, ev.first_trade_id, ev.last_trade_id) == (
            "BTCUSDT",
            26129,
            27781,
            27781,
        )
        assert (ev.event_time_ms, ev.trade_time_ms) == (1723161255343, 1723161255342)
        assert (ev.price, ev.qty) == (0.01633102, 4.70443515)
        assert (ev.side, ev.is_buyer_maker, ev.recv_time_ns) == ("buy", False, RECV)


def test_depth_update_values() -> None:
    for frame in (dumps(DEPTH), combined("btcusdt@depth@100ms", DEPTH)):
        ev = core.parse_frame(frame, RECV)
        assert isinstance(ev, core.DepthUpdate)
        assert ev.symbol == "BTCUSDT"
        assert ev.event_time_ms == 1723161255208
        assert (ev.first_update_id, ev.final_update_id) == (50093239189, 50093239202)
        assert ev.bids == [(61737.63, 0.0), (61730.17, 0.1)]
        assert ev.asks == [(61837.64, 1.54698)]
        assert ev.recv_time_ns == RECV


def test_book_ticker_values() -> None:
    for frame in (dumps(TICKER), combined("btcusdt@bookTicker", TICKER)):
        ev = core.parse_frame(frame, RECV)
        assert isinstance(ev, core.BookTicker)
        assert (ev.symbol, ev.update_id) == ("BTCUSDT", 50093239212)
        assert (ev.bid_price, ev.bid_qty) == (61837.63, 3.78826)
        assert (ev.ask_price, ev.ask_qty) == (61837.64, 1.54698)
        assert ev.event_time_ms is None
        assert ev.recv_time_ns == RECV


def test_partial_depth_takes_the_symbol_from_the_stream_name() -> None:
    for stream in ("btcusdt@depth5@100ms", "btcusdt@depth20", "btcusdt@depth10@1000ms"):
        ev = core.parse_frame(combined(stream, PARTIAL), RECV)
        assert isinstance(ev, core.DepthSnapshot)
        assert ev.symbol == "BTCUSDT"
        assert ev.last_update_id == 50093239218
        assert ev.bids == [(61837.63, 3.78826), (61837.62, 0.617)]
        assert ev.asks == [(61837.64, 1.54698)]
        assert ev.event_time_ms is None
        assert ev.recv_time_ns == RECV
    eth = core.parse_frame(combined("ethusdt@depth5@100ms", PARTIAL), RECV)
    assert isinstance(eth, core.DepthSnapshot)
    assert eth.symbol == "ETHUSDT"


def test_partial_depth_on_a_raw_stream_needs_symbol() -> None:
    ev = core.parse_frame(dumps(PARTIAL), RECV, symbol="BTCUSDT")
    assert isinstance(ev, core.DepthSnapshot)
    assert (ev.symbol, ev.last_update_id, ev.event_time_ms) == ("BTCUSDT", 50093239218, None)
    assert ev.bids == [(61837.63, 3.78826), (61837.62, 0.617)]
    with pytest.raises(core.ParseError):
        core.parse_frame(dumps(PARTIAL), RECV)
    # Batch: the same hint applies to every frame; without it the frame is an error row.
    with_hint = batch_of([dumps(PARTIAL)], [RECV], symbol="BTCUSDT")
    assert with_hint[0][0] == "DepthSnapshot"
    no_hint = batch_of([dumps(PARTIAL)], [RECV])
    assert no_hint[0][0] == "error"
    assert no_hint[0] == single_record(dumps(PARTIAL), RECV)


@pytest.mark.parametrize(
    "frame",
    [
        dumps(SHUTDOWN),
        dumps({"event": SHUTDOWN}),
    ],
    ids=["raw", "event-wrapper"],
)
def test_server_shutdown(frame: bytes) -> None:
    ev = core.parse_frame(frame, RECV)
    assert isinstance(ev, core.ServerShutdown)
    assert ev.event_time_ms == 1723161255999
    assert ev.recv_time_ns == RECV
    batch = core.parse_frames([dumps(TRADE), frame], [RECV - 1, RECV])
    assert batch.shutdowns["frame"].tolist() == [1]
    assert batch.shutdowns["event_time_ms"].tolist() == [1723161255999]
    assert batch.shutdowns["recv_time_ns"].tolist() == [RECV]
    assert batch.trades["frame"].tolist() == [0]


GOOD_FRAMES: list[tuple[str, bytes]] = [
    ("trade-raw", dumps(TRADE)),
    ("trade-combined", combined("btcusdt@trade", TRADE)),
    ("aggTrade-raw", dumps(AGG_TRADE)),
    ("aggTrade-combined", combined("btcusdt@aggTrade", AGG_TRADE)),
    ("depth-raw", dumps(DEPTH)),
    ("depth-combined", combined("btcusdt@depth@100ms", DEPTH)),
    ("depth-empty-sides", dumps(with_(DEPTH, b=[], a=[]))),
    ("bookTicker-raw", dumps(TICKER)),
    ("bookTicker-combined", combined("btcusdt@bookTicker", TICKER)),
    ("partial-combined", combined("btcusdt@depth5@100ms", PARTIAL)),
    ("shutdown-raw", dumps(SHUTDOWN)),
    ("shutdown-wrapped", dumps({"event": SHUTDOWN})),
    ("extra-fields-ignored", dumps(with_(TRADE, X="future field", Y=[1, {"z": None}]))),
    ("no-M-field", dumps(without(TRADE, "M"))),
    ("whitespace", json.dumps(TRADE, indent=2).encode()),
    ("key-order", dumps(dict(reversed(list(TRADE.items()))))),
    ("unicode-escape", dumps(TRADE).replace(b'"BTCUSDT"', b'"\\u0042TCUSDT"')),
    ("zero-level-qty", dumps(with_(DEPTH, a=[["61837.64", "0.00000000"]]))),
    ("zero-ticker-empty-book", dumps(with_(TICKER, b="0.00000000", B="0.00000000"))),
    ("integer-decimal", dumps(with_(TRADE, p="61837"))),
    ("long-fraction", dumps(with_(TRADE, p="61837." + "1234567890" * 40))),
    ("many-digits-rounding", dumps(with_(TRADE, q="0.30000000000000001665334536938"))),
    ("max-i64-id", dumps(with_(TRADE, t=2**63 - 1))),
]


@pytest.mark.parametrize("frame", [f for _, f in GOOD_FRAMES], ids=[n for n, _ in GOOD_FRAMES])
def test_good_frames_equal_the_reference_in_both_entry_points(frame: bytes) -> None:
    expected = ref_record(frame, RECV)
    assert expected[0] != "error", "bad test case"
    got = assert_entry_points_agree([frame], [RECV])[0]
    assert got == expected


def test_long_decimals_round_like_python() -> None:
    price = "61837." + "1234567890" * 40  # a 405-character decimal string
    ev = core.parse_frame(dumps(with_(TRADE, p=price)), RECV)
    assert isinstance(ev, core.Trade)
    assert ev.price == float(price)
    halfway = "9007199254740993"  # 2**53 + 1: ties-to-even rounds down
    ev = core.parse_frame(dumps(with_(TRADE, p=halfway)), RECV)
    assert isinstance(ev, core.Trade)
    assert ev.price == float(halfway) == 9007199254740992.0
    just_above = "9007199254740993.0000000000000000000000000001"
    ev = core.parse_frame(dumps(with_(TRADE, p=just_above)), RECV)
    assert isinstance(ev, core.Trade)
    assert ev.price == float(just_above) == 9007199254740994.0


def test_recv_time_defaults_to_now() -> None:
    before = time.time_ns()
    ev = core.parse_frame(dumps(TRADE))
    single_default = ev.recv_time_ns
    batch = core.parse_frames([dumps(TRADE), dumps(TICKER)])
    after = time.time_ns()
    assert before <= single_default <= after
    for table in (batch.trades, batch.book_tickers):
        (recv,) = table["recv_time_ns"].tolist()
        assert before <= recv <= after


def test_parse_frames_with_no_frames() -> None:
    batch = core.parse_frames([], np.zeros(0, dtype=np.int64))
    assert batch.n_frames == 0
    assert all(n == 0 for n in batch.counts().values())
    assert len(batch.trades["frame"]) == 0
    assert len(batch.errors["frame"]) == 0


# --------------------------------------------------------------------------------------------
# Bad frames
# --------------------------------------------------------------------------------------------

_TRADE_TEXT = dumps(TRADE)
_DEPTH_TEXT = dumps(DEPTH)
_I64_OVER = 2**63

BAD_FRAMES: list[tuple[str, bytes, type[core.ParseError] | tuple[type[core.ParseError], ...]]] = [
    # malformed
    ("empty", b"", core.MalformedFrame),
    ("whitespace-only", b"   ", core.MalformedFrame),
    ("not-json", b"hello", core.MalformedFrame),
    ("truncated", _TRADE_TEXT[:-1], core.MalformedFrame),
    ("truncated-half", _TRADE_TEXT[: len(_TRADE_TEXT) // 2], core.MalformedFrame),
    ("truncated-combined", combined("btcusdt@trade", TRADE)[:-1], core.MalformedFrame),
    ("trailing-comma", _TRADE_TEXT[:-1] + b",}", core.MalformedFrame),
    ("trailing-garbage", _TRADE_TEXT + b"x", core.MalformedFrame),
    ("two-objects", _TRADE_TEXT + _TRADE_TEXT, core.MalformedFrame),
    ("top-level-array", b"[1,2,3]", core.MalformedFrame),
    ("top-level-string", b'"trade"', core.MalformedFrame),
    ("top-level-number", b"42", core.MalformedFrame),
    ("top-level-null", b"null", core.MalformedFrame),
    ("nan-literal", _TRADE_TEXT.replace(b'"M":true', b'"M":NaN'), core.MalformedFrame),
    ("single-quotes", _TRADE_TEXT.replace(b'"s"', b"'s'"), core.MalformedFrame),
    ("not-utf8-in-value", _TRADE_TEXT.replace(b"BTCUSDT", b"BTC\xffUSDT"), core.MalformedFrame),
    ("not-utf8-in-key", _TRADE_TEXT.replace(b'"M"', b'"\xc3"'), core.MalformedFrame),
    (
        "not-utf8-surrogate",
        _TRADE_TEXT.replace(b"BTCUSDT", b"BTC\xed\xa0\x80USDT"),
        core.MalformedFrame,
    ),
    ("overlong-utf8", _TRADE_TEXT.replace(b"BTCUSDT", b"BTC\xc0\xafUSDT"), core.MalformedFrame),
    ("duplicate-key", _TRADE_TEXT.replace(b'"E":', b'"E":1,"E":'), core.MalformedFrame),
    ("duplicate-price", _TRADE_TEXT[:-1] + b',"p":"1.0"}', core.MalformedFrame),
    (
        "duplicate-stream-key",
        b'{"stream":"btcusdt@trade","stream":"btcusdt@trade","data":' + _TRADE_TEXT + b"}",
        core.MalformedFrame,
    ),
    (
        "duplicate-in-data",
        combined("btcusdt@trade", TRADE).replace(b'"t":', b'"t":1,"t":'),
        core.MalformedFrame,
    ),
    (
        "level-garbage-after-qty",
        _DEPTH_TEXT.replace(b'"0.10000000"]', b'"0.10000000"x]'),
        core.MalformedFrame,
    ),
    (
        "level-missing-comma",
        _DEPTH_TEXT.replace(b'"61730.17000000",', b'"61730.17000000" '),
        core.MalformedFrame,
    ),
    (
        "level-trailing-comma",
        _DEPTH_TEXT.replace(b'"0.10000000"]', b'"0.10000000",]'),
        core.MalformedFrame,
    ),
    (
        "level-truncated",
        _DEPTH_TEXT[: _DEPTH_TEXT.index(b'"0.10000000"') + 12],
        core.MalformedFrame,
    ),
    # wrong types
    ("price-number", dumps(with_(TRADE, p=61837.63)), core.WrongType),
    ("qty-number", dumps(with_(TRADE, q=0.02)), core.WrongType),
    ("price-null", dumps(with_(TRADE, p=None)), core.WrongType),
    ("trade-id-string", dumps(with_(TRADE, t="3735683259")), core.WrongType),
    ("event-time-string", dumps(with_(TRADE, E="1723161255343")), core.WrongType),
    ("trade-id-float", dumps(with_(TRADE, t=3735683259.5)), core.WrongType),
    ("trade-id-bool", dumps(with_(TRADE, t=True)), core.WrongType),
    ("m-string", dumps(with_(TRADE, m="true")), core.WrongType),
    ("m-int", dumps(with_(TRADE, m=1)), core.WrongType),
    ("symbol-number", dumps(with_(TRADE, s=5)), core.WrongType),
    ("agg-first-id-string", dumps(with_(AGG_TRADE, f="27781")), core.WrongType),
    ("depth-bids-string", dumps(with_(DEPTH, b="61737.63")), core.WrongType),
    ("depth-level-numbers", dumps(with_(DEPTH, a=[[61837.64, 1.54698]])), core.WrongType),
    ("depth-U-string", dumps(with_(DEPTH, U="50093239189")), core.WrongType),
    ("ticker-bid-number", dumps(with_(TICKER, b=61837.63)), core.WrongType),
    ("ticker-update-id-string", dumps(with_(TICKER, u="50093239212")), core.WrongType),
    (
        "partial-last-update-id-string",
        combined("btcusdt@depth5", with_(PARTIAL, lastUpdateId="1")),
        core.WrongType,
    ),
    ("shutdown-E-string", dumps(with_(SHUTDOWN, E="1723161255999")), core.WrongType),
    # missing fields
    *[
        (f"trade-missing-{key}", dumps(without(TRADE, key)), core.MissingField)
        for key in ("E", "s", "t", "p", "q", "T", "m")
    ],
    *[
        (f"agg-missing-{key}", dumps(without(AGG_TRADE, key)), core.MissingField)
        for key in ("a", "f", "l", "p")
    ],
    *[
        (f"depth-missing-{key}", dumps(without(DEPTH, key)), core.MissingField)
        for key in ("E", "s", "U", "u", "b", "a")
    ],
    *[
        (f"ticker-missing-{key}", dumps(without(TICKER, key)), core.MissingField)
        for key in ("s", "b", "B", "a", "A")
    ],
    *[
        (
            f"partial-missing-{key}",
            combined("btcusdt@depth5", without(PARTIAL, key)),
            core.MissingField,
        )
        for key in ("bids", "asks")
    ],
    ("shutdown-missing-E", dumps({"e": "serverShutdown"}), core.MissingField),
    ("wrapped-shutdown-missing-E", dumps({"event": {"e": "serverShutdown"}}), core.MissingField),
    # invalid values
    ("negative-price", dumps(with_(TRADE, p="-61837.63000000")), core.InvalidValue),
    # zero trade price/qty and zero level price: rejected by the implementation (the contract
    # does not say so; see the report)
    ("zero-trade-price", dumps(with_(TRADE, p="0.00000000")), core.InvalidValue),
    ("zero-trade-qty", dumps(with_(TRADE, q="0")), core.InvalidValue),
    ("zero-level-price", dumps(with_(DEPTH, b=[["0.0", "1.0"]])), core.InvalidValue),
    ("negative-qty", dumps(with_(TRADE, q="-0.02000000")), core.InvalidValue),
    ("negative-zero-qty", dumps(with_(TRADE, q="-0.0")), core.InvalidValue),
    ("negative-level-qty", dumps(with_(DEPTH, b=[["61737.63", "-1.0"]])), core.InvalidValue),
    ("negative-ticker-ask", dumps(with_(TICKER, a="-61837.64")), core.InvalidValue),
    ("price-1e400", dumps(with_(TRADE, p="1e400")), core.InvalidValue),
    ("price-exponent", dumps(with_(TRADE, p="6.183763e4")), core.InvalidValue),
    ("price-NaN", dumps(with_(TRADE, p="NaN")), core.InvalidValue),
    ("price-nan", dumps(with_(TRADE, p="nan")), core.InvalidValue),
    ("price-inf", dumps(with_(TRADE, p="inf")), core.InvalidValue),
    ("price-Infinity", dumps(with_(TRADE, p="Infinity")), core.InvalidValue),
    ("qty--inf", dumps(with_(TRADE, q="-inf")), core.InvalidValue),
    ("price-400-digits", dumps(with_(TRADE, p="9" * 400)), core.InvalidValue),
    ("price-400-digits-fraction", dumps(with_(TRADE, p="1" * 400 + ".5")), core.InvalidValue),
    ("level-price-400-digits", dumps(with_(DEPTH, a=[["7" * 400, "1.0"]])), core.InvalidValue),
    ("price-empty", dumps(with_(TRADE, p="")), core.InvalidValue),
    ("price-letters", dumps(with_(TRADE, p="abc")), core.InvalidValue),
    ("price-hex", dumps(with_(TRADE, p="0x10")), core.InvalidValue),
    ("price-leading-space", dumps(with_(TRADE, p=" 61837.63")), core.InvalidValue),
    ("price-trailing-space", dumps(with_(TRADE, p="61837.63 ")), core.InvalidValue),
    ("price-plus-sign", dumps(with_(TRADE, p="+61837.63")), core.InvalidValue),
    ("price-two-dots", dumps(with_(TRADE, p="61837.63.1")), core.InvalidValue),
    ("price-underscore", dumps(with_(TRADE, p="61_837.63")), core.InvalidValue),
    ("trade-id-over-i64", dumps(with_(TRADE, t=_I64_OVER)), core.InvalidValue),
    ("trade-id-huge", dumps(with_(TRADE, t=10**30)), core.InvalidValue),
    ("event-time-huge", dumps(with_(TRADE, E=int("9" * 400))), core.InvalidValue),
    (
        "trade-id-1e400",
        _TRADE_TEXT.replace(b'"t":3735683259', b'"t":1e400'),
        (core.WrongType, core.InvalidValue),
    ),
    # unknown events
    (
        "kline",
        dumps({"e": "kline", "E": 1723161255343, "s": "BTCUSDT", "k": {"t": 1, "o": "1.0"}}),
        core.UnknownEvent,
    ),
    (
        "kline-combined",
        combined("btcusdt@kline_1m", {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {}}),
        core.UnknownEvent,
    ),
    (
        "24hrTicker",
        dumps({"e": "24hrTicker", "E": 1, "s": "BTCUSDT", "c": "1.0"}),
        core.UnknownEvent,
    ),
    ("empty-event-type", dumps(with_(TRADE, e="")), core.UnknownEvent),
    ("event-type-case", dumps(with_(TRADE, e="Trade")), core.UnknownEvent),
    ("wrapped-unknown", dumps({"event": {"e": "maintenance", "E": 1}}), core.UnknownEvent),
    ("empty-object", b"{}", (core.UnknownEvent, core.MalformedFrame)),
    ("subscribe-ack", b'{"result":null,"id":1}', (core.UnknownEvent, core.MalformedFrame)),
    # structure of the combined wrapper
    (
        "combined-data-not-object",
        b'{"stream":"btcusdt@trade","data":"x"}',
        (core.WrongType, core.MalformedFrame),
    ),
    ("combined-no-data", b'{"stream":"btcusdt@trade"}', (core.MissingField, core.MalformedFrame)),
    # symbol mismatch between the stream name and the payload
    ("mismatch-trade", combined("ethusdt@trade", TRADE), (core.InvalidValue, core.MalformedFrame)),
    (
        "mismatch-depth",
        combined("ethusdt@depth@100ms", DEPTH),
        (core.InvalidValue, core.MalformedFrame),
    ),
    (
        "mismatch-ticker",
        combined("ethusdt@bookTicker", TICKER),
        (core.InvalidValue, core.MalformedFrame),
    ),
    (
        "mismatch-agg",
        combined("btcusdc@aggTrade", AGG_TRADE),
        (core.InvalidValue, core.MalformedFrame),
    ),
]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [(f, e) for _, f, e in BAD_FRAMES],
    ids=[n for n, _, _ in BAD_FRAMES],
)
def test_bad_frame_raises_the_contract_error(
    frame: bytes, expected: type[core.ParseError] | tuple[type[core.ParseError], ...]
) -> None:
    with pytest.raises(expected) as info:
        core.parse_frame(frame, RECV)
    assert str(info.value), "the error message names the problem"
    # Same outcome, same reason, through the batch entry point.
    assert_entry_points_agree([frame], [RECV])


def test_bad_frames_land_in_errors_and_the_good_ones_around_them_parse() -> None:
    good = [f for _, f in GOOD_FRAMES]
    frames: list[bytes] = []
    expected_errors: dict[int, type[core.ParseError] | tuple[type[core.ParseError], ...]] = {}
    for i, (_, bad, exc) in enumerate(BAD_FRAMES):
        frames.append(good[i % len(good)])
        expected_errors[len(frames)] = exc
        frames.append(bad)
    frames.append(good[0])
    recv = [RECV + i for i in range(len(frames))]

    batch = core.parse_frames(frames, np.array(recv, dtype=np.int64))
    assert batch.n_frames == len(frames)
    errors = batch.errors
    assert errors["frame"].tolist() == sorted(expected_errors)
    assert len(batch.error_messages) == len(expected_errors)
    for frame_index, code, message in zip(
        errors["frame"].tolist(), errors["reason_code"].tolist(), batch.error_messages, strict=True
    ):
        expected = expected_errors[frame_index]
        classes = expected if isinstance(expected, tuple) else (expected,)
        assert core.ERROR_REASONS[code] in {reason_name(c) for c in classes}, (
            f"frame {frame_index} {frames[frame_index][:120]!r}: reason "
            f"{core.ERROR_REASONS[code]!r}, expected one of {classes}"
        )
        assert message
    # Every frame, good and bad, matches parse_frame and (for good ones) the reference.
    singles = assert_entry_points_agree(frames, recv)
    for i, frame in enumerate(frames):
        if i not in expected_errors:
            assert singles[i] == ref_record(frame, recv[i]), i


# --------------------------------------------------------------------------------------------
# REST bodies
# --------------------------------------------------------------------------------------------

REST_DEPTH = dumps(PARTIAL)
REST_TRADES_ROWS: list[dict[str, Any]] = [
    {
        "id": 3735683259,
        "price": "61837.63000000",
        "qty": "0.02000000",
        "quoteQty": "1236.75260000",
        "time": 1723161255342,
        "isBuyerMaker": True,
        "isBestMatch": True,
    },
    {
        "id": 3735683260,
        "price": "61837.64000000",
        "qty": "0.00100000",
        "quoteQty": "61.83764000",
        "time": 1723161255350,
        "isBuyerMaker": False,
        "isBestMatch": True,
    },
]
REST_TRADES = dumps(REST_TRADES_ROWS)


def test_rest_depth_good() -> None:
    snap = core.parse_rest_depth(REST_DEPTH, "BTCUSDT", RECV)
    assert isinstance(snap, core.DepthSnapshot)
    assert snap.symbol == "BTCUSDT"
    assert snap.last_update_id == 50093239218
    assert snap.bids == [(61837.63, 3.78826), (61837.62, 0.617)]
    assert snap.asks == [(61837.64, 1.54698)]
    assert snap.event_time_ms is None
    assert snap.recv_time_ns == RECV
    assert event_record(snap) == event_record(ref.parse_rest_depth(REST_DEPTH, "BTCUSDT", RECV))
    before = time.time_ns()
    default_recv = core.parse_rest_depth(REST_DEPTH, "BTCUSDT").recv_time_ns
    assert before <= default_recv <= time.time_ns()


def test_rest_trades_good() -> None:
    trades = core.parse_rest_trades(REST_TRADES, "BTCUSDT", RECV)
    assert isinstance(trades, list)
    assert len(trades) == 2
    first, second = trades
    assert isinstance(first, core.Trade)
    assert (first.symbol, first.trade_id, first.price, first.qty) == (
        "BTCUSDT",
        3735683259,
        61837.63,
        0.02,
    )
    assert first.trade_time_ms == first.event_time_ms == 1723161255342
    assert (first.side, first.is_buyer_maker, first.recv_time_ns) == ("sell", True, RECV)
    assert (second.side, second.is_buyer_maker) == ("buy", False)
    assert second.event_time_ms == second.trade_time_ms == 1723161255350
    expected = ref.parse_rest_trades(REST_TRADES, "BTCUSDT", RECV)
    assert [event_record(t) for t in trades] == [event_record(t) for t in expected]
    assert core.parse_rest_trades(b"[]", "BTCUSDT", RECV) == []
    before = time.time_ns()
    (row,) = core.parse_rest_trades(dumps(REST_TRADES_ROWS[:1]), "BTCUSDT")
    assert before <= row.recv_time_ns <= time.time_ns()


BAD_REST_DEPTH: list[
    tuple[str, bytes, type[core.ParseError] | tuple[type[core.ParseError], ...]]
] = [
    ("truncated", REST_DEPTH[:-3], core.MalformedFrame),
    ("not-utf8", REST_DEPTH.replace(b"61837.62", b"61837.6\xff"), core.MalformedFrame),
    ("array", b"[]", core.MalformedFrame),
    ("duplicate-key", REST_DEPTH.replace(b'"asks"', b'"bids"'), core.MalformedFrame),
    ("missing-lastUpdateId", dumps(without(PARTIAL, "lastUpdateId")), core.MissingField),
    ("missing-asks", dumps(without(PARTIAL, "asks")), core.MissingField),
    ("lastUpdateId-string", dumps(with_(PARTIAL, lastUpdateId="50093239218")), core.WrongType),
    ("level-numbers", dumps(with_(PARTIAL, bids=[[61837.63, 3.78826]])), core.WrongType),
    ("negative-qty", dumps(with_(PARTIAL, asks=[["61837.64", "-1"]])), core.InvalidValue),
    ("nan-price", dumps(with_(PARTIAL, asks=[["NaN", "1"]])), core.InvalidValue),
    (
        "error-body",
        b'{"code":-1121,"msg":"Invalid symbol."}',
        (core.MissingField, core.UnknownEvent),
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b, e) for _, b, e in BAD_REST_DEPTH],
    ids=[n for n, _, _ in BAD_REST_DEPTH],
)
def test_rest_depth_bad(
    body: bytes, expected: type[core.ParseError] | tuple[type[core.ParseError], ...]
) -> None:
    with pytest.raises(expected):
        core.parse_rest_depth(body, "BTCUSDT", RECV)


def _row(**changes: Any) -> bytes:
    return dumps([REST_TRADES_ROWS[0], with_(REST_TRADES_ROWS[1], **changes)])


def _row_without(key: str) -> bytes:
    return dumps([REST_TRADES_ROWS[0], without(REST_TRADES_ROWS[1], key)])


BAD_REST_TRADES: list[
    tuple[str, bytes, type[core.ParseError] | tuple[type[core.ParseError], ...]]
] = [
    ("truncated", REST_TRADES[:-2], core.MalformedFrame),
    ("object", dumps(REST_TRADES_ROWS[0]), (core.MalformedFrame, core.WrongType)),
    ("row-not-object", b"[1]", (core.MalformedFrame, core.WrongType)),
    ("duplicate-key", REST_TRADES.replace(b'"quoteQty"', b'"qty"', 1), core.MalformedFrame),
    *[
        (f"missing-{k}", _row_without(k), core.MissingField)
        for k in ("id", "price", "qty", "time", "isBuyerMaker")
    ],
    ("price-number", _row(price=61837.64), core.WrongType),
    ("id-string", _row(id="3735683260"), core.WrongType),
    ("time-string", _row(time="1723161255350"), core.WrongType),
    ("isBuyerMaker-string", _row(isBuyerMaker="false"), core.WrongType),
    ("negative-qty", _row(qty="-0.001"), core.InvalidValue),
    ("inf-price", _row(price="inf"), core.InvalidValue),
    ("huge-price", _row(price="9" * 400), core.InvalidValue),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b, e) for _, b, e in BAD_REST_TRADES],
    ids=[n for n, _, _ in BAD_REST_TRADES],
)
def test_rest_trades_bad(
    body: bytes, expected: type[core.ParseError] | tuple[type[core.ParseError], ...]
) -> None:
    with pytest.raises(expected):
        core.parse_rest_trades(body, "BTCUSDT", RECV)


# --------------------------------------------------------------------------------------------
# Capture text
# --------------------------------------------------------------------------------------------


def test_capture_text_line_indexing_and_snapshot_symbol() -> None:
    lines = [
        b"1000 " + combined("btcusdt@trade", TRADE),
        b"",
        b"3000 " + combined("ethusdt@bookTicker", with_(TICKER, s="ETHUSDT")) + b"\r",
        b"   ",
        b"5000 " + dumps(PARTIAL),
        b"6000 " + combined("btcusdt@depth@100ms", DEPTH),
        b"7000 " + dumps(PARTIAL),
        b"8000 " + b'{"e":"kline"}',
    ]
    data = b"\n".join(lines) + b"\n"
    batch = core.parse_capture(data)
    assert batch.n_frames == len(lines)
    assert batch.trades["frame"].tolist() == [0]
    assert batch.trades["recv_time_ns"].tolist() == [1000]
    assert batch.book_tickers["frame"].tolist() == [2]
    assert batch.depth_updates["frame"].tolist() == [5]
    snaps = batch.depth_snapshots
    assert snaps["frame"].tolist() == [4, 6]
    assert snaps["recv_time_ns"].tolist() == [5000, 7000]
    # Each snapshot takes the symbol of the nearest stream frame before it.
    assert [batch.symbols[c] for c in snaps["symbol"].tolist()] == ["ETHUSDT", "BTCUSDT"]
    assert batch.errors["frame"].tolist() == [7]
    assert core.ERROR_REASONS[batch.errors["reason_code"][0]] == "unknown_event"


def test_capture_snapshot_before_any_stream_frame_is_an_error() -> None:
    data = b"1 " + dumps(PARTIAL) + b"\n2 " + combined("btcusdt@trade", TRADE) + b"\n"
    batch = core.parse_capture(data)
    assert batch.n_frames == 2
    assert batch.errors["frame"].tolist() == [0]
    assert batch.trades["frame"].tolist() == [1]
    assert len(batch.depth_snapshots["frame"]) == 0
