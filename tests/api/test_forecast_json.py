"""The API's direct rendering of forecast entries: the same text as decoding the entry
into a record and ``json.dumps``-ing it, or a fallback to that path."""

from __future__ import annotations

import json
import random

import pytest

from cif.api.streams import MalformedEntry, decode_forecast, forecast_json


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
