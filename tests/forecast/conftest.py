"""Shared inputs of the forecast tests: the real btc capture's event log and feature table.

Both are computed once per session (reading the capture takes about a second) and must
not be modified by tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from cif._core import compute_features
from cif.features.event_log import events_from_capture


@pytest.fixture(scope="session")
def btc_events(btc_capture: Path) -> dict[str, NDArray[Any]]:
    return events_from_capture(btc_capture, "btcusdt")


@pytest.fixture(scope="session")
def btc_features(btc_events: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    table = dict(compute_features(btc_events))
    for col in table.values():
        col.setflags(write=False)
    assert np.all(np.diff(table["ts"]) >= 0)
    return table
