"""Offline replay: the stored event log through the feature engine and the model, in-process.

Why in-process: the live path (gateway -> Redis -> processor -> forecaster) decodes the same
events with the same :class:`~cif.features.event_log.EventLogBuilder` and runs the same Rust
engine and scorer, so a batch run over the history produces the live rows bit for bit,
without Redis and at batch speed. The live processor starts its engine fresh at the first
event it reads; replay does the same at the first event of the range, so rows agree with a
live run that started at that event.

Notebook use::

    from cif.replay.offline import replay_frame
    cols = replay_frame("data/cif.duckdb", "btcusdt")
    df = pandas.DataFrame(cols)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

from cif._core import compute_features, publishable_rows
from cif.digest import ChainDigest, features_digest, forecasts_digest
from cif.forecast.models import Model, default_model
from cif.store.event_log import load_event_log
from cif.store.segments import open_history

#: How far a forecast's probabilities may sum away from 1 (the forecaster's own check:
#: a row failing it gets no forecast live, so it gets none here either).
PROB_SUM_TOLERANCE = 1e-12

#: The engine defaults (the processor's defaults, ``cif live`` flags unset).
DEFAULT_FEATURE_CONFIG: dict[str, Any] = {
    "time_windows_ms": [1000, 10000, 60000],
    "count_windows": [100],
    "depth_levels": [5, 10],
    "ewma_half_life_ms": 10000.0,
    "emit_on_book": False,
}

Source = duckdb.DuckDBPyConnection | str | Path
Columns = dict[str, NDArray[Any]]


def feature_settings(**overrides: Any) -> dict[str, Any]:
    """The engine settings: the defaults with ``overrides`` (unknown keys refused)."""
    unknown = set(overrides) - set(DEFAULT_FEATURE_CONFIG)
    if unknown:
        raise TypeError(f"unknown feature settings {sorted(unknown)}")
    return {**DEFAULT_FEATURE_CONFIG, **overrides}


def depth_width(settings: Mapping[str, Any]) -> int:
    """Depth levels to decode per side: what the processor decodes (its deepest level)."""
    return max((int(k) for k in settings["depth_levels"]), default=0)


def connect(db: str | Path | None = None, history_dir: str | Path | None = None) -> Any:
    """A read-only connection to the DuckDB file or to the sealed segments."""
    if (db is None) == (history_dir is None):
        raise ValueError("give exactly one of a DuckDB file or a history directory")
    if db is not None:
        path = Path(db)
        if not path.is_file():
            raise FileNotFoundError(f"no DuckDB history at {path}")
        return duckdb.connect(str(path), read_only=True)
    return open_history(Path(str(history_dir)))


def score(model: Model, rows: Mapping[str, NDArray[Any]]) -> tuple[NDArray[Any], NDArray[Any]]:
    """The model's ``(n, K)`` probabilities and the rows the forecaster would publish."""
    n = len(rows["seq"])
    if n == 0 or any(f not in rows for f in model.features):
        # The forecaster skips rows lacking a model feature ("missing_feature"): no forecast.
        return np.full((n, len(model.classes)), np.nan), np.zeros(n, dtype=bool)
    probs = np.asarray(model.predict_table(rows), dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"model returned shape {probs.shape}, expected (n, K)")
    return probs, publishable_rows(probs, PROB_SUM_TOLERANCE)


