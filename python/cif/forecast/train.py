"""``cif train``: fit a logistic forecaster on history, validate it walk-forward, save it.

Pipeline: event logs (capture files, or the DuckDB history) -> ``cif._core.compute_features``
(the same Rust engine and config as the live processor) -> labels (``labels.label_rows``, the
same function the live evaluator uses) -> walk-forward validation -> final fit on all rows
-> ``<out>/<name>-v<version>.json``.

Walk-forward, because a random split would let a model see the minute after the one it is
tested on. The labelled rows are cut by time into ``splits + 1`` blocks of equal row count;
split ``k`` tests on block ``k`` and trains on every earlier row whose label was settled
before ``test_start - gap`` (``gap >= horizon``). A label's realizing row lies ``>= h``
after the row, so without that purge the last train rows would be graded on mids inside the
test block. The scaler is fitted on the train rows only, and the validation probabilities
come from the Rust scorer through the saved model's own wrapper, so they are the numbers the
live service would produce. Each split also scores the seed heuristic and a base rate (the
train rows' class frequencies) so the model is judged against something.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

import cif._core as _core
from cif.forecast.evaluation import base_rate_probs, evaluate
from cif.forecast.labels import (
    CLASSES_2,
    NO_INDEX,
    NO_LABEL,
    class_index,
    classes_for,
    horizon_name,
    label_rows,
    parse_horizon,
)
from cif.forecast.models import (
    DEFAULT_HEURISTIC_FEATURE,
    LogisticModel,
    default_model,
    feature_matrix,
    next_version,
)

log = logging.getLogger(__name__)

DEFAULT_OUT = "models"
DEFAULT_DB = "data/cif.duckdb"
DEFAULT_SPLITS: Final = 5
#: Strong L2 by default: the rows of a few minutes are heavily autocorrelated (a 10 s
#: outcome is shared by every row within it), so the effective sample is tiny and weakly
#: regularized fits were wildly overconfident out of sample (pooled walk-forward log loss
#: 12 at C = 1 vs 2.1 at C = 0.001, btcusdt 10 s; 0.57 vs 3.4 at horizon "next").
DEFAULT_C: Final = 0.001
DEFAULT_MAX_ITER: Final = 2000
#: Columns that are price levels, not signals: a model on them would learn the price of the
#: training day. Excluded unless named with ``--features``.
PRICE_LEVEL_PREFIXES: Final = ("last_price", "mid", "vwap_")
_META: Final = ("seq", "ts", "recv_ts_ns", "kind")


class UsageError(ValueError):
    """Bad command-line input (exit status 2)."""


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch, or an ISO-8601 date/time (UTC unless it says)."""
    s = text.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError as e:
        raise UsageError(f"bad time {text!r}: use epoch ms or ISO 8601 (2024-08-08T23:55)") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class Segment:
    """One symbol's feature table from one source, with its labels."""

    symbol: str
    source: str
    table: dict[str, NDArray[Any]]
    label: NDArray[np.int8]
    realized: NDArray[np.int64]

    @property
    def rows(self) -> int:
        return len(self.table["ts"])


def feature_config(
    windows: str | None,
    depth_levels: str | None,
    ewma_half_life: str | None,
    emit_on_book: bool,
) -> dict[str, Any]:
    """The ``compute_features`` keyword settings from the same flags, parsed by the same
    functions, as ``cif live``'s feature processor; unset ones are left to the engine."""
    from cif.features.processor import parse_duration_ms, parse_levels, parse_windows

    cfg: dict[str, Any] = {}
    try:
        if windows is not None:
            cfg["time_windows_ms"], cfg["count_windows"] = parse_windows(windows)
        if depth_levels is not None:
            cfg["depth_levels"] = parse_levels(depth_levels)
        if ewma_half_life is not None:
            cfg["ewma_half_life_ms"] = parse_duration_ms(ewma_half_life)
    except ValueError as e:
        raise UsageError(f"bad feature setting: {e}") from e
    if emit_on_book:
        cfg["emit_on_book"] = True
    return cfg


