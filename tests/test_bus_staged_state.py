"""A checkpoint's state staged in pieces (cif.bus.fenced.Fence.eval_staged), against a real
server: it lands byte for byte, a piece per command, only while the lease is ours, and a
staging that is not whole is refused with the old state kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio as aioredis

from cif.bus import fenced
from cif.bus.fenced import STAGED_STATE_LUA, Fence, LeaseLost, staged_key
from cif.bus.link import RedisLink
from cif.bus.stream_writer import bulk, round_trip
from cif.features.leases import FENCE_LUA
from local_servers import RedisServer

pytestmark = pytest.mark.timeout(60)

LEASE = "lease:features:{btcusdt}"
STATE = "features-state:{btcusdt}"
OWNER = "host:1:abcd"
PIECE = 1000
#: the fence, the staged state moved into place, and a reply that says the script ran
SCRIPT = FENCE_LUA + STAGED_STATE_LUA + "\nreturn 7\n"


@pytest.fixture
def held(redis_server: RedisServer, redis_client: redis.Redis) -> str:
    """The lease set to be ours; the server's URL."""
    redis_client.set(LEASE, OWNER, px=60_000)
    return redis_server.url


def _run(url: str, scenario: Callable[[Fence], Awaitable[None]]) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(url)
        link = RedisLink(url)
        try:
            await scenario(Fence(client, link, LEASE, OWNER))
        finally:
            await link.close()
            await client.aclose()

    asyncio.run(main())


def _calls(r: redis.Redis, command: str) -> int:
    stats = r.info("commandstats").get(f"cmdstat_{command}")
    return 0 if stats is None else int(stats["calls"])


@pytest.mark.parametrize("size", [0, 1, PIECE, PIECE + 1, 3 * PIECE, 3 * PIECE + 7])
def test_a_state_lands_whole_a_piece_per_command_and_never_expires(
    held: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(fenced, "STAGE_PIECE_BYTES", PIECE)
    state = bytes((i * 7 + i // 251) % 256 for i in range(size))
    redis_client.set(STATE, b"the old state, longer than some of the new ones" * 100)
    redis_client.set(staged_key(STATE, OWNER), b"x" * (5 * PIECE))  # a stranded one
    redis_client.config_resetstat()

    async def scenario(fence: Fence) -> None:
        assert await fence.eval_staged(SCRIPT, [STATE], [], [], state) == 7

    _run(held, scenario)
    assert redis_client.get(STATE) == state
    assert redis_client.ttl(STATE) == -1
    assert not redis_client.exists(staged_key(STATE, OWNER))
    pieces = max(1, -(-size // PIECE))
    if size <= PIECE:  # one SET, nothing in pieces
        assert (_calls(redis_client, "set"), _calls(redis_client, "setrange")) == (1, 0)
    else:
        assert (_calls(redis_client, "set"), _calls(redis_client, "setrange")) == (0, pieces)


def test_a_staged_state_moves_into_place_only_while_the_lease_is_ours(
    held: str, redis_client: redis.Redis
) -> None:
    redis_client.set(STATE, b"good")
    redis_client.set(LEASE, "someone-else", px=60_000)

    async def scenario(fence: Fence) -> None:
        with pytest.raises(LeaseLost):
            await fence.eval_staged(SCRIPT, [STATE], [], [], b"zombie" * 100_000)

    _run(held, scenario)
    assert redis_client.get(STATE) == b"good"
    # stranded, and gone by itself unless the next checkpoint overwrites it
    assert redis_client.strlen(staged_key(STATE, OWNER)) == 600_000
    assert 0 < redis_client.pttl(staged_key(STATE, OWNER)) <= fenced.STAGE_TTL_MS


def test_a_staging_that_is_not_whole_is_refused_and_the_old_state_kept(
    held: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script checks the staged length against the one sent: a piece lost, or written
    twice, on the way is a refused checkpoint, not a corrupt state."""
    monkeypatch.setattr(fenced, "STAGE_PIECE_BYTES", PIECE)
    redis_client.set(STATE, b"good")
    state = b"s" * (4 * PIECE)
    stage = staged_key(STATE, OWNER)

    async def scenario(fence: Fence) -> None:
        assert await fence.stage_state(STATE, state) == stage
        assert redis_client.get(stage) == state
        redis_client.append(stage, b"a piece too many")
        call = fence.pack_eval_bulks(SCRIPT, [STATE, stage], [], [bulk(b"%d" % len(state))])
        (reply,) = await round_trip(fence.client, call, 1)
        with pytest.raises(redis.ResponseError, match="STAGED_INCOMPLETE"):
            fenced.check_reply(reply)

    _run(held, scenario)
    assert redis_client.get(STATE) == b"good"
