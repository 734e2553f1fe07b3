"""Metrics against direct recomputation: batch ``evaluate``, the AUC forms, and the live
``Evaluator`` (cumulative, rolling, base rate from past outcomes only, binary flats)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from cif.forecast.evaluation import (
    AUC_BINS,
    Evaluator,
    auc_bin,
    auc_exact,
    auc_from_histograms,
    base_rate_probs,
    calibration_table,
    evaluate,
)
from cif.forecast.labels import (
    CLASSES_2,
    CLASSES_3,
    DOWN,
    FLAT,
    NO_INDEX,
    NO_LABEL,
    UP,
    label_rows,
)
from cif.forecast.models import default_model


def brute_auc(scores: Any, positive: Any) -> float:
    pos = [s for s, y in zip(scores, positive, strict=True) if y]
    neg = [s for s, y in zip(scores, positive, strict=True) if not y]
    if not pos or not neg:
        return math.nan
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def random_probs(rng: np.random.Generator, n: int, k: int, ties: bool = True) -> NDArray[Any]:
    p = rng.dirichlet(np.ones(k), size=n)
    if ties:  # coarse values: ties in argmax and in prob_up
        p = np.round(p * 4) + 0.25
        p /= p.sum(axis=1, keepdims=True)
    return p


def direct_metrics(p: NDArray[Any], c: list[int], up: int) -> dict[str, float]:
    """Accuracy (ties split), Brier (sum over classes), log loss (clipped), written out."""
    acc = brier = ll = 0.0
    for row, k in zip(p, c, strict=True):
        top = [i for i, q in enumerate(row) if q == row.max()]
        acc += (1.0 / len(top)) if k in top else 0.0
        brier += sum((q - (1.0 if i == k else 0.0)) ** 2 for i, q in enumerate(row))
        ll += -math.log(min(max(row[k], 1e-15), 1.0))
    n = len(c)
    return {
        "accuracy": acc / n,
        "brier": brier / n,
        "log_loss": ll / n,
        "auc": brute_auc(p[:, up], [k == up for k in c]),
    }


def test_auc_exact_against_pair_count() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 60))
        s = rng.integers(0, 6, size=n) / 5.0  # many ties
        y = rng.random(n) < 0.4
        assert auc_exact(s, y) == pytest.approx(brute_auc(s, y), nan_ok=True, abs=1e-12)
    assert math.isnan(auc_exact([0.1, 0.2], [True, True]))
    assert auc_exact([0.1, 0.9], [False, True]) == 1.0
    assert auc_exact([0.5, 0.5], [False, True]) == 0.5


def test_auc_histogram_is_the_pair_count_of_binned_scores() -> None:
    rng = np.random.default_rng(1)
    s = rng.random(400)
    s[:20] = 1.0
    s[20:40] = 0.0
    y = rng.random(400) < s
    hp = [0] * AUC_BINS
    hn = [0] * AUC_BINS
    for v, yy in zip(s, y, strict=True):
        (hp if yy else hn)[auc_bin(float(v))] += 1
    binned = [auc_bin(float(v)) for v in s]
    assert auc_from_histograms(hp, hn) == pytest.approx(brute_auc(binned, y), abs=1e-12)
    assert auc_bin(1.0) == AUC_BINS - 1
    assert auc_bin(0.0) == 0


@pytest.mark.parametrize("classes", [CLASSES_3, CLASSES_2])
def test_batch_evaluate_against_direct_formulas(classes: tuple[str, ...]) -> None:
    rng = np.random.default_rng(len(classes))
    n = 300
    p = random_probs(rng, n, len(classes))
    labels = rng.choice([DOWN, FLAT, UP, NO_LABEL], size=n, p=[0.4, 0.15, 0.4, 0.05]).astype(
        np.int8
    )
    m = evaluate(p, labels, classes)
    if classes == CLASSES_3:
        keep = labels != NO_LABEL
        c = (labels[keep] + 1).tolist()
        assert m["flat_excluded"] == 0
    else:
        keep = (labels == DOWN) | (labels == UP)
        c = (labels[keep] == UP).astype(int).tolist()
        assert m["flat_excluded"] == int((labels == FLAT).sum())
    up = classes.index("up")
    exp = direct_metrics(p[keep], c, up)
    assert m["n"] == len(c)
    assert m["unlabeled"] == int((labels == NO_LABEL).sum())
    for key, value in exp.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    cal = m["calibration"]
    assert sum(b["count"] for b in cal) == len(c)
    pu = p[keep][:, up]
    for b in cal:
        sel = (pu >= b["lo"]) & ((pu < b["hi"]) | ((b["hi"] == 1.0) & (pu <= 1.0)))
        assert b["count"] == int(sel.sum())
        if b["count"]:
            assert b["mean_predicted"] == pytest.approx(pu[sel].mean())
            assert b["observed_up"] == pytest.approx((np.array(c)[sel] == up).mean())
    json.dumps(m, allow_nan=False)


def test_batch_evaluate_edge_cases() -> None:
    m = evaluate(np.zeros((0, 3)), np.zeros(0, dtype=np.int8), CLASSES_3)
    assert m["n"] == 0
    assert m["accuracy"] is None
    assert m["auc"] is None
    with pytest.raises(ValueError, match="probs must be"):
        evaluate(np.zeros((2, 2)), np.zeros(2, dtype=np.int8), CLASSES_3)
    # a zero probability on the outcome costs -ln(1e-15), not inf
    m = evaluate(np.array([[1.0, 0.0]]), np.array([UP], dtype=np.int8), CLASSES_2)
    assert m["log_loss"] == pytest.approx(-math.log(1e-15))
    assert m["brier"] == pytest.approx(2.0)


def test_base_rate_probs_are_smoothed_frequencies() -> None:
    labels = np.array([UP, UP, UP, DOWN, FLAT, NO_LABEL], dtype=np.int8)
    np.testing.assert_allclose(base_rate_probs(labels, CLASSES_3, 2), [[2 / 8, 2 / 8, 4 / 8]] * 2)
    np.testing.assert_allclose(base_rate_probs(labels, CLASSES_2, 1), [[2 / 6, 4 / 6]])
    np.testing.assert_allclose(base_rate_probs(labels[:0], CLASSES_3, 1), [[1 / 3] * 3])


def replay(
    ev: Evaluator, ts: Any, mid: Any, probs: NDArray[Any] | None, every: int = 1
) -> list[int]:
    """Feed rows; a forecast on every ``every``-th row. Returns the rows given a forecast."""
    with_forecast = []
    for i, (t, m) in enumerate(zip(ts, mid, strict=True)):
        if probs is not None and i % every == 0:
            ev.observe(int(t), float(m), probs[i])
            with_forecast.append(i)
        else:
            ev.observe(int(t), float(m))
    return with_forecast


def expected_stream(
    ts: Any, mid: Any, horizon: int, probs: NDArray[Any], rows: list[int], classes: Any
) -> tuple[list[int], list[int], NDArray[Any], NDArray[Any]]:
    """Direct recomputation of what the evaluator must have scored, in scoring order, and
    the base-rate forecast of each: smoothed frequencies of the outcomes whose realizing row
    comes strictly before the forecast's row."""
    lab = label_rows(ts, mid, horizon)
    binary = tuple(classes) == CLASSES_2
    scored = [
        i
        for i in rows
        if lab.realized[i] != NO_INDEX
        and lab.label[i] != NO_LABEL
        and not (binary and lab.label[i] == FLAT)
    ]
    scored.sort(key=lambda i: (lab.realized[i], i))
    c = [(int(lab.label[i] == UP) if binary else int(lab.label[i]) + 1) for i in scored]
    base = []
    for i in scored:
        past = (lab.realized != NO_INDEX) & (lab.realized < i) & (lab.label != NO_LABEL)
        counts = [int(((lab.label == v) & past).sum()) for v in (DOWN, FLAT, UP)]
        if binary:
            counts = [counts[0], counts[2]]
        base.append([(k + 1) / (sum(counts) + len(counts)) for k in counts])
    return scored, c, probs[scored], np.array(base).reshape(-1, len(classes))


