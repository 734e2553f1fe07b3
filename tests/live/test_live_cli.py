"""``python -m cif.live`` and ``cif live`` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import redis
from live_testkit import sim_process

from cif.store.segments import open_history

if TYPE_CHECKING:
    from local_servers import RedisServer

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--components", "ingest,bogus"], "unknown component(s) bogus in --components"),
        (["--components", "features", "--no-redis"], "the features component needs Redis"),
        (["--feature-windows", "1s,2x"], "invalid --feature-windows: not a window: '2x'"),
        (["--depth-levels", "5,ten"], "invalid --depth-levels"),
        (["--ewma-half-life", "soon"], "invalid --ewma-half-life"),
        (["--lease-ttl", "0.1"], "--lease-ttl must be at least 0.5 s"),
        (["--checkpoint-events", "0"], "--checkpoint-events must be >= 1"),
        (["--feature-windows", "1s,1s"], "invalid feature settings"),
        (["--depth-levels", "0"], "invalid feature settings"),
    ],
)
def test_bad_feature_arguments_are_refused_clearly(
    args: list[str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    # In-process (the same ``run`` the command calls): it returns before starting anything.
    from cif.cli import build_parser
    from cif.live.cli import run

    parsed = build_parser("live").parse_args(
        [
            "live",
            "--components",
            "features",
            *args,
            "--redis-url",
            "redis://127.0.0.1:1/0",
            "--duration",
            "0.5",
        ]
    )
    assert run(parsed) == 2
    assert message in caplog.text


def test_stream_maxlen_reaches_every_writer_of_a_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--stream-maxlen`` (or ``$CIF_STREAM_MAXLEN``) trims the gateway's, the processor's
    and the forecaster's streams alike; 0 is refused."""
    from cif.cli import build_parser
    from cif.live.cli import build_plan

    def plan(*args: str) -> tuple[int, int, int]:
        parsed = build_parser("live").parse_args(
            ["live", "--redis-url", "redis://127.0.0.1:1/0", *args]
        )
        p = build_plan(parsed)
        assert p.gateway is not None
        assert p.processor is not None
        assert p.forecaster is not None
        return p.gateway.redis_maxlen, p.processor.maxlen, p.forecaster.maxlen

    assert plan() == (1_000_000, 1_000_000, 1_000_000)
    assert plan("--stream-maxlen", "5000") == (5000, 5000, 5000)
    monkeypatch.setenv("CIF_STREAM_MAXLEN", "7000")
    assert plan() == (7000, 7000, 7000)
    with pytest.raises(SystemExit):
        plan("--stream-maxlen", "0")


def test_bad_feature_arguments_exit_2_from_the_command() -> None:
    done = _live("--feature-windows", "1s,2x", "--redis-url", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "cannot start: invalid --feature-windows" in done.stderr


@pytest.mark.parametrize(("loop_flag", "loop_name"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_default_components_run_together_on_the_given_redis(
    tmp_path: Path,
    btc_capture: Path,
    redis_server: RedisServer,
    redis_client: redis.Redis,
    loop_flag: str,
    loop_name: str,
) -> None:
    """The real capture through the simulator, ``cif live`` with its default components:
    the gateway, the feature processor, the forecaster and the API in one process, on the
    Redis given (nothing embedded). ``features:{btcusdt}`` ends with a row per trade, equal to
    ``compute_features`` over what the gateway published. On uvloop (the default) and on
    asyncio's own loop."""
    from cif._core import compute_features
    from cif.bus.keys import book_key, features_key, trades_key
    from cif.bus.stream_writer import StreamEntry, encode_value
    from cif.features.entries import row_entries
    from cif.features.event_log import events_from_entries

    with sim_process(["--capture", str(btc_capture), "--speed", "max"], tmp_path) as sim:
        log_path = tmp_path / "live.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cif.live",
                    "--symbols",
                    "btcusdt",
                    "--redis-url",
                    redis_server.url,
                    "--db",
                    str(tmp_path / "live.duckdb"),
                    "--history-dir",
                    str(tmp_path / "hist"),
                    "--checkpoint-interval",
                    "0.2",
                    "--api-port",
                    "0",
                    "--event-loop",
                    loop_flag,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={
                    **os.environ,
                    "PYTHONUNBUFFERED": "1",
                    "CIF_EXCHANGE_URL": sim.ws_url,
                    "CIF_REST_URL": sim.rest_url,
                },
            )
        try:
            deadline = time.monotonic() + 90
            while redis_client.xlen("features:{btcusdt}") < 9757:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.05)
            proc.terminate()
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(60)
    text = log_path.read_text()
    assert "components: ingest,features,forecast,api" in text
    assert f"event loop: {loop_name}\n" in text
    assert "embedded Redis" not in text  # an explicit URL: nothing started
    assert "stopped; BTCUSDT: trades" in text
    assert "feature processor stopped; features: btcusdt" in text

    def entries(key: str) -> list[StreamEntry]:
        return [
            StreamEntry(key, i.decode(), {k.decode(): v.decode() for k, v in f.items()})
            for i, f in redis_client.xrange(key)
        ]

    sym = "btcusdt"
    events = events_from_entries(
        entries(trades_key(sym)) + entries(book_key(sym)), trades_key(sym), book_key(sym)
    )
    want = [
        (e.entry_id.encode(), {k.encode(): encode_value(v) for k, v in e.fields.items()})
        for e in row_entries(features_key(sym), compute_features(events))
    ]
    got = redis_client.xrange(features_key(sym))
    assert len(got) == len(want) == 9757
    assert got == want

    # Replay proves it: the history the gateway stored, run offline through the same code,
    # gives the digests the live processor and forecaster recorded.
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "cif.replay",
            "--verify",
            "--db",
            str(tmp_path / "live.duckdb"),
            "--symbols",
            "btcusdt",
            "--redis-url",
            redis_server.url,
            "--out",
            str(tmp_path / "runs.duckdb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "identical: features 9757 rows" in verify.stdout + verify.stderr
    assert "forecasts identical" in verify.stdout + verify.stderr


def test_an_unknown_event_loop_exits_2_before_starting_anything() -> None:
    done = _live("--event-loop", "trio", "--redis-url", "redis://127.0.0.1:1/0")
    assert done.returncode == 2
    assert "cannot start: --event-loop must be one of auto, uvloop, asyncio" in done.stderr


def test_a_bad_gc_setting_exits_2_before_starting_anything() -> None:
    done = _live(
        "--components",
        "features",
        "--redis-url",
        "redis://127.0.0.1:1/0",
        env={"CIF_GC_THRESHOLDS": "700,10"},
    )
    assert done.returncode == 2
    assert "cannot start: CIF_GC_THRESHOLDS must be three non-negative integers" in done.stderr
