"""The hot loops' own Redis connection (cif.bus.link.RedisLink), against a real server.

What the processor and the forecaster rely on: replies in order (also when round trips
overlap), error replies as redis-py's ``ResponseError``, a lost or silent connection failing
the calls in flight with redis-py's errors (which end a session and start another), the
next call reconnecting, and a cancelled caller never shifting the next caller's replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cif.bus.link import RedisLink, check_block_ms, stream_entries
from cif.bus.stream_writer import pack_command
from cif.features.processor import ProcessorConfig
from cif.forecast.service import ForecasterConfig
from local_servers import RedisServer, free_port

pytestmark = pytest.mark.timeout(60)


async def until_blocked(check: redis.Redis, n: int = 1) -> None:
    """Wait (yielding to the loop) until ``n`` clients are blocked in a command."""
    while int(check.info("clients")["blocked_clients"]) < n:
        await asyncio.sleep(0)


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_pipelined_replies_come_back_in_order_with_errors_in_place(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        link = RedisLink(redis_server.url)
        payload = (
            pack_command("SET", "k", "v")
            + pack_command("INCR", "k")  # an error reply in the middle
            + pack_command("GET", "k")
        )
        ok, err, value = await link.round_trip(payload, 3)
        assert ok == b"OK"
        assert isinstance(err, ResponseError)
        assert "not an integer" in str(err)
        assert value == b"v"
        with pytest.raises(ResponseError, match="not an integer"):
            await link.command("INCR", "k")
        # overlapping round trips each get their own replies
        replies = await asyncio.gather(*(link.command("ECHO", f"m{i}") for i in range(50)))
        assert replies == [f"m{i}".encode() for i in range(50)]
        assert link.connects == 1
        await link.close()

    run(main())


def test_stream_entries_match_what_redis_py_returns(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    redis_client.xadd("s", {"a": "1", "b": "x"}, id="1-0")
    redis_client.xadd("s", {"a": "2"}, id="2-0")

    async def main() -> None:
        link = RedisLink(redis_server.url)
        raw = await link.command("XRANGE", "s", "-", "+")
        assert stream_entries(raw) == redis_client.xrange("s")
        assert stream_entries(None) == []
        await link.close()

    run(main())


def test_a_cancelled_caller_does_not_shift_the_next_callers_replies(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        link = RedisLink(redis_server.url)
        blocked = asyncio.create_task(link.command("XREAD", "BLOCK", 0, "STREAMS", "s", "$"))
        await until_blocked(redis_client)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        # The XREAD is still blocked on the server; the next command's reply comes after
        # the XREAD's, which must be dropped, not handed to the next caller.
        echo = asyncio.create_task(link.command("ECHO", "mine"))
        redis_client.xadd("s", {"f": "v"}, id="5-0")
        assert await echo == b"mine"
        assert link.connects == 1
        await link.close()

    run(main())


def test_a_killed_connection_fails_the_call_and_the_next_call_reconnects(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        link = RedisLink(redis_server.url)
        client_id = await link.command("CLIENT", "ID")
        blocked = asyncio.create_task(link.command("XREAD", "BLOCK", 0, "STREAMS", "s", "$"))
        await until_blocked(redis_client)
        assert redis_client.client_kill_filter(_id=client_id) == 1
        with pytest.raises(RedisConnectionError, match="connection lost"):
            await blocked
        assert not link.connected
        assert await link.command("ECHO", "again") == b"again"
        assert link.connects == 2
        await link.close()

    run(main())


def test_no_reply_in_time_fails_with_a_timeout_and_drops_the_connection(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    async def main() -> None:
        link = RedisLink(redis_server.url, reply_timeout_s=0.2)
        with pytest.raises(RedisTimeoutError, match=r"no reply from redis within 0\.2 s"):
            await link.command("XREAD", "BLOCK", 0, "STREAMS", "s", "$")
        assert not link.connected
        # a reply still due on the old connection can never reach the new one's caller
        assert await link.command("ECHO", "fresh") == b"fresh"
        assert link.connects == 2
        await link.close()

    run(main())


def test_nothing_listening_is_a_redis_connection_error_without_the_password() -> None:
    async def main() -> None:
        link = RedisLink(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
        with pytest.raises(RedisConnectionError, match="cannot connect to redis") as info:
            await link.command("PING")
        assert "hunter2" not in str(info.value)
        assert link.connects == 0

    run(main())


def test_the_url_database_is_selected(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    async def main() -> None:
        link = RedisLink(f"redis://{redis_server.host}:{redis_server.port}/5")
        await link.command("SET", "in-db-5", "yes")
        await link.close()

    run(main())
    with redis_server.client(db=5) as db5:
        assert db5.get("in-db-5") == b"yes"
    assert redis_client.get("in-db-5") is None


def test_a_block_longer_than_the_reply_timeout_is_refused() -> None:
    """Every idle blocking read would time out and drop its connection."""
    check_block_ms(4999)
    with pytest.raises(ValueError, match="below the redis reply timeout"):
        check_block_ms(5000)
    with pytest.raises(ValueError, match="block_ms must be below"):
        ProcessorConfig(block_ms=5000).validate()
    with pytest.raises(ValueError, match="block_ms must be below"):
        ForecasterConfig(symbols=("btcusdt",), block_ms=60_000).validate()


def test_a_decoding_link_gives_text_and_replaces_bad_utf8(
    redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The API's tailers read text, as redis-py's ``decode_responses`` gives it; a value
    that is not UTF-8 must not break the connection (the entry is then malformed, and the
    API counts it)."""
    redis_client.set("text", "prix: 42 €")
    redis_client.set("garbage", b"\xff\xfeok")

    async def main() -> None:
        link = RedisLink(redis_server.url, decode=True)
        assert await link.command("GET", "text") == "prix: 42 €"
        assert await link.command("GET", "garbage") == "\ufffd\ufffdok"
        assert await link.command("ECHO", "still here") == "still here"
        assert link.connects == 1
        assert link.abort() is True
        assert link.abort() is False  # nothing left to close

    run(main())
