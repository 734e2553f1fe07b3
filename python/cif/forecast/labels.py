"""The label of a feature row: did the mid go down, stay flat or go up over the horizon?

Training and live evaluation must agree on what an outcome is, or validation metrics would
not predict live ones. So there is one definition (``/work/spec/forecasts.md``, "Labels") in
two forms that are tested to agree exactly:

- :func:`label_rows`: vectorized over a whole feature table (training, reports);
- :class:`LabelTracker`: incremental, fed rows in order, returning the labels of earlier rows
  as soon as they become known (the live evaluator).

Definition, for row ``i`` at event time ``t_i`` with mid ``m0 = mid_i`` and horizon ``h`` ms:

- ``h > 0``: the realizing row ``j`` is the first row with ``ts_j >= t_i + h`` (never
  interpolated); ``m1 = mid_j``. Up if ``m1 > m0``, down if ``m1 < m0``, flat if equal.
- ``h == 0`` ("next"): ``j`` is the first later row whose mid is finite and differs from the
  last finite mid before it (a "mid change"); for a row with a finite mid that is exactly the
  first later mid different from ``m0``, so the label is never flat.

A row whose ``m0`` (or ``m1``) is not finite gets :data:`NO_LABEL`; so does a row with no
realizing row yet. The realizing row index is still reported when it exists, because it is
the moment the row's outcome is settled (the walk-forward purge and the evaluator use it).
Row times must be non-decreasing (the feature engine's clock is monotone).
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

DOWN: Final = -1
FLAT: Final = 0
UP: Final = 1
#: The label of a row whose outcome is undefined (non-finite mid) or not realized yet.
NO_LABEL: Final = -128
#: Marker for "no realizing row (yet)" in realizing-index arrays.
NO_INDEX: Final = -1

#: Class names in model order, by number of classes (the spec fixes the order).
CLASSES_3: Final = ("down", "flat", "up")
CLASSES_2: Final = ("down", "up")

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h)\s*$")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_horizon(text: str) -> int:
    """A horizon string -> milliseconds: ``"next"`` -> 0, ``"500ms"``, ``"10s"``, ``"1m"``,
    ``"1h"``. Units are required so that a bare number is never misread as seconds."""
    if text.strip().lower() == "next":
        return 0
    m = _DURATION.match(text.lower())
    if m is None:
        raise ValueError(f"bad horizon {text!r}: expected 'next' or a duration like 500ms, 10s, 1m")
    ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if ms <= 0:
        raise ValueError(f"bad horizon {text!r}: must be > 0 (use 'next' for the next change)")
    return ms


def horizon_name(horizon_ms: int) -> str:
    """The canonical name of a horizon (the feature window suffix rule; 0 -> ``"next"``)."""
    if horizon_ms < 0:
        raise ValueError(f"horizon must be >= 0 ms, got {horizon_ms}")
    if horizon_ms == 0:
        return "next"
    if horizon_ms % 60_000 == 0:
        return f"{horizon_ms // 60_000}m"
    if horizon_ms % 1000 == 0:
        return f"{horizon_ms // 1000}s"
    return f"{horizon_ms}ms"


def classes_for(binary: bool) -> tuple[str, ...]:
    return CLASSES_2 if binary else CLASSES_3


def class_index(
    labels: NDArray[np.int8], classes: tuple[str, ...] | list[str]
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Labels -> column indices into a model's probability rows, and the mask of rows that
    are scored. Unlabelled rows are never scored; a binary model does not score flat
    outcomes (the spec's "flat_excluded")."""
    labels = np.asarray(labels)
    if tuple(classes) == CLASSES_3:
        mask = labels != NO_LABEL
        idx = np.where(mask, labels.astype(np.intp) + 1, 0)
    elif tuple(classes) == CLASSES_2:
        mask = (labels == DOWN) | (labels == UP)
        idx = np.where(labels == UP, 1, 0).astype(np.intp)
    else:
        raise ValueError(f"unknown classes {list(classes)}; expected {CLASSES_3} or {CLASSES_2}")
    return idx, mask


@dataclass(frozen=True)
class Labels:
    """Per row: ``label`` (-1/0/+1 or :data:`NO_LABEL`, int8) and ``realized`` (index of the
    realizing row or :data:`NO_INDEX`, int64)."""

    label: NDArray[np.int8]
    realized: NDArray[np.int64]


