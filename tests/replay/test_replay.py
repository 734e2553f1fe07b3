"""``cif replay`` on the real btc capture: a real ``cif import`` DuckDB, a real Redis, real
processes.

What is pinned: the digest is independent of batching and resumable from its saved state;
offline replay of the history equals ``compute_features`` over the capture; replay into
Redis through a real feature processor and forecaster (killed with -9 and restarted half way)
records the offline feature and forecast digests; ``--verify`` passes on the untouched history
and, after one trade's qty is changed in DuckDB, fails naming that trade's seq and the first
feature it moves, and that both the features and the forecasts diverged.

Waits poll a condition with a deadline (``GUARD_S``); nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pytest
import redis
from numpy.typing import NDArray

from cif._core import compute_features
from cif.bus.keys import digest_key, features_key, trades_key
from cif.digest import BLOCK_ROWS, ChainDigest, features_digest
from cif.features.event_log import events_from_capture
from cif.features.leases import state_key
from cif.replay.offline import replay_frame, replay_symbol

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(240)

GUARD_S = 90.0
BTC_TRADES = 9757


def cif(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m cif.<args>`` as a real process."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=check,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def verify(db: Path, url: str, namespace: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``cif.replay --verify`` of btcusdt against the live run under ``namespace``."""
    args = ["--db", str(db), "--symbols", "btcusdt", "--redis-url", url, "--namespace", namespace]
    return cif("cif.replay", "--verify", *args, *extra, check=False)


def wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def btc_db(btc_capture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The btc capture loaded by the real ``cif import``."""
    db = tmp_path_factory.mktemp("replay") / "cif.duckdb"
    cif("cif", "import", str(btc_capture), "--db", str(db))
    return db


@pytest.fixture(scope="module")
def btc_capture_rows(btc_capture: Path) -> dict[str, NDArray[Any]]:
    return dict(compute_features(events_from_capture(btc_capture, "btcusdt")))


# -- digest ----------------------------------------------------------------------------------


def test_digest_is_independent_of_batching_and_resumable(
    btc_capture_rows: dict[str, NDArray[Any]],
) -> None:
    rows = btc_capture_rows
    whole = features_digest(rows)
    assert whole.count == BTC_TRADES
    assert whole.count > 10 * BLOCK_ROWS  # many chained blocks
    for step in (1, 7, BLOCK_ROWS, 1000, 5000):
        d = ChainDigest("features")
        for i in range(0, len(rows["seq"]), step if step > 1 else 97):
            d.update_features({k: v[i : i + (step if step > 1 else 97)] for k, v in rows.items()})
            d = ChainDigest.from_state(d.state())  # a checkpoint after every batch
        assert d.hexdigest() == whole.hexdigest()
        assert (d.count, d.first_seq, d.last_seq) == (whole.count, whole.first_seq, whole.last_seq)
    # one bit of one value changes it; so does dropping a row
    changed = {k: v.copy() for k, v in rows.items()}
    changed["signed_volume_1s"][4000] = np.nextafter(changed["signed_volume_1s"][4000], math.inf)
    assert features_digest(changed).hexdigest() != whole.hexdigest()
    fewer = {k: v[:-1] for k, v in rows.items()}
    assert features_digest(fewer).hexdigest() != whole.hexdigest()
    # a re-processed row cannot be counted twice
    d = ChainDigest("features")
    d.update_features({k: v[:10] for k, v in rows.items()})
    with pytest.raises(ValueError, match="not above"):
        d.update_features({k: v[5:12] for k, v in rows.items()})
    # NaN payloads do not matter (they do not survive the stream text)
    one = {k: v[:3].copy() for k, v in rows.items()}
    one["vwap_1s"][:] = np.nan
    other = {k: v.copy() for k, v in one.items()}
    other["vwap_1s"] = np.frombuffer(
        np.array([0x7FF8000000000001] * 3, dtype=np.int64).tobytes(), dtype=np.float64
    ).copy()
    assert features_digest(one).hexdigest() == features_digest(other).hexdigest()
    with pytest.raises(ValueError, match="digest state"):
        ChainDigest.from_state(b"garbage")
    assert digest_key("features", "BTCUSDT", "replay") == "replay:digest:features:{btcusdt}"


# -- offline -----------------------------------------------------------------------------------


def test_offline_replay_equals_compute_features_over_the_capture(
    btc_db: Path, btc_capture_rows: dict[str, NDArray[Any]]
) -> None:
    result = replay_symbol(btc_db, "btcusdt")
    assert result.features.hexdigest() == features_digest(btc_capture_rows).hexdigest()
    assert result.features.count == BTC_TRADES
    for name, col in btc_capture_rows.items():
        np.testing.assert_array_equal(result.rows[name], col, err_msg=name)
    frame = replay_frame(str(btc_db), "btcusdt", time_windows_ms=[1000, 10000])
    assert "ofi_1s" in frame
    assert "ofi_1m" not in frame
    assert frame["forecast"].all()
    # without the model's feature (ofi_10s) the forecaster publishes nothing: nor does replay
    assert not replay_frame(btc_db, "btcusdt", time_windows_ms=[1000])["forecast"].any()
    assert {"prob_up", "prob_down", "forecast"} <= set(frame)
    assert all(len(c) == BTC_TRADES for c in frame.values())


def test_offline_cli_writes_parquet_duckdb_and_runs(btc_db: Path, tmp_path: Path) -> None:
    expected = replay_symbol(btc_db, "btcusdt").record()
    out = tmp_path / "rows.parquet"
    cif("cif.replay", "--offline", "--db", str(btc_db), "--symbols", "btcusdt", "--out", str(out))
    runs = json.loads((tmp_path / "rows.parquet.runs.json").read_text())
    assert len(runs) == 1
    assert runs[0]["features_digest"] == expected["features_digest"]
    assert runs[0]["forecasts_digest"] == expected["forecasts_digest"]
    assert runs[0]["feature_rows"] == BTC_TRADES
    assert runs[0]["divergence"] is None
    with duckdb.connect() as con:
        n, n_nan = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE isnan(intensity_100t)) FROM '{out}'"
        ).fetchone() or (0, 0)
    assert n == BTC_TRADES
    assert n_nan > 0
    db_out = tmp_path / "rows.duckdb"
    args = ["--offline", "--db", str(btc_db), "--from", "2024-08-08T23:56", "--quiet"]
    cif("cif.replay", *args, "--out", str(db_out))
    with duckdb.connect(str(db_out), read_only=True) as con:
        (rows,) = con.execute("SELECT count(*) FROM replay_rows").fetchone() or (0,)
        run = con.execute("SELECT feature_rows, from_ms FROM replay_runs").fetchall()
    assert run == [(rows, 1723161360000)]
    assert 0 < rows < BTC_TRADES


def test_bad_arguments_exit_2(btc_db: Path, tmp_path: Path) -> None:
    r = cif("cif.replay", "--offline", "--db", str(btc_db), "--out", "x.csv", check=False)
    assert r.returncode == 2
    assert ".parquet" in r.stderr
    r = cif("cif.replay", "--redis", "--db", str(btc_db), "--namespace", "", check=False)
    assert r.returncode == 2
    assert "--i-mean-live" in r.stderr


# -- Redis replay through a real processor, verify -------------------------------------------


def _processor(url: str, namespace: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cif.live",
                "--components",
                "features,forecast",
                "--symbols",
                "btcusdt",
                "--redis-url",
                url,
                "--namespace",
                namespace,
                "--stats-interval",
                "1",
                "--checkpoint-interval",
                "0.3",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_redis_replay_through_a_killed_processor_then_verify(
    redis_server: RedisServer, redis_client: redis.Redis, btc_db: Path, tmp_path: Path
) -> None:
    ns = "replay"
    url = redis_server.url
    offline_run = replay_symbol(btc_db, "btcusdt")
    offline, offline_fc = offline_run.features, offline_run.forecasts
    assert offline_fc.count == BTC_TRADES  # the seed model forecasts every row
    r = cif(
        "cif.replay",
        "--redis",
        "--db",
        str(btc_db),
        "--symbols",
        "btcusdt",
        "--redis-url",
        url,
        "--speed",
        "max",
        "--reset",
    )
    stats = json.loads(r.stdout)
    assert stats["written"] == stats["events"] == offline_events(btc_db)
    assert redis_client.xlen(trades_key("btcusdt", ns)) == BTC_TRADES
    assert redis_client.exists(trades_key("btcusdt")) == 0  # live names untouched

    log_path = tmp_path / "processor.log"
    fkey, dkey = features_key("btcusdt", ns), digest_key("features", "btcusdt", ns)
    fc_dkey = digest_key("forecasts", "btcusdt", ns)
    first = _processor(url, ns, log_path)
    try:
        # Killed once a checkpoint has landed (the restart must resume from one), with
        # rows published after it; the first checkpoint is due 0.3 s in, and 2000 rows
        # can take less than that.
        wait_for(
            lambda: (
                redis_client.exists(state_key("btcusdt", ns)) == 1
                and redis_client.xlen(fkey) >= 2000
            ),
            "a checkpoint and rows before the kill",
        )
        first.kill()  # kill -9
        first.wait(GUARD_S)
        assert redis_client.xlen(fkey) < BTC_TRADES, "too late to test a restart"
        # no need to wait for the ttls
        redis_client.delete(f"{ns}:lease:features:{{btcusdt}}", f"{ns}:lease:forecasts:{{btcusdt}}")
        second = _processor(url, ns, log_path)
        try:
            wait_for(lambda: redis_client.hget(dkey, "count") == b"%d" % BTC_TRADES, "the digest")
            wait_for(
                lambda: redis_client.hget(fc_dkey, "count") == b"%d" % offline_fc.count,
                "the forecast digest",
            )
        finally:
            second.terminate()
            second.wait(GUARD_S)
    finally:
        if first.poll() is None:
            first.kill()
    live = redis_client.hgetall(dkey)
    assert live[b"digest"].decode() == offline.hexdigest(), log_path.read_text()[-3000:]
    assert int(live[b"first_seq"]) == offline.first_seq
    assert "restored checkpoint" in log_path.read_text()
    # the live forecaster's digest is the offline replay's forecast digest
    live_fc = redis_client.hgetall(fc_dkey)
    assert live_fc[b"digest"].decode() == offline_fc.hexdigest(), log_path.read_text()[-3000:]
    assert int(live_fc[b"first_seq"]) == offline_fc.first_seq
    assert int(live_fc[b"last_seq"]) == offline_fc.last_seq

    ok = verify(btc_db, url, ns, "--out", str(tmp_path / "runs.duckdb"))
    assert ok.returncode == 0, ok.stderr
    assert "identical" in ok.stdout
    assert "forecasts identical" in ok.stdout

    # one trade's qty changed in the history: verify fails at that trade
    bad = tmp_path / "bad.duckdb"
    shutil.copy(btc_db, bad)
    with duckdb.connect(str(bad)) as con:
        (seq,) = con.execute(
            "SELECT seq FROM trades WHERE symbol = 'BTCUSDT' ORDER BY seq LIMIT 1 OFFSET 5000"
        ).fetchone() or (0,)
        con.execute("UPDATE trades SET qty = qty * 2 WHERE symbol = 'BTCUSDT' AND seq = ?", [seq])
    changed = replay_symbol(bad, "btcusdt")
    i = int(np.flatnonzero(changed.rows["seq"] == seq)[0])
    names = [n for n in changed.rows if n not in ("seq", "ts", "recv_ts_ns", "kind")]
    feature = next(n for n in names if changed.rows[n][i] != offline_rows(btc_db)[n][i])
    fail = verify(bad, url, ns, "--out", str(tmp_path / "runs.duckdb"))
    assert fail.returncode == 1, fail.stdout + fail.stderr
    assert f"seq {seq} " in fail.stderr, fail.stderr
    assert f"feature {feature}:" in fail.stderr, fail.stderr
    # the seed model's forecasts do not move with that qty: only the features diverged
    assert "DIVERGENT (features)" in fail.stderr, fail.stderr
    assert "forecasts identical" in fail.stderr, fail.stderr
    with duckdb.connect(str(tmp_path / "runs.duckdb"), read_only=True) as con:
        divergence = con.execute(
            "SELECT divergence, record->>'$.first_divergence.seq' FROM replay_runs "
            "ORDER BY created_at, divergence"
        ).fetchall()
    assert divergence[0][0] == 0
    assert divergence[1][0] > 0
    assert int(divergence[1][1]) == seq

    # a live forecast digest that differs: verify names the forecasts
    redis_client.hset(fc_dkey, "digest", "0" * 64)
    fc_fail = verify(btc_db, url, ns)
    assert fc_fail.returncode == 1, fc_fail.stdout + fc_fail.stderr
    assert "DIVERGENT (forecasts)" in fc_fail.stderr, fc_fail.stderr
    assert "forecasts DIVERGENT: live 9757 forecasts digest 0000000000000000" in fc_fail.stderr


def offline_events(db: Path) -> int:
    return replay_symbol(db, "btcusdt").events


def offline_rows(db: Path) -> dict[str, NDArray[Any]]:
    return replay_symbol(db, "btcusdt").rows
