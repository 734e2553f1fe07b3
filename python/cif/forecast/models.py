"""Forecast models: the JSON artifact and thin wrappers around the Rust scorers.

Scoring happens in Rust (``cif._core.score_linear`` / ``score_heuristic``) so the live
service, replay and the trainer's validation produce bit-identical probabilities from the
same inputs; this module only owns the parameters, their validation and the file format.

Artifact (``/work/spec/forecasts.md``, "Models"): one JSON file ``<dir>/<name>-v<version>.json``
with ``format = "cif-model"`` and ``format_version = 1``. Loading validates everything the
scorer would otherwise trip over later (unknown format version, missing keys, lengths,
non-finite numbers, a horizon string that disagrees with ``horizon_ms``) and names the
file and the key in the error, because a bad artifact should stop a deploy, not a live
service at its first row.
"""

from __future__ import annotations

import json
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

import cif._core as _core
from cif.forecast.labels import CLASSES_2, CLASSES_3, horizon_name, parse_horizon

FORMAT: Final = "cif-model"
FORMAT_VERSION: Final = 1

#: Seed heuristic defaults, chosen on the real BTCUSDT capture (btcusdt_20240808.gz, one row
#: per trade, default feature config). |ofi_10s| (BTC) has quantiles 50 % 28, 75 % 41,
#: 90 % 75, 95 % 103. Below the 90th percentile the sign of ofi_10s did not predict the
#: 10 s move (the move followed it 50 %, 33 %, 49 % of the time in the bands 0-28, 28-41,
#: 41-75 BTC: OFI is contemporaneous, mostly already in the price); beyond it the move
#: followed the sign 71 % of the time (995 rows). Hence: threshold = 75 (the 90th
#: percentile: "no view" on 9 rows in 10), scale = 30 (about the 95th minus the 90th
#: percentile, so the tanh is 3/4 saturated at the 95th), max_prob = 0.65 (the 71 % shrunk
#: toward 0.5: it is in-sample, on a few minutes of strongly autocorrelated rows). The
#: units are BTC: other symbols need their own numbers (``default_model(threshold=...)``).
DEFAULT_HEURISTIC_FEATURE: Final = "ofi_10s"
DEFAULT_HEURISTIC_THRESHOLD: Final = 75.0
DEFAULT_HEURISTIC_SCALE: Final = 30.0
DEFAULT_HEURISTIC_MAX_PROB: Final = 0.65
DEFAULT_HORIZON: Final = "10s"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_ARTIFACT = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)\.json$")

_COMMON_KEYS: Final = (
    "format",
    "format_version",
    "name",
    "version",
    "kind",
    "classes",
    "horizon",
    "horizon_ms",
    "features",
)
_LOGISTIC_KEYS: Final = ("mean", "scale", "coef", "intercept")
_HEURISTIC_KEYS: Final = ("feature", "threshold", "scale", "max_prob")


class ArtifactError(ValueError):
    """A model artifact (file or dict) is not a valid cif model."""


def feature_matrix(table: Mapping[str, ArrayLike], features: Sequence[str]) -> NDArray[np.float64]:
    """The ``(n, F)`` float64 matrix of ``features`` (in order) from a feature table (the
    columns ``compute_features`` returns); names the missing ones if any."""
    missing = [f for f in features if f not in table]
    if missing:
        have = [k for k in table if k not in ("seq", "ts", "recv_ts_ns", "kind")]
        raise KeyError(f"feature table lacks {missing}; it has {have}")
    cols = [np.asarray(table[f], dtype=np.float64) for f in features]
    if not cols:
        return np.zeros((0, 0))
    return np.ascontiguousarray(np.column_stack(cols))


