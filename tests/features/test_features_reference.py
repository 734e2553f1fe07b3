"""The Rust feature engine (``cif._core``) against the pure-Python reference.

``tests/reference/features_ref.py`` implements ``/work/spec/features.md`` literally, with
exact window sums (see its docstring). The comparisons here:

- Real data: both Binance captures (``events_from_capture``), ``emit_on_book`` False and True,
  the default settings and a second configuration (250 ms, 5 s, 90 s, 20t, 1000t windows,
  depth levels 1 and 3, half-life 2.5 s). Same rows; ``seq``, ``ts``, ``recv_ts_ns`` and
  ``kind`` equal; every feature both NaN or close.
- Generated streams (hypothesis): one-sided books (missing side = price NaN, qty 0), crossed
  and locked quotes, zero quantities, equal timestamps, timestamps going backwards (clamped
  clock), time jumps that empty windows, depth with fewer levels than asked and no depth at
  all, tiny windows (1 ms, 1 trade). Prices and sizes are small dyadic rationals, so every
  sum of sizes or of p*q is exact in floating point: rolling sums cannot leave residuals and
  the NaN decisions (sum == 0) are exact on both sides.
- Hand-computed examples (checked against both implementations).
- The engine's own contract: streaming (``push_trade`` / ``push_book``) vs ``process`` (in one
  batch and in chunks) vs ``compute_features`` are bit-identical; ``snapshot``/``restore``
  mid-stream continues bit-identically; bad input raises ``ValueError`` naming the row and
  leaves the engine as if the batch had never been offered.

"Close" means ``|rust - ref| <= 1e-9 * |ref| + 1e-12 * scale``, where ``scale`` is the
reference's absolute error scale of that row and feature (``RefFeatures.abs_scale``): for a
window sum (``signed_volume``, ``ofi``) the window's sum of |terms| — each OFI e_n counted by
its four |terms| — plus 1e-6 times the sum of |terms| that ever entered that kind of sum (the
second-order residual compensated add/remove may keep); for ratios the same propagated
through the quotient (imbalances: 2, depth/queue imbalances: 2); ``spread`` /
``microprice_offset``: the prices involved; 0 for counts, copies and positive quantities,
which only get the relative tolerance. Values that cancel to ~0 (a signed sum, a spread, a
microprice offset) are thus allowed an absolute error of 1e-12 of the magnitudes that
cancelled, never of the result. ``rv_*`` is compared through its square, the window's sum of
r**2 (same formula, scale in squared units), so a window whose returns are all 0 gets an
absolute tolerance on the sum, not a relative one on its square root. ``ewma_vol`` has an
absolute floor of 1e-150 (a decay into the subnormal range may round differently).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import cif._core as core
from cif.features.event_log import events_from_capture
from reference import features_ref as ref

REL_TOL = 1e-9
ABS_TOL = 1e-12
EWMA_FLOOR = 1e-150
#: ``pytest.raises(..., match=ANY_MESSAGE)``: the error says something.
ANY_MESSAGE = r"\w"
META = ("seq", "ts", "recv_ts_ns", "kind")
META_DTYPES = {"seq": np.int64, "ts": np.int64, "recv_ts_ns": np.int64, "kind": np.uint8}

DEFAULT: dict[str, Any] = {}
ALT: dict[str, Any] = {
    "time_windows_ms": [250, 5000, 90000],
    "count_windows": [20, 1000],
    "depth_levels": [1, 3],
    "ewma_half_life_ms": 2500.0,
}
CONFIGS = {"default": DEFAULT, "alt": ALT}

Events = dict[str, NDArray[Any]]
Columns = Mapping[str, NDArray[Any]]


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def _mismatches(name: str, got: NDArray[np.float64], r: ref.RefFeatures) -> list[str]:
    want = r.columns[name]
    scale = r.abs_scale[name]
    out: list[str] = []
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    for i in np.flatnonzero(nan_got != nan_want)[:5]:
        out.append(f"{name} row {i}: rust {got[i]!r}, reference {want[i]!r} (NaN mismatch)")
    both = ~(nan_got | nan_want)
    with np.errstate(over="ignore", invalid="ignore"):
        if name.startswith("rv_"):
            g, w = got**2, want**2
        else:
            g, w = got, want
        tol = REL_TOL * np.abs(w) + ABS_TOL * scale
        if name == "ewma_vol":
            tol = tol + EWMA_FLOOR
        bad = both & ~(np.abs(g - w) <= tol)
    for i in np.flatnonzero(bad)[:5]:
        out.append(
            f"{name} row {i}: rust {got[i]!r}, reference {want[i]!r}, "
            f"diff {abs(g[i] - w[i]):.3g} > tol {tol[i]:.3g} (abs scale {scale[i]:.3g})"
        )
    return out


def assert_matches_reference(got: Columns, r: ref.RefFeatures, names: list[str]) -> None:
    """Same columns in the same order, same rows and meta columns, every feature close."""
    assert list(got) == [*META, *names]
    n = len(r.columns["seq"])
    for key in META:
        assert got[key].dtype == META_DTYPES[key], key
        assert len(got[key]) == n, f"{key}: {len(got[key])} rows, reference {n}"
        np.testing.assert_array_equal(got[key], r.columns[key], err_msg=key)
    problems: list[str] = []
    for name in names:
        assert got[name].dtype == np.float64, name
        assert got[name].shape == (n,), name
        problems += _mismatches(name, got[name], r)
    assert not problems, f"{len(problems)} mismatches (first per feature):\n" + "\n".join(
        problems[:40]
    )


def bits(a: NDArray[Any]) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def assert_bit_identical(a: Columns, b: Columns) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert bits(a[key]) == bits(b[key]), f"{key} differs"


def feature_rows(out: Columns, names: list[str]) -> NDArray[np.float64]:
    return np.column_stack([out[n] for n in names]) if names else np.zeros((0, 0))


def slice_events(events: Mapping[str, NDArray[Any]], a: int, b: int) -> Events:
    return {k: np.ascontiguousarray(v[a:b]) for k, v in events.items()}


# --------------------------------------------------------------------------------------------
# Real captures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture_events(btc_capture: Path, eth_capture: Path) -> dict[str, Events]:
    return {
        "btc": events_from_capture(btc_capture, "btcusdt"),
        "eth": events_from_capture(eth_capture, "ethusdt"),
    }


def test_capture_event_logs_look_as_documented(capture_events: dict[str, Events]) -> None:
    """The inputs of the comparisons: every trade and book event, in strictly increasing seq."""
    for sym, trades in (("btc", 9_757), ("eth", 6_106)):
        ev = capture_events[sym]
        assert int((ev["kind"] == 0).sum()) == trades
        assert int((ev["kind"] == 1).sum()) > 20_000
        assert np.all(np.diff(ev["seq"]) > 0)
        assert ev["bid_depth"].shape == (len(ev["kind"]), 10)
        # the clamped clock matters here: exchange times do go backwards in these logs
        assert int((np.diff(ev["ts"]) < 0).sum()) > 100


@pytest.fixture(scope="module")
def reference_rows() -> Callable[[Events, str, bool], ref.RefFeatures]:
    """Reference output per (capture, config), computed once with ``emit_on_book=True``; the
    trade-rows-only output is its trade rows (the reference's rows do not depend on
    ``emit_on_book``: ``test_reference_on_generated_streams_is_self_consistent``)."""
    cache: dict[tuple[int, str], ref.RefFeatures] = {}

    def get(events: Events, config: str, emit_on_book: bool) -> ref.RefFeatures:
        key = (id(events), config)
        if key not in cache:
            cache[key] = ref.reference_features(events, emit_on_book=True, **CONFIGS[config])
        full = cache[key]
        if emit_on_book:
            return full
        trades = full.columns["kind"] == 0
        return ref.RefFeatures(
            {k: v[trades] for k, v in full.columns.items()},
            {k: v[trades] for k, v in full.abs_scale.items()},
        )

    return get


@pytest.mark.parametrize("config", ["default", "alt"])
@pytest.mark.parametrize("emit_on_book", [False, True])
@pytest.mark.parametrize("symbol", ["btc", "eth"])
def test_real_capture_matches_reference(
    capture_events: dict[str, Events],
    reference_rows: Callable[[Events, str, bool], ref.RefFeatures],
    symbol: str,
    emit_on_book: bool,
    config: str,
) -> None:
    events = capture_events[symbol]
    kwargs = {**CONFIGS[config], "emit_on_book": emit_on_book}
    names = ref.feature_names(**kwargs)
    assert core.feature_names(**kwargs) == names
    got = core.compute_features(events, **kwargs)
    r = reference_rows(events, config, emit_on_book)
    n_trades = int((events["kind"] == 0).sum())
    assert len(r.columns["seq"]) == (len(events["kind"]) if emit_on_book else n_trades)
    assert_matches_reference(got, r, names)
    # the comparison is not vacuous: every feature has many defined values
    for name in names:
        assert np.isfinite(r.columns[name]).sum() > len(r.columns[name]) // 2, name


def test_reference_sums_equal_fsum_over_window_contents(
    capture_events: dict[str, Events],
) -> None:
    """Reference self-check: the exact rolling sums equal ``math.fsum`` over the deques."""
    part = slice_events(capture_events["btc"], 0, 1500)
    checked = ref.reference_features(part, emit_on_book=True, check_fsum=True, **ALT)
    plain = ref.reference_features(part, emit_on_book=True, **ALT)
    for name in ref.feature_names(**ALT):
        assert bits(checked.columns[name]) == bits(plain.columns[name])


def test_streaming_equals_batch_on_real_capture(capture_events: dict[str, Events]) -> None:
    events = capture_events["btc"]
    kwargs = {"emit_on_book": True}
    names = core.feature_names(**kwargs)
    batch = core.compute_features(events, **kwargs)
    streamed = np.array(list(push_all(core.FeatureEngine(**kwargs), events)), dtype=np.float64)
    assert streamed.shape == (len(batch["seq"]), len(names))
    assert bits(streamed) == bits(feature_rows(batch, names))


def test_snapshot_restore_mid_capture_continues_identically(
    capture_events: dict[str, Events],
) -> None:
    events = capture_events["eth"]
    n = len(events["kind"])
    cut = n // 2
    full = core.compute_features(events, **ALT)
    eng = core.FeatureEngine(**ALT)
    first = eng.process(slice_events(events, 0, cut))
    snap = eng.snapshot()
    restored = core.FeatureEngine.restore(snap)
    assert restored.config == eng.config
    assert restored.events == eng.events == cut
    assert restored.last_seq == eng.last_seq == int(events["seq"][cut - 1])
    assert restored.snapshot() == snap
    second = restored.process(slice_events(events, cut, n))
    also = eng.process(slice_events(events, cut, n))
    assert_bit_identical(second, also)
    k = len(first["seq"])
    assert_bit_identical(second, {key: v[k:] for key, v in full.items()})


# --------------------------------------------------------------------------------------------
# Hand-computed examples (both implementations)
# --------------------------------------------------------------------------------------------


def _ref_compute(events: Mapping[str, NDArray[Any]], **kw: Any) -> dict[str, NDArray[Any]]:
    return ref.compute_features(events, **kw)


def _rust_compute(events: Mapping[str, NDArray[Any]], **kw: Any) -> dict[str, NDArray[Any]]:
    return core.compute_features(events, **kw)


IMPLS: dict[str, Callable[..., dict[str, NDArray[Any]]]] = {
    "reference": _ref_compute,
    "rust": _rust_compute,
}


def make_events(rows: list[dict[str, Any]], depth: int | None = None) -> Events:
    """Events dict from rows: ``{"t": (seq, ts, price, qty, side)}`` or
    ``{"b": (seq, ts, bp, bq, ap, aq), "bd": [...], "ad": [...]}``; ``depth`` = L or None."""
    n = len(rows)
    ev: Events = {
        "kind": np.zeros(n, np.uint8),
        "seq": np.zeros(n, np.int64),
        "ts": np.zeros(n, np.int64),
        "recv_ts_ns": np.arange(n, dtype=np.int64) * 1_000 + 7,
        "price": np.full(n, np.nan),
        "qty": np.full(n, np.nan),
        "side": np.zeros(n, np.int8),
        "bid_price": np.full(n, np.nan),
        "bid_qty": np.full(n, np.nan),
        "ask_price": np.full(n, np.nan),
        "ask_qty": np.full(n, np.nan),
    }
    if depth is not None:
        ev["bid_depth"] = np.zeros((n, depth))
        ev["ask_depth"] = np.zeros((n, depth))
    for i, row in enumerate(rows):
        if "t" in row:
            seq, ts, p, q, s = row["t"]
            ev["price"][i], ev["qty"][i], ev["side"][i] = p, q, s
        else:
            seq, ts, bp, bq, ap, aq = row["b"]
            ev["kind"][i] = 1
            ev["bid_price"][i], ev["bid_qty"][i] = bp, bq
            ev["ask_price"][i], ev["ask_qty"][i] = ap, aq
            if depth is not None:
                bd, ad = row.get("bd", []), row.get("ad", [])
                ev["bid_depth"][i, : len(bd)] = bd
                ev["ask_depth"][i, : len(ad)] = ad
        ev["seq"][i], ev["ts"][i] = seq, ts
    return ev


def check_expected(out: Columns, expected: dict[str, list[float]]) -> None:
    for name, values in expected.items():
        got = out[name].tolist()
        assert len(got) == len(values), name
        for i, (g, w) in enumerate(zip(got, values, strict=True)):
            if math.isnan(w):
                assert math.isnan(g), f"{name} row {i}: {g} != NaN"
            else:
                assert g == pytest.approx(w, rel=1e-12, abs=1e-12), f"{name} row {i}"


NaN = float("nan")


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_computed_two_book_three_trade_stream(impl: str) -> None:
    """Six events, 1 s and 2-trade windows, emit_on_book: every window feature by hand.

    book0 t=1000 (100 x 2 | 101 x 3); trade buy 1 @ 101 t=1000;
    book2 t=1200 (100.5 x 1 | 101 x 1): e = +1 (bid up: +Qb) - 1 (ask same: -Qa) + 3 (+Qa_prev)
    trade sell 3 @ 100.5, ts 1100 -> clock stays 1200 (backwards);
    book4 t=2300 (100 x 5 | 100.5 x 2): e = -1 (bid down: -Qb_prev) - 2 (ask down: -Qa);
    trade sell 2 @ 100 t=2300 (the 1 s window now holds only t > 1300).
    """
    ev = make_events(
        [
            {"b": (1, 1000, 100.0, 2.0, 101.0, 3.0), "bd": [2, 4], "ad": [3, 1]},
            {"t": (2, 1000, 101.0, 1.0, 1)},
            {"b": (3, 1200, 100.5, 1.0, 101.0, 1.0), "bd": [1], "ad": [1]},
            {"t": (4, 1100, 100.5, 3.0, -1)},
            {"b": (5, 2300, 100.0, 5.0, 100.5, 2.0), "bd": [5, 1], "ad": [2, 2]},
            {"t": (6, 2300, 100.0, 2.0, -1)},
        ],
        depth=2,
    )
    kw = {
        "time_windows_ms": [1000],
        "count_windows": [2],
        "depth_levels": [1, 2],
        "ewma_half_life_ms": 1000.0,
        "emit_on_book": True,
    }
    out = IMPLS[impl](ev, **kw)
    r1 = math.log(100.75 / 100.5)
    r2 = math.log(100.25 / 100.75)
    ewma_late = math.sqrt(r1 * r1 * 2 ** (-1.1) + r2 * r2)
    mp0 = (101 * 2 + 100 * 3) / 5 - 100.5
    mp4 = (100.5 * 5 + 100 * 2) / 7 - 100.25
    expected = {
        "seq": [1, 2, 3, 4, 5, 6],
        "ts": [1000, 1000, 1200, 1200, 2300, 2300],
        "kind": [1, 0, 1, 0, 1, 0],
        "last_price": [NaN, 101, 101, 100.5, 100.5, 100],
        "mid": [100.5, 100.5, 100.75, 100.75, 100.25, 100.25],
        "spread": [1, 1, 0.5, 0.5, 0.5, 0.5],
        "spread_bps": [1e4 / 100.5] * 2 + [1e4 * 0.5 / 100.75] * 2 + [1e4 * 0.5 / 100.25] * 2,
        "queue_imbalance": [-0.2, -0.2, 0, 0, 3 / 7, 3 / 7],
        "microprice_offset": [mp0, mp0, 0, 0, mp4, mp4],
        "depth_imbalance_top1": [-0.2, -0.2, 0, 0, 3 / 7, 3 / 7],
        "depth_imbalance_top2": [0.2, 0.2, 0, 0, 0.2, 0.2],
        "ewma_vol": [0, 0, abs(r1), abs(r1), ewma_late, ewma_late],
        "trade_imbalance_count_1s": [NaN, 1, 1, 0, NaN, -1],
        "trade_imbalance_volume_1s": [NaN, 1, 1, -0.5, NaN, -1],
        "signed_volume_1s": [NaN, 1, 1, -2, NaN, -2],
        "ofi_1s": [0, 0, 3, 3, -3, -3],
        "ofi_depth_1s": [0, 0, 3 / 1.75, 3 / 1.75, -3 / 3.5, -3 / 3.5],
        "rv_1s": [0, 0, abs(r1), abs(r1), abs(r2), abs(r2)],
        "vwap_1s": [NaN, 101, 101, 100.625, NaN, 100],
        "intensity_1s": [NaN, 1, 1, 2, NaN, 1],
        # 2 trades: before the 2nd trade everything; then trades k > T-2, books k >= T-1
        "trade_imbalance_count_2t": [NaN, 1, 1, 0, 0, -1],
        "trade_imbalance_volume_2t": [NaN, 1, 1, -0.5, -0.5, -1],
        "signed_volume_2t": [NaN, 1, 1, -2, -2, -5],
        "ofi_2t": [0, 0, 3, 3, 0, -3],
        "ofi_depth_2t": [0, 0, 3 / 1.75, 3, 0, -3 / 3.5],
        "rv_2t": [0, 0, abs(r1), abs(r1), math.hypot(r1, r2), abs(r2)],
        "vwap_2t": [NaN, 101, 101, 100.625, 100.625, 100.3],
        "intensity_2t": [NaN, NaN, NaN, 5, 5, 1 / 1.1],
    }
    check_expected(out, expected)
    np.testing.assert_array_equal(out["recv_ts_ns"], ev["recv_ts_ns"])


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_computed_one_sided_crossed_locked_and_zero_sizes(impl: str) -> None:
    """No depth columns; a one-sided book, a crossed book with a zero size, a locked book
    with zero sizes, a zero-size trade, then a jump that empties the 1 s window."""
    ev = make_events(
        [
            {"b": (10, 5000, NaN, 0.0, 100.0, 2.0)},  # bid missing
            {"b": (11, 5001, 101.0, 1.0, 100.0, 0.0)},  # crossed, ask size 0
            {"t": (12, 5001, 100.0, 0.0, 1)},  # zero-size buy
            {"b": (13, 5002, 100.0, 0.0, 100.0, 0.0)},  # locked, both sizes 0
            {"t": (14, 9000, 100.0, 0.5, -1)},  # 1 s window emptied of the rest
        ]
    )
    kw = {"time_windows_ms": [1000], "count_windows": [1], "depth_levels": [1]}
    out = IMPLS[impl](ev, emit_on_book=True, **kw)
    r = math.log(100.0 / 100.5)
    expected = {
        "mid": [NaN, 100.5, 100.5, 100, 100],
        "spread": [NaN, -1, -1, 0, 0],
        "spread_bps": [NaN, -1e4 / 100.5, -1e4 / 100.5, 0, 0],
        "queue_imbalance": [-1, 1, 1, NaN, NaN],
        "microprice_offset": [NaN, 100 - 100.5, 100 - 100.5, NaN, NaN],
        "depth_imbalance_top1": [NaN] * 5,
        # e: book1 bid vs missing bid: nothing; ask 100 == 100: -0 + 2 -> 2
        #    book2 bid 100 < 101: -1; ask equal: -0 + 0 -> -1
        "ofi_1s": [0, 2, 2, 1, NaN],
        # 1 trade: books after the newest trade only (k >= T)
        "ofi_1t": [0, 2, NaN, -1, NaN],
        "ofi_depth_1s": [0, 2 / 0.75, 2 / 0.75, 1 / 0.5, NaN],
        "ofi_depth_1t": [0, 2 / 0.75, NaN, NaN, NaN],
        "rv_1s": [0, 0, 0, abs(r), NaN],
        "ewma_vol": [0, 0, 0, abs(r), abs(r) * 2 ** (-(9000 - 5002) / 2 / 10000)],
        "trade_imbalance_count_1s": [NaN, NaN, 1, 1, -1],
        "trade_imbalance_volume_1s": [NaN, NaN, NaN, NaN, -1],
        "signed_volume_1s": [NaN, NaN, 0, 0, -0.5],
        "vwap_1s": [NaN, NaN, NaN, NaN, 100],
        "intensity_1s": [NaN, NaN, 1, 1, 1],
        "intensity_1t": [NaN] * 5,
        "last_price": [NaN, NaN, 100, 100, 100],
    }
    check_expected(out, expected)
    # trade rows only: the same values at the trade rows
    trades_only = IMPLS[impl](ev, emit_on_book=False, **kw)
    assert trades_only["seq"].tolist() == [12, 14]
    check_expected(trades_only, {k: [v[2], v[4]] for k, v in expected.items()})


@pytest.mark.parametrize("impl", IMPLS)
def test_no_events_gives_empty_columns(impl: str) -> None:
    out = IMPLS[impl](make_events([], depth=3))
    names = ref.feature_names()
    assert list(out) == [*META, *names]
    assert all(len(v) == 0 for v in out.values())
    assert out["kind"].dtype == np.uint8
    assert out["last_price"].dtype == np.float64


def test_feature_names_and_suffixes() -> None:
    assert ref.time_suffix(1000) == "1s"
    assert ref.time_suffix(60000) == "1m"
    assert ref.time_suffix(500) == "500ms"
    assert ref.time_suffix(90000) == "90s"
    assert ref.time_suffix(120000) == "2m"
    names = core.feature_names()
    assert names == ref.feature_names()
    assert names[:9] == [
        "last_price",
        "mid",
        "spread",
        "spread_bps",
        "queue_imbalance",
        "microprice_offset",
        "depth_imbalance_top5",
        "depth_imbalance_top10",
        "ewma_vol",
    ]
    assert names[9:17] == [f"{f}_1s" for f in ref.WINDOW_FEATURES]
    assert names[-8:] == [f"{f}_100t" for f in ref.WINDOW_FEATURES]
    assert "ofi_1m" in names
    assert len(names) == 9 + 4 * 8
    alt = core.feature_names(**ALT)
    assert alt == ref.feature_names(**ALT)
    assert "rv_250ms" in alt
    assert "rv_90s" in alt
    assert "intensity_1000t" in alt
    eng = core.FeatureEngine(**ALT)
    assert eng.feature_names == alt
    assert eng.config == {
        "time_windows_ms": [250, 5000, 90000],
        "count_windows": [20, 1000],
        "depth_levels": [1, 3],
        "ewma_half_life_ms": 2500.0,
        "emit_on_book": False,
    }
    assert eng.events == 0
    assert eng.last_seq is None


@pytest.mark.parametrize(
    "bad",
    [
        {"time_windows_ms": [0]},
        {"time_windows_ms": [-5]},
        {"time_windows_ms": [1000, 1000]},
        {"count_windows": [0]},
        {"count_windows": [5, 5]},
        {"depth_levels": [0]},
        {"depth_levels": [3, 3]},
        {"ewma_half_life_ms": 0.0},
        {"ewma_half_life_ms": -1.0},
        {"ewma_half_life_ms": float("inf")},
        {"ewma_half_life_ms": float("nan")},
    ],
)
def test_bad_config_is_rejected(bad: dict[str, Any]) -> None:
    (key,) = bad
    named = key.removesuffix("_ms")  # the message names the setting
    with pytest.raises(ValueError, match=named):
        core.FeatureEngine(**bad)
    with pytest.raises(ValueError, match=named):
        core.compute_features(make_events([]), **bad)
    with pytest.raises(ValueError, match=named):
        ref.Config.make(**bad)


# --------------------------------------------------------------------------------------------
# Generated streams
# --------------------------------------------------------------------------------------------

_QTY = st.one_of(st.just(0.0), st.integers(1, 160).map(lambda k: k / 8))
_PRICE_TICKS = st.integers(380, 420)  # price = ticks / 4
_DT = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([0, 0, -250, 240, 999, 1000, 1001, 5000, 61_000]),
)


@st.composite
def event_streams(draw: st.DrawFn, max_events: int = 60) -> Events:
    n = draw(st.integers(0, max_events))
    depth = draw(st.sampled_from([None, 0, 1, 2, 4]))
    seq = draw(st.integers(-10, 10**6))
    ts = draw(st.integers(1_700_000_000_000, 1_700_000_100_000))
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        seq += draw(st.integers(1, 3))
        ts += draw(_DT)
        if draw(st.integers(0, 2)) == 0:
            price = draw(_PRICE_TICKS) / 4
            rows.append({"t": (seq, ts, price, draw(_QTY), draw(st.sampled_from([1, -1])))})
            continue
        bid_ticks = draw(_PRICE_TICKS)
        ask_ticks = bid_ticks + draw(st.integers(-2, 4))  # crossed, locked or normal
        sides = []
        for ticks in (bid_ticks, ask_ticks):
            if draw(st.integers(0, 7)) == 0:
                sides += [NaN, 0.0]  # missing side
            else:
                sides += [ticks / 4, draw(_QTY)]
        row: dict[str, Any] = {"b": (seq, ts, *sides)}
        if depth:
            row["bd"] = draw(st.lists(_QTY, max_size=depth))
            row["ad"] = draw(st.lists(_QTY, max_size=depth))
        rows.append(row)
    return make_events(rows, depth)


configs = st.fixed_dictionaries(
    {
        "time_windows_ms": st.lists(
            st.sampled_from([1, 5, 20, 250, 1000, 5000, 60000]), min_size=1, max_size=3, unique=True
        ),
        "count_windows": st.lists(
            st.sampled_from([1, 2, 3, 7, 20]), min_size=1, max_size=2, unique=True
        ),
        "depth_levels": st.lists(
            st.sampled_from([1, 2, 3, 5]), min_size=1, max_size=2, unique=True
        ),
        "ewma_half_life_ms": st.sampled_from([250.0, 2500.0, 10000.0]),
        "emit_on_book": st.booleans(),
    }
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(events=event_streams(), kw=configs)
def test_generated_streams_match_reference(events: Events, kw: dict[str, Any]) -> None:
    got = core.compute_features(events, **kw)
    r = ref.reference_features(events, **kw)
    assert_matches_reference(got, r, ref.feature_names(**kw))


def push_all(eng: Any, events: Mapping[str, NDArray[Any]]) -> Iterator[list[float]]:
    """Feed ``events`` one at a time; yield the rows the engine returns."""
    kind = events["kind"].tolist()
    cols = {k: v.tolist() for k, v in events.items()}
    has_depth = "bid_depth" in events
    for i, k in enumerate(kind):
        if k == 0:
            yield eng.push_trade(
                cols["seq"][i],
                cols["ts"][i],
                cols["recv_ts_ns"][i],
                cols["price"][i],
                cols["qty"][i],
                cols["side"][i],
            )
        else:
            row = eng.push_book(
                cols["seq"][i],
                cols["ts"][i],
                cols["recv_ts_ns"][i],
                cols["bid_price"][i],
                cols["bid_qty"][i],
                cols["ask_price"][i],
                cols["ask_qty"][i],
                cols["bid_depth"][i] if has_depth else (),
                cols["ask_depth"][i] if has_depth else (),
            )
            if row is not None:
                yield row


@FEWER
@given(events=event_streams(), kw=configs, cuts=st.lists(st.integers(0, 60), max_size=4))
def test_streaming_process_and_compute_features_are_bit_identical(
    events: Events, kw: dict[str, Any], cuts: list[int]
) -> None:
    names = core.feature_names(**kw)
    whole = core.compute_features(events, **kw)
    eng = core.FeatureEngine(**kw)
    assert_bit_identical(eng.process(events), whole)
    n = len(events["kind"])
    assert eng.events == n
    assert eng.last_seq == (int(events["seq"][-1]) if n else None)
    # in chunks
    bounds = sorted({0, n, *(min(c, n) for c in cuts)})
    chunked = core.FeatureEngine(**kw)
    parts = [chunked.process(slice_events(events, a, b)) for a, b in itertools.pairwise(bounds)]
    if parts:
        joined = {k: np.concatenate([p[k] for p in parts]) for k in whole}
        assert_bit_identical(joined, whole)
    # one event at a time
    streamed = list(push_all(core.FeatureEngine(**kw), events))
    assert all(len(row) == len(names) for row in streamed)
    rows = np.array(streamed, dtype=np.float64).reshape(len(streamed), len(names))
    assert bits(rows) == bits(feature_rows(whole, names))


@FEWER
@given(events=event_streams(), kw=configs, cut=st.integers(0, 60))
def test_snapshot_restore_mid_stream_is_bit_identical(
    events: Events, kw: dict[str, Any], cut: int
) -> None:
    n = len(events["kind"])
    cut = min(cut, n)
    whole = core.compute_features(events, **kw)
    eng = core.FeatureEngine(**kw)
    first = eng.process(slice_events(events, 0, cut))
    snap = eng.snapshot()
    assert isinstance(snap, bytes)
    restored = core.FeatureEngine.restore(snap)
    assert restored.config == eng.config
    assert restored.events == cut
    rest = slice_events(events, cut, n)
    second = restored.process(rest)
    assert_bit_identical(second, eng.process(rest))
    k = len(first["seq"])
    assert_bit_identical(second, {key: v[k:] for key, v in whole.items()})


def test_restore_rejects_bad_data() -> None:
    eng = core.FeatureEngine()
    eng.process(make_events([{"t": (1, 1000, 100.0, 1.0, 1)}]))
    snap = eng.snapshot()
    for data in (b"", b"not a snapshot", snap[: len(snap) // 2], snap[:-1], b"\x00" * len(snap)):
        with pytest.raises(ValueError, match=ANY_MESSAGE):
            core.FeatureEngine.restore(data)


# --------------------------------------------------------------------------------------------
# Validation: ValueError naming the row; a failed batch changes nothing
# --------------------------------------------------------------------------------------------


def _good_rows(seq0: int) -> list[dict[str, Any]]:
    s = seq0
    return [
        {"b": (s, 1000, 100.0, 2.0, 100.5, 3.0), "bd": [2, 1], "ad": [3, 1]},
        {"t": (s + 1, 1001, 100.5, 0.5, 1)},
        {"b": (s + 2, 1002, 100.25, 1.0, 100.5, 2.0), "bd": [1], "ad": [2]},
        {"t": (s + 3, 1002, 100.25, 1.0, -1)},
        {"b": (s + 5, 1400, NaN, 0.0, 100.5, 1.0), "ad": [1, 4]},
        {"t": (s + 6, 1399, 100.5, 2.0, 1)},
    ]


def _corrupt(ev: Events, key: str, row: int, value: Any) -> Events:
    bad = {k: v.copy() for k, v in ev.items()}
    bad[key][row] = value
    return bad


BAD_ROWS: list[tuple[str, int, Any, str]] = [
    # (column, row, value, a word the message must contain)
    ("price", 3, NaN, "price"),
    ("price", 1, float("inf"), "price"),
    ("price", 5, 0.0, "price"),
    ("qty", 5, -1.0, "qty"),
    ("qty", 1, NaN, "qty"),
    ("side", 3, 0, "side"),
    ("side", 1, 2, "side"),
    ("bid_price", 2, NaN, "bid"),  # NaN price with qty > 0
    ("bid_price", 2, -100.0, "bid"),
    ("ask_qty", 4, NaN, "ask"),
    ("ask_qty", 2, -2.0, "ask"),
    ("ask_price", 0, float("inf"), "ask"),
    ("bid_qty", 4, 1.0, "bid"),  # missing bid (NaN price) with qty > 0
    ("bid_depth", 2, [1.0, -1.0], "depth"),
    ("ask_depth", 4, [NaN, 0.0], "depth"),
    ("seq", 3, 2, "seq"),  # equal to the previous seq
    ("seq", 5, 0, "seq"),  # smaller than the previous seq
    ("kind", 2, 2, "kind"),
]


@pytest.mark.parametrize(("key", "row", "value", "word"), BAD_ROWS)
def test_bad_event_raises_naming_the_row_and_changes_nothing(
    key: str, row: int, value: Any, word: str
) -> None:
    kw = {"time_windows_ms": [1000], "count_windows": [2], "depth_levels": [1, 2]}
    first = make_events(_good_rows(0), depth=2)
    good = make_events(_good_rows(10), depth=2)
    bad = _corrupt(make_events(_good_rows(10), depth=2), key, row, value)
    later = make_events(_good_rows(20), depth=2)
    for emit in (False, True):
        eng = core.FeatureEngine(emit_on_book=emit, **kw)
        clean = core.FeatureEngine(emit_on_book=emit, **kw)
        assert_bit_identical(eng.process(first), clean.process(first))
        before = eng.snapshot()
        with pytest.raises(ValueError, match=rf"(?i)event {row}\b.*{word}") as info:
            eng.process(bad)
        assert f"seq {int(bad['seq'][row])}" in str(info.value)
        assert eng.events == len(first["kind"])
        assert eng.last_seq == int(first["seq"][-1])
        assert eng.snapshot() == before
        assert_bit_identical(eng.process(good), clean.process(good))
        assert_bit_identical(eng.process(later), clean.process(later))
        with pytest.raises(ValueError, match=rf"(?i)event {row}\b"):
            core.compute_features(_corrupt(make_events(_good_rows(0), 2), key, row, value))
    with pytest.raises(ValueError, match=rf"(?i)event {row}\b"):
        ref.compute_features(_corrupt(make_events(_good_rows(0), 2), key, row, value))


def test_seq_must_increase_across_calls() -> None:
    eng = core.FeatureEngine()
    eng.process(make_events(_good_rows(0)))
    last = eng.last_seq
    assert last == 6
    before = eng.snapshot()
    with pytest.raises(ValueError, match=r"(?i)event 0\b.*seq"):
        eng.process(make_events(_good_rows(6)))
    with pytest.raises(ValueError, match=r"(?i)seq"):
        eng.push_trade(6, 2000, 0, 100.0, 1.0, 1)
    with pytest.raises(ValueError, match=r"(?i)seq"):
        eng.push_book(3, 2000, 0, 100.0, 1.0, 101.0, 1.0)
    assert eng.snapshot() == before
    assert eng.last_seq == last
    eng.push_trade(7, 2000, 0, 100.0, 1.0, 1)
    assert eng.last_seq == 7


@pytest.mark.parametrize(
    ("push", "args"),
    [
        ("push_trade", (5, 1000, 0, NaN, 1.0, 1)),
        ("push_trade", (5, 1000, 0, 100.0, -1.0, 1)),
        ("push_trade", (5, 1000, 0, 100.0, 1.0, 0)),
        ("push_book", (5, 1000, 0, NaN, 1.0, 101.0, 1.0)),
        ("push_book", (5, 1000, 0, 100.0, 1.0, 101.0, -1.0)),
        ("push_book", (5, 1000, 0, 100.0, 1.0, 101.0, 1.0, [1.0, -1.0], [1.0])),
    ],
)
def test_bad_push_raises_and_changes_nothing(push: str, args: tuple[Any, ...]) -> None:
    eng = core.FeatureEngine(emit_on_book=True)
    eng.push_book(1, 900, 0, 100.0, 1.0, 101.0, 2.0)
    before = eng.snapshot()
    with pytest.raises(ValueError, match=ANY_MESSAGE):
        getattr(eng, push)(*args)
    assert eng.snapshot() == before
    assert eng.events == 1
    assert eng.last_seq == 1


def test_malformed_batches_raise_and_change_nothing() -> None:
    eng = core.FeatureEngine()
    eng.process(make_events(_good_rows(0), depth=2))
    before = eng.snapshot()
    good = make_events(_good_rows(10), depth=2)
    broken: list[Events] = []
    for key in ref.EVENT_KEYS:  # a missing column
        broken.append({k: v for k, v in good.items() if k != key})
    broken.append({**good, "qty": good["qty"][:-1]})  # one column shorter
    broken.append({**good, "kind": np.concatenate([good["kind"], [0]]).astype(np.uint8)})
    broken.append({**good, "bid_depth": good["bid_depth"][:-1]})  # depth rows != n
    broken.append({**good, "ask_depth": good["ask_depth"][:, 0]})  # depth not 2-D
    for bad in broken:
        with pytest.raises(ValueError, match=ANY_MESSAGE):
            eng.process(bad)
        with pytest.raises(ValueError, match=ANY_MESSAGE):
            ref.compute_features(bad)
        assert eng.snapshot() == before


@FEWER
@given(events=event_streams(), kw=configs)
def test_reference_on_generated_streams_is_self_consistent(
    events: Events, kw: dict[str, Any]
) -> None:
    """Reference only: exact sums == fsum over the window contents at every row, and the
    trade rows are the same whether book rows are emitted or not."""
    r = ref.reference_features(events, check_fsum=True, **kw)
    names = ref.feature_names(**kw)
    for name in names:
        assert np.all(r.abs_scale[name] >= 0), name
    other = ref.compute_features(events, **{**kw, "emit_on_book": not kw["emit_on_book"]})
    with_books, trades_only = (r.columns, other) if kw["emit_on_book"] else (other, r.columns)
    at_trades = {k: v[with_books["kind"] == 0] for k, v in with_books.items()}
    assert_bit_identical(at_trades, trades_only)


@FEWER
@given(events=event_streams(), kw=configs)
def test_trade_rows_do_not_depend_on_emit_on_book(events: Events, kw: dict[str, Any]) -> None:
    with_books = core.compute_features(events, **{**kw, "emit_on_book": True})
    trades_only = core.compute_features(events, **{**kw, "emit_on_book": False})
    at_trades = {k: v[with_books["kind"] == 0] for k, v in with_books.items()}
    assert_bit_identical(at_trades, trades_only)
