"""The garbage-collector policy of the long-running services (``cif live``, ``cif api``).

CPython's cyclic collector runs a young-generation pass every 700 net container
allocations and, now and then, a full pass over every tracked object. A feed handler
allocates tens of thousands of short-lived containers a second (frames, stream entries,
replies), so with the defaults the live stack ran ~40 collections a second and a full one
every few seconds that stopped the event loop for 50-80 ms: the latency tail of every
forecast behind it (measured: ``benches/README.md``, "bench_latency.py").

Once a service has started, :func:`tune_for_latency`:

- collects once and **freezes** what survived (modules, classes, functions, configuration:
  the bulk of the heap, and never garbage) into the permanent generation, which no later
  pass scans;
- raises the thresholds to :data:`LATENCY_THRESHOLDS`: a young pass every 50,000 net
  allocations, a full pass after 100 middle ones. Short-lived objects are freed by
  reference counting whatever the thresholds, so memory stays flat; only garbage in
  reference cycles waits longer to be reclaimed.

``CIF_GC_THRESHOLDS`` overrides the thresholds (``"700,10,10"``, CPython's defaults,
restores the usual behaviour; ``"default"`` skips this policy altogether).
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Final

log = logging.getLogger(__name__)

#: (young, middle, old) thresholds of :func:`gc.set_threshold` for the services.
LATENCY_THRESHOLDS: Final = (50_000, 20, 100)
ENV: Final = "CIF_GC_THRESHOLDS"


def thresholds_from_env(value: str | None) -> tuple[int, int, int] | None:
    """The thresholds ``CIF_GC_THRESHOLDS`` asks for: unset or empty gives
    :data:`LATENCY_THRESHOLDS`, ``"default"`` gives ``None`` (leave the collector alone);
    anything but three non-negative integers is a ``ValueError``."""
    if value is None or not value.strip():
        return LATENCY_THRESHOLDS
    if value.strip().lower() == "default":
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 3 or min(numbers) < 0:
        raise ValueError(
            f"{ENV} must be three non-negative integers like '50000,20,100' or 'default', "
            f"got {value!r}"
        )
    return numbers[0], numbers[1], numbers[2]


def tune_for_latency(env_value: str | None = None) -> tuple[int, int, int] | None:
    """Apply the policy (call once, when startup is done); returns the thresholds set, or
    ``None`` when ``CIF_GC_THRESHOLDS=default`` left the collector as it was.

    ``env_value`` stands in for the environment variable (tests)."""
    thresholds = thresholds_from_env(os.environ.get(ENV) if env_value is None else env_value)
    if thresholds is None:
        log.info("garbage collector: Python's defaults (%s=default)", ENV)
        return None
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    log.info(
        "garbage collector: %d startup objects frozen, thresholds %s (%s)",
        gc.get_freeze_count(),
        ",".join(map(str, thresholds)),
        ENV,
    )
    return thresholds