def _check_inputs(ts: ArrayLike, mid: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    t = np.asarray(ts, dtype=np.int64)
    m = np.asarray(mid, dtype=np.float64)
    if t.ndim != 1 or m.ndim != 1 or t.shape != m.shape:
        raise ValueError(f"ts and mid must be 1-D of the same length, got {t.shape} and {m.shape}")
    if t.size > 1:
        bad = np.flatnonzero(np.diff(t) < 0)
        if bad.size:
            k = int(bad[0]) + 1
            raise ValueError(
                f"row {k}: ts {int(t[k])} is before the previous row's {int(t[k - 1])}; "
                "rows must be in non-decreasing time order"
            )
    return t, m


def _compare(m0: NDArray[np.float64], m1: NDArray[np.float64]) -> NDArray[np.int8]:
    out = np.full(m0.shape, NO_LABEL, dtype=np.int8)
    ok = np.isfinite(m0) & np.isfinite(m1)
    out[ok & (m1 > m0)] = UP
    out[ok & (m1 < m0)] = DOWN
    out[ok & (m1 == m0)] = FLAT
    return out


def mid_changes(mid: ArrayLike) -> NDArray[np.intp]:
    """Indices of the rows where the mid changes: finite and different from the last finite
    mid before (the first finite mid counts as a change from "no mid")."""
    m = np.asarray(mid, dtype=np.float64)
    fin = np.flatnonzero(np.isfinite(m))
    if fin.size == 0:
        return fin
    vals = m[fin]
    keep = np.empty(fin.size, dtype=bool)
    keep[0] = True
    keep[1:] = vals[1:] != vals[:-1]
    return fin[keep]


def label_rows(ts: ArrayLike, mid: ArrayLike, horizon_ms: int) -> Labels:
    """The label and realizing row of every row of a feature table (see the module doc)."""
    if horizon_ms < 0:
        raise ValueError(f"horizon must be >= 0 ms, got {horizon_ms}")
    t, m = _check_inputs(ts, mid)
    n = t.size
    if horizon_ms > 0:
        j = np.searchsorted(t, t + np.int64(horizon_ms), side="left").astype(np.int64)
    else:
        cp = mid_changes(m)
        pos = np.searchsorted(cp, np.arange(n), side="right")
        j = np.full(n, n, dtype=np.int64)
        has = pos < cp.size
        j[has] = cp[pos[has]]
    found = j < n
    realized = np.where(found, j, NO_INDEX).astype(np.int64)
    m1 = np.full(n, np.nan)
    m1[found] = m[j[found]]
    label = _compare(m, m1)
    return Labels(label=label, realized=realized)


@dataclass(frozen=True)
class Resolved:
    """A row whose outcome just became known."""

    index: int
    label: int
    realized: int


class LabelTracker:
    """The incremental form of :func:`label_rows`: feed rows in order with :meth:`push`, get
    back the rows whose realizing row is the one just fed, in row order.

    Memory is the rows still pending: those within ``h`` of the newest time, or (``h = 0``)
    those since the last mid change. Every row is returned exactly once, unless the stream
    ends first (those rows have no label in :func:`label_rows` either).
    """

    def __init__(self, horizon_ms: int) -> None:
        if horizon_ms < 0:
            raise ValueError(f"horizon must be >= 0 ms, got {horizon_ms}")
        self.horizon_ms = horizon_ms
        self._pending: deque[tuple[int, int, float]] = deque()  # (index, ts, mid)
        self._rows = 0
        self._last_ts: int | None = None
        self._last_finite_mid: float | None = None

    @property
    def rows(self) -> int:
        """Rows fed so far (the next row's index)."""
        return self._rows

    @property
    def pending(self) -> int:
        return len(self._pending)

    def push(self, ts: int, mid: float) -> list[Resolved]:
        return [Resolved(*r) for r in self.push_batch((ts,), (mid,))]

    def push_batch(self, ts: Sequence[int], mids: Sequence[float]) -> list[tuple[int, int, int]]:
        """Rows in order: the same as :meth:`push` on each in turn (the same state after,
        the same rows settled in the same order), in one call. All or nothing: a time going
        backwards raises ``ValueError`` before any row is taken.

        Returns the settled rows as plain ``(index, label, realized)`` tuples (the fields of
        :class:`Resolved`; ``realized`` tells which row of the batch settled it): the live
        evaluator calls this per batch of feature rows, where an object per settled row is
        a measurable part of the cost.
        """
        times = [int(t) for t in ts]
        values = [float(m) for m in mids]
        if len(times) != len(values):
            raise ValueError(f"{len(times)} times but {len(values)} mids")
        last = self._last_ts
        for k, t in enumerate(times):
            if last is not None and t < last:
                raise ValueError(
                    f"row {self._rows + k}: ts {t} is before the previous row's {last}; "
                    "rows must be in non-decreasing time order"
                )
            last = t
        if not times:
            return []
        out: list[tuple[int, int, int]] = []
        pending = self._pending
        popleft, append = pending.popleft, pending.append
        horizon = self.horizon_ms
        isfinite = math.isfinite
        last_finite = self._last_finite_mid
        index = self._rows
        for t, mid in zip(times, values, strict=True):
            finite = isfinite(mid)
            if horizon > 0:
                limit = t - horizon
                while pending and pending[0][1] <= limit:
                    i, _t, m0 = popleft()
                    out.append((i, _label(m0, mid, finite), index))
            elif finite and mid != last_finite:
                # A mid change settles every pending row (they all saw the previous mid or none).
                while pending:
                    i, _t, m0 = popleft()
                    out.append((i, _label(m0, mid, finite), index))
            if finite:
                last_finite = mid
            append((index, t, mid))
            index += 1
        self._rows = index
        self._last_ts = times[-1]
        self._last_finite_mid = last_finite
        return out


def _label(m0: float, m1: float, m1_finite: bool) -> int:
    if not (m1_finite and math.isfinite(m0)):
        return NO_LABEL
    if m1 > m0:
        return UP
    if m1 < m0:
        return DOWN
    return FLAT
