"""The services' garbage-collector policy (``cif.gc_policy``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from cif import gc_policy


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, gc_policy.LATENCY_THRESHOLDS),
        ("", gc_policy.LATENCY_THRESHOLDS),
        ("  ", gc_policy.LATENCY_THRESHOLDS),
        ("default", None),
        (" Default ", None),
        ("700,10,10", (700, 10, 10)),
        (" 1000 , 0 , 5 ", (1000, 0, 5)),
    ],
)
def test_thresholds_from_env(value: str | None, expected: tuple[int, int, int] | None) -> None:
    assert gc_policy.thresholds_from_env(value) == expected


@pytest.mark.parametrize("value", ["700,10", "1,2,3,4", "a,b,c", "700,-1,10", "1.5,2,3"])
def test_bad_thresholds_are_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="CIF_GC_THRESHOLDS must be three non-negative"):
        gc_policy.thresholds_from_env(value)


@pytest.mark.usefixtures("restore_gc")
def test_tune_freezes_the_startup_heap_and_sets_the_thresholds() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    assert gc_policy.tune_for_latency("") == gc_policy.LATENCY_THRESHOLDS
    assert gc.get_threshold() == gc_policy.LATENCY_THRESHOLDS
    # Modules, classes and functions loaded so far no longer take part in collections.
    assert gc.get_freeze_count() > 1000


@pytest.mark.usefixtures("restore_gc")
def test_default_leaves_the_collector_alone() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    assert gc_policy.tune_for_latency("default") is None
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("restore_gc")
def test_cyclic_garbage_is_still_collected() -> None:
    gc_policy.tune_for_latency("")

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    del a, b
    assert gc.collect() >= 2