def engine_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The full engine config (defaults filled in), for the artifact."""
    engine = _core.FeatureEngine(**cfg)
    return dict(engine.config)


def make_segment(
    symbol: str,
    source: str,
    events: Mapping[str, NDArray[Any]],
    cfg: Mapping[str, Any],
    horizon_ms: int,
    from_ms: int | None = None,
    to_ms: int | None = None,
    warmup_ms: int = 0,
    warmup_trades: int = 0,
) -> Segment:
    """Features and labels of one event log. Rows outside ``[from_ms, to_ms)`` are dropped
    after the features are computed (so their windows are warm at ``from_ms``); a row whose
    outcome is settled at or after ``to_ms`` loses its label (it lies outside the period).
    Rows before ``warmup_ms`` of event time and ``warmup_trades`` trades have passed since
    the log's first event are dropped too: their windows are not full yet, so their feature
    values come from a distribution live rows never see."""
    table = dict(_core.compute_features(events, **cfg))
    lab = label_rows(table["ts"], table["mid"], horizon_ms)
    label, realized = lab.label, lab.realized
    ts = table["ts"]
    keep = np.ones(ts.size, dtype=bool)
    if warmup_ms > 0 and ts.size:
        keep &= ts >= int(np.asarray(events["ts"])[0]) + warmup_ms
    if warmup_trades > 0:
        keep &= np.cumsum(table["kind"] == 0) >= warmup_trades
    if from_ms is not None:
        keep &= ts >= from_ms
    if to_ms is not None:
        keep &= ts < to_ms
    if not keep.all():
        idx = np.flatnonzero(keep)
        remap = np.full(ts.size, NO_INDEX, dtype=np.int64)
        remap[idx] = np.arange(idx.size)
        table = {k: v[idx] for k, v in table.items()}
        label = label[idx]
        r = realized[idx]
        # a realizing row that was dropped (at or after to_ms) means no outcome in the period
        realized = np.where(r != NO_INDEX, remap[np.maximum(r, 0)], NO_INDEX).astype(np.int64)
        label = np.where(realized == NO_INDEX, np.int8(NO_LABEL), label).astype(np.int8)
    return Segment(symbol, source, table, label, realized)


def default_features(names: Sequence[str]) -> list[str]:
    return [n for n in names if n not in _META and not n.startswith(PRICE_LEVEL_PREFIXES)]


# --------------------------------------------------------------------------------------------
# Walk-forward splits
# --------------------------------------------------------------------------------------------


@dataclass
class Split:
    """Row positions (into the pooled rows) of one walk-forward split."""

    k: int
    train: NDArray[np.intp]
    test: NDArray[np.intp]
    test_from_ts: int
    test_to_ts: int  # exclusive; the last split runs to the end
    cutoff_ts: int  # train rows (and their outcomes) are strictly before this
    purged: int  # rows before the test block left out of train (gap or late outcome)


def walk_forward_splits(
    ts: NDArray[np.int64], realized_ts: NDArray[np.int64], n_splits: int, gap_ms: int
) -> list[Split]:
    """Expanding-window splits over rows with event times ``ts`` whose outcomes settle at
    ``realized_ts``. Test block ``k`` (1..n) holds ``ts`` in ``[T_k, T_{k+1})`` where the
    ``T`` cut the rows into ``n + 1`` blocks of about equal count; its train rows are those
    with ``ts < T_k - gap`` and ``realized_ts < T_k - gap``."""
    if n_splits < 1:
        raise UsageError(f"--splits must be >= 1, got {n_splits}")
    if ts.size == 0:
        raise UsageError("no labelled rows to split")
    order = np.sort(ts)
    bounds = [
        int(order[min(ts.size - 1, (k * ts.size) // (n_splits + 1))])
        for k in range(1, n_splits + 1)
    ]
    splits = []
    for k, t_k in enumerate(bounds, start=1):
        t_next = bounds[k] if k < n_splits else None
        cutoff = t_k - gap_ms
        in_test = ts >= t_k if t_next is None else (ts >= t_k) & (ts < t_next)
        before = ts < t_k
        train = before & (ts < cutoff) & (realized_ts < cutoff)
        test = np.flatnonzero(in_test)
        tr = np.flatnonzero(train)
        if tr.size == 0 or test.size == 0:
            raise UsageError(
                f"walk-forward split {k} has {tr.size} train and {test.size} test rows: "
                "use fewer --splits, a shorter --horizon/--gap or more data"
            )
        splits.append(
            Split(
                k=k,
                train=tr,
                test=test,
                test_from_ts=t_k,
                test_to_ts=int(ts.max()) + 1 if t_next is None else t_next,
                cutoff_ts=cutoff,
                purged=int(before.sum() - tr.size),
            )
        )
    return splits


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def fit_scaler(x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and standard deviation of the finite values per column. Columns with no finite
    value or no spread get mean 0 / scale 1 resp.: the scorer then maps them to ~0 and they
    carry no weight, instead of failing on scale <= 0."""
    fin = np.isfinite(x)
    cnt = fin.sum(axis=0)
    xs = np.where(fin, x, 0.0)
    mean = np.divide(xs.sum(axis=0), cnt, out=np.zeros(x.shape[1]), where=cnt > 0)
    dev = np.where(fin, x - mean, 0.0)
    var = np.divide((dev**2).sum(axis=0), cnt, out=np.zeros(x.shape[1]), where=cnt > 0)
    scale = np.sqrt(var)
    tiny = ~(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))
    scale[tiny] = 1.0
    return mean, scale


def standardize(
    x: NDArray[np.float64], mean: NDArray[np.float64], scale: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Exactly the scorer's transform: ``(x - mean) / scale``, non-finite -> 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = (x - mean) / scale
    z[~np.isfinite(z)] = 0.0
    return z


def fit_logistic(
    x: NDArray[np.float64],
    y: NDArray[np.intp],
    classes: tuple[str, ...],
    *,
    c: float,
    max_iter: int,
    **common: Any,
) -> LogisticModel:
    """Fit on rows ``x`` with class indices ``y`` (into ``classes``); returns the model in the
    artifact's parametrization (binary = 2-class softmax with the "down" row at 0)."""
    try:
        # Imported by name: scikit-learn ships no type hints, and only training needs it.
        logistic_regression = importlib.import_module("sklearn.linear_model").LogisticRegression
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "cif train needs scikit-learn: pip install 'cif[train]' (or scikit-learn)"
        ) from e
    k = len(classes)
    present = np.unique(y)
    if present.size < 2:
        raise UsageError(
            f"the training rows have only one outcome ({[classes[i] for i in present]}): "
            "use a longer horizon or more data"
        )
    mean, scale = fit_scaler(x)
    z = standardize(x, mean, scale)
    clf = logistic_regression(C=c, max_iter=max_iter)
    clf.fit(z, np.searchsorted(present, y))
    w = np.asarray(clf.coef_, dtype=np.float64)
    b = np.asarray(clf.intercept_, dtype=np.float64)
    if present.size == 2:  # scikit-learn's binary form: one logit, for the second class
        w = np.vstack([np.zeros(w.shape[1]), w[0]])
        b = np.array([0.0, b[0]])
    coef = np.zeros((k, x.shape[1]))
    intercept = np.zeros(k)
    coef[present] = w
    intercept[present] = b
    absent = [i for i in range(k) if i not in set(present.tolist())]
    if absent:
        # A class the train rows never show (e.g. "flat" in a short first split) gets the
        # add-one prior 1/(n + K) of the base rate instead of an error or a zero: a constant
        # logit set so that its probability is that prior on a typical (median) train row.
        logits = z @ w.T + b
        top = logits.max(axis=1)
        lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        prior = 1.0 / (y.size + k)
        intercept[absent] = math.log(prior / (1.0 - prior)) + float(np.median(lse))
        log.warning(
            "class(es) %s absent from %d training rows: predicted at the prior %.2g",
            [classes[i] for i in absent],
            y.size,
            prior,
        )
    return LogisticModel(
        mean=mean, scale=scale, coef=coef, intercept=intercept, classes=classes, **common
    )


# --------------------------------------------------------------------------------------------
# Training run
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    horizon_ms: int
    binary: bool = False
    n_splits: int = DEFAULT_SPLITS
    gap_ms: int | None = None  # default: the horizon
    c: float = DEFAULT_C
    max_iter: int = DEFAULT_MAX_ITER
    features: list[str] | None = None
    name: str | None = None
    feature_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainResult:
    model: LogisticModel
    splits: list[Split]
    pooled: dict[str, Any]
    per_split: list[dict[str, Any]]
    dropped_features: list[str]