@pytest.mark.parametrize(("classes", "horizon"), [(CLASSES_3, 5), (CLASSES_2, 5), (CLASSES_2, 0)])
def test_evaluator_matches_direct_recomputation(classes: tuple[str, ...], horizon: int) -> None:
    rng = np.random.default_rng(horizon + len(classes))
    n = 600
    ts = np.cumsum(rng.integers(0, 3, size=n))
    mid = 100.0 + np.cumsum(rng.choice([-0.5, 0.0, 0.5], size=n, p=[0.3, 0.4, 0.3]))
    mid[rng.random(n) < 0.03] = np.nan
    probs = random_probs(rng, n, len(classes))
    ev = Evaluator(classes, horizon, window=100, symbol="btcusdt", model="m", model_version=3)
    rows = replay(ev, ts, mid, probs, every=2)
    scored, c, p, base = expected_stream(ts, mid, horizon, probs, rows, classes)
    s = ev.summary()
    up = classes.index("up")
    assert s["forecasts"] == len(rows)
    assert s["scored"] == len(scored) == s["cumulative"]["n"]
    lab = label_rows(ts, mid, horizon)
    assert s["pending"] == sum(1 for i in rows if lab.realized[i] == NO_INDEX)
    assert s["unlabeled"] == sum(
        1 for i in rows if lab.realized[i] != NO_INDEX and lab.label[i] == NO_LABEL
    )
    exp_flat = sum(1 for i in rows if lab.realized[i] != NO_INDEX and lab.label[i] == FLAT)
    assert s["flat_excluded"] == (exp_flat if classes == CLASSES_2 else 0)
    assert s["scored"] + s["pending"] + s["unlabeled"] + s["flat_excluded"] == s["forecasts"]

    cum = direct_metrics(p, c, up)
    roll = direct_metrics(p[-100:], c[-100:], up)
    for key in ("accuracy", "brier", "log_loss"):
        assert s["cumulative"][key] == pytest.approx(cum[key], abs=1e-12), key
        assert s["rolling"][key] == pytest.approx(roll[key], abs=1e-12), key
    assert s["rolling"]["n"] == 100
    assert s["rolling"]["auc"] == pytest.approx(roll["auc"], abs=1e-12)
    binned = [auc_bin(float(v)) for v in p[:, up]]
    assert s["cumulative"]["auc"] == pytest.approx(
        brute_auc(binned, [k == up for k in c]), abs=1e-12
    )
    bcum = direct_metrics(base, c, up)
    for key in ("accuracy", "brier", "log_loss"):
        assert s["base_rate"]["cumulative"][key] == pytest.approx(bcum[key], abs=1e-12), key
    cal = calibration_table(p[:, up], np.array(c) == up)
    for got, want in zip(s["calibration"], cal, strict=True):
        assert got["count"] == want["count"]
        if want["count"]:
            assert got["mean_predicted"] == pytest.approx(want["mean_predicted"])
            assert got["observed_up"] == pytest.approx(want["observed_up"])
    assert s["symbol"] == "btcusdt"
    assert s["model_version"] == 3
    json.dumps(s, allow_nan=False)


