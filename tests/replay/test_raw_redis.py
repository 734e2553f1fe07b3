"""The replay's raw Redis connection, against a real redis-server: pipelined commands with
bounded in-flight work, error replies reported, ``AUTH``/``SELECT``/unix sockets from the URL,
and a lost connection surfacing as ``ConnectionError``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from cif.bus.stream_writer import pack_command
from cif.replay.raw_redis import RawRedis, RawRedisError

if TYPE_CHECKING:
    from local_servers import RedisServer

pytestmark = pytest.mark.timeout(60)


def test_pipelined_commands_stay_within_the_bounds(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    one = pack_command("RPUSH", "rr:list", "x")

    async def go() -> tuple[int, int, int]:
        peak = 0
        async with await RawRedis.open(redis_server.url, max_commands=7, max_bytes=200) as c:
            for n in range(1, 40):  # 780 commands, in writes of 1 to 39
                await c.send(one * n, n)
                # a write larger than the bounds goes alone
                assert c.in_flight <= max(7, n)
                peak = max(peak, c.in_flight)
            await c.drain()
            assert c.in_flight == 0
            return c.sent, c.replies, peak

    sent, replies, peak = asyncio.run(go())
    assert sent == replies == 780
    assert peak > 1  # pipelined, not one at a time
    assert redis_client.llen("rr:list") == 780


def test_error_replies_reach_on_error_and_call_raises(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    redis_client.set("rr:string", "not a stream")
    errors: list[str] = []

    async def go() -> None:
        async with await RawRedis.open(redis_server.url, on_error=errors.append) as c:
            assert await c.call("PING") == b"PONG"
            payload = pack_command("XADD", "rr:string", "1-0", "f", "v") + pack_command(
                "XADD", "rr:stream", "1-0", "f", "v"
            )
            await c.send(payload, 2)
            await c.drain()
            with pytest.raises(RawRedisError, match="WRONGTYPE"):
                await c.call("XADD", "rr:string", "2-0", "f", "v")

    asyncio.run(go())
    assert len(errors) == 1  # the call's error is raised, not reported
    assert errors[0].startswith("WRONGTYPE")
    assert redis_client.xlen("rr:stream") == 1


def test_auth_and_db_from_the_url(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    redis_client.acl_setuser(
        "rr_user", enabled=True, passwords=["+s3cret"], keys=["*"], commands=["+@all"]
    )
    base = f"{redis_server.host}:{redis_server.port}"
    try:

        async def go(url: str) -> None:
            async with await RawRedis.open(url) as c:
                assert await c.call("ACL", "WHOAMI") == b"rr_user"
                await c.send(pack_command("SET", "rr:where", "db5"), 1)

        asyncio.run(go(f"redis://rr_user:s3cret@{base}/5"))
        assert redis_client.get("rr:where") is None  # not db 0
        with redis_server.client(db=5) as db5:
            assert db5.get("rr:where") == b"db5"
            db5.flushdb()
        with pytest.raises(ConnectionError, match="WRONGPASS"):
            asyncio.run(go(f"redis://rr_user:wrong@{base}/5"))
    finally:
        redis_client.acl_deluser("rr_user")


def test_unix_socket_url(redis_server: RedisServer, tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    cmd = [redis_server.binary, "--port", "0", "--unixsocket", str(sock), "--save", ""]
    cmd += ["--appendonly", "no", "--dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():  # bounded wait for the server to come up
            assert proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "no unix socket"
            time.sleep(0.02)

        async def go() -> bytes:
            async with await RawRedis.open(f"unix://{sock}?db=2") as c:
                await c.call("SET", "k", "v")
                reply: bytes = await c.call("GET", "k")
                return reply

        assert asyncio.run(go()) == b"v"
        with redis.Redis(unix_socket_path=str(sock), db=2) as check:
            assert check.get("k") == b"v"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_lost_connection_raises(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    async def go() -> None:
        c = await RawRedis.open(redis_server.url)
        try:
            my_id = await c.call("CLIENT", "ID")
            redis_client.client_kill_filter(_id=my_id)

            async def ping_until_it_fails() -> None:
                for _ in range(100):
                    await c.send(pack_command("PING"), 1)
                    await c.drain()
                    await asyncio.sleep(0.01)

            with pytest.raises(ConnectionError):
                await ping_until_it_fails()
        finally:
            c.abort()

    asyncio.run(go())


def test_a_server_that_stops_answering_times_out(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """``CLIENT PAUSE`` holds every client's commands: the connection gives up after its
    reply timeout with an error that says so, instead of waiting for ever."""

    async def go() -> None:
        c = await RawRedis.open(redis_server.url, reply_timeout_s=0.3)
        try:
            redis_client.execute_command("CLIENT", "PAUSE", 3000, "ALL")
            await c.send(pack_command("SET", "rr:paused", "1"), 1)
            with pytest.raises(TimeoutError, match=r"no reply from redis for 0.3 s \(1 commands"):
                await c.drain()
        finally:
            redis_client.execute_command("CLIENT", "UNPAUSE")
            c.abort()

    asyncio.run(go())
    with pytest.raises(ValueError, match="reply_timeout_s"):
        RawRedis(None, reply_timeout_s=0)  # type: ignore[arg-type]
