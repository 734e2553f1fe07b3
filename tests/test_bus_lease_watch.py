"""The hot loops' fenced transactions (cif.bus.fenced.LeaseWatch), against a real server.

What the processor's group read and both services' publishes rely on: a transaction runs
only while the lease is ours, exactly once (a renewal of the lease aborts it and it is sent
again), never after the lease was taken or lapsed, and never on a connection whose watch was
not confirmed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from cif.bus.fenced import LeaseLost, LeaseWatch
from cif.bus.link import RedisLink
from cif.bus.stream_writer import pack_command
from local_servers import RedisServer

pytestmark = pytest.mark.timeout(60)

LEASE = "lease:features:{btcusdt}"
STREAM = "features:{btcusdt}"
OWNER = "host:1:abcd"


def _xadd(n: int) -> bytes:
    return b"".join(pack_command("XADD", STREAM, "*", "n", i) for i in range(n))


@pytest.fixture
def held(redis_server: RedisServer, redis_client: redis.Redis) -> str:
    """The lease set to be ours; the server's URL."""
    redis_client.set(LEASE, OWNER, px=60_000)
    return redis_server.url


def _run(url: str, scenario: Callable[[RedisLink, LeaseWatch], Awaitable[None]]) -> None:
    """``scenario`` with a new link and our watch on it (the link closed afterwards)."""

    async def main() -> None:
        link = RedisLink(url)
        try:
            await scenario(link, LeaseWatch(link, LEASE, OWNER))
        finally:
            await link.close()

    asyncio.run(main())


def test_transactions_run_while_the_lease_is_ours_and_a_renewal_only_retries(
    held: str, redis_client: redis.Redis
) -> None:
    counted: list[int] = []

    async def scenario(link: RedisLink, watch: LeaseWatch) -> None:
        watch.on_retry = lambda: counted.append(watch.retried)  # the owner's stats
        before, replies = await watch.transact(_xadd(3), 3, pack_command("PING"), 1)
        assert before == [b"PONG"]
        assert len(replies) == 3
        assert all(isinstance(r, bytes) for r in replies)
        assert watch.retried == 0
        # Our own renewal writes the watched key: the next transaction is aborted by Redis
        # and sent again, and runs once; what rode along in front is not sent again.
        redis_client.pexpire(LEASE, 60_000)
        before, replies = await watch.transact(_xadd(2), 2, pack_command("INCR", "pings"), 1)
        assert before == [1]
        assert len(replies) == 2
        assert watch.retried == 1

    _run(held, scenario)
    assert counted == [1]
    assert redis_client.xlen(STREAM) == 5
    assert redis_client.get("pings") == b"1"


@pytest.mark.parametrize("takeover", ["taken", "lapsed"])
def test_no_transaction_runs_once_the_lease_is_someone_elses_or_gone(
    held: str, redis_client: redis.Redis, takeover: str
) -> None:
    async def scenario(link: RedisLink, watch: LeaseWatch) -> None:
        await watch.transact(_xadd(1), 1)
        if takeover == "taken":
            redis_client.set(LEASE, "other:2:ef01", px=60_000)
        else:
            redis_client.delete(LEASE)
        with pytest.raises(LeaseLost):
            await watch.transact(_xadd(1), 1)
        assert watch.confirmed_on is None
        with pytest.raises(LeaseLost):  # and not later either
            await watch.transact(_xadd(1), 1)

    _run(held, scenario)
    assert redis_client.xlen(STREAM) == 1


def test_a_watch_is_confirmed_again_on_a_new_connection(
    held: str, redis_client: redis.Redis
) -> None:
    async def scenario(link: RedisLink, watch: LeaseWatch) -> None:
        await watch.transact(_xadd(1), 1)
        assert watch.confirmed_on == link.connection == 1
        client_id = await link.command("CLIENT", "ID")
        assert redis_client.client_kill_filter(_id=client_id) == 1
        while link.connected:  # until the link has seen the connection go
            await asyncio.sleep(0)
        # The watch lived on the lost connection: nothing is sent under it there...
        with pytest.raises(RedisConnectionError, match="connection 1 of the link is gone"):
            await link.round_trip(_xadd(1), 1, connection=1)
        assert link.connects == 1  # ...and the link did not connect again under it
        # The next transaction confirms a watch on a new connection first.
        await watch.transact(_xadd(1), 1)
        assert watch.confirmed_on == link.connection == 2

    _run(held, scenario)
    assert redis_client.xlen(STREAM) == 2


def test_a_bad_command_fails_the_whole_transaction(held: str, redis_client: redis.Redis) -> None:
    async def scenario(link: RedisLink, watch: LeaseWatch) -> None:
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            await watch.transact(_xadd(1) + pack_command("XADD", STREAM), 2)
        # The watch is still good: the next transaction runs.
        await watch.transact(_xadd(1), 1)

    _run(held, scenario)
    assert redis_client.xlen(STREAM) == 1


def test_a_transaction_whose_replies_were_not_read_leaves_the_watch_unconfirmed(
    held: str, redis_client: redis.Redis
) -> None:
    async def scenario(link: RedisLink, watch: LeaseWatch) -> None:
        await watch.transact(_xadd(1), 1)
        # A caller cancelled while its transaction is in flight: the lease is taken meanwhile
        # (before the trailing WATCH, whose GET nobody reads).
        blocked = asyncio.create_task(
            watch.transact(_xadd(1), 1, pack_command("BLPOP", "nothing", 0), 1)
        )
        while int(redis_client.info("clients")["blocked_clients"]) < 1:
            await asyncio.sleep(0)
        redis_client.set(LEASE, "other:2:ef01", px=60_000)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        assert watch.confirmed_on is None
        # The next transaction confirms first, and finds the lease gone.
        redis_client.lpush("nothing", "x")  # let the cancelled round trip's commands run
        with pytest.raises(LeaseLost):
            await watch.transact(_xadd(1), 1)

    _run(held, scenario)
    assert redis_client.xlen(STREAM) == 1