def test_base_rate_uses_only_the_past() -> None:
    ev = Evaluator(CLASSES_3, 1)
    assert ev.base_rate() == (1 / 3, 1 / 3, 1 / 3)
    ev.observe(0, 1.0, (0.2, 0.3, 0.5))
    ev.observe(1, 2.0, (0.2, 0.3, 0.5))  # settles row 0 as up, after row 1's base snapshot
    assert ev.base_rate() == (1 / 4, 1 / 4, 2 / 4)
    s = ev.summary()
    # row 0 was scored: its base-rate forecast was the uniform prior
    assert s["scored"] == 1
    assert s["base_rate"]["cumulative"]["log_loss"] == pytest.approx(math.log(3))
    ev.observe(2, 2.0)  # settles row 1 (flat): base forecast was made before row 0 settled
    s = ev.summary()
    assert s["scored"] == 2
    assert s["base_rate"]["cumulative"]["log_loss"] == pytest.approx(math.log(3))
    assert s["outcomes"] == {"down": 0, "flat": 1, "up": 1}


def test_rolling_sums_stay_exact_over_many_removals() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    ts = np.arange(n)
    mid = 100.0 + np.cumsum(rng.choice([-1.0, 1.0], size=n))
    probs = random_probs(rng, n, 2, ties=False)
    ev = Evaluator(CLASSES_2, 1, window=37)
    replay(ev, ts, mid, probs)
    _, c, p, _ = expected_stream(ts, mid, 1, probs, list(range(n)), CLASSES_2)
    roll = direct_metrics(p[-37:], c[-37:], 1)
    s = ev.summary()
    assert s["rolling"]["n"] == 37
    for key in ("accuracy", "brier", "log_loss", "auc"):
        assert s["rolling"][key] == pytest.approx(roll[key], abs=1e-12), key


def test_evaluator_rejects_bad_forecasts_and_is_deterministic() -> None:
    ev = Evaluator(CLASSES_3, 10)
    with pytest.raises(ValueError, match="expected 3 probabilities"):
        ev.observe(0, 1.0, (0.5, 0.5))
    with pytest.raises(ValueError, match="finite"):
        ev.observe(0, 1.0, (0.5, float("nan"), 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        ev.observe(0, 1.0, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="classes"):
        Evaluator(("up", "down"), 10)
    with pytest.raises(ValueError, match="window"):
        Evaluator(CLASSES_2, 10, window=0)
    empty = Evaluator(CLASSES_2, 10).summary()
    assert empty["cumulative"]["accuracy"] is None
    assert empty["rolling"]["auc"] is None
    json.dumps(empty, allow_nan=False)


def test_real_capture_heuristic_live_equals_batch(btc_features: dict[str, NDArray[Any]]) -> None:
    """The live evaluator over the real capture agrees with the batch metrics on the same
    rows (AUC: exact over a window holding everything; histogram within 1e-3)."""
    model = default_model()
    probs = model.predict_table(btc_features)
    ts, mid = btc_features["ts"], btc_features["mid"]
    ev = Evaluator(model.classes, model.horizon_ms, window=len(ts))
    a = Evaluator(model.classes, model.horizon_ms, window=len(ts))
    for t, m, p in zip(ts.tolist(), mid.tolist(), probs.tolist(), strict=True):
        ev.observe(t, m, p)
        a.observe(t, m, p)
    s = ev.summary()
    assert s == a.summary()  # deterministic
    lab = label_rows(ts, mid, model.horizon_ms)
    batch = evaluate(probs, lab.label, model.classes)
    assert s["scored"] == batch["n"] > 8000
    assert s["flat_excluded"] == batch["flat_excluded"]
    for key in ("accuracy", "brier", "log_loss"):
        assert s["cumulative"][key] == pytest.approx(batch[key], abs=1e-12)
    assert s["rolling"]["auc"] == pytest.approx(batch["auc"], abs=1e-12)
    assert s["cumulative"]["auc"] == pytest.approx(batch["auc"], abs=1e-3)
