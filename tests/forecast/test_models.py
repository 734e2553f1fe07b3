"""Model wrappers (against a NumPy transcription of the spec's scoring formulas) and the
artifact format (round trip, versioning, every validation error)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from cif.forecast.labels import CLASSES_2, CLASSES_3
from cif.forecast.models import (
    DEFAULT_HEURISTIC_THRESHOLD,
    ArtifactError,
    HeuristicModel,
    LogisticModel,
    default_model,
    feature_matrix,
    load_model,
    model_from_dict,
    next_version,
    versions,
)


def ref_linear(x: Any, mean: Any, scale: Any, coef: Any, intercept: Any) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", over="ignore"):
        z = (np.asarray(x, dtype=np.float64) - mean) / scale
    z[~np.isfinite(z)] = 0.0
    logits = z @ np.asarray(coef).T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def ref_heuristic(x: Any, threshold: float, scale: float, max_prob: float) -> NDArray[np.float64]:
    out = []
    for v in np.asarray(x, dtype=np.float64):
        if not math.isfinite(v) or abs(v) <= threshold:
            p = 0.5
        else:
            p = 0.5 + (max_prob - 0.5) * math.tanh((v - math.copysign(threshold, v)) / scale)
        out.append((1.0 - p, p))
    return np.array(out).reshape(-1, 2)


def logistic(k: int = 3, f: int = 4, seed: int = 0, **kw: Any) -> LogisticModel:
    rng = np.random.default_rng(seed)
    args: dict[str, Any] = {
        "name": "test_logit",
        "version": 1,
        "classes": CLASSES_3 if k == 3 else CLASSES_2,
        "features": [f"f{i}" for i in range(f)],
        "horizon_ms": 10_000,
        "mean": rng.normal(size=f),
        "scale": rng.uniform(0.5, 2.0, size=f),
        "coef": rng.normal(size=(k, f)),
        "intercept": rng.normal(size=k),
    }
    args.update(kw)
    return LogisticModel(**args)


@pytest.mark.parametrize("k", [2, 3])
def test_logistic_predict_matches_the_formula(k: int) -> None:
    m = logistic(k=k, f=5, seed=k)
    rng = np.random.default_rng(1)
    x = rng.normal(scale=3.0, size=(200, 5))
    x[3, 1] = np.nan
    x[7, 0] = np.inf
    x[9, :] = np.nan
    p = m.predict(x)
    assert p.shape == (200, k)
    np.testing.assert_allclose(p, ref_linear(x, m.mean, m.scale, m.coef, m.intercept), atol=1e-12)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    # an all-NaN row is scored at the training mean: softmax of the intercept alone
    np.testing.assert_allclose(p[9], ref_linear(np.zeros((1, 5)), 0, 1, m.coef, m.intercept)[0])
    # extreme inputs stay finite (stable softmax)
    big = m.predict(np.full((1, 5), 1e300))
    assert np.all(np.isfinite(big))
    assert big.sum() == pytest.approx(1.0, abs=1e-12)


def test_logistic_rejects_wrong_width() -> None:
    m = logistic(f=3)
    with pytest.raises(ValueError, match=r"expects x of shape \(n, 3\)"):
        m.predict(np.zeros((2, 4)))
    assert m.predict(np.zeros(3)).shape == (1, 3)  # one row as a vector


def test_heuristic_predict_matches_the_formula() -> None:
    m = HeuristicModel(
        name="h", version=1, horizon_ms=10_000, threshold=2.0, scale=3.0, max_prob=0.8
    )
    x = np.array([-100.0, -2.5, -2.0, 0.0, 1.9, 2.0, 2.1, 7.0, 1e9, np.nan, np.inf, -np.inf])
    p = m.predict(x.reshape(-1, 1))
    np.testing.assert_allclose(p, ref_heuristic(x, 2.0, 3.0, 0.8), atol=1e-12)
    assert p[3].tolist() == [0.5, 0.5]
    assert p[9].tolist() == [0.5, 0.5]
    assert p[7, 1] > 0.5 > p[1, 1]
    assert p[8, 1] == pytest.approx(0.8)
    assert m.classes == CLASSES_2
    assert m.features == ("ofi_10s",)


def test_default_model_on_the_real_capture(btc_features: dict[str, NDArray[Any]]) -> None:
    m = default_model()
    assert (m.name, m.kind, m.horizon, m.horizon_ms) == ("heuristic", "heuristic", "10s", 10_000)
    p = m.predict_table(btc_features)
    assert p.shape == (len(btc_features["ts"]), 2)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    # the threshold is the ~90th percentile of |ofi_10s| on this capture: ~1 row in 10 has a view
    has_view = p[:, 1] != 0.5
    assert 0.05 < has_view.mean() < 0.2
    a = np.abs(btc_features["ofi_10s"])
    assert 0.85 < (a <= DEFAULT_HEURISTIC_THRESHOLD).mean() < 0.95
    assert p[:, 1].max() <= m.max_prob
    assert default_model(horizon="next").horizon_ms == 0


def test_feature_matrix_names_missing_columns(btc_features: dict[str, NDArray[Any]]) -> None:
    x = feature_matrix(btc_features, ["ofi_10s", "queue_imbalance"])
    assert x.shape == (len(btc_features["ts"]), 2)
    assert x.flags.c_contiguous
    with pytest.raises(KeyError, match="nope"):
        feature_matrix(btc_features, ["ofi_10s", "nope"])


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = logistic(k=3, f=4, seed=3)
    m.validation = {"log_loss": 0.5, "auc": float("nan")}
    m.training = {"symbols": ["btcusdt"], "n_train": 10}
    m.feature_config = {"time_windows_ms": [1000]}
    path = m.save(tmp_path)
    assert path.name == "test_logit-v1.json"
    raw = json.loads(path.read_text())
    assert raw["format"] == "cif-model"
    assert raw["format_version"] == 1
    assert raw["kind"] == "logistic"
    assert raw["horizon"] == "10s"
    assert raw["validation"]["auc"] is None  # strict JSON: NaN -> null
    loaded = load_model(path)
    assert isinstance(loaded, LogisticModel)
    assert loaded.to_dict() == m.to_dict()
    x = np.random.default_rng(0).normal(size=(50, 4))
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    with pytest.raises(FileExistsError):
        m.save(tmp_path)
    h = default_model()
    h_loaded = load_model(h.save(tmp_path))
    assert isinstance(h_loaded, HeuristicModel)
    assert h_loaded.to_dict() == h.to_dict()


def test_versions(tmp_path: Path) -> None:
    assert next_version(tmp_path / "missing", "a") == 1
    for name in ("a-v1.json", "a-v3.json", "a-b-v7.json", "b-v9.json", "a-v2.txt", "a-vx.json"):
        (tmp_path / name).write_text("{}")
    assert versions(tmp_path, "a") == [1, 3]
    assert next_version(tmp_path, "a") == 4
    assert next_version(tmp_path, "a-b") == 8
    assert next_version(tmp_path, "c") == 1


def _valid() -> dict[str, Any]:
    return logistic(k=3, f=2, seed=5).to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=2), "unknown format_version 2"),
        (lambda d: d.update(format_version="1"), "unknown format_version '1'"),
        (lambda d: d.update(format="other"), "'format' must be 'cif-model'"),
        (lambda d: d.pop("coef"), r"missing keys \['coef'\]"),
        (lambda d: (d.pop("name"), d.pop("intercept")), r"missing keys \['name', 'intercept'\]"),
        (lambda d: d.update(kind="forest"), "'kind' must be"),
        (lambda d: d.update(mean=[0.0]), "'mean' must have 2 values"),
        (lambda d: d.update(intercept=[0.0, 1.0]), "'intercept' must have 3 values"),
        (lambda d: d.update(coef=[[1.0, 2.0], [1.0, 2.0]]), "coef must have 3 rows"),
        (lambda d: d.update(coef=[[1.0], [1.0, 2.0], [1.0, 2.0]]), "different lengths"),
        (lambda d: d["coef"][1].__setitem__(0, float("nan")), "coef has non-finite"),
        (lambda d: d.update(scale=[1.0, 0.0]), "scale must be > 0"),
        (lambda d: d.update(mean=[1.0, float("inf")]), "'mean' has non-finite"),
        (lambda d: d.update(classes=["up", "flat", "down"]), "classes must be"),
        (lambda d: d.update(horizon="5s"), "disagrees with 'horizon_ms'"),
        (lambda d: d.update(horizon="soon"), "bad horizon"),
        (lambda d: d.update(version=0), "version must be an integer >= 1"),
        (lambda d: d.update(version=True), "version must be an integer >= 1"),
        (lambda d: d.update(name="../evil"), "name"),
        (lambda d: d.update(features=["a", "a"]), "duplicates"),
        (lambda d: d.update(mean="0,1"), "'mean' must be a list"),
        (lambda d: d.update(training=[]), "'training' must be an object"),
    ],
)
def test_artifact_validation_errors(mutate: Any, message: str) -> None:
    d = _valid()
    model_from_dict(d)  # valid before the mutation
    mutate(d)
    with pytest.raises(ArtifactError, match=message):
        model_from_dict(d, source="x.json")
    with pytest.raises(ArtifactError, match=r"^x\.json: "):
        model_from_dict(d, source="x.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(threshold=-1.0), "threshold must be >= 0"),
        (lambda d: d.update(scale=0.0), "scale must be > 0"),
        (lambda d: d.update(max_prob=1.5), r"max_prob must be in \[0.5, 1\]"),
        (lambda d: d.update(classes=list(CLASSES_3)), "binary"),
        (lambda d: d.update(features=["ofi_1s"]), "features must be"),
        (lambda d: d.pop("max_prob"), r"missing keys \['max_prob'\]"),
        (lambda d: d.update(threshold="2"), "'threshold' must be a number"),
    ],
)
def test_heuristic_artifact_validation_errors(mutate: Any, message: str) -> None:
    d = default_model().to_dict()
    model_from_dict(d)
    mutate(d)
    with pytest.raises(ArtifactError, match=message):
        model_from_dict(d)


def test_load_model_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad-v1.json"
    bad.write_text("{not json")
    with pytest.raises(ArtifactError, match="not a readable JSON file"):
        load_model(bad)
    nan = tmp_path / "nan-v1.json"
    d = _valid()
    d["intercept"][0] = float("nan")
    nan.write_text(json.dumps(d))  # Python's json writes NaN; the loader must reject it
    with pytest.raises(ArtifactError, match=f"{nan}: 'intercept' has non-finite"):
        load_model(nan)
    with pytest.raises(ArtifactError, match="expected a JSON object"):
        model_from_dict([1, 2])
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.json")