@dataclass
class ReplayResult:
    """One symbol's replay: the rows, their forecasts, digests and timings."""

    symbol: str
    from_ms: int | None
    to_ms: int | None
    settings: dict[str, Any]
    model: Model
    events: int
    rows: Columns
    probs: NDArray[Any]
    ok: NDArray[Any]
    features: ChainDigest
    forecasts: ChainDigest
    timings: dict[str, float] = field(default_factory=dict)

    def frame(self) -> Columns:
        """Features and forecasts as one dict of columns (``prob_<class>`` is NaN where the
        forecaster would publish nothing; ``forecast`` says where it would)."""
        out: Columns = dict(self.rows)
        for k, cls in enumerate(self.model.classes):
            col = np.where(self.ok, self.probs[:, k], np.nan) if len(self.ok) else self.probs[:, k]
            out[f"prob_{cls}"] = np.ascontiguousarray(col, dtype=np.float64)
        out["forecast"] = np.asarray(self.ok, dtype=bool)
        return out

    def record(self) -> dict[str, Any]:
        """The run's summary (the ``runs`` record, without the run id)."""
        return {
            "symbol": self.symbol,
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "events": self.events,
            "feature_rows": self.features.count,
            "forecast_rows": self.forecasts.count,
            "features_digest": self.features.hexdigest(),
            "forecasts_digest": self.forecasts.hexdigest(),
            "first_seq": self.features.first_seq,
            "last_seq": self.features.last_seq,
            "model": f"{self.model.name}-v{self.model.version}",
            "feature_config": dict(self.settings),
            "timings_s": dict(self.timings),
        }


def replay_events(
    events: Mapping[str, NDArray[Any]],
    symbol: str,
    *,
    model: Model | None = None,
    settings: Mapping[str, Any] | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> ReplayResult:
    """An event log (``EventColumns``) through the engine and the model."""
    cfg = dict(settings or DEFAULT_FEATURE_CONFIG)
    mdl = model or default_model()
    t0 = time.perf_counter()
    rows = compute_features(events, **cfg)
    t1 = time.perf_counter()
    probs, ok = score(mdl, rows)
    t2 = time.perf_counter()
    fd = features_digest(rows)
    cd = forecasts_digest(rows["seq"][ok], probs[ok])
    t3 = time.perf_counter()
    return ReplayResult(
        symbol=symbol.lower(),
        from_ms=from_ms,
        to_ms=to_ms,
        settings=cfg,
        model=mdl,
        events=len(events["seq"]),
        rows=rows,
        probs=probs,
        ok=ok,
        features=fd,
        forecasts=cd,
        timings={"features": t1 - t0, "model": t2 - t1, "digest": t3 - t2},
    )


def replay_symbol(
    source: Source,
    symbol: str,
    from_ms: int | None = None,
    to_ms: int | None = None,
    *,
    model: Model | None = None,
    settings: Mapping[str, Any] | None = None,
) -> ReplayResult:
    """Load ``symbol``'s event log in ``[from_ms, to_ms)`` from the history and replay it."""
    cfg = dict(settings or DEFAULT_FEATURE_CONFIG)
    t0 = time.perf_counter()
    events = load_event_log(source, symbol, from_ms, to_ms, depth_width(cfg))
    load_s = time.perf_counter() - t0
    result = replay_events(events, symbol, model=model, settings=cfg, from_ms=from_ms, to_ms=to_ms)
    result.timings = {"load": load_s, **result.timings}
    return result


def replay_frame(
    source: Source,
    symbol: str,
    from_ms: int | None = None,
    to_ms: int | None = None,
    model: Model | None = None,
    **feature_config: Any,
) -> Columns:
    """Notebook API: features and forecasts of ``symbol`` as a dict of NumPy columns,
    ready for ``pandas.DataFrame`` (``feature_config``: the engine settings, e.g.
    ``time_windows_ms=[1000]``; the processor's defaults otherwise)."""
    settings = feature_settings(**feature_config)
    return replay_symbol(source, symbol, from_ms, to_ms, model=model, settings=settings).frame()


def concat_frames(frames: Sequence[tuple[str, Columns]]) -> Columns:
    """Several symbols' frames as one, with a leading ``symbol`` column."""
    if not frames:
        return {}
    names = list(frames[0][1])
    out: Columns = {
        "symbol": np.concatenate([np.full(len(f["seq"]), sym, dtype=object) for sym, f in frames])
    }
    for name in names:
        out[name] = np.concatenate([f[name] for _sym, f in frames])
    return out
