"""``cif api`` as an operator runs it: a real process, real signals, real sockets."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis
from test_api_kit import GUARD_S, add_forecasts

from cif.api.server import add_arguments, build_config, redact_url
from cif.forecast.models import default_model

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(120)

_LISTENING = re.compile(r"API on http://127\.0\.0\.1:(\d+) ")


@contextmanager
def api_process(args: list[str], log_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``python -m cif.api.server ARGS`` until it logs its address; SIGTERM on exit."""
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cif.api.server", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    port = None
    for line in proc.stderr:
        log.write(line)
        m = _LISTENING.search(line)
        if m:
            port = int(m.group(1))
            break
    try:
        assert port is not None, f"server did not start:\n{log_path.read_text()}"
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=GUARD_S)
        log.write(rest)
        log.close()


def test_serves_until_sigterm_with_the_model_given_and_no_password_in_the_log(
    redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path
) -> None:
    artifact = default_model(name="ofi-test", version=2).save(tmp_path / "models")
    add_forecasts(redis_client, "ethusdt", [4])
    url = f"redis://default:s3cret-pw@127.0.0.1:{redis_server.port}/0"
    args = ["--symbols", "btcusdt,ETHUSDT", "--redis-url", url, "--model", str(artifact)]
    log_path = tmp_path / "api.log"
    with api_process(args, log_path) as (proc, port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/symbols").json()["symbols"] == ["btcusdt", "ethusdt"]
        model = httpx.get(f"{base}/model").json()
        assert (model["name"], model["version"], model["features"]) == ("ofi-test", 2, ["ofi_10s"])
        resp = httpx.post(f"{base}/forecast", json={"features": {"ofi_10s": 500.0}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["prob_up"] > 0.5
        assert httpx.get(f"{base}/health").status_code in (200, 503)
    assert proc.returncode == 0
    log = log_path.read_text()
    assert "s3cret-pw" not in log
    assert f"redis redis://***@127.0.0.1:{redis_server.port}/0" in log
    assert "API stopped" in log


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cif.api.server", *args],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--symbols", "btc/usdt"], 2, "invalid symbol 'btc/usdt'"),
        (["--port", "70000"], 2, "port must be in 0..65535"),
        (["--model", "/nonexistent/m-v1.json"], 2, "model file not found: /nonexistent/m-v1.json"),
        (["--redis-url", "http://127.0.0.1:1"], 2, "cannot start"),
    ],
)
def test_bad_arguments_are_refused_clearly(args: list[str], code: int, message: str) -> None:
    done = _run("--port", "0", *args)
    assert done.returncode == code, done.stderr
    assert message in done.stderr


def test_a_port_in_use_is_refused_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("--port", str(port))
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_defaults_bind_loopback_and_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse(*argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(list(argv))

    for name in (
        "API_HOST",
        "API_PORT",
        "HISTORY_DIR",
        "MODEL",
        "SYMBOLS",
        "NAMESPACE",
        "WS_COMPRESSION",
    ):
        monkeypatch.delenv(f"CIF_{name}", raising=False)
    args = parse()
    assert (args.host, args.port, args.history_dir, args.model) == ("127.0.0.1", 8000, None, None)
    assert build_config(args).ws_compression is False
    assert build_config(parse("--ws-compression", "deflate")).ws_compression is True
    monkeypatch.setenv("CIF_WS_COMPRESSION", "deflate")
    assert build_config(parse()).ws_compression is True
    monkeypatch.setenv("CIF_API_HOST", "0.0.0.0")
    monkeypatch.setenv("CIF_API_PORT", "9123")
    monkeypatch.setenv("CIF_HISTORY_DIR", "/data/history")
    monkeypatch.setenv("CIF_NAMESPACE", "replay")
    args = parse()
    assert (args.host, args.port, args.history_dir) == ("0.0.0.0", 9123, Path("/data/history"))
    assert args.namespace == "replay"
    assert parse("--port", "81", "--host", "::1").port == 81


def test_redact_url() -> None:
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:pw@h:1/0") == "redis://***@h:1/0"
    assert redact_url("rediss://user:p@ss@h:1/0") == "rediss://***@h:1/0"
