"""Scoring forecasts against realized outcomes: the live evaluator and the batch metrics.

Both forms use the same metric definitions (``/work/spec/forecasts.md``, "Evaluation") so a
live dashboard and a training report can be compared number for number:

- accuracy: the argmax class is right. A tie between top classes earns ``1/(number tied)``
  when the outcome is among them (the expected accuracy of breaking the tie at random):
  the heuristic says exactly 0.5/0.5 on most rows, and a fixed tie-break would turn "no
  view" into "down" and grade it on the market's drift.
- Brier: sum over classes of ``(p_k - 1{k = outcome})^2`` (so 2x the binary textbook one).
- log loss: ``-ln(clip(p_outcome, 1e-15, 1))``.
- AUC: of ``prob_up`` for "up vs not up"; exact rank AUC with ties = 0.5 (batch, and the
  live rolling window), or from 1000-bin histograms of ``prob_up`` per outcome (live
  cumulative: bounded memory and deterministic; pairs in one bin count as ties).
- calibration: 10 equal bins of ``prob_up``: count, mean predicted, observed up frequency.
- base rate: a baseline predicting the class frequencies of outcomes realized before the
  forecast's row (past data only), add-one smoothed: ``(n_k + 1) / (n + K)``. That is
  uniform before any outcome as the spec asks, and never puts probability 0 on a class
  after a short run without it (which would cost ``-ln(1e-15) = 34.5`` per surprise and
  make the baseline a straw man). Binary models: flat outcomes are not counted.

Binary models do not score flat outcomes (counted as ``flat_excluded``); rows whose label is
undefined (non-finite mid) are counted as ``unlabeled``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cif._core import ScoreTrack
from cif.forecast.labels import (
    CLASSES_2,
    CLASSES_3,
    DOWN,
    FLAT,
    NO_LABEL,
    UP,
    LabelTracker,
    class_index,
    horizon_name,
)
from cif.forecast.models import json_safe

P_MIN: Final = 1e-15
AUC_BINS: Final = 1000
CALIBRATION_BINS: Final = 10
DEFAULT_WINDOW: Final = 1000
#: How far a forecast's probabilities may sum away from 1 before it is rejected.
SUM_TOLERANCE: Final = 1e-9


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    c = tuple(classes)
    if c not in (CLASSES_3, CLASSES_2):
        raise ValueError(f"classes must be {list(CLASSES_3)} or {list(CLASSES_2)}, got {list(c)}")
    return c


# --------------------------------------------------------------------------------------------
# Batch metrics
# --------------------------------------------------------------------------------------------


def accuracy_credit(probs: NDArray[np.float64], idx: NDArray[np.intp]) -> NDArray[np.float64]:
    """Per row: 1/(number of classes tied at the max) if the outcome is one of them, else 0."""
    top = probs == probs.max(axis=1, keepdims=True)
    hit = top[np.arange(len(idx)), idx]
    return np.where(hit, 1.0 / top.sum(axis=1), 0.0)


def brier_scores(probs: NDArray[np.float64], idx: NDArray[np.intp]) -> NDArray[np.float64]:
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(idx)), idx] = 1.0
    return np.asarray(((probs - onehot) ** 2).sum(axis=1), dtype=np.float64)


def log_losses(probs: NDArray[np.float64], idx: NDArray[np.intp]) -> NDArray[np.float64]:
    p = np.clip(probs[np.arange(len(idx)), idx], P_MIN, 1.0)
    return np.asarray(-np.log(p), dtype=np.float64)


def auc_exact(scores: ArrayLike, positive: ArrayLike) -> float:
    """Rank AUC (Mann-Whitney) of ``scores`` for ``positive`` vs the rest, ties = 0.5; NaN
    when either group is empty."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positive, dtype=bool)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    _, start, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    group_rank = start + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(group_rank, counts)
    u = float(ranks[pos].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def auc_bin(p: float) -> int:
    """The histogram bin of a probability in [0, 1] (1.0 falls in the last bin)."""
    return min(int(p * AUC_BINS), AUC_BINS - 1)


def auc_from_histograms(hist_pos: Sequence[int], hist_neg: Sequence[int]) -> float:
    """AUC from per-bin counts: pairs in a lower bin count 1, in the same bin 0.5."""
    n_pos = sum(hist_pos)
    n_neg = sum(hist_neg)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    below = 0
    wins = 0.0
    for hp, hn in zip(hist_pos, hist_neg, strict=True):
        if hp:
            wins += hp * (below + 0.5 * hn)
        below += hn
    return wins / (n_pos * n_neg)


def calibration_table(
    prob_up: ArrayLike, is_up: ArrayLike, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Equal-width bins of ``prob_up``: count, mean predicted, observed up frequency."""
    p = np.asarray(prob_up, dtype=np.float64)
    y = np.asarray(is_up, dtype=np.float64)
    b = np.minimum((p * bins).astype(np.int64), bins - 1)
    out = []
    for k in range(bins):
        sel = b == k
        n = int(sel.sum())
        out.append(
            {
                "lo": k / bins,
                "hi": (k + 1) / bins,
                "count": n,
                "mean_predicted": float(p[sel].mean()) if n else None,
                "observed_up": float(y[sel].mean()) if n else None,
            }
        )
    return out


def evaluate(
    probs: ArrayLike, labels: ArrayLike, classes: Sequence[str], *, calibration: bool = True
) -> dict[str, Any]:
    """Metrics of forecasts ``probs`` ``(n, K)`` against realized ``labels`` (-1/0/+1 or
    NO_LABEL, from :func:`cif.forecast.labels.label_rows`). Unlabelled rows, and flat
    outcomes for a binary model, are left out and counted. JSON-friendly (NaN -> None)."""
    cls = _check_classes(classes)
    p = np.asarray(probs, dtype=np.float64)
    lab = np.asarray(labels)
    if p.ndim != 2 or p.shape != (lab.size, len(cls)):
        raise ValueError(f"probs must be ({lab.size}, {len(cls)}), got {p.shape}")
    idx, mask = class_index(lab, cls)
    unlabeled = int((lab == NO_LABEL).sum())
    flat_excluded = int((lab == FLAT).sum()) if cls == CLASSES_2 else 0
    p, idx = p[mask], idx[mask]
    n = int(idx.size)
    up = cls.index("up")
    out: dict[str, Any] = {
        "n": n,
        "unlabeled": unlabeled,
        "flat_excluded": flat_excluded,
        "accuracy": float(accuracy_credit(p, idx).mean()) if n else math.nan,
        "brier": float(brier_scores(p, idx).mean()) if n else math.nan,
        "log_loss": float(log_losses(p, idx).mean()) if n else math.nan,
        "auc": auc_exact(p[:, up], idx == up) if n else math.nan,
        "up_rate": float((idx == up).mean()) if n else math.nan,
    }
    if calibration:
        out["calibration"] = calibration_table(p[:, up], idx == up)
    return json_safe(out)  # type: ignore[no-any-return]


def base_rate_probs(train_labels: ArrayLike, classes: Sequence[str], n: int) -> NDArray[np.float64]:
    """``n`` rows of the add-one smoothed class frequencies of ``train_labels`` (the batch
    counterpart of the live baseline: frequencies of past outcomes only)."""
    cls = _check_classes(classes)
    idx, mask = class_index(np.asarray(train_labels), cls)
    counts = np.bincount(idx[mask], minlength=len(cls)).astype(np.float64)
    freq = (counts + 1.0) / (counts.sum() + len(cls))
    return np.tile(freq, (n, 1))


# --------------------------------------------------------------------------------------------
# Live evaluator
# --------------------------------------------------------------------------------------------


class _Sum:
    """A Neumaier-compensated sum's state (``s`` the sum, ``c`` the compensation) as
    checkpoints written before the tracks moved to Rust hold it: kept so that those
    restore (:class:`_Track`). The sums themselves are :class:`cif._core.ScoreTrack`'s."""

    __slots__ = ("c", "s")

    def __init__(self) -> None:
        self.s = 0.0
        self.c = 0.0


class _Track:
    """The metrics of one predictor (the model or the base rate): cumulative sums and
    histograms, and a rolling window of the last ``window`` scored forecasts. The state and
    its hot loop are in Rust (:class:`cif._core.ScoreTrack`, the same operations in the same
    order as the Python loop it replaced, so a state continues bit for bit).

    Pickled into the forecaster's checkpoint as the Rust state's bytes. A checkpoint written
    before (the attributes of the Python class: ``_Sum`` objects, lists and a deque) is read
    too, and continues exactly where it left off."""

    def __init__(self, window: int) -> None:
        self.core = ScoreTrack(window)

    @property
    def n(self) -> int:
        return self.core.n

    def add_batch(self, probs: list[float], classes: list[int], k: int, up: int) -> None:
        """Score forecasts in order: ``probs`` flat (``k`` per forecast, in class order),
        ``classes`` the outcome's class of each."""
        if classes:
            self.core.add_batch(probs, k, classes, up)

    def cumulative(self) -> dict[str, Any]:
        n = self.n
        credit, brier, ll = self.core.cumulative_sums()
        hist_up, hist_not = self.core.histograms()
        return {
            "n": n,
            "accuracy": credit / n if n else math.nan,
            "brier": brier / n if n else math.nan,
            "log_loss": ll / n if n else math.nan,
            "auc": auc_from_histograms(hist_up, hist_not),
        }

    def rolling(self) -> dict[str, Any]:
        n = self.core.recent_len
        credit, brier, ll = self.core.rolling_sums()
        if n:
            pu, up = self.core.recent_columns()
            auc = auc_exact(pu, up)
        else:
            auc = math.nan
        return {
            "n": n,
            "accuracy": credit / n if n else math.nan,
            "brier": brier / n if n else math.nan,
            "log_loss": ll / n if n else math.nan,
            "auc": auc,
        }

    def calibration(self) -> list[dict[str, Any]]:
        return [
            {
                "lo": k / CALIBRATION_BINS,
                "hi": (k + 1) / CALIBRATION_BINS,
                "count": n,
                "mean_predicted": p_sum / n if n else None,
                "observed_up": n_up / n if n else None,
            }
            for k, (n, p_sum, n_up) in enumerate(self.core.calibration_bins())
        ]

    def __getstate__(self) -> dict[str, Any]:
        return {"core": self.core.to_bytes()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        core = state.get("core")
        self.core = ScoreTrack.from_bytes(core) if core is not None else _from_python(state)


def _sum_parts(s: _Sum) -> tuple[float, float]:
    return (float(s.s), float(s.c))


def _from_python(state: dict[str, Any]) -> ScoreTrack:
    """The Rust state of a track pickled by the Python class (before the Rust one): its
    attributes, as they were."""
    return ScoreTrack.from_parts(
        (
            int(state["window"]),
            int(state["n"]),
            int(state["_removals"]),
            [_sum_parts(state[k]) for k in ("credit", "brier", "ll")],
            [int(v) for v in state["hist_up"]],
            [int(v) for v in state["hist_not"]],
            [int(v) for v in state["cal_n"]],
            [_sum_parts(v) for v in state["cal_p"]],
            [int(v) for v in state["cal_up"]],
            [
                (float(c), float(b), float(ll), float(p), bool(u))
                for c, b, ll, p, u in state["recent"]
            ],
            [_sum_parts(state[k]) for k in ("r_credit", "r_brier", "r_ll")],
        )
    )


def _smoothed(down: int, flat: int, up: int, binary: bool) -> tuple[float, ...]:
    """The base rate's probabilities given the outcome counts (module doc: add-one
    smoothed; a binary model ignores flat outcomes)."""
    if binary:
        total = down + up + 2.0
        return ((down + 1.0) / total, (up + 1.0) / total)
    total = down + flat + up + 3.0
    return ((down + 1.0) / total, (flat + 1.0) / total, (up + 1.0) / total)


class Evaluator:
    """Live evaluation of one model's forecasts for one symbol.

    Feed every feature row in order with :meth:`observe` (its event time, its mid and, when
    a forecast was made for it, the forecast's probabilities in ``classes`` order), or
    batches of rows with :meth:`observe_batch` (the same result, for less overhead). A
    forecast is scored as soon as the label function settles its row, so all timing is
    event time and the result is a pure function of the inputs (replay gives the same
    numbers). Each scored forecast costs O(1) amortized; :meth:`summary` computes the rolling
    AUC exactly over the window (O(window log window)) on request.
    """

    def __init__(
        self,
        classes: Sequence[str],
        horizon_ms: int,
        *,
        window: int = DEFAULT_WINDOW,
        symbol: str = "",
        model: str = "",
        model_version: int | None = None,
    ) -> None:
        self.classes = _check_classes(classes)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.horizon_ms = horizon_ms
        self.window = window
        self.symbol = symbol
        self.model = model
        self.model_version = model_version
        self._tracker = LabelTracker(horizon_ms)
        self._k = len(self.classes)
        self._up = self.classes.index("up")
        self._binary = self.classes == CLASSES_2
        self._pending: deque[tuple[int, tuple[float, ...], tuple[float, ...]]] = deque()
        self._model = _Track(window)
        self._base = _Track(window)
        # realized outcomes of all rows: down, flat, up
        self._outcomes = [0, 0, 0]
        self.forecasts = 0
        self.unlabeled = 0
        self.flat_excluded = 0
        self.last_ts: int | None = None

    @property
    def rows(self) -> int:
        return self._tracker.rows

    @property
    def scored(self) -> int:
        return self._model.n

    @property
    def pending(self) -> int:
        """Forecasts waiting for their outcome."""
        return len(self._pending)

    def base_rate(self) -> tuple[float, ...]:
        """The baseline's probabilities now: smoothed frequencies of the outcomes so far."""
        down, flat, up = self._outcomes
        return _smoothed(down, flat, up, self._binary)

    def observe(self, ts: int, mid: float, probs: Sequence[float] | None = None) -> int:
        """One feature row (and its forecast, if any); returns how many forecasts were
        scored because of it."""
        return self.observe_batch((ts,), (mid,), (probs,))

    def observe_batch(
        self,
        ts: Sequence[int],
        mids: Sequence[float],
        probs: Sequence[Sequence[float] | None],
        queued: list[tuple[int, tuple[float, ...], tuple[float, ...]]] | None = None,
    ) -> int:
        """Rows in order (``probs[i]``: row i's forecast, or None): exactly :meth:`observe`
        on each in turn, bit for bit, in one call (the live service feeds every batch of
        feature rows through here). Returns how many forecasts were scored.

        All or nothing: an invalid forecast or a time going backwards raises
        ``ValueError`` before anything changes. ``queued``, if given, receives the
        ``(row index, probs, base-rate probs)`` of each forecast this batch queued for
        scoring, as queued (the service keeps a column copy of the queue).
        """
        if not len(ts) == len(mids) == len(probs):
            raise ValueError(f"{len(ts)} times, {len(mids)} mids and {len(probs)} forecasts")
        check = self._check_probs
        forecasts = [None if p is None else check(p) for p in probs]
        tracker = self._tracker
        first = tracker.rows
        resolved = tracker.push_batch(ts, mids)  # raises before taking any row
        if not forecasts:
            return 0
        pending = self._pending
        binary = self._binary
        down, flat, up = self._outcomes
        unlabeled, flat_excluded, n_forecasts = self.unlabeled, self.flat_excluded, 0
        # the scored forecasts' probabilities (model and base rate, flat) and their
        # outcome's class, in order
        model: list[float] = []
        base_rate: list[float] = []
        scored: list[int] = []
        j, n_resolved = 0, len(resolved)
        for index, forecast in enumerate(forecasts, first):
            if forecast is not None:
                # before this row settles anything: strictly the past
                base = _smoothed(down, flat, up, binary)
            # the rows this one settled (push_batch: in order, tagged with the settling row)
            while j < n_resolved and resolved[j][2] == index:
                r_index, label, _ = resolved[j]
                j += 1
                if label == DOWN:
                    down += 1
                elif label == FLAT:
                    flat += 1
                elif label == UP:
                    up += 1
                if not pending or pending[0][0] != r_index:
                    continue
                _, p, b = pending.popleft()
                if label == NO_LABEL:
                    unlabeled += 1
                elif binary and label == FLAT:
                    flat_excluded += 1
                else:
                    scored.append((0 if label == DOWN else 1) if binary else label + 1)
                    model.extend(p)
                    base_rate.extend(b)
            if forecast is not None:
                n_forecasts += 1
                item = (index, forecast, base)
                pending.append(item)
                if queued is not None:
                    queued.append(item)
        outcomes = self._outcomes
        outcomes[0], outcomes[1], outcomes[2] = down, flat, up
        self.unlabeled, self.flat_excluded = unlabeled, flat_excluded
        self.forecasts += n_forecasts
        self.last_ts = tracker._last_ts
        # The two tracks are independent: each gets its own forecasts in scoring order.
        self._model.add_batch(model, scored, self._k, self._up)
        self._base.add_batch(base_rate, scored, self._k, self._up)
        return len(scored)

    def _check_probs(self, probs: Sequence[float]) -> tuple[float, ...]:
        p = tuple(map(float, probs))
        if len(p) != self._k:
            raise ValueError(f"expected {self._k} probabilities {list(self.classes)}, got {p}")
        for q in p:
            if not 0.0 <= q <= 1.0:  # False for NaN too, so: finite and in [0, 1]
                raise ValueError(f"probabilities must be finite and in [0, 1], got {p}")
        if abs(math.fsum(p) - 1.0) > SUM_TOLERANCE:
            raise ValueError(f"probabilities must sum to 1, got {p} (sum {math.fsum(p)!r})")
        return p

    def summary(self) -> dict[str, Any]:
        """Everything the API shows, JSON-friendly (NaN -> ``None``)."""
        down, flat, up = self._outcomes
        return json_safe(  # type: ignore[no-any-return]
            {
                "symbol": self.symbol,
                "model": self.model,
                "model_version": self.model_version,
                "horizon": horizon_name(self.horizon_ms),
                "horizon_ms": self.horizon_ms,
                "classes": list(self.classes),
                "window": self.window,
                "rows": self.rows,
                "last_ts": self.last_ts,
                "forecasts": self.forecasts,
                "scored": self.scored,
                "pending": self.pending,
                "unlabeled": self.unlabeled,
                "flat_excluded": self.flat_excluded,
                "outcomes": {"down": down, "flat": flat, "up": up},
                "cumulative": self._model.cumulative(),
                "rolling": self._model.rolling(),
                "calibration": self._model.calibration(),
                "base_rate": {
                    "cumulative": self._base.cumulative(),
                    "rolling": self._base.rolling(),
                    "calibration": self._base.calibration(),
                },
            }
        )


__all__ = [
    "AUC_BINS",
    "CALIBRATION_BINS",
    "DEFAULT_WINDOW",
    "P_MIN",
    "UP",
    "Evaluator",
    "auc_exact",
    "auc_from_histograms",
    "base_rate_probs",
    "calibration_table",
    "evaluate",
]
