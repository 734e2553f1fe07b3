"""Paper check: OFI explains short-horizon mid changes (Cont, Kukanov & Stoikov 2014).

On the real btc capture, with ``emit_on_book=True`` (a row after every book event), event time
is cut into non-overlapping intervals of L = 10 s (and 1 s) starting at the first row's clock:
``(b_j, b_j + L]``. For each interval:

- mid change = mid at the last row whose clock is <= the interval end, minus mid at the last
  row whose clock is <= the interval start;
- OFI = ``ofi_10s`` (``ofi_1s``) sampled at the last row at or before the interval end.

How the sample relates to the interval's sum of e_n: at that row r (clock t_r <= end) the
window holds the book events stamped in ``(t_r - L, t_r]``. Every book event is a row, so no
book event is stamped in ``(t_r, end]``: the sample is the interval's sum of e_n, except that
book events stamped in the sliver ``(t_r - L, end - L]`` just before the interval start are
counted too (the sliver is ``end - t_r`` wide: 0 when a book event falls on the end, about
50 ms in the median on this file, at most a few hundred ms). The exact interval sum is also
computed, from cif's output alone: an extra time window longer than the whole capture never
expires anything, so its ``ofi_*`` column is the running sum of every e_n, and the interval
sum is its difference between the two rows above. Both regressions are checked; where an
interval ends exactly on a row's clock the two OFI values agree.

Fit ``mid_change = a + b * ofi`` by OLS (numpy), R². The same is done on the reference
implementation's output: cif's R² must equal the reference's to 1e-9 and lie in a band
around the value the issue states (about 0.39 at 10 s, 0.33 at 1 s). The seed's feature, the
trade count ratio ``trade_imbalance_count`` of the same window sampled the same way, is
regressed for comparison: OFI must explain more at 1 s (345 intervals). At 10 s there are
only 34 intervals on this 346 s file and the count ratio happens to fit them better (R² about
0.53 against 0.43), so that comparison is printed, not asserted.
Run with ``pytest -s`` to see the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import cif._core as core
from cif.features.event_log import events_from_capture
from reference import features_ref as ref

#: A time window longer than the capture (~346 s): nothing ever leaves it.
FOREVER_MS = 10**9 * 60_000
SETTINGS: dict[str, Any] = {
    "time_windows_ms": [1000, 10000, 60000, FOREVER_MS],
    "count_windows": [100],
    "emit_on_book": True,
}
FOREVER = ref.time_suffix(FOREVER_MS)

#: (interval, sampled feature suffix, accepted R² band of the sampled OFI regression)
HORIZONS = {"10s": (10_000, (0.30, 0.55)), "1s": (1_000, (0.25, 0.42))}


@dataclass(frozen=True)
class Fit:
    n: int
    intercept: float
    slope: float
    r2: float


def ols(x: NDArray[np.float64], y: NDArray[np.float64]) -> Fit:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    design = np.column_stack([np.ones_like(x), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    centered = y - y.mean()
    r2 = 1.0 - float(resid @ resid) / float(centered @ centered)
    return Fit(len(x), float(beta[0]), float(beta[1]), r2)


@dataclass(frozen=True)
class Regressions:
    ofi: Fit
    ofi_exact: Fit
    count_ratio: Fit
    max_sliver: float  # largest |sampled - exact interval OFI|
    on_grid: int  # intervals whose end is the clock of a row (no sliver)
    max_on_grid: float  # largest |sampled - exact| over those


def regressions(out: dict[str, NDArray[Any]], interval_ms: int, suffix: str) -> Regressions:
    ts, mid = out["ts"], out["mid"]
    bounds = np.arange(ts[0], ts[-1] + 1, interval_ms)
    last = np.searchsorted(ts, bounds, side="right") - 1  # last row with clock <= bound
    start, end = last[:-1], last[1:]
    dmid = mid[end] - mid[start]
    sampled = out[f"ofi_{suffix}"][end]
    running = out[f"ofi_{FOREVER}"]
    exact = running[end] - running[start]
    count = out[f"trade_imbalance_count_{suffix}"][end]
    diff = np.abs(sampled - exact)
    no_sliver = ts[end] == bounds[1:]
    return Regressions(
        ofi=ols(sampled, dmid),
        ofi_exact=ols(exact, dmid),
        count_ratio=ols(count, dmid),
        max_sliver=float(np.max(diff)),
        on_grid=int(no_sliver.sum()),
        max_on_grid=float(np.max(diff[no_sliver], initial=0.0)),
    )


@pytest.fixture(scope="module")
def outputs(btc_capture: Path) -> dict[str, dict[str, NDArray[Any]]]:
    events = events_from_capture(btc_capture, "btcusdt")
    return {
        "cif": core.compute_features(events, **SETTINGS),
        "reference": ref.compute_features(events, **SETTINGS),
    }


@pytest.mark.parametrize("horizon", HORIZONS)
def test_ofi_explains_mid_changes_like_the_paper(
    outputs: dict[str, dict[str, NDArray[Any]]], horizon: str
) -> None:
    interval_ms, (low, high) = HORIZONS[horizon]
    got = regressions(outputs["cif"], interval_ms, horizon)
    want = regressions(outputs["reference"], interval_ms, horizon)
    for label, fit in (("cif", got), ("reference", want)):
        print(
            f"\n{label} {horizon}: {fit.ofi.n} intervals; "
            f"OFI R²={fit.ofi.r2:.4f} (b={fit.ofi.slope:.4f} quote/base), "
            f"exact-interval OFI R²={fit.ofi_exact.r2:.4f}, "
            f"count ratio R²={fit.count_ratio.r2:.4f} (n={fit.count_ratio.n}); "
            f"max |sampled - exact| OFI {fit.max_sliver:.4g}"
        )
    assert (
        got.ofi.n
        == want.ofi.n
        == (outputs["cif"]["ts"][-1] - outputs["cif"]["ts"][0]) // (interval_ms)
    )
    for name in ("ofi", "ofi_exact", "count_ratio"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.n == w.n, name
        assert g.r2 == pytest.approx(w.r2, rel=0, abs=1e-9), name
        assert g.slope == pytest.approx(w.slope, rel=1e-9), name
    # the sampled window feature is the interval sum when the interval ends on a row
    assert got.on_grid >= 1
    assert got.max_on_grid < 1e-9
    assert low <= got.ofi.r2 <= high
    assert low <= got.ofi_exact.r2 <= high
    # more OFI, higher mid: the slope is positive and of the order of the price per unit size
    assert 0.05 < got.ofi.slope < 2.0


def test_ofi_explains_more_than_the_seed_count_ratio_at_1s(
    outputs: dict[str, dict[str, NDArray[Any]]],
) -> None:
    fits = regressions(outputs["cif"], 1_000, "1s")
    assert fits.ofi.n == fits.count_ratio.n + 3  # 3 one-second intervals without trades
    assert fits.ofi.r2 > fits.count_ratio.r2 + 0.05
