"""The feature processor's stream-entry codecs in Rust against their Python references.

Encoding: ``cif._core.pack_feature_rows`` (behind ``packed_rows``) must give the bytes of
the Python encoder (``tests/reference/entry_codec_ref.py``: ``%d``, and ``repr(float)``
joined by ``,`` in one field, as RESP bulk strings) on the btc capture's feature rows and
on generated doubles (NaN, ±inf, ±0.0, subnormals, the extremes, powers of ten around the
switches between positional and scientific notation, random bit patterns).

Decoding: ``cif._core.decode_event_entries`` (behind ``decode_entries``) must give the
columns of ``EventLogBuilder.add_trade_entry`` / ``add_book_entry`` + ``build()`` bit for bit
on every entry of the btc capture (as Redis returns them, and as published), and refuse
exactly the entries the builder raises for, by index, decoding the rest.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from cif._core import FeatureEngine, compute_features, feature_digest_rows, pack_feature_rows
from cif.bus.keys import book_key, trades_key
from cif.bus.owned_symbols import sample
from cif.bus.stream_writer import StreamEntry, encode_value
from cif.features.entries import packed_rows
from cif.features.event_log import (
    EventColumns,
    EventLogBuilder,
    capture_stream_entries,
    decode_entries,
    events_from_capture,
    events_from_entries,
)
from cif.features.leases import Lease, lease_key
from cif.features.processor import (
    FeatureProcessor,
    ProcessorConfig,
    _Input,
    _last_value,
    _Session,
)
from reference import entry_codec_ref as ref

SYMBOL = "btcusdt"
Entry = tuple[bool, Mapping[Any, Any]]


# -- helpers ---------------------------------------------------------------------------------


def assert_same_columns(got: EventColumns, want: EventColumns) -> None:
    """Same keys in the same order, dtypes, shapes and bytes (NaN bits included)."""
    assert list(got) == list(want)
    for key in want:
        g, w = got[key], want[key]
        assert (g.dtype, g.shape) == (w.dtype, w.shape), key
        assert g.tobytes() == w.tobytes(), key


def as_redis(entry: StreamEntry) -> tuple[bool, dict[bytes, bytes]]:
    """An entry as a group read returns it: bytes names and values."""
    fields = {k.encode(): encode_value(v) for k, v in entry.fields.items()}
    return entry.key == trades_key(SYMBOL), fields


# -- data -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc_entries(btc_capture: Path) -> list[StreamEntry]:
    entries = capture_stream_entries(btc_capture, SYMBOL)
    return sorted(entries, key=lambda e: int(e.fields["seq"]))


@pytest.fixture(scope="module")
def btc_redis_entries(btc_entries: list[StreamEntry]) -> list[tuple[bool, dict[bytes, bytes]]]:
    return [as_redis(e) for e in btc_entries]


@pytest.fixture(scope="module")
def btc_rows(btc_capture: Path) -> dict[str, NDArray[Any]]:
    """Rows after every event (trades and book events: kind 0 and 1)."""
    return compute_features(events_from_capture(btc_capture, SYMBOL), emit_on_book=True)


# -- encoding ---------------------------------------------------------------------------------


def test_packed_rows_match_the_python_encoder_on_the_capture(
    btc_rows: dict[str, NDArray[Any]],
) -> None:
    assert set(btc_rows["kind"].tolist()) == {0, 1}
    want = ref.packed_rows(btc_rows)
    assert len(btc_rows) == 4 + len(FeatureEngine().feature_names)
    assert want[0] == 5  # the four row fields and the features' field
    assert packed_rows(btc_rows) == want
    # In the processor's batch sizes too (slices are views into the columns).
    n = len(btc_rows["seq"])
    for start in range(0, n, 4999):
        chunk = {k: v[start : start + 4999] for k, v in btc_rows.items()}
        assert packed_rows(chunk) == ref.packed_rows(chunk)


def test_process_packed_gives_the_entries_and_digest_of_process(btc_capture: Path) -> None:
    """``FeatureEngine.process_packed`` (the processor's one call) against ``process`` then
    ``pack_feature_rows`` and ``feature_digest_rows`` on a twin engine, batch by batch over
    the capture, trade rows and book rows; a refused batch changes neither engine."""
    events = events_from_capture(btc_capture, SYMBOL)
    fused, twin = FeatureEngine(emit_on_book=True), FeatureEngine(emit_on_book=True)
    n = len(events["seq"])
    sizes = [1, 7, 64, 333, 4999]
    start, i, rows_seen = 0, 0, 0
    while start < n:
        stop = min(n, start + sizes[i % len(sizes)])
        batch = {k: v[start:stop] for k, v in events.items()}
        n_fields, packed, digest = fused.process_packed(batch)
        rows = twin.process(batch)
        assert (n_fields, packed) == pack_feature_rows(rows)
        assert digest == feature_digest_rows(rows)[1]
        rows_seen += len(packed)
        start, i = stop, i + 1
    assert rows_seen > 1000
    assert fused.snapshot() == twin.snapshot()
    # A batch the engine refuses: the same error, and neither engine moved.
    bad = {k: v[:3] for k, v in events.items()}  # seqs already taken
    with pytest.raises(ValueError, match="not greater than the previous seq") as refused:
        fused.process_packed(bad)
    with pytest.raises(ValueError, match="not greater than the previous seq") as want:
        twin.process(bad)
    assert str(refused.value) == str(want.value)
    assert fused.snapshot() == twin.snapshot()


def _rows_of(values: Sequence[float], width: int = 3) -> dict[str, NDArray[Any]]:
    """``values`` laid out in ``width`` feature columns (the last row padded with 0.0)."""
    flat = list(values) + [0.0] * (-len(values) % width)
    matrix = np.array(flat, dtype=np.float64).reshape(-1, width)
    n = matrix.shape[0]
    rows: dict[str, NDArray[Any]] = {
        "seq": np.arange(1, n + 1, dtype=np.int64) * 1_000_003,
        "ts": np.full(n, 1723161255308, dtype=np.int64),
        "recv_ts_ns": -np.arange(n, dtype=np.int64) * 1_723_161_254_087_891,
        "kind": (np.arange(n) % 2).astype(np.uint8),
    }
    for j in range(width):
        rows[f"f{j}"] = matrix[:, j]
    return rows


def _powers_of_ten() -> list[float]:
    out: list[float] = []
    for k in range(-325, 310):
        x = float(f"1e{k}")
        out += [x, float(np.nextafter(x, 0.0)), float(np.nextafter(x, math.inf)), 1.5 * x]
    return out


SPECIAL = [
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1e-5,
    1e-4,
    9.999999999999999e-5,
    1e15,
    1e16,
    1e17,
    9999999999999998.0,
    1234567890123456.0,
    12345678901234567.0,
    123.0,
    0.1,
    2.0**53,
    2.0**63,
    2.0**-1074,
]


def test_packed_rows_match_on_special_values_and_powers_of_ten() -> None:
    rows = _rows_of(SPECIAL + _powers_of_ten())
    assert pack_feature_rows(rows) == ref.packed_rows(rows)


def test_packed_rows_match_on_random_doubles() -> None:
    """Random bit patterns, and full 53-bit mantissas scaled by small powers of two: values
    with a short exact decimal expansion, where the exact value often lies halfway between
    the two closest shortest candidates and Python picks the even one (…244.25 ->
    '…244.2')."""
    rng = np.random.default_rng(20240808)
    bits = rng.integers(0, 2**64, size=60_000, dtype=np.uint64).view(np.float64)
    mantissas = rng.integers(2**52, 2**53, size=60_000).astype(np.float64)
    ties = np.ldexp(mantissas, rng.integers(-12, 30, size=60_000))
    assert repr(float(np.float64(-873832213815244.25))) == "-873832213815244.2"
    for values in (bits, ties, -ties):
        rows = _rows_of(values.tolist(), width=40)
        assert pack_feature_rows(rows) == ref.packed_rows(rows)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
            st.sampled_from(SPECIAL),
            st.integers(-330, 310).map(lambda k: float(f"1e{k}")),
            st.floats(min_value=1e-6, max_value=1e-3),
            st.floats(min_value=1e14, max_value=1e18),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 5),
)
def test_packed_rows_match_on_generated_doubles(values: list[float], width: int) -> None:
    rows = _rows_of(values, width)
    n_fields, packed = pack_feature_rows(rows)
    assert (n_fields, packed) == ref.packed_rows(rows)
    # The values read back bit for bit (every NaN is the same undefined value).
    parts = packed[0][1].split(b"\r\n")
    assert parts[17].split(b",") == [b"f%d" % j for j in range(width)]
    stored = [float(v) for v in parts[19].split(b",")[: min(width, len(values))]]
    for got, want in zip(stored, values, strict=False):
        assert (math.isnan(got) and math.isnan(want)) or struct.pack("<d", got) == struct.pack(
            "<d", want
        )


def test_packed_rows_column_handling() -> None:
    rows = _rows_of([1.5, -2.25, math.nan, 7.0], width=2)
    rows["f0"] = rows["f0"].astype(np.float32)  # widened exactly, like tolist() does
    rows["kind"] = rows["kind"].astype(np.int32)
    rows["f1"] = np.asfortranarray(np.stack([rows["f1"], rows["f1"]]))[0]  # strided view
    assert not rows["f1"].flags.c_contiguous
    assert pack_feature_rows(rows) == ref.packed_rows(rows)
    empty = {k: v[:0] for k, v in rows.items()}
    assert pack_feature_rows(empty) == (5, [])
    with pytest.raises(ValueError, match="contains ','"):
        pack_feature_rows({**rows, "a,b": np.array([1.0, 2.0])})
    with pytest.raises(TypeError, match="float64"):
        pack_feature_rows({**rows, "f1": np.array([1, 2], dtype=np.int64)})
    with pytest.raises(TypeError, match="int64"):
        pack_feature_rows({**rows, "seq": np.array([1, 2], dtype=np.uint64)})
    with pytest.raises(ValueError, match="has 1 rows, seq has 2"):
        pack_feature_rows({**rows, "f1": np.array([1.0])})
    with pytest.raises(TypeError, match="non-str key"):
        pack_feature_rows({**rows, 5: np.array([1.0, 2.0])})  # type: ignore[dict-item]
    with pytest.raises(KeyError):
        pack_feature_rows({k: v for k, v in rows.items() if k != "ts"})


# -- decoding: valid entries ------------------------------------------------------------------


@pytest.mark.parametrize("depth_levels", [10, 5, 0, 12])
def test_decoder_matches_the_builder_on_the_capture(
    btc_redis_entries: list[tuple[bool, dict[bytes, bytes]]], depth_levels: int
) -> None:
    got, failures = decode_entries(btc_redis_entries, depth_levels)
    want, refused = ref.decode(btc_redis_entries, depth_levels)
    assert failures == []
    assert refused == []
    assert len(got["seq"]) == len(btc_redis_entries) == 37_797
    assert_same_columns(got, want)


def test_decoder_reads_published_python_values_too(btc_entries: list[StreamEntry]) -> None:
    """In-process entries: ``str`` names, ``int`` and ``str`` values."""
    entries = [(e.key == trades_key(SYMBOL), e.fields) for e in btc_entries]
    got, failures = decode_entries(entries)
    want, _ = ref.decode(entries, 10)
    assert failures == []
    assert_same_columns(got, want)
    # ... and so does events_from_entries (merging the two streams by seq).
    shuffled = btc_entries[1::2] + btc_entries[::2]
    assert_same_columns(events_from_entries(shuffled, trades_key(SYMBOL), book_key(SYMBOL)), want)


def test_events_from_entries_names_an_undecodable_entry(btc_entries: list[StreamEntry]) -> None:
    entries = list(btc_entries[:100])
    i = next(k for k, e in enumerate(entries) if e.key == trades_key(SYMBOL))
    e = entries[i]
    entries[i] = StreamEntry(e.key, e.entry_id, {**e.fields, "price": "garbage"})
    with pytest.raises(ValueError, match=r"trades:\{btcusdt\} entry \S+-0: field 'price' is not"):
        events_from_entries(entries, trades_key(SYMBOL), book_key(SYMBOL))


def test_decoder_returns_the_builders_empty_columns() -> None:
    got, failures = decode_entries([], 3)
    assert failures == []
    assert_same_columns(got, EventLogBuilder(3).build())


# -- decoding: malformed entries ---------------------------------------------------------------

TRADE_FIELDS = ("seq", "ts", "recv_ts_ns", "price", "qty", "side")
BOOK_FIELDS = (
    "seq",
    "event_ts",
    "recv_ts_ns",
    "bid_price",
    "bid_qty",
    "ask_price",
    "ask_qty",
    "bids",
    "asks",
)

#: (applies to trades, change, the start of the Rust message)
BREAKAGES: list[tuple[bool, dict[str, Any], str]] = [
    (True, {"side": b"BUY"}, "trade entry has side 'BUY', expected 'buy' or 'sell'"),
    (True, {"side": b"\xff"}, "field 'side' is not UTF-8"),
    (True, {"side": 1}, "trade entry has side '1'"),
    (True, {"price": b"garbage"}, "field 'price' is not a number: 'garbage'"),
    (True, {"qty": b""}, "field 'qty' is not a number: ''"),
    (True, {"qty": None}, "field 'qty' is None, expected a number"),
    (True, {"seq": b"1.5"}, "field 'seq' is not an integer: '1.5'"),
    (True, {"ts": b"1e5"}, "field 'ts' is not an integer"),
    (True, {"recv_ts_ns": b"--1"}, "field 'recv_ts_ns' is not an integer"),
    (True, {"price": [1.0]}, "field 'price' is of type list, expected a number"),
    (False, {"bids": b"[[broken"}, "field 'bids' is not valid JSON: expecting value at char 2"),
    (False, {"asks": b"[[1,2]] x"}, "field 'asks' is not valid JSON"),
    (False, {"asks": b"[[1,2],]"}, "field 'asks' is not valid JSON"),
    (False, {"bids": b"[[1,2],[3]]"}, "field 'bids' level 1 has no qty"),
    (False, {"bids": b'[[1,"x"]]'}, "field 'bids' level 0 qty is not a number"),
    (False, {"asks": b"[[1,null]]"}, "field 'asks' level 0 qty is not a number"),
    (False, {"asks": b"[[1,[2]]]"}, "field 'asks' level 0 qty is not a number"),
    (False, {"bids": b"[5]"}, "field 'bids' level 0 is a JSON number"),
    (False, {"bids": b"5"}, "field 'bids' is a JSON number, not a list of levels"),
    (False, {"bids": b"null"}, "field 'bids' is a JSON null"),
    (False, {"bids": 7}, "field 'bids' is the integer 7, expected JSON text"),
    (False, {"bids": b"[[1,2]]\xff"}, "field 'bids' is not valid JSON"),
    (False, {"bid_price": b"1,5"}, "field 'bid_price' is not a number: '1,5'"),
    (False, {"event_ts": b"x"}, "field 'event_ts' is not an integer: 'x'"),
]


def _broken_batch(
    entries: list[tuple[bool, dict[bytes, bytes]]],
) -> tuple[list[Entry], dict[int, str]]:
    """``entries`` with every breakage and every missing field applied to some entries:
    the batch and the expected message start per broken index."""
    batch: list[Entry] = list(entries)
    expected: dict[int, str] = {}
    trades = [i for i, (t, _) in enumerate(entries) if t]
    books = [i for i, (t, _) in enumerate(entries) if not t]
    cases: list[tuple[bool, dict[str, Any] | str, str]] = list(BREAKAGES)
    cases += [(True, name, f"stream entry has no field '{name}'") for name in TRADE_FIELDS]
    cases += [(False, name, f"stream entry has no field '{name}'") for name in BOOK_FIELDS]
    for k, (is_trade, change, message) in enumerate(cases):
        i = (trades if is_trade else books)[7 * k + 3]
        fields: dict[Any, Any] = dict(entries[i][1])
        if isinstance(change, str):
            del fields[change.encode()]
        else:
            fields.update({name.encode(): value for name, value in change.items()})
        batch[i] = (is_trade, fields)
        expected[i] = message
    return batch, expected


def test_decoder_refuses_exactly_what_the_builder_refuses(
    btc_redis_entries: list[tuple[bool, dict[bytes, bytes]]],
) -> None:
    batch, expected = _broken_batch(btc_redis_entries[:3000])
    got, failures = decode_entries(batch, 10)
    want, refused = ref.decode(batch, 10)
    assert [i for i, _ in failures] == refused == sorted(expected)
    for i, message in failures:
        assert message.startswith(expected[i]), (i, message)
    assert_same_columns(got, want)  # the rest decodes as before
    assert len(got["seq"]) == len(batch) - len(expected)


def _flat(fields: dict[Any, Any]) -> list[Any]:
    return [x for kv in fields.items() for x in kv]


def test_fields_as_a_stream_reply_holds_them_decode_as_their_dict(
    btc_redis_entries: list[tuple[bool, dict[bytes, bytes]]],
) -> None:
    """Keys and values alternating (the processor hands the reply on as it is): the same
    columns and the same refusals as the dicts; a repeated key: the later one wins."""
    batch, _ = _broken_batch(btc_redis_entries[:3000])
    flat = [(t, _flat(f)) for t, f in batch]
    want, want_failures = decode_entries(batch, 10)
    got, failures = decode_entries(flat, 10)
    assert failures == want_failures
    assert len(failures) > 10
    assert_same_columns(got, want)
    t, f = btc_redis_entries[0]
    repeated = [*_flat(f), b"seq", b"999", b"seq", b"12"]
    assert _last_value(repeated, b"seq") == b"12"
    assert _last_value(_flat(f), b"seq") == f[b"seq"]
    assert _last_value([b"ts", b"1", b"seq", b"3"], b"seq") == b"3"
    assert _last_value(_flat(f), b"nope") is None
    got, _ = decode_entries([(t, repeated)], 10)
    assert got["seq"].tolist() == [12]
    with pytest.raises(ValueError, match="in pairs, got 3 items"):
        decode_entries([(t, [b"seq", b"1", b"ts"])], 10)
    assert sample([b"seq", b"1", "ts", 2]) == sample({b"seq": b"1", "ts": 2}) == "seq=1, ts=2"


def test_str_names_win_over_bytes_names_like_the_builder() -> None:
    fields = {
        b"seq": b"1",
        "seq": "2",
        b"ts": b"3",
        b"recv_ts_ns": b"4",
        b"price": b"5.5",
        "price": "6.5",
        b"qty": bytearray(b"0.5"),
        b"side": b"buy",
    }
    got, failures = decode_entries([(True, fields)], 2)
    want, _ = ref.decode([(True, fields)], 2)
    assert failures == []
    assert_same_columns(got, want)
    assert (got["seq"][0], got["price"][0], got["qty"][0]) == (2, 6.5, 0.5)


def test_decoder_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="depth_levels must be >= 0"):
        decode_entries([], -1)
    with pytest.raises(TypeError):
        decode_entries([[True, {}]], 1)  # type: ignore[list-item]


# -- decoding: generated text ------------------------------------------------------------------

NUMBERISH = st.text(alphabet="0123456789_.eE+- \tnaifINFty", max_size=12)


def _trade(**change: Any) -> dict[bytes, Any]:
    fields: dict[bytes, Any] = {
        b"seq": b"4",
        b"ts": b"1723161255342",
        b"recv_ts_ns": b"1723161254087896568",
        b"price": b"61837.63",
        b"qty": b"0.02",
        b"side": b"sell",
    }
    fields.update({k.encode(): v for k, v in change.items()})
    return fields


def _book(bids: Any, asks: Any = b"[]", **change: Any) -> dict[bytes, Any]:
    fields: dict[bytes, Any] = {
        b"seq": b"3",
        b"event_ts": b"1723161255308",
        b"recv_ts_ns": b"1723161254087891268",
        b"bid_price": b"61837.63",
        b"bid_qty": b"3.78826",
        b"ask_price": b"61837.64",
        b"ask_qty": b"1.54698",
        b"bids": bids,
        b"asks": asks,
    }
    fields.update({k.encode(): v for k, v in change.items()})
    return fields


def _same_outcome(entries: list[Entry], depth_levels: int = 3) -> None:
    got, failures = decode_entries(entries, depth_levels)
    want, refused = ref.decode(entries, depth_levels)
    assert [i for i, _ in failures] == refused, failures
    assert_same_columns(got, want)


@settings(max_examples=400, deadline=None)
@given(NUMBERISH, NUMBERISH, st.booleans())
def test_numbers_are_read_with_pythons_rules(text: str, int_text: str, as_str: bool) -> None:
    value: str | bytes = text if as_str else text.encode()
    _same_outcome(
        [
            (True, _trade(price=value)),
            (True, _trade(seq=int_text.encode())),
            (False, _book(b"[]", ask_qty=value)),
        ]
    )


_QTY = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    NUMBERISH,
    st.none(),
    st.just([1.5]),
)
_LEVEL = st.lists(_QTY, min_size=0, max_size=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_LEVEL, max_size=6),
    st.integers(0, 5),
    st.one_of(st.none(), st.integers(0, 200)),
    st.sampled_from(["", " ", "\n\t"]),
)
def test_depth_json_is_read_like_pythons_json(
    levels: list[list[Any]], depth_levels: int, cut: int | None, pad: str
) -> None:
    text = json.dumps(levels, separators=(",", ":") if pad == "" else (", ", ": "))
    text = pad + text + pad
    if cut is not None:  # usually broken JSON
        text = text[: cut % (len(text) + 1)]
    _same_outcome(
        [(False, _book(text.encode())), (False, _book(b"[]", text)), (True, _trade())],
        depth_levels,
    )


def test_json_oddities_python_reads_the_same_way() -> None:
    cases = [
        b"[[1,NaN],[1,Infinity],[1,-Infinity]]",
        b"[[1,-0],[1,-0.0],[1,0],[1,1e400],[1,12345678901234567890123]]",
        b'[["1","\\u0033"],[{"a":[1,{"b":null}]},"  2_5  "],[1,2,3,4]]',
        b'[[1,"1e-05"],[1,"-nan"],[1,"inf"],[1,"+1_0.5"]]',
        b" [ ] ",
        b'[[1,"x"]',
        b'[[1,"\\x"]]',
        b'[[1,"a\nb"]]',
        b"[[1,01]]",
        b"[[1,.5]]",
        b"[[1,-]]",
        b"[[1,2.]]",
        b"[[1,1e]]",
    ]
    _same_outcome([(False, _book(c)) for c in cases], 3)


# -- the processor's decode step ---------------------------------------------------------------


def _inputs(entries: list[tuple[bool, dict[Any, Any]]]) -> list[_Input]:
    return [_Input(int(f[b"seq"]), t, f"{k}-0".encode(), f) for k, (t, f) in enumerate(entries)]


def test_session_decode_skips_seen_duplicates_and_bad_entries() -> None:
    """``_Session._decode``: every entry acked; seen, duplicate and undecodable entries
    counted (a duplicate even when it is also undecodable) and left out of the columns."""

    async def go() -> None:
        proc = FeatureProcessor(ProcessorConfig(redis_url="redis://127.0.0.1:1/0"))
        lease = Lease(proc.client, lease_key(SYMBOL), proc.owner, 5.0)
        session = _Session(proc, SYMBOL, lease)
        session.engine = FeatureEngine()
        session.engine.push_trade(4, 1, 1, 100.0, 1.0, 1)
        entries: list[tuple[bool, dict[Any, Any]]] = [
            (True, _trade(seq=b"3")),  # seen
            (True, _trade(seq=b"4")),  # seen
            (True, _trade(seq=b"5")),
            (True, _trade(seq=b"5", price=b"7.0")),  # duplicate
            (False, _book(b"[[broken", seq=b"6")),  # undecodable
            (False, _book(b"[[1,2.5]]", seq=b"6")),  # fine: the 6 before did not decode
            (True, _trade(seq=b"7", side=b"x")),  # undecodable
            (True, _trade(seq=b"7", price=b"garbage")),  # undecodable too
            (True, _trade(seq=b"8")),
            (True, _trade(seq=b"8", price=b"garbage")),  # duplicate (and undecodable)
            (False, _book(b"[[1,0.5],[2,0.25]]", seq=b"9")),
        ]
        ready = _inputs(entries)
        decoded = session._decode(ready)
        assert decoded is not None
        events, kept = decoded
        assert [p.seq for p in kept] == [5, 6, 8, 9]
        want, _ = ref.decode([entries[i] for i in (2, 5, 8, 10)], session.depth_width)
        assert_same_columns(events, want)
        stats = session.stats
        assert stats.seen == 2
        assert dict(stats.bad) == {
            "seq_not_increasing": 2,
            "undecodable_book": 1,
            "undecodable_trade": 2,
        }
        assert len(session.ack_trades) + len(session.ack_book) == len(entries)
        assert session._decode(ready[:2]) is None  # only seen entries
        await proc.client.aclose()

    asyncio.run(go())
