"""Robustness of the ``cif._core`` parser: hostile input is parsed or rejected, never a crash.

Every input is either parsed or rejected with a ``cif._core.ParseError`` subclass (never any
other exception), and the single-frame (``parse_frame``) and batch (``parse_frames``) entry
points give the same result, event or error reason. Where both the Rust parser and the
pure-Python reference accept an input, they agree on every value, bit for bit.

Inputs: every prefix of a sample of real frames, byte-mutated real frames, random bytes,
random JSON objects built from Binance-like keys and values, and valid frames with random
decimal strings (correct rounding). Sized to run in well under 30 s on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cif._core as core
from cif.ingest.capture import iter_capture
from reference.agreement import assert_entry_points_agree, ref_record

RECV = 1_723_161_254_087_896_568
SYMBOL = "BTCUSDT"

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def real_frames(btc_capture: Path) -> dict[str, list[bytes]]:
    """A sample of real frames of each kind from the btc capture (small ones for diffs)."""
    sample: dict[str, list[bytes]] = {"trade": [], "depth": [], "bookTicker": [], "snapshot": []}
    for line in iter_capture(btc_capture):
        payload = line.payload
        if payload.startswith(b'{"lastUpdateId"'):
            sample["snapshot"].append(payload)
            continue
        for kind, marker in (
            ("trade", b"@trade"),
            ("depth", b"@depth"),
            ("bookTicker", b"@bookTicker"),
        ):
            if marker in payload[:40] and len(sample[kind]) < 12:
                if kind == "depth" and len(payload) > 900:
                    break
                sample[kind].append(payload)
                break
        if all(len(v) >= 12 for k, v in sample.items() if k != "snapshot") and sample["snapshot"]:
            break
    assert all(sample.values()), {k: len(v) for k, v in sample.items()}
    return sample


def check(frame: bytes) -> tuple[Any, ...]:
    """Parse through both entry points (they must agree) and compare with the reference."""
    (got,) = assert_entry_points_agree([frame], [RECV], symbol=SYMBOL)
    expected = ref_record(frame, RECV, symbol=SYMBOL)
    if got[0] != "error" and expected[0] != "error":
        assert got == expected, f"{frame[:300]!r}: Rust {got!r} != reference {expected!r}"
    return got


# --------------------------------------------------------------------------------------------
# Every prefix of real frames
# --------------------------------------------------------------------------------------------


def test_every_proper_prefix_of_real_frames_is_malformed(
    real_frames: dict[str, list[bytes]],
) -> None:
    frames = [f for kind in ("trade", "depth", "bookTicker") for f in real_frames[kind][:4]]
    # The 64 kB REST snapshot: its first 3 levels per side, re-serialized the way Binance does.
    snap = json.loads(real_frames["snapshot"][0])
    small = {
        "lastUpdateId": snap["lastUpdateId"],
        "bids": snap["bids"][:3],
        "asks": snap["asks"][:3],
    }
    frames.append(json.dumps(small, separators=(",", ":")).encode())

    failures: list[str] = []
    for frame in frames:
        assert check(frame)[0] != "error", frame  # the whole frame parses
        prefixes = [frame[:n] for n in range(len(frame))]
        records = assert_entry_points_agree(prefixes, [RECV] * len(prefixes), symbol=SYMBOL)
        for prefix, record in zip(prefixes, records, strict=True):
            if record != ("error", "malformed_frame"):
                failures.append(f"{len(prefix)}-byte prefix ...{prefix[-40:]!r}: got {record!r}")
    assert not failures, (
        f"{len(failures)} truncated frames not reported as malformed_frame, e.g.:\n"
        + "\n".join(failures[:8])
    )


def test_sparse_prefixes_of_the_real_snapshot_are_malformed(
    real_frames: dict[str, list[bytes]],
) -> None:
    frame = real_frames["snapshot"][0]
    cuts = list(range(0, 400)) + list(range(400, len(frame), 997)) + [len(frame) - 1]
    prefixes = [frame[:n] for n in cuts]
    records = assert_entry_points_agree(prefixes, [RECV] * len(prefixes), symbol=SYMBOL)
    bad = [(n, r) for n, r in zip(cuts, records, strict=True) if r != ("error", "malformed_frame")]
    assert not bad, bad[:8]


# --------------------------------------------------------------------------------------------
# Mutated real frames, random bytes
# --------------------------------------------------------------------------------------------

INTERESTING_BYTES = st.one_of(
    st.integers(0, 255),
    st.sampled_from(list(b'"{}[],:0123456789.-+eE \\nul\x00\xff\xc3\x80')),
)


@st.composite
def mutated(draw: st.DrawFn, frames: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(frames)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "replace" and data:
            data[pos] = draw(INTERESTING_BYTES)
        elif op == "insert":
            data.insert(pos, draw(INTERESTING_BYTES))
        elif op == "delete" and data:
            del data[pos]
        elif op == "duplicate" and data:
            end = min(len(data), pos + draw(st.integers(1, 16)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@FUZZ
@given(data=st.data())
def test_mutated_real_frames(data: st.DataObject, real_frames: dict[str, list[bytes]]) -> None:
    pool = real_frames["trade"] + real_frames["depth"] + real_frames["bookTicker"]
    check(data.draw(mutated(pool)))


@FUZZ
@given(frame=st.binary(max_size=256))
def test_random_bytes(frame: bytes) -> None:
    check(frame)


@settings(max_examples=100, deadline=None)
@given(frame=st.binary(max_size=16).map(lambda b: b'{"e":"trade","s":"' + b + b'"}'))
def test_random_bytes_inside_a_string(frame: bytes) -> None:
    check(frame)


# --------------------------------------------------------------------------------------------
# Random Binance-like JSON
# --------------------------------------------------------------------------------------------

KEYS = [
    "e", "E", "s", "t", "p", "q", "T", "m", "M", "U", "u", "b", "a", "B", "A", "f", "l",
    "lastUpdateId", "bids", "asks", "stream", "data", "event", "id", "result",
]  # fmt: skip

DECIMALS = st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,30})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    DECIMALS,
    st.sampled_from(
        ["trade", "aggTrade", "depthUpdate", "serverShutdown", "kline", "BTCUSDT", "btcusdt",
         "ETHUSDT", "btcusdt@trade", "btcusdt@depth5@100ms", "NaN", "inf", "1e400", "", "0"]
    ),
    st.text(max_size=12),
)  # fmt: skip
LEVELS = st.lists(st.lists(st.one_of(DECIMALS, SCALARS), max_size=3), max_size=4)
VALUES = st.one_of(SCALARS, LEVELS, st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=4))

TEMPLATES: list[dict[str, Any]] = [
    {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259, "p": "61837.63000000",
     "q": "0.02000000", "T": 1723161255342, "m": True, "M": True},
    {"e": "aggTrade", "E": 1723161255343, "s": "BTCUSDT", "a": 26129, "p": "0.01633102",
     "q": "4.70443515", "f": 27781, "l": 27781, "T": 1723161255342, "m": False, "M": True},
    {"e": "depthUpdate", "E": 1723161255208, "s": "BTCUSDT", "U": 50093239189, "u": 50093239202,
     "b": [["61737.63000000", "0.00000000"]], "a": [["61837.64000000", "1.54698000"]]},
    {"u": 50093239212, "s": "BTCUSDT", "b": "61837.63000000", "B": "3.78826000",
     "a": "61837.64000000", "A": "1.54698000"},
    {"lastUpdateId": 50093239218, "bids": [["61837.63000000", "3.78826000"]],
     "asks": [["61837.64000000", "1.54698000"]]},
    {"e": "serverShutdown", "E": 1723161255999},
]  # fmt: skip
STREAMS = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker",
           "btcusdt@depth5@100ms", "ethusdt@trade", "btcusdt", "@trade", ""]  # fmt: skip


@st.composite
def binance_like(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        obj: dict[str, Any] = dict(draw(st.sampled_from(TEMPLATES)))
        for key in draw(st.lists(st.sampled_from(sorted(obj)), max_size=2, unique=True)):
            del obj[key]
        obj.update(draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)))
    else:
        obj = draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=10))
    wrapped: Any = obj
    choice = draw(st.integers(0, 3))
    if choice == 1:
        wrapped = {"stream": draw(st.sampled_from(STREAMS)), "data": obj}
    elif choice == 2:
        wrapped = {"event": obj}
    return json.dumps(wrapped, separators=(",", ":")).encode()


@FUZZ
@given(frame=binance_like())
def test_random_binance_like_json(frame: bytes) -> None:
    check(frame)


@settings(max_examples=60, deadline=None)
@given(frames=st.lists(st.one_of(binance_like(), st.binary(max_size=64)), max_size=25))
def test_mixed_batches_match_single_frames_row_by_row(frames: list[bytes]) -> None:
    assert_entry_points_agree(frames, [RECV + i for i in range(len(frames))], symbol=SYMBOL)


# --------------------------------------------------------------------------------------------
# Valid frames with random decimals: correct rounding
# --------------------------------------------------------------------------------------------

POSITIVE_DECIMALS = st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,40})?", fullmatch=True).filter(
    lambda s: float(s) > 0.0
)
IDS = st.integers(0, 2**63 - 1)


@FUZZ
@given(
    price=POSITIVE_DECIMALS,
    qty=POSITIVE_DECIMALS,
    trade_id=IDS,
    event_time=IDS,
    m=st.booleans(),
    combined=st.booleans(),
)
def test_valid_trades_with_random_decimals_equal_float_of_the_string(
    price: str, qty: str, trade_id: int, event_time: int, m: bool, combined: bool
) -> None:
    data = {"e": "trade", "E": event_time, "s": SYMBOL, "t": trade_id, "p": price, "q": qty,
            "T": event_time, "m": m}  # fmt: skip
    obj: Any = {"stream": "btcusdt@trade", "data": data} if combined else data
    frame = json.dumps(obj, separators=(",", ":")).encode()
    got = check(frame)
    assert got == ref_record(frame, RECV, symbol=SYMBOL)
    event = core.parse_frame(frame, RECV)
    assert isinstance(event, core.Trade)
    assert event.price == float(price)
    assert event.qty == float(qty)
    assert event.trade_id == trade_id


@FUZZ
@given(
    bids=st.lists(
        st.tuples(POSITIVE_DECIMALS, st.from_regex(r"[0-9]{1,12}\.[0-9]{8}", fullmatch=True)),
        max_size=6,
    ),
    asks=st.lists(
        st.tuples(POSITIVE_DECIMALS, st.from_regex(r"[0-9]{1,12}\.[0-9]{8}", fullmatch=True)),
        max_size=6,
    ),
)
def test_valid_depth_updates_with_random_levels(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    data = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": 5, "u": 9,
            "b": [list(b) for b in bids], "a": [list(a) for a in asks]}  # fmt: skip
    frame = json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()
    assert check(frame)[0] == "DepthUpdate"
    event = core.parse_frame(frame, RECV)
    assert isinstance(event, core.DepthUpdate)
    assert event.bids == [(float(p), float(q)) for p, q in bids]
    assert event.asks == [(float(p), float(q)) for p, q in asks]