def _directional(probs: NDArray[np.float64], classes: tuple[str, ...]) -> NDArray[np.float64]:
    """3-class -> (down, up) renormalized, so every predictor is also scored on the one task
    they all share: the direction of the moves that happened (flat outcomes excluded)."""
    if classes == CLASSES_2:
        return probs
    d, u = probs[:, 0], probs[:, 2]
    s = d + u
    p_up = np.divide(u, s, out=np.full(s.shape, 0.5), where=s > 0)
    return np.column_stack([1.0 - p_up, p_up])


def _score_block(
    probs: dict[str, NDArray[np.float64]],
    labels: NDArray[np.int8],
    classes: tuple[str, ...],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for who, p in probs.items():
        cls = CLASSES_2 if who == "heuristic" else classes
        m = evaluate(p, labels, cls, calibration=False)
        if cls != CLASSES_2:
            m["directional"] = evaluate(_directional(p, cls), labels, CLASSES_2, calibration=False)
        out[who] = m
    return out


def train(segments: Sequence[Segment], cfg: TrainConfig) -> TrainResult:
    """Walk-forward validation and the final fit (see the module doc)."""
    h = cfg.horizon_ms
    binary = cfg.binary or h == 0
    if h == 0 and not cfg.binary:
        log.info("horizon 'next' never yields a flat outcome: training a binary model")
    classes = classes_for(binary)
    gap = h if cfg.gap_ms is None else cfg.gap_ms
    if gap < h:
        raise UsageError(f"--gap ({gap} ms) must be >= the horizon ({h} ms)")
    if not segments:
        raise UsageError("no input data")
    names = [n for n in segments[0].table if n not in _META]
    for s in segments[1:]:
        if [n for n in s.table if n not in _META] != names:
            raise UsageError("segments have different feature columns (different configs?)")
    if cfg.features:
        unknown = [f for f in cfg.features if f not in names]
        if unknown:
            raise UsageError(f"unknown feature(s) {unknown}; available: {names}")
        features = list(cfg.features)
    else:
        features = default_features(names)

    # Pool scorable rows of all segments.
    xs, labs, ts_l, rts_l, heur_l = [], [], [], [], []
    has_heur = DEFAULT_HEURISTIC_FEATURE in names
    for s in segments:
        _, mask = class_index(s.label, classes)
        rows = np.flatnonzero(mask)
        xs.append(feature_matrix(s.table, features)[rows])
        labs.append(s.label[rows])
        ts_l.append(s.table["ts"][rows])
        rts_l.append(s.table["ts"][s.realized[rows]])
        if has_heur:
            heur_l.append(np.asarray(s.table[DEFAULT_HEURISTIC_FEATURE])[rows])
        log.info(
            "%s (%s): %d rows, %d scorable (%s)",
            s.symbol,
            s.source,
            s.rows,
            rows.size,
            ", ".join(
                f"{c}={int((s.label[rows] == v).sum())}"
                for c, v in (("down", -1), ("flat", 0), ("up", 1))
            ),
        )
    x = np.ascontiguousarray(np.vstack(xs))
    labels = np.concatenate(labs).astype(np.int8)
    ts = np.concatenate(ts_l).astype(np.int64)
    rts = np.concatenate(rts_l).astype(np.int64)
    heur_x = np.concatenate(heur_l) if has_heur else None
    y, _ = class_index(labels, classes)

    # Features with nothing to learn from (all NaN or constant) are dropped up front; this
    # looks at no label and no test-period relation, only at whether a column varies.
    keep = []
    for j in range(len(features)):
        col = x[:, j]
        fin = col[np.isfinite(col)]
        if fin.size and fin.min() != fin.max():
            keep.append(j)
    dropped = [features[j] for j in range(len(features)) if j not in keep]
    if dropped:
        log.info("dropping features with no finite spread: %s", dropped)
    features = [features[j] for j in keep]
    if not features:
        raise UsageError("no usable features (all constant or NaN)")
    x = np.ascontiguousarray(x[:, keep])

    heuristic = default_model(horizon=horizon_name(h)) if has_heur else None
    splits = walk_forward_splits(ts, rts, cfg.n_splits, gap)
    common: dict[str, Any] = {
        "name": cfg.name or _default_name(h, binary),
        "version": 1,
        "features": features,
        "horizon_ms": h,
        "feature_config": cfg.feature_config,
    }
    per_split: list[dict[str, Any]] = []
    pooled_p: dict[str, list[NDArray[np.float64]]] = {"model": [], "base_rate": []}
    if heuristic is not None:
        pooled_p["heuristic"] = []
    pooled_lab: list[NDArray[np.int8]] = []
    for sp in splits:
        t0 = time.perf_counter()
        m = fit_logistic(
            x[sp.train], y[sp.train], classes, c=cfg.c, max_iter=cfg.max_iter, **common
        )
        probs = {
            "model": m.predict(x[sp.test]),
            "base_rate": base_rate_probs(labels[sp.train], classes, sp.test.size),
        }
        if heuristic is not None and heur_x is not None:
            probs["heuristic"] = heuristic.predict(heur_x[sp.test].reshape(-1, 1))
        for who, p in probs.items():
            pooled_p[who].append(p)
        pooled_lab.append(labels[sp.test])
        scores = _score_block(probs, labels[sp.test], classes)
        entry = {
            "k": sp.k,
            "train_from_ts": int(ts[sp.train].min()),
            "train_to_ts": int(ts[sp.train].max()),
            "cutoff_ts": sp.cutoff_ts,
            "test_from_ts": sp.test_from_ts,
            "test_to_ts": sp.test_to_ts,
            "n_train": int(sp.train.size),
            "n_test": int(sp.test.size),
            "purged": sp.purged,
            "metrics": scores,
        }
        per_split.append(entry)
        log.info(
            "split %d: train %d rows (%d purged) to %s, test %d rows %s..%s: %s (%.2f s)",
            sp.k,
            sp.train.size,
            sp.purged,
            _iso(int(ts[sp.train].max())),
            sp.test.size,
            _iso(sp.test_from_ts),
            _iso(sp.test_to_ts),
            _brief(scores),
            time.perf_counter() - t0,
        )
    all_lab = np.concatenate(pooled_lab)
    pooled = _score_block({k: np.vstack(v) for k, v in pooled_p.items()}, all_lab, classes)
    log.info("pooled walk-forward: %s", _brief(pooled))

    final = fit_logistic(x, y, classes, c=cfg.c, max_iter=cfg.max_iter, **common)
    validation = {
        key: pooled["model"][key] for key in ("log_loss", "brier", "auc", "accuracy", "n")
    }
    for who in ("base_rate", "heuristic"):
        if who in pooled:
            validation[who] = {
                key: pooled[who][key] for key in ("log_loss", "brier", "auc", "accuracy", "n")
            }
    validation["pooled"] = pooled
    final.validation = validation
    final.training = {
        "symbols": sorted({s.symbol for s in segments}),
        "sources": [s.source for s in segments],
        "from_ts": int(ts.min()),
        "to_ts": int(ts.max()),
        "n_train": int(ts.size),
        "n_test": int(all_lab.size),
        "gap_ms": gap,
        "C": cfg.c,
        "dropped_features": dropped,
        "splits": per_split,
    }
    return TrainResult(final, splits, pooled, per_split, dropped)


def _default_name(horizon_ms: int, binary: bool) -> str:
    return f"logistic{'_binary' if binary else ''}_{horizon_name(horizon_ms)}"


def _brief(scores: Mapping[str, Any]) -> str:
    parts = []
    for who, m in scores.items():
        parts.append(
            f"{who} ll={_f(m['log_loss'])} brier={_f(m['brier'])} auc={_f(m['auc'])} "
            f"acc={_f(m['accuracy'])}"
        )
    return "; ".join(parts)


def _f(v: Any) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def metrics_table(pooled: Mapping[str, Any]) -> str:
    """The pooled walk-forward metrics as a text table (native task and directional)."""
    lines = [f"{'predictor':<22} {'n':>7} {'log_loss':>9} {'brier':>7} {'auc':>7} {'accuracy':>9}"]
    for who, m in pooled.items():
        rows = [(who, m)]
        if "directional" in m:
            rows.append((f"{who} (directional)", m["directional"]))
        for label, r in rows:
            lines.append(
                f"{label:<22} {r['n']:>7} {_f(r['log_loss']):>9} {_f(r['brier']):>7} "
                f"{_f(r['auc']):>7} {_f(r['accuracy']):>9}"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input (capture files or the DuckDB history)")
    src.add_argument(
        "--capture",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="capture file (shared/data/binance format); repeatable",
    )
    src.add_argument(
        "--symbol",
        action="append",
        default=[],
        help="symbol of each --capture (one for all, or one per file; default: from the file "
        "name, e.g. btcusdt_20240808.gz -> btcusdt)",
    )
    src.add_argument("--db", type=Path, help=f"DuckDB history (e.g. $CIF_DB or {DEFAULT_DB})")
    src.add_argument("--symbols", help="comma-separated symbols to read from --db")
    src.add_argument("--from", dest="from_", metavar="TIME", help="start (epoch ms or ISO, UTC)")
    src.add_argument("--to", metavar="TIME", help="end, exclusive (epoch ms or ISO, UTC)")
    feat = parser.add_argument_group("features (default: the engine's defaults)")
    feat.add_argument("--feature-windows", help="e.g. 1s,10s,60s,100t")
    feat.add_argument("--depth-levels", help="e.g. 5,10")
    feat.add_argument("--ewma-half-life", help="e.g. 10s")
    feat.add_argument("--emit-on-book", action="store_true", help="a row after book events too")
    feat.add_argument(
        "--warmup",
        default="auto",
        help="drop rows until the windows are full: auto (the longest time and trade-count "
        "window), 0 (keep all) or a duration (default auto)",
    )
    mdl = parser.add_argument_group("model")
    mdl.add_argument("--horizon", default="10s", help="10s, 500ms, 1m, or next (default 10s)")
    mdl.add_argument("--binary", action="store_true", help="down/up only (flat rows dropped)")
    mdl.add_argument(
        "--features", help="comma-separated feature names (default: all but price levels)"
    )
    mdl.add_argument(
        "--splits", type=int, default=DEFAULT_SPLITS, help="walk-forward splits (default 5)"
    )
    mdl.add_argument("--gap", help="gap between train and test ranges (default: the horizon)")
    mdl.add_argument(
        "--C",
        dest="c",
        type=float,
        default=DEFAULT_C,
        help=f"inverse L2 strength (default {DEFAULT_C}: strong, see DEFAULT_C)",
    )
    mdl.add_argument("--max-iter", type=int, default=DEFAULT_MAX_ITER)
    out = parser.add_argument_group("output")
    out.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ.get("CIF_MODEL_DIR", DEFAULT_OUT)),
        help=f"artifact directory (default: $CIF_MODEL_DIR or {DEFAULT_OUT})",
    )
    out.add_argument("--name", help="model name (default: logistic[_binary]_<horizon>)")


