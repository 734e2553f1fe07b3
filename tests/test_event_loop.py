"""cif.event_loop: choosing the loop of the long-running commands, and the hot loops' Redis
connection running on both loops against a real server."""

from __future__ import annotations

import asyncio

import pytest
import redis
import uvloop

from cif import event_loop
from cif.bus.link import RedisLink
from cif.bus.stream_writer import pack_command
from cif.replay.raw_redis import RawRedis
from local_servers import RedisServer

pytestmark = pytest.mark.timeout(60)


def test_auto_takes_uvloop_when_it_is_installed_and_asyncio_on_request() -> None:
    name, factory = event_loop.loop_factory("auto")
    assert (name, factory) == ("uvloop", uvloop.new_event_loop)
    assert event_loop.loop_factory("uvloop")[0] == "uvloop"
    assert event_loop.loop_factory("asyncio") == ("asyncio", asyncio.new_event_loop)


def test_an_unknown_loop_is_refused_and_its_coroutine_closed() -> None:
    with pytest.raises(ValueError, match="must be one of auto, uvloop, asyncio, got 'trio'"):
        event_loop.loop_factory("trio")

    async def never() -> None:
        raise AssertionError("must not run")

    coro = never()
    with pytest.raises(ValueError, match="got 'trio'"):
        event_loop.run(coro, "trio")
    assert coro.cr_frame is None  # closed: no "never awaited" warning


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_the_redis_connections_work_on_both_loops(
    choice: str, redis_server: RedisServer, redis_client: redis.Redis
) -> None:
    """The link and the replay's raw connection are protocols on the loop's transports
    (uvloop's are not asyncio.Transport subclasses)."""

    async def main() -> tuple[str, list[object], object]:
        loop_type = type(asyncio.get_running_loop()).__module__
        link = RedisLink(redis_server.url)
        try:
            replies = await link.round_trip(
                pack_command("SET", f"k:{choice}", "v") + pack_command("GET", f"k:{choice}"), 2
            )
        finally:
            await link.close()
        async with await RawRedis.open(redis_server.url) as raw:
            echoed = await raw.call(b"ECHO", b"hello")
        return loop_type, replies, echoed

    loop_type, replies, echoed = event_loop.run(main(), choice)
    assert loop_type.startswith("uvloop" if choice == "uvloop" else "asyncio")
    assert replies == [b"OK", b"v"]
    assert echoed == b"hello"
    assert redis_client.get(f"k:{choice}") == b"v"
