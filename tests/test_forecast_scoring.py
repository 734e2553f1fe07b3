"""The Rust scorers behind every forecast (`cif._core.score_linear`, `score_heuristic`),
checked against the textbook formulas computed here in NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import cif._core as core

RNG = np.random.default_rng(7)


def softmax_reference(x, mean, scale, coef, intercept):  # type: ignore[no-untyped-def]
    z = (x - mean) / scale
    z[~np.isfinite(z)] = 0.0
    logits = z @ coef.T + intercept
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("k", [2, 3])
def test_linear_scores_are_the_softmax_of_standardized_logits(k: int) -> None:
    n, f = 500, 7
    x = RNG.normal(size=(n, f)) * 10
    x[3, 2] = np.nan
    x[9, :] = np.inf
    mean, scale = RNG.normal(size=f), RNG.uniform(0.1, 3, size=f)
    coef, intercept = RNG.normal(size=(k, f)), RNG.normal(size=k)
    got = core.score_linear(x, mean, scale, coef, intercept)
    assert got.shape == (n, k)
    np.testing.assert_allclose(got, softmax_reference(x, mean, scale, coef, intercept), rtol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    # An undefined feature counts as the training mean.
    at_mean = x[3].copy()
    at_mean[2] = mean[2]
    np.testing.assert_array_equal(
        got[3], core.score_linear(at_mean[None, :], mean, scale, coef, intercept)[0]
    )


def test_linear_scoring_is_row_independent_and_batch_invariant() -> None:
    x = RNG.normal(size=(10_000, 4))
    args = (np.zeros(4), np.ones(4), RNG.normal(size=(3, 4)), np.zeros(3))
    whole = core.score_linear(x, *args)  # large: scored without the GIL
    parts = np.vstack([core.score_linear(x[i : i + 7], *args) for i in range(0, 10_000, 7)])
    assert whole.tobytes() == parts.tobytes()


def test_extreme_inputs_stay_probabilities() -> None:
    x = np.array([[1e308, -1e308], [-1e308, 1e308]])
    p = core.score_linear(
        x, np.zeros(2), np.ones(2), np.array([[1.0, 1.0], [-1.0, 0.0]]), np.zeros(2)
    )
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros((1, 2)), np.zeros(1), np.ones(1), np.ones((2, 1)), np.zeros(2)), "columns"),
        ((np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.ones((2, 1)), np.zeros(2)), "scale"),
        ((np.zeros((1, 1)), np.zeros(1), np.ones(1), np.ones((1, 1)), np.zeros(1)), "2 classes"),
        ((np.zeros((1, 1)), np.zeros(1), np.ones(1), np.ones((2, 1)), np.zeros(3)), "coef"),
        (
            (np.zeros((1, 1)), np.full(1, np.nan), np.ones(1), np.ones((2, 1)), np.zeros(2)),
            "finite",
        ),
    ],
)
def test_inconsistent_models_are_refused(args: tuple[np.ndarray, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        core.score_linear(*args)


def test_heuristic_follows_the_threshold_rule() -> None:
    x = np.array([0.0, 1.0, -1.0, 1.5, -4.0, 1e12, np.nan, np.inf])
    got = core.score_heuristic(x, 1.0, 2.0, 0.8)
    up = np.where(
        np.isfinite(x) & (np.abs(x) > 1.0),
        0.5 + 0.3 * np.tanh((x - np.sign(x) * 1.0) / 2.0),
        0.5,
    )
    np.testing.assert_allclose(got[:, 1], up, rtol=1e-15)
    np.testing.assert_array_equal(got[:, 0], 1.0 - got[:, 1])
    for bad in [(-1.0, 1.0, 0.8), (1.0, 0.0, 0.8), (1.0, 1.0, 0.4), (1.0, 1.0, 1.1)]:
        with pytest.raises(ValueError, match="must be"):
            core.score_heuristic(x, *bad)