def _symbol_from_path(path: Path) -> str:
    stem = path.name.split(".")[0]
    sym = stem.split("_")[0].lower()
    if not re.fullmatch(r"[a-z0-9]+", sym):
        raise UsageError(f"cannot tell the symbol of {path}: pass --symbol")
    return sym


def warmup_setting(text: str, engine_cfg: Mapping[str, Any]) -> tuple[int, int]:
    """``--warmup`` -> (ms, trades) of each log's start to drop."""
    t = text.strip().lower()
    if t == "auto":
        return (
            max((int(w) for w in engine_cfg.get("time_windows_ms", [])), default=0),
            max((int(n) for n in engine_cfg.get("count_windows", [])), default=0),
        )
    if t in ("0", "0s", "0ms"):
        return 0, 0
    try:
        return parse_horizon(t), 0
    except ValueError as e:
        raise UsageError(f"bad --warmup {text!r}: auto, 0 or a duration like 60s") from e


def _load_segments(
    args: argparse.Namespace,
    fcfg: dict[str, Any],
    horizon_ms: int,
    warmup: tuple[int, int] = (0, 0),
) -> list[Segment]:
    from_ms = parse_time_ms(args.from_) if args.from_ else None
    to_ms = parse_time_ms(args.to) if args.to else None
    if from_ms is not None and to_ms is not None and to_ms <= from_ms:
        raise UsageError("--to must be after --from")
    captures: list[Path] = args.capture
    if captures and args.db is not None:
        raise UsageError("use either --capture or --db, not both")
    if not captures and args.db is None:
        raise UsageError("no input: give --capture FILE or --db PATH --symbols ...")
    segments = []
    if captures:
        if args.symbols:
            raise UsageError("--symbols goes with --db; use --symbol with --capture")
        syms: list[str] = [s.lower() for s in args.symbol]
        if len(syms) not in (0, 1, len(captures)):
            raise UsageError(f"{len(captures)} captures but {len(syms)} --symbol values")
        missing = [str(p) for p in captures if not p.is_file()]
        if missing:
            raise UsageError(f"no such capture file: {', '.join(missing)}")
        from cif.features.event_log import events_from_capture

        for i, path in enumerate(captures):
            sym = syms[i] if len(syms) == len(captures) else syms[0] if syms else None
            sym = sym or _symbol_from_path(path)
            events = events_from_capture(path, sym)
            if events["seq"].size == 0:
                raise UsageError(f"{path} has no events for symbol {sym}")
            segments.append(
                make_segment(sym, path.name, events, fcfg, horizon_ms, from_ms, to_ms, *warmup)
            )
        return segments
    if args.symbol:
        raise UsageError("--symbol goes with --capture; use --symbols with --db")
    if not args.symbols:
        raise UsageError("--db needs --symbols")
    if not args.db.is_file():
        raise UsageError(f"no DuckDB history at {args.db}")
    try:
        module = importlib.import_module("cif.store.event_log")
        load_event_log = module.load_event_log
    except (ImportError, AttributeError) as e:
        raise UsageError(f"--db input is not available in this build ({e})") from e
    for sym in (s.strip().lower() for s in args.symbols.split(",") if s.strip()):
        events = load_event_log(args.db, sym, from_ms, to_ms)
        if events["seq"].size == 0:
            raise UsageError(f"{args.db} has no events for {sym} in the requested range")
        segments.append(
            make_segment(sym, str(args.db), events, fcfg, horizon_ms, None, None, *warmup)
        )
    return segments


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    try:
        try:
            horizon_ms = parse_horizon(args.horizon)
        except ValueError as e:
            raise UsageError(f"bad --horizon: {e}") from e
        gap_ms = None if args.gap is None else _parse_gap(args.gap)
        if gap_ms is not None and gap_ms < horizon_ms:
            raise UsageError(f"--gap ({gap_ms} ms) must be >= the horizon ({horizon_ms} ms)")
        if args.splits < 1:
            raise UsageError(f"--splits must be >= 1, got {args.splits}")
        if not (args.c > 0 and math.isfinite(args.c)):
            raise UsageError(f"--C must be a positive number, got {args.c}")
        if args.max_iter < 1:
            raise UsageError(f"--max-iter must be >= 1, got {args.max_iter}")
        if args.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.name):
            raise UsageError(f"bad --name {args.name!r}: letters, digits, '_', '.' and '-' only")
        fcfg = feature_config(
            args.feature_windows, args.depth_levels, args.ewma_half_life, args.emit_on_book
        )
        try:
            full_cfg = engine_config(fcfg)
        except (ValueError, TypeError) as e:
            raise UsageError(f"bad feature config: {e}") from e
        warmup = warmup_setting(args.warmup, full_cfg)
        segments = _load_segments(args, fcfg, horizon_ms, warmup)
        cfg = TrainConfig(
            horizon_ms=horizon_ms,
            binary=args.binary,
            n_splits=args.splits,
            gap_ms=gap_ms,
            c=args.c,
            max_iter=args.max_iter,
            features=[f.strip() for f in args.features.split(",")] if args.features else None,
            name=args.name,
            feature_config=full_cfg,
        )
        result = train(segments, cfg)
    except UsageError as e:
        log.error("%s", e)
        return 2
    model = result.model
    model.version = next_version(args.out, model.name)
    path = model.save(args.out)
    n = model.training["n_train"]
    print(
        f"trained {model.name} v{model.version}: {len(model.features)} features, "
        f"classes {list(model.classes)}, horizon {model.horizon}, {n} rows, "
        f"{len(result.splits)} walk-forward splits"
    )
    print(metrics_table(result.pooled))
    print(f"saved {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _parse_gap(text: str) -> int:
    try:
        return parse_horizon(text) if text.strip() not in ("0", "0s", "0ms") else 0
    except ValueError as e:
        raise UsageError(f"bad --gap {text!r}: {e}") from e


__all__ = [
    "Segment",
    "Split",
    "TrainConfig",
    "TrainResult",
    "add_arguments",
    "fit_logistic",
    "make_segment",
    "run",
    "train",
    "walk_forward_splits",
]
