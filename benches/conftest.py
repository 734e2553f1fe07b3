"""Bench configuration: collect ``bench_*.py``, find the captures and the reference parser.

``pytest benches/`` collects ``bench_*.py`` here (the project's ``testpaths`` only covers
``tests/``, so plain ``pytest`` never runs benches). The pure-Python reference parser lives in
``tests/reference`` and is made importable from here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = REPO_ROOT / "tests"
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    # Files named on the command line are collected by pytest itself whatever their name.
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        module: pytest.Module = pytest.Module.from_parent(parent, path=file_path)
        return module
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    env = os.environ.get("CIF_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "binance"
    if not path.is_dir():
        pytest.fail(
            f"Binance capture directory not found: {path} (set CIF_DATA_DIR)", pytrace=False
        )
    return path


@pytest.fixture(scope="session")
def btc_capture(data_dir: Path) -> Path:
    path = data_dir / "btcusdt_20240808.gz"
    if not path.is_file():
        pytest.fail(f"Binance capture file not found: {path}", pytrace=False)
    return path