class Model(ABC):
    """What the forecaster, the evaluator and the trainer need from any model."""

    kind: ClassVar[str]

    def __init__(
        self,
        *,
        name: str,
        version: int,
        classes: Sequence[str],
        features: Sequence[str],
        horizon_ms: int,
        feature_config: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
        validation: Mapping[str, Any] | None = None,
        created_at: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ArtifactError(
                f"name {name!r}: use letters, digits, '_', '.' and '-' (it becomes a file name)"
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ArtifactError(f"version must be an integer >= 1, got {version!r}")
        if tuple(classes) not in (CLASSES_3, CLASSES_2):
            raise ArtifactError(
                f"classes must be {list(CLASSES_3)} or {list(CLASSES_2)}, got {list(classes)}"
            )
        if isinstance(horizon_ms, bool) or not isinstance(horizon_ms, int) or horizon_ms < 0:
            raise ArtifactError(f"horizon_ms must be an integer >= 0, got {horizon_ms!r}")
        if not features or not all(isinstance(f, str) and f for f in features):
            raise ArtifactError(f"features must be a non-empty list of names, got {features!r}")
        if len(set(features)) != len(features):
            raise ArtifactError(f"features has duplicates: {list(features)}")
        self.name = name
        self.version = version
        self.classes: tuple[str, ...] = tuple(classes)
        self.features: tuple[str, ...] = tuple(features)
        self.horizon_ms = horizon_ms
        self.feature_config: dict[str, Any] = dict(feature_config or {})
        self.training: dict[str, Any] = dict(training or {})
        self.validation: dict[str, Any] = dict(validation or {})
        self.created_at = created_at or datetime.now(UTC).isoformat(timespec="seconds")

    @property
    def horizon(self) -> str:
        return horizon_name(self.horizon_ms)

    @property
    def up_index(self) -> int:
        return self.classes.index("up")

    @abstractmethod
    def predict(self, x: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities ``(n, K)`` (columns in :attr:`classes` order) for the feature
        matrix ``x`` ``(n, F)`` (columns in :attr:`features` order)."""

    def predict_table(self, table: Mapping[str, ArrayLike]) -> NDArray[np.float64]:
        """:meth:`predict` on the model's columns of a feature table."""
        return self.predict(feature_matrix(table, self.features))

    def _x(self, x: ArrayLike) -> NDArray[np.float64]:
        arr = np.ascontiguousarray(x, dtype=np.float64)
        if arr.ndim == 1 and len(self.features) == arr.size:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(self.features):
            raise ValueError(
                f"model {self.name} expects x of shape (n, {len(self.features)}) "
                f"(features {list(self.features)}), got {arr.shape}"
            )
        return arr

    @abstractmethod
    def _params(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]:
        """The artifact as a JSON-ready dict (NaN metrics become ``None``)."""
        d: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "classes": list(self.classes),
            "horizon": self.horizon,
            "horizon_ms": self.horizon_ms,
            "features": list(self.features),
        }
        d.update(self._params())
        d["feature_config"] = self.feature_config
        d["training"] = self.training
        d["validation"] = self.validation
        d["created_at"] = self.created_at
        return json_safe(d)  # type: ignore[no-any-return]

    def file_name(self) -> str:
        return artifact_name(self.name, self.version)

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``<directory>/<name>-v<version>.json`` atomically; refuses to replace an
        existing version (versions are immutable once published) unless ``overwrite``."""
        out_dir = Path(directory)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / self.file_name()
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; model versions are never overwritten")
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, version={self.version}, "
            f"horizon={self.horizon!r}, classes={list(self.classes)}, "
            f"features={len(self.features)})"
        )


class LogisticModel(Model):
    """Multinomial (or binary, as a 2-class softmax) logistic regression on standardized
    features: ``softmax(((x - mean) / scale) @ coef.T + intercept)``, non-finite z -> 0."""

    kind = "logistic"

    def __init__(
        self,
        *,
        mean: ArrayLike,
        scale: ArrayLike,
        coef: ArrayLike,
        intercept: ArrayLike,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        n_f, n_k = len(self.features), len(self.classes)
        self.mean = _finite_vector("mean", mean, n_f)
        self.scale = _finite_vector("scale", scale, n_f)
        if np.any(self.scale <= 0):
            raise ArtifactError(f"scale must be > 0, got {self.scale.tolist()}")
        c = np.asarray(coef, dtype=np.float64)
        if c.shape != (n_k, n_f):
            raise ArtifactError(
                f"coef must have {n_k} rows (classes) of {n_f} values (features), "
                f"got shape {c.shape}"
            )
        if not np.all(np.isfinite(c)):
            raise ArtifactError("coef has non-finite values")
        self.coef = np.ascontiguousarray(c)
        self.intercept = _finite_vector("intercept", intercept, n_k)

    def predict(self, x: ArrayLike) -> NDArray[np.float64]:
        return _core.score_linear(self._x(x), self.mean, self.scale, self.coef, self.intercept)

    def _params(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }


class HeuristicModel(Model):
    """The seed's OFI-threshold heuristic (binary): no view inside ``|x| <= threshold``,
    then ``p_up = 0.5 + (max_prob - 0.5) * tanh((x - sign(x) * threshold) / scale)``."""

    kind = "heuristic"

    def __init__(
        self,
        *,
        feature: str = DEFAULT_HEURISTIC_FEATURE,
        threshold: float = DEFAULT_HEURISTIC_THRESHOLD,
        scale: float = DEFAULT_HEURISTIC_SCALE,
        max_prob: float = DEFAULT_HEURISTIC_MAX_PROB,
        **common: Any,
    ) -> None:
        common.setdefault("classes", CLASSES_2)
        common.setdefault("features", [feature])
        super().__init__(**common)
        if self.classes != CLASSES_2:
            raise ArtifactError(f"a heuristic model is binary: classes must be {list(CLASSES_2)}")
        if list(self.features) != [feature]:
            raise ArtifactError(
                f"a heuristic model's features must be [{feature!r}], got {list(self.features)}"
            )
        self.feature = feature
        self.threshold = _finite_scalar("threshold", threshold)
        self.scale = _finite_scalar("scale", scale)
        self.max_prob = _finite_scalar("max_prob", max_prob)
        if self.threshold < 0:
            raise ArtifactError(f"threshold must be >= 0, got {self.threshold}")
        if self.scale <= 0:
            raise ArtifactError(f"scale must be > 0, got {self.scale}")
        if not 0.5 <= self.max_prob <= 1.0:
            raise ArtifactError(f"max_prob must be in [0.5, 1], got {self.max_prob}")

    def predict(self, x: ArrayLike) -> NDArray[np.float64]:
        col = np.ascontiguousarray(self._x(x)[:, 0])
        return _core.score_heuristic(col, self.threshold, self.scale, self.max_prob)

    def _params(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "scale": self.scale,
            "max_prob": self.max_prob,
        }


def default_model(
    *,
    horizon: str = DEFAULT_HORIZON,
    threshold: float = DEFAULT_HEURISTIC_THRESHOLD,
    scale: float = DEFAULT_HEURISTIC_SCALE,
    max_prob: float = DEFAULT_HEURISTIC_MAX_PROB,
    feature: str = DEFAULT_HEURISTIC_FEATURE,
    name: str = "heuristic",
    version: int = 1,
) -> HeuristicModel:
    """The model used when none is configured: the seed heuristic on ``ofi_10s``."""
    return HeuristicModel(
        name=name,
        version=version,
        horizon_ms=parse_horizon(horizon),
        feature=feature,
        threshold=threshold,
        scale=scale,
        max_prob=max_prob,
        training={"note": "seed heuristic; parameters chosen on btcusdt_20240808 (models.py)"},
    )


# --------------------------------------------------------------------------------------------
# Artifact I/O
# --------------------------------------------------------------------------------------------


def artifact_name(name: str, version: int) -> str:
    return f"{name}-v{version}.json"


def versions(directory: str | Path, name: str) -> list[int]:
    """The versions of ``name`` present in ``directory`` (by file name), ascending."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _ARTIFACT.match(p.name)
        if m and m.group("name") == name:
            found.append(int(m.group("version")))
    return sorted(found)


def next_version(directory: str | Path, name: str) -> int:
    """Previous max version of ``name`` in ``directory`` + 1 (1 when there is none)."""
    have = versions(directory, name)
    return have[-1] + 1 if have else 1


def load_model(path: str | Path) -> Model:
    """Read and validate an artifact file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{p}: not a readable JSON file: {e}") from e
    return model_from_dict(data, source=str(p))


def model_from_dict(data: Any, *, source: str = "model") -> Model:
    """Validate an artifact dict and build the model; errors name ``source`` and the key."""
    try:
        return _from_dict(data)
    except ArtifactError as e:
        raise ArtifactError(f"{source}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"{source}: {e}") from None


def _from_dict(data: Any) -> Model:
    if not isinstance(data, dict):
        raise ArtifactError(f"expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ArtifactError(f"'format' must be {FORMAT!r}, got {data.get('format')!r}")
    fv = data.get("format_version")
    if fv != FORMAT_VERSION or isinstance(fv, bool):
        raise ArtifactError(
            f"unknown format_version {fv!r}: this cif reads format_version {FORMAT_VERSION}"
        )
    kind = data.get("kind")
    if kind == "logistic":
        specific = _LOGISTIC_KEYS
    elif kind == "heuristic":
        specific = _HEURISTIC_KEYS
    else:
        raise ArtifactError(f"'kind' must be 'logistic' or 'heuristic', got {kind!r}")
    missing = [k for k in (*_COMMON_KEYS, *specific) if k not in data]
    if missing:
        raise ArtifactError(f"missing keys {missing}")
    horizon = data["horizon"]
    horizon_ms = data["horizon_ms"]
    if not isinstance(horizon, str):
        raise ArtifactError(f"'horizon' must be a string, got {horizon!r}")
    if isinstance(horizon_ms, bool) or not isinstance(horizon_ms, int):
        raise ArtifactError(f"'horizon_ms' must be an integer, got {horizon_ms!r}")
    if parse_horizon(horizon) != horizon_ms:
        raise ArtifactError(f"'horizon' {horizon!r} disagrees with 'horizon_ms' {horizon_ms}")
    for key in ("classes", "features"):
        if not isinstance(data[key], list):
            raise ArtifactError(f"{key!r} must be a list, got {data[key]!r}")
    for key in ("feature_config", "training", "validation"):
        if not isinstance(data.get(key, {}), dict):
            raise ArtifactError(f"{key!r} must be an object, got {data[key]!r}")
    common: dict[str, Any] = {
        "name": data["name"],
        "version": data["version"],
        "classes": data["classes"],
        "features": data["features"],
        "horizon_ms": horizon_ms,
        "feature_config": data.get("feature_config"),
        "training": data.get("training"),
        "validation": data.get("validation"),
        "created_at": data.get("created_at"),
    }
    if kind == "logistic":
        return LogisticModel(
            mean=_numbers("mean", data["mean"]),
            scale=_numbers("scale", data["scale"]),
            coef=_matrix("coef", data["coef"]),
            intercept=_numbers("intercept", data["intercept"]),
            **common,
        )
    if not isinstance(data["feature"], str):
        raise ArtifactError(f"'feature' must be a string, got {data['feature']!r}")
    return HeuristicModel(
        feature=data["feature"],
        threshold=_number("threshold", data["threshold"]),
        scale=_number("scale", data["scale"]),
        max_prob=_number("max_prob", data["max_prob"]),
        **common,
    )


def _number(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ArtifactError(f"{key!r} must be a number, got {v!r}")
    return float(v)


def _numbers(key: str, v: Any) -> list[float]:
    if not isinstance(v, list):
        raise ArtifactError(f"{key!r} must be a list of numbers, got {v!r}")
    return [_number(key, x) for x in v]


def _matrix(key: str, v: Any) -> list[list[float]]:
    if not isinstance(v, list) or not all(isinstance(r, list) for r in v):
        raise ArtifactError(f"{key!r} must be a list of lists of numbers")
    rows = [_numbers(key, r) for r in v]
    if len({len(r) for r in rows}) > 1:
        raise ArtifactError(f"{key!r} rows have different lengths: {[len(r) for r in rows]}")
    return rows


def _finite_vector(key: str, v: ArrayLike, n: int) -> NDArray[np.float64]:
    arr = np.asarray(v, dtype=np.float64)
    if arr.shape != (n,):
        raise ArtifactError(f"{key!r} must have {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ArtifactError(f"{key!r} has non-finite values")
    return np.ascontiguousarray(arr)


def _finite_scalar(key: str, v: float) -> float:
    x = float(v)
    if not math.isfinite(x):
        raise ArtifactError(f"{key!r} must be finite, got {v!r}")
    return x


def json_safe(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays turned into Python values and NaN/inf into ``None``
    (JSON has no NaN; the API and the artifact must stay strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | float):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj
