"""``cif train``: walk-forward splits without look-ahead, the fit, and the CLI end to end on
the real btc capture."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from numpy.typing import NDArray

from cif.forecast import train as tr
from cif.forecast.labels import CLASSES_2, CLASSES_3, NO_INDEX, class_index
from cif.forecast.models import LogisticModel, load_model
from cif.store.importer import import_file


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cif train")
    tr.add_arguments(parser)
    return parser.parse_args(argv)


def segment(
    events: dict[str, NDArray[Any]], horizon_ms: int, warmup: tuple[int, int] = (0, 0)
) -> tr.Segment:
    return tr.make_segment("btcusdt", "btc", events, {}, horizon_ms, None, None, *warmup)


@pytest.fixture(scope="module")
def seg10(btc_events: dict[str, NDArray[Any]]) -> tr.Segment:
    return segment(btc_events, 10_000, (60_000, 100))


@pytest.mark.parametrize(("horizon_ms", "gap_ms"), [(10_000, 10_000), (1000, 5000), (0, 0)])
def test_walk_forward_never_trains_on_outcomes_from_the_test_range(
    btc_events: dict[str, NDArray[Any]], horizon_ms: int, gap_ms: int
) -> None:
    seg = segment(btc_events, horizon_ms)
    classes = CLASSES_2 if horizon_ms == 0 else CLASSES_3
    _, mask = class_index(seg.label, classes)
    rows = np.flatnonzero(mask)  # pooled position -> row index of the feature table
    ts = seg.table["ts"]
    splits = tr.walk_forward_splits(ts[rows], ts[seg.realized[rows]], 5, gap_ms)
    assert [s.k for s in splits] == [1, 2, 3, 4, 5]
    seen_test: set[int] = set()
    for sp in splits:
        train_rows, test_rows = rows[sp.train], rows[sp.test]
        first_test = int(test_rows.min())
        realized = seg.realized[train_rows]
        assert np.all(realized != NO_INDEX)
        # the core property: no train label is settled by a row of (or after) its test range
        assert int(realized.max()) < first_test
        # ... and it is settled before the gap that precedes the test range (gap >= h)
        assert int(ts[realized].max()) < sp.test_from_ts - gap_ms
        assert int(ts[train_rows].max()) < sp.test_from_ts - gap_ms
        assert int(ts[test_rows].min()) == sp.test_from_ts
        assert int(ts[test_rows].max()) < sp.test_to_ts
        # expanding window: every train row precedes the test block
        assert int(train_rows.max()) < first_test
        assert not seen_test.intersection(test_rows.tolist())
        seen_test.update(test_rows.tolist())
        # the purge really removed rows whose outcomes reach into the gap
        before = rows[ts[rows] < sp.test_from_ts]
        assert sp.purged == before.size - train_rows.size
        if horizon_ms:
            assert sp.purged > 0
    # the test blocks tile the rows from the first boundary on
    assert len(seen_test) == int((ts[rows] >= splits[0].test_from_ts).sum())


def test_walk_forward_on_hand_made_rows() -> None:
    ts = np.arange(0, 100, dtype=np.int64)
    realized_ts = ts + 10
    splits = tr.walk_forward_splits(ts, realized_ts, 3, 10)
    assert [s.test_from_ts for s in splits] == [25, 50, 75]
    s1 = splits[0]
    # train: ts < 15 and realized < 15 -> ts <= 4
    assert s1.train.tolist() == list(range(5))
    assert s1.test.tolist() == list(range(25, 50))
    assert s1.purged == 20
    assert splits[-1].test.tolist() == list(range(75, 100))
    with pytest.raises(tr.UsageError, match="split 1 has 0 train"):
        tr.walk_forward_splits(ts, realized_ts, 3, 30)
    with pytest.raises(tr.UsageError, match="splits must be >= 1"):
        tr.walk_forward_splits(ts, realized_ts, 0, 10)


def test_scaler_and_standardize_match_the_scorer() -> None:
    x = np.array([[1.0, np.nan, 5.0], [3.0, np.nan, 5.0], [np.inf, np.nan, 5.0]])
    mean, scale = tr.fit_scaler(x)
    assert mean.tolist() == [2.0, 0.0, 5.0]
    assert scale.tolist() == [1.0, 1.0, 1.0]  # constant and all-NaN columns: scale 1
    z = tr.standardize(x, mean, scale)
    assert z.tolist() == [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_train_fits_on_the_train_rows_only(seg10: tr.Segment) -> None:
    result = tr.train([seg10], tr.TrainConfig(horizon_ms=10_000, n_splits=3))
    model = result.model
    assert isinstance(model, LogisticModel)
    assert model.classes == CLASSES_3
    assert not any(f in ("mid", "last_price") or f.startswith("vwap_") for f in model.features)
    assert len(result.per_split) == 3
    pooled = result.pooled
    assert set(pooled) == {"model", "base_rate", "heuristic"}
    n_test = sum(s["n_test"] for s in result.per_split)
    assert pooled["model"]["n"] == pooled["base_rate"]["n"] == n_test
    assert model.training["n_test"] == n_test
    for m in pooled.values():
        assert 0.0 < m["log_loss"] < 35
        assert 0.0 <= m["auc"] <= 1.0
    assert "directional" in pooled["model"]
    # the split scalers saw only their train rows: refit split 1 by hand and compare
    sp = result.splits[0]
    _, mask = class_index(seg10.label, CLASSES_3)
    rows = np.flatnonzero(mask)
    x = np.column_stack([seg10.table[f] for f in model.features])[rows]
    mean, _scale = tr.fit_scaler(x[sp.train])
    mean_all, _ = tr.fit_scaler(x)
    np.testing.assert_allclose(model.mean, mean_all)
    assert not np.allclose(mean, mean_all)
    assert result.per_split[0]["train_to_ts"] < result.per_split[0]["test_from_ts"] - 10_000


def test_binary_and_next(btc_events: dict[str, NDArray[Any]]) -> None:
    seg = segment(btc_events, 0, (60_000, 100))
    result = tr.train([seg], tr.TrainConfig(horizon_ms=0, n_splits=2))
    assert result.model.classes == CLASSES_2  # "next" never yields flat: binary implied
    assert result.model.name == "logistic_binary_next"
    assert "heuristic" in result.pooled
    assert result.pooled["model"]["flat_excluded"] == 0


def test_cli_end_to_end(
    btc_capture: Path,
    btc_features: dict[str, NDArray[Any]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "models"
    argv = ["--capture", str(btc_capture), "--horizon", "10s", "--splits", "3", "--out", str(out)]
    with caplog.at_level(logging.INFO, logger="cif.forecast.train"):
        assert tr.run(parse(argv)) == 0
    path = out / "logistic_10s-v1.json"
    assert path.is_file()
    printed = capsys.readouterr().out
    assert "heuristic" in printed
    assert "base_rate" in printed
    assert str(path) in printed
    assert any("split 3:" in r.getMessage() for r in caplog.records)
    model = load_model(path)
    assert isinstance(model, LogisticModel)
    raw = json.loads(path.read_text())
    assert raw["training"]["symbols"] == ["btcusdt"]
    assert len(raw["training"]["splits"]) == 3
    assert raw["feature_config"]["time_windows_ms"] == [1000, 10000, 60000]
    for key in ("log_loss", "brier", "auc", "accuracy"):
        assert isinstance(raw["validation"][key], float)
        assert isinstance(raw["validation"]["base_rate"][key], float)
    # the artifact scores the real feature table: finite probabilities summing to 1
    p = model.predict_table(btc_features)
    assert p.shape == (len(btc_features["ts"]), 3)
    assert np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    # a second run publishes the next version, never overwrites
    argv2 = [*argv[:4], "--splits", "2", "--out", str(out), "--to", "2024-08-08T23:58:00"]
    assert tr.run(parse(argv2)) == 0
    assert (out / "logistic_10s-v2.json").is_file()
    assert load_model(out / "logistic_10s-v2.json").version == 2


def test_cli_reads_the_duckdb_history(
    btc_capture: Path, seg10: tr.Segment, duckdb_path: Path, tmp_path: Path
) -> None:
    """``--db`` reads the same events back (``cif.store.event_log``): same rows, same labels."""
    with duckdb.connect(str(duckdb_path)) as con:
        import_file(con, btc_capture)
    out = tmp_path / "m"
    argv = ["--db", str(duckdb_path), "--symbols", "btcusdt", "--splits", "2", "--out", str(out)]
    assert tr.run(parse(argv)) == 0
    raw = json.loads((out / "logistic_10s-v1.json").read_text())
    assert raw["training"]["symbols"] == ["btcusdt"]
    _, mask = class_index(seg10.label, CLASSES_3)
    assert raw["training"]["n_train"] == int(mask.sum())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no input"),
        (["--capture", "/nonexistent/x_1.gz"], "no such capture file"),
        (["--capture", "{btc}", "--horizon", "10"], "bad --horizon"),
        (["--capture", "{btc}", "--splits", "0"], "--splits must be >= 1"),
        (["--capture", "{btc}", "--gap", "1s"], "must be >= the horizon"),
        (["--capture", "{btc}", "--db", "x.duckdb"], "either --capture or --db"),
        (["--db", "{tmp}/missing.duckdb", "--symbols", "btcusdt"], "no DuckDB history"),
        (["--db", "{tmp}/missing.duckdb"], "--db needs --symbols"),
        (["--capture", "{btc}", "--feature-windows", "1q"], "bad feature setting"),
        (["--capture", "{btc}", "--C", "0"], "--C must be a positive"),
        (["--capture", "{btc}", "--name", "a/b"], "bad --name"),
        (
            ["--capture", "{btc}", "--splits", "400", "--horizon", "1m", "--to", "{to}"],
            "split 1",
        ),
        (["--capture", "{btc}", "--from", "yesterday"], "bad time"),
        (["--capture", "{btc}", "--symbol", "a", "--symbol", "b"], "2 --symbol values"),
        (["--capture", "{btc}", "--warmup", "soon"], "bad --warmup"),
    ],
)
def test_cli_bad_arguments_exit_2(
    extra: list[str],
    message: str,
    btc_capture: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    argv = [a.format(btc=btc_capture, tmp=tmp_path, to="2024-08-08T23:57:00") for a in extra]
    with caplog.at_level(logging.ERROR, logger="cif.forecast.train"):
        assert tr.run(parse([*argv, "--out", str(tmp_path / "m")])) == 2
    assert message in caplog.text
    assert not (tmp_path / "m").exists()


def test_train_usage_errors(seg10: tr.Segment) -> None:
    with pytest.raises(tr.UsageError, match=r"unknown feature\(s\) \['nope'\]"):
        tr.train([seg10], tr.TrainConfig(horizon_ms=10_000, features=["ofi_10s", "nope"]))
    with pytest.raises(tr.UsageError, match="must be >= the horizon"):
        tr.train([seg10], tr.TrainConfig(horizon_ms=10_000, gap_ms=5000))
    with pytest.raises(tr.UsageError, match="no input data"):
        tr.train([], tr.TrainConfig(horizon_ms=10_000))


def test_time_and_symbol_parsing() -> None:
    assert tr.parse_time_ms("1723161300000") == 1723161300000
    assert tr.parse_time_ms("2024-08-08T23:55:00") == 1723161300000
    assert tr.parse_time_ms("2024-08-09T01:55:00+02:00") == 1723161300000
    assert tr._symbol_from_path(Path("/d/btcusdt_20240808.gz")) == "btcusdt"
    assert tr.warmup_setting(
        "auto", {"time_windows_ms": [1000, 60000], "count_windows": [100]}
    ) == (
        60000,
        100,
    )
    assert tr.warmup_setting("0", {}) == (0, 0)
    assert tr.warmup_setting("30s", {}) == (30000, 0)


def test_period_filter_drops_outcomes_outside_it(btc_events: dict[str, NDArray[Any]]) -> None:
    ts = btc_events["ts"]
    lo, hi = int(ts[0]) + 100_000, int(ts[0]) + 200_000
    seg = tr.make_segment("btcusdt", "btc", btc_events, {}, 10_000, lo, hi)
    t = seg.table["ts"]
    assert t.min() >= lo
    assert t.max() < hi
    ok = seg.realized != NO_INDEX
    assert np.all(t[seg.realized[ok]] < hi)
    # same outcomes as on the whole log, except those settled at or after `hi`: none there
    full = segment(btc_events, 10_000)
    first = int(np.searchsorted(full.table["ts"], lo))
    rows = np.arange(first, first + t.size)
    full_real = full.realized[rows]
    settled_in = (full_real != NO_INDEX) & (full.table["ts"][np.maximum(full_real, 0)] < hi)
    np.testing.assert_array_equal(ok, settled_in)
    assert (~ok).sum() > 50  # the last 10 s of rows
    np.testing.assert_array_equal(seg.label[ok], full.label[rows][ok])
    np.testing.assert_array_equal(seg.realized[ok], full_real[ok] - first)
    np.testing.assert_array_equal(
        seg.table["ofi_10s"][:100], full.table["ofi_10s"][first : first + 100]
    )  # features are warm: computed on the whole log, then cut
