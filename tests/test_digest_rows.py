"""The digest's row bytes built in Rust (``feature_digest_rows``, ``forecast_digest_rows``)
against the NumPy reference, on feature rows of the real capture and on forecasts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cif._core import compute_features, feature_digest_rows, forecast_digest_rows
from cif.digest import (
    ChainDigest,
    feature_row_bytes,
    feature_row_bytes_numpy,
    forecast_row_bytes,
    forecast_row_bytes_numpy,
)
from cif.features.event_log import events_from_capture


@pytest.fixture(scope="module")
def real_rows(btc_capture: Path) -> dict[str, Any]:
    rows = compute_features(events_from_capture(btc_capture, "btcusdt"), emit_on_book=True)
    assert len(rows["seq"]) > 20_000
    return rows


def test_real_rows_hash_the_same_bytes(real_rows: dict[str, Any]) -> None:
    names = [k for k in real_rows if k not in ("seq", "ts", "recv_ts_ns", "kind")]
    nan_cells = sum(int(np.isnan(real_rows[k]).sum()) for k in names)
    assert nan_cells > 0  # warm-up rows: the NaN rule is exercised
    n, data = feature_row_bytes(real_rows)
    assert (n, data) == feature_row_bytes_numpy(real_rows)
    assert len(data) == n * (2 + len(names)) * 8
    a, b = ChainDigest("features"), ChainDigest("features")
    a.update_features(real_rows)
    seq = real_rows["seq"]
    b.update_bytes(n, feature_row_bytes_numpy(real_rows)[1], int(seq[0]), int(seq[-1]))
    assert a.hexdigest() == b.hexdigest()


def test_nan_payloads_and_other_dtypes_match_the_reference() -> None:
    odd_nan = np.array([0x7FF8DEADBEEF0001], dtype=np.int64).view(np.float64)[0]
    rows = {
        "seq": np.array([5, 6, 7], dtype=np.int32),
        "ts": [10, 11, 12],
        "recv_ts_ns": np.zeros(3, dtype=np.int64),
        "kind": np.zeros(3, dtype=np.int64),
        "a": np.array([odd_nan, -np.nan, np.inf]),
        "b": np.array([1.5, -0.0, 1e-310], dtype=np.float64)[::-1].copy()[::-1],
        "c": np.array([0.1, 0.2, 0.3], dtype=np.float32),
        "d": np.arange(6, dtype=np.float64)[::2],  # not contiguous
    }
    assert feature_digest_rows(rows) == feature_row_bytes_numpy(rows)
    words = np.frombuffer(feature_digest_rows(rows)[1], dtype="<u8").reshape(3, 6)
    assert words[0, 2] == words[1, 2] == 0x7FF8000000000000


def test_bad_tables_are_clear_errors() -> None:
    good = {"seq": np.arange(3), "ts": np.arange(3), "f": np.zeros(3)}
    with pytest.raises(ValueError, match="column 1 has 2 rows, seq has 3"):
        feature_digest_rows({**good, "f": np.zeros(2)})
    with pytest.raises(TypeError, match="float64"):
        feature_digest_rows({**good, "f": np.array(["x", "y", "z"])})
    with pytest.raises(TypeError, match="non-str key"):
        feature_digest_rows({**good, 3: np.zeros(3)})
    with pytest.raises(KeyError):
        feature_digest_rows({"ts": np.arange(3)})
    empty = np.array([], dtype=np.int64)
    assert feature_digest_rows({"seq": empty, "ts": empty}) == (0, b"")


@pytest.mark.parametrize("k", [2, 3])
def test_forecast_rows_match_the_reference(k: int) -> None:
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.ones(k), size=500)
    probs[rng.random(500) < 0.05] = np.nan  # a row the model failed on
    probs[3, 0] = np.array([0x7FF8DEADBEEF0001], dtype=np.int64).view(np.float64)[0]
    seq = np.cumsum(rng.integers(1, 5, size=500))
    ok = rng.random(500) < 0.9
    for s, p in ((seq, probs), (seq[ok], probs[ok]), (seq.tolist(), probs.tolist())):
        n, data = forecast_row_bytes(s, p)
        assert (n, data) == forecast_row_bytes_numpy(s, p)
        assert len(data) == n * (1 + k) * 8
    assert forecast_row_bytes(seq[:0], probs[:0]) == (0, b"")
    a, b = ChainDigest("forecasts"), ChainDigest("forecasts")
    a.update_forecasts(seq, probs)
    b.update_bytes(500, forecast_row_bytes_numpy(seq, probs)[1], int(seq[0]), int(seq[-1]))
    assert a.hexdigest() == b.hexdigest()


def test_bad_forecast_rows_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="column 1 has 2 rows, seq has 3"):
        forecast_digest_rows(np.arange(3, dtype=np.int64), np.zeros((2, 2)))


def test_forecast_rows_of_any_memory_order_are_read_row_by_row() -> None:
    seq = np.arange(10, dtype=np.int64)
    probs = np.random.default_rng(0).random((10, 3))
    want = forecast_row_bytes_numpy(seq, probs)
    fortran = np.asfortranarray(probs)
    assert fortran.flags.f_contiguous
    assert not fortran.flags.c_contiguous
    assert forecast_digest_rows(seq, fortran) == want
    assert forecast_digest_rows(seq[::-1].copy()[::-1], probs) == want  # a strided seq
    wide = np.zeros((10, 6))
    wide[:, ::2] = probs  # a strided view
    assert forecast_digest_rows(seq, wide[:, ::2]) == want
