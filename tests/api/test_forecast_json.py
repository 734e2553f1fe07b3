"""The API's direct rendering of forecast entries: the same text as decoding the entry
into a record and ``json.dumps``-ing it, or a fallback to that path."""

from __future__ import annotations

import json
import random
import re

import pytest

from cif._core import forecast_records_json
from cif.api.streams import MalformedEntry, decode_forecast, entry_of, forecast_json


def _slow(fields: dict[str, str]) -> str:
    return json.dumps(decode_forecast("1-0", fields), separators=(",", ":"), allow_nan=False)


def _fields(rng: random.Random, flat: bool) -> dict[str, str]:
    def prob() -> str:
        return rng.choice(
            [repr(rng.random()), "0.0", "1.0", "1e-300", "nan", "inf", "5e-324", "0.1"]
        )

    f = {
        "symbol": rng.choice(["BTCUSDT", "ETHUSDT", 'we"ird\\sym', "é✓"]),
        "ts": str(rng.randrange(2**41)),
        "seq": str(rng.randrange(2**40)),
        "recv_ts_ns": str(rng.randrange(2**62)),
        "horizon": rng.choice(["1s", "10s", "next-mid"]),
        "horizon_ms": str(rng.choice([0, 1000, 10000])),
        "model": rng.choice(["heuristic", "logreg", "a\tb"]),
        "model_version": str(rng.randrange(-5, 100)),
        "prob_up": prob(),
        "prob_down": prob(),
        "published_ns": str(rng.randrange(2**62)),
    }
    if flat:
        f["prob_flat"] = prob()
    keys = list(f)
    rng.shuffle(keys)  # whatever order the entry has, the record's order is fixed
    return {k: f[k] for k in keys}


def test_documented_entries_render_exactly_as_the_record_path() -> None:
    rng = random.Random(7)
    for i in range(5000):
        fields = _fields(rng, flat=i % 2 == 0)
        assert forecast_json(fields) == _slow(fields)


@pytest.mark.parametrize(
    "change",
    [
        {"extra": "kept as a string"},
        {"seq": "12.5"},
        {"prob_up": "up"},
        {"model_version": ""},
    ],
)
def test_anything_else_falls_back_to_the_record_path(change: dict[str, str]) -> None:
    fields = {**_fields(random.Random(1), flat=False), **change}
    assert forecast_json(fields) is None
    if "extra" in change:
        assert json.loads(_slow(fields))["extra"] == "kept as a string"
    else:
        with pytest.raises(MalformedEntry):
            _slow(fields)


def test_a_missing_field_falls_back() -> None:
    fields = _fields(random.Random(2), flat=True)
    del fields["model"]
    assert forecast_json(fields) is None


def _odd_number(rng: random.Random, good: str) -> str:
    """Texts int()/float() read differently from the plain forms, or refuse."""
    return rng.choice(
        [good, f" {good}", f"+{good}", f"{good}\n", "1_000", "0x10", "", "١٢", "1e5", "-0", "00"]
    )


_INT = re.compile(r"-?[0-9]{1,19}")
_FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*(e[-+]?[0-9]+)?|nan|inf)")
_TEXTS = ("symbol", "horizon", "model")


def _plain(fields: dict[str, str]) -> bool:
    """The entries a forecaster writes: printable ASCII texts, plain numbers."""
    for name, value in fields.items():
        if name in _TEXTS:
            if not (value.isascii() and value.isprintable() and '"' not in value):
                return False
            if "\\" in value:
                return False
        elif name.startswith("prob_"):
            if not _FLOAT.fullmatch(value):
                return False
        elif not (_INT.fullmatch(value) and -(2**63) <= int(value) < 2**63):
            return False
    return True


def test_the_rust_records_are_forecast_json_or_decline() -> None:
    """``forecast_records_json`` (the API's batch path) gives forecast_json's text for every
    entry it renders, renders every plain entry of the documented layouts, and declines
    (None) the rest, which then take forecast_json."""
    rng = random.Random(11)
    entries = []
    for i in range(5000):
        fields = _fields(rng, flat=i % 3 == 0)
        if i % 4 == 0:  # some numbers in forms a forecaster never writes
            name = rng.choice(["seq", "ts", "model_version", "prob_up", "prob_flat"])
            if name in fields:
                fields[name] = _odd_number(rng, fields[name])
        if i % 50 == 0:
            fields["extra"] = "x"
        entries.append((f"{i}-0", fields))
    records = forecast_records_json(entries)
    assert len(records) == len(entries)
    rendered = plain = 0
    for (_, fields), got in zip(entries, records, strict=True):
        plain += "extra" not in fields and _plain(fields)
        if got is not None:
            assert got == forecast_json(fields)
            rendered += 1
        else:
            assert "extra" in fields or not _plain(fields), fields
    assert plain > 800
    assert rendered >= plain  # and more: int()/float() forms it reads as Python does
    # the fields as the stream reply holds them (names and values alternating): the same
    flat = [[i, [x for kv in f.items() for x in kv]] for i, f in entries]
    assert forecast_records_json(flat) == records
    # ... and as bytes, as the hub's forecasts tailer reads them
    raw = [[i.encode(), [x.encode() for x in f]] for i, f in flat]
    assert forecast_records_json(raw) == records
    assert [entry_of(r) for r in raw] == entries


def test_the_rust_records_decline_other_shapes() -> None:
    good = {
        "symbol": "btcusdt",
        "seq": "7",
        "ts": "1",
        "recv_ts_ns": "2",
        "horizon": "10s",
        "horizon_ms": "10000",
        "model": "heuristic",
        "model_version": "1",
        "prob_up": "0.5",
        "prob_down": "0.5",
        "published_ns": "3",
    }
    bad_value: dict[str, object] = {**good, "seq": 5}
    got = forecast_records_json(
        [("1-0", good), ("2-0", bad_value), ("3-0", {}), ("4-0", None)]  # type: ignore[list-item]
    )
    assert got == [forecast_json(good), None, None, None]
    assert got[0] is not None
    # bytes that are not UTF-8: declined here, and the Python path reads them replaced, as
    # a decoding client does
    odd = [x.encode() for kv in good.items() for x in kv]
    odd[odd.index(b"model") + 1] = b"heur\xffistic"
    assert forecast_records_json([(b"1-0", odd)]) == [None]
    entry_id, fields = entry_of((b"1-0", odd))
    assert (entry_id, fields["model"]) == ("1-0", "heur\ufffdistic")
    flat = [x for kv in good.items() for x in kv]
    twice = [*flat, "seq", "8"]  # a name twice: its dict keeps the last, Python's path
    got = forecast_records_json(
        [("1-0", flat), ("2-0", twice), ("3-0", flat[:-1]), ("4-0", [*flat[:-1], 3])]
    )
    assert got == [forecast_json(good), None, None, None]
