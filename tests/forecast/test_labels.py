"""The label function: hand-made cases, the batch/incremental agreement, the real capture."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from cif.forecast.labels import (
    CLASSES_2,
    CLASSES_3,
    DOWN,
    FLAT,
    NO_INDEX,
    NO_LABEL,
    UP,
    LabelTracker,
    class_index,
    horizon_name,
    label_rows,
    mid_changes,
    parse_horizon,
)

NAN = math.nan


def incremental(ts: Any, mid: Any, horizon_ms: int) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """Run the tracker over the rows and collect its answers as the batch form's arrays."""
    tracker = LabelTracker(horizon_ms)
    n = len(ts)
    label = np.full(n, NO_LABEL, dtype=np.int8)
    realized = np.full(n, NO_INDEX, dtype=np.int64)
    seen: list[int] = []
    for i, (t, m) in enumerate(zip(ts, mid, strict=True)):
        for r in tracker.push(int(t), float(m)):
            assert r.realized == i
            label[r.index] = r.label
            realized[r.index] = r.realized
            seen.append(r.index)
    assert seen == sorted(set(seen)), "each row is settled once, in row order"
    return label, realized


def brute_force(ts: Any, mid: Any, h: int) -> tuple[list[int], list[int]]:
    """The spec's definition, one row at a time, written as plainly as possible."""
    n = len(ts)
    labels, realized = [], []
    for i in range(n):
        j = None
        if h > 0:
            j = next((k for k in range(n) if ts[k] >= ts[i] + h), None)
        else:
            last = None
            for k in range(n):
                if math.isfinite(mid[k]):
                    if k > i and mid[k] != last:
                        j = k
                        break
                    last = mid[k]
        realized.append(NO_INDEX if j is None else j)
        m0 = mid[i]
        m1 = NAN if j is None else mid[j]
        if not (math.isfinite(m0) and math.isfinite(m1)):
            labels.append(NO_LABEL)
        else:
            labels.append(UP if m1 > m0 else DOWN if m1 < m0 else FLAT)
    return labels, realized


def test_fixed_horizon_by_hand() -> None:
    ts = [0, 5, 10, 10, 19, 20, 35]
    mid = [1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 2.0]
    lab = label_rows(ts, mid, 10)
    # row 0 (t=0): first row with ts >= 10 is row 2 (mid 1.0) -> flat, not row 3.
    # row 1 (t=5): first ts >= 15 is row 4 (0.5 < 2) -> down.
    # rows 2, 3 (t=10): first ts >= 20 is row 5 (2.0): 1 -> up, 3 -> down.
    # row 4 (t=19): ts >= 29 -> row 6 (2.0 > 0.5) up; row 5 (t=20): row 6 flat; row 6: none.
    assert lab.label.tolist() == [FLAT, DOWN, UP, DOWN, UP, FLAT, NO_LABEL]
    assert lab.realized.tolist() == [2, 4, 5, 5, 6, 6, NO_INDEX]
    assert lab.label.dtype == np.int8
    assert lab.realized.dtype == np.int64


def test_realized_mid_is_not_interpolated_and_boundary_is_inclusive() -> None:
    lab = label_rows([0, 9, 10, 19], [5.0, 9.0, 5.0, 1.0], 10)
    assert lab.realized[0] == 2  # ts 10 >= 0 + 10 exactly
    assert lab.label[0] == FLAT
    assert lab.label[1] == DOWN  # 9 -> row 3's 1.0


def test_non_finite_mids_have_no_label_but_a_realizing_row() -> None:
    lab = label_rows([0, 1, 2, 3], [NAN, 1.0, NAN, 2.0], 1)
    assert lab.label.tolist() == [NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL]
    assert lab.realized.tolist() == [1, 2, 3, NO_INDEX]
    lab = label_rows([0, 1, 2, 3], [1.0, 1.0, np.inf, 2.0], 2)
    assert lab.label.tolist() == [NO_LABEL, UP, NO_LABEL, NO_LABEL]


def test_next_mid_change() -> None:
    mid = [NAN, 1.0, 1.0, NAN, 1.0, 2.0, 2.0, 1.5, 1.5]
    lab = label_rows(list(range(len(mid))), mid, 0)
    # rows 1-4 settle at row 5 (the first later mid != 1.0, NaNs skipped), rows 5-6 at 7.
    assert lab.label.tolist() == [NO_LABEL, UP, UP, NO_LABEL, UP, DOWN, DOWN, NO_LABEL, NO_LABEL]
    assert lab.realized.tolist() == [1, 5, 5, 5, 5, 7, 7, NO_INDEX, NO_INDEX]
    assert mid_changes(mid).tolist() == [1, 5, 7]
    assert FLAT not in lab.label


