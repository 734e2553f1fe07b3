"""``python -m cif.live`` and ``cif live`` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from live_testkit import sim_process

from cif.store.segments import open_history

pytestmark = pytest.mark.timeout(120)


def _live(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cif.live", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


def test_live_ingests_until_its_duration_and_leaves_readable_history(tmp_path: Path) -> None:
    flags = ["--synthetic", "--symbols", "btcusdt,ethusdt", "--rate", "500", "--seed", "8"]
    with sim_process(flags, tmp_path) as sim:
        db = tmp_path / "cli.duckdb"
        hist = tmp_path / "hist"
        done = _live(
            "--symbols",
            "btcusdt,ethusdt",
            "--no-redis",
            "--db",
            str(db),
            "--history-dir",
            str(hist),
            "--duration",
            "3",
            env={"CIF_EXCHANGE_URL": sim.ws_url, "CIF_REST_URL": sim.rest_url},
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ingesting btcusdt,ethusdt over 1 connection(s)" in done.stderr
    assert "stopped; BTCUSDT: trades" in done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute("SELECT symbol, count(*) FROM trades GROUP BY 1").fetchall())
    assert set(counts) == {"BTCUSDT", "ETHUSDT"}
    assert all(n > 100 for n in counts.values())
    with open_history(hist) as reader:
        (sealed,) = reader.execute("SELECT count(*) FROM trades").fetchone()  # type: ignore[misc]
    assert sealed == sum(counts.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "btc/usdt"], "invalid symbol"),
        (["--flush-interval", "2"], "--flush-interval must be at most 1 s"),
        (["--streams-per-connection", "2000"], "streams per connection must be in 1..1024"),
    ],
)
def test_bad_arguments_are_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    done = _live(*args, "--no-redis", "--db", str(tmp_path / "x.duckdb"), "--duration", "1")
    assert done.returncode == 2
    assert message in done.stderr