def test_time_must_not_go_backwards() -> None:
    with pytest.raises(ValueError, match="row 2: ts 4 is before"):
        label_rows([1, 5, 4], [1.0, 1.0, 1.0], 10)
    tracker = LabelTracker(10)
    tracker.push(5, 1.0)
    with pytest.raises(ValueError, match="row 1: ts 4 is before"):
        tracker.push(4, 1.0)
    with pytest.raises(ValueError, match="same length"):
        label_rows([1, 2], [1.0], 1)
    with pytest.raises(ValueError, match=">= 0"):
        label_rows([1], [1.0], -1)


@pytest.mark.parametrize("horizon", [0, 1, 3, 10, 50])
def test_random_sequences_match_brute_force_and_incremental(horizon: int) -> None:
    rng = np.random.default_rng(horizon + 7)
    for _ in range(30):
        n = int(rng.integers(0, 60))
        ts = np.cumsum(rng.integers(0, 4, size=n)).astype(np.int64)  # ties on purpose
        mid = rng.choice([1.0, 1.5, 2.0, NAN], size=n, p=[0.4, 0.3, 0.2, 0.1])
        lab = label_rows(ts, mid, horizon)
        exp_label, exp_realized = brute_force(ts.tolist(), mid.tolist(), horizon)
        assert lab.label.tolist() == exp_label
        assert lab.realized.tolist() == exp_realized
        inc_label, inc_realized = incremental(ts, mid, horizon)
        np.testing.assert_array_equal(inc_label, lab.label)
        np.testing.assert_array_equal(inc_realized, lab.realized)


@pytest.mark.parametrize("horizon_ms", [0, 1000, 10_000])
def test_real_capture_batch_equals_incremental(
    btc_features: dict[str, NDArray[Any]], horizon_ms: int
) -> None:
    ts, mid = btc_features["ts"], btc_features["mid"]
    lab = label_rows(ts, mid, horizon_ms)
    inc_label, inc_realized = incremental(ts, mid, horizon_ms)
    np.testing.assert_array_equal(inc_label, lab.label)
    np.testing.assert_array_equal(inc_realized, lab.realized)
    ok = lab.realized != NO_INDEX
    j = lab.realized[ok]
    rows = np.flatnonzero(ok)
    assert np.all(j > rows)
    if horizon_ms:
        # the realizing row is the first at or past t + h
        assert np.all(ts[j] >= ts[rows] + horizon_ms)
        assert np.all(ts[j - 1] < ts[rows] + horizon_ms)
    else:
        assert not np.any(lab.label == FLAT)
    labelled = lab.label != NO_LABEL
    # the real data moves: every class shows up and most rows get a label
    assert labelled.mean() > 0.95
    assert (lab.label == UP).sum() > 1000
    assert (lab.label == DOWN).sum() > 1000


def test_tracker_holds_only_rows_inside_the_horizon(btc_features: dict[str, NDArray[Any]]) -> None:
    tracker = LabelTracker(10_000)
    ts = btc_features["ts"]
    for t, m in zip(ts[:3000], btc_features["mid"][:3000], strict=True):
        tracker.push(int(t), float(m))
        oldest = int(ts[tracker.rows - tracker.pending])
        assert oldest > int(t) - 10_000
    assert tracker.rows == 3000


def test_horizon_strings() -> None:
    assert parse_horizon("next") == 0
    assert parse_horizon("10s") == 10_000
    assert parse_horizon("500ms") == 500
    assert parse_horizon("1m") == 60_000
    assert parse_horizon(" 2h ") == 7_200_000
    for bad in ("10", "0s", "-1s", "ten", "1.5s", ""):
        with pytest.raises(ValueError, match="horizon"):
            parse_horizon(bad)
    for ms in (0, 500, 1000, 10_000, 60_000, 90_000, 1500):
        assert parse_horizon(horizon_name(ms)) == ms
    assert horizon_name(60_000) == "1m"
    assert horizon_name(90_000) == "90s"


def test_class_index() -> None:
    labels = np.array([DOWN, FLAT, UP, NO_LABEL], dtype=np.int8)
    idx, mask = class_index(labels, CLASSES_3)
    assert mask.tolist() == [True, True, True, False]
    assert idx[mask].tolist() == [0, 1, 2]
    idx, mask = class_index(labels, CLASSES_2)
    assert mask.tolist() == [True, False, True, False]
    assert idx[mask].tolist() == [0, 1]
    with pytest.raises(ValueError, match="unknown classes"):
        class_index(labels, ("up", "down"))
