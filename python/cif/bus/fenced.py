"""Fenced Redis calls of a lease owner: scripts that first check the lease is still ours.

The feature processor and the forecaster both work on a symbol only while they hold its
lease (:mod:`cif.features.leases`), and every call that changes shared state is a Lua
script starting with :data:`~cif.features.leases.FENCE_LUA` (``KEYS[1]`` = the lease,
``ARGV[1]`` = our owner id). What lives here is the part they share: the publish script
and its packing, the checkpoint script's pieces (digest hash, acks), the fenced
``XAUTOCLAIM`` and the reply handling that turns ``LEASE_LOST`` into :class:`LeaseLost`.

The calls of a session's hot loop (its fenced reads, its publishes) go over the session's
own :class:`~cif.bus.link.RedisLink`; the checkpoints, which run in the background beside
the loop's calls, over the shared redis-py client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cif.bus.link import RedisLink
from cif.bus.stream_writer import (
    XADD_COUNTED_LUA,
    bulk,
    pack_command,
    pack_command_bulks,
    round_trip,
)
from cif.digest import ChainDigest
from cif.features.leases import FENCE_LUA

#: Entries per publish script call (the calls of one batch are pipelined).
PUBLISH_CHUNK = 500


class LeaseLost(RuntimeError):
    """The symbol's lease is not ours any more: stop working on it at once."""


def is_lease_lost(exc: BaseException) -> bool:
    return isinstance(exc, ResponseError) and "LEASE_LOST" in str(exc)


def check_reply(reply: Any) -> Any:
    """A reply of a pipelined call: an error raised (``LEASE_LOST`` as :class:`LeaseLost`)."""
    if isinstance(reply, BaseException):
        if is_lease_lost(reply):
            raise LeaseLost(str(reply))
        raise reply
    return reply


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


# KEYS: lease, output stream. ARGV: owner, maxlen, then (id, n, field, value...)...
PUBLISH_LUA = (
    FENCE_LUA
    + XADD_COUNTED_LUA
    + """
local key, maxlen = KEYS[2], ARGV[2]
local i, n_args = 3, #ARGV
while i <= n_args do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  xadd(key, maxlen, id, i + 2, i + 1 + 2 * n)
  i = i + 2 + 2 * n
end
return {added, dups, rejected, first_err}
"""
).encode()

_PUBLISH_HEAD = bulk(b"EVAL") + bulk(PUBLISH_LUA) + bulk(b"2")

# The checkpoint scripts' shared pieces. Their layout: KEYS[5] is the digest hash, ARGV[2]
# the group, ARGV[5..9] the digest (state, count, hex, first seq, last seq; state '' = no
# digest recorded), the entry IDs to ack from ARGV[10] on. The output digest
# (cif.digest) is stored by the same call as the state, so after a crash both
# resume from the same row and no re-processed row counts twice.
CHECKPOINT_DIGEST_LUA = """
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], 'state', ARGV[5], 'count', ARGV[6], 'digest', ARGV[7],
             'first_seq', ARGV[8], 'last_seq', ARGV[9])
end
local acked = 0
local function ack(key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    acked = acked + redis.call('XACK', key, ARGV[2], unpack(ARGV, i, j))
    i = j + 1
  end
end
"""
#: ARGV index of the first entry ID to ack in a checkpoint script.
CHECKPOINT_FIRST_ACK = 10

# A checkpoint's state (megabytes for the feature processor) does not go through the
# script: a script argument is copied into Lua and back out again, which held Redis, and
# with it every client of the server, for ~3 ms per MB (23 ms for 7.4 MB; a plain SET of
# it takes 14 us). The state is SET to a staging key, and the fenced script, in the same
# MULTI/EXEC (so no other client's staging write can come in between), RENAMEs it into
# place: O(1), and only while the lease is ours. A refused checkpoint leaves its state in
# the staging key, where the next checkpoint overwrites it.
STAGED_STATE_LUA = """
redis.call('RENAME', KEYS[#KEYS], KEYS[2])
"""

_MULTI = pack_command(b"MULTI")
_EXEC = pack_command(b"EXEC")


def staged_key(state_key: str) -> str:
    """Where a checkpoint's state waits for its fenced script: ``<state key>:staged`` (the
    same hash slot)."""
    return f"{state_key}:staged"


def pack_staged(stage_key: str, state: bytes, script_call: bytes) -> bytes:
    """``MULTI``, ``SET stage_key state``, the pre-packed fenced script call (the last of
    its KEYS ``stage_key``, its script starting with :data:`STAGED_STATE_LUA` after the
    fence), ``EXEC``: four replies, read by :func:`check_staged`."""
    return b"".join([_MULTI, pack_command(b"SET", stage_key, state), script_call, _EXEC])


def check_staged(replies: Sequence[Any]) -> Any:
    """The script's reply out of the four replies of :func:`pack_staged`; an error raised
    (``LEASE_LOST`` as :class:`LeaseLost`)."""
    *queued, executed = replies
    for reply in queued:  # MULTI's OK and the two QUEUED
        check_reply(reply)
    if isinstance(executed, BaseException):  # EXECABORT
        raise executed
    if not isinstance(executed, list) or len(executed) != 2:
        raise ResponseError(f"unexpected EXEC reply {executed!r}")
    check_reply(executed[0])
    return check_reply(executed[1])


def digest_args(digest: ChainDigest | None) -> tuple[bytes, ...]:
    """ARGV[5..9] of a checkpoint script (all empty: no digest recorded)."""
    if digest is None:
        return (b"", b"", b"", b"", b"")
    d = digest.record_fields()
    return (d["state"], d["count"], d["digest"], d["first_seq"], d["last_seq"])


# KEYS: lease, stream. ARGV: owner, group, consumer, cursor, count. One XAUTOCLAIM page
# (IDs only: the entries are read back from our own pending list afterwards).
CLAIM_LUA = (
    FENCE_LUA
    + """
local r = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4],
                     'COUNT', ARGV[5], 'JUSTID')
return {r[1], #r[2], #(r[3] or {})}
"""
)


@dataclass(frozen=True)
class Fence:
    """One owner's fenced calls on one symbol: ``lease_key`` held by ``owner``;
    ``link``: the session's own connection, for its hot loop."""

    client: aioredis.Redis
    link: RedisLink
    lease_key: str
    owner: str

    def pack_eval(self, script: str, keys: Sequence[str], *args: bytes | str | int) -> bytes:
        """The fenced script call (KEYS[1] = our lease, ARGV[1] = our owner id) as RESP,
        for :meth:`eval` or a caller's own pipeline (replies through :func:`check_reply`)."""
        return pack_command(
            b"EVAL", script, 1 + len(keys), self.lease_key, *keys, self.owner, *args
        )

    async def eval(self, script: str, keys: Sequence[str], *args: bytes | str | int) -> Any:
        """Run a fenced script over the link."""
        (reply,) = await self.link.round_trip(self.pack_eval(script, keys, *args), 1)
        return check_reply(reply)

    def pack_eval_bulks(
        self,
        script: str | bytes,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        bulks: Sequence[bytes],
    ) -> bytes:
        """:meth:`pack_eval` with trailing arguments already packed as RESP bulk strings
        (:func:`~cif.bus.stream_writer.bulk`): acks are bulked one by one as they are read
        rather than all at once while the event loop waits."""
        head: list[bytes | str | int] = [b"EVAL", script, 1 + len(keys), self.lease_key]
        head += [*keys, self.owner, *args]
        return pack_command_bulks(head, bulks)

    async def eval_with_bulks(
        self,
        script: str | bytes,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        bulks: Sequence[bytes],
    ) -> Any:
        """:meth:`pack_eval_bulks`, sent in one round trip on the shared client."""
        payload = self.pack_eval_bulks(script, keys, args, bulks)
        (reply,) = await round_trip(self.client, payload, 1)
        return check_reply(reply)

    async def eval_staged(
        self,
        script: str | bytes,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        bulks: Sequence[bytes],
        state: bytes,
    ) -> Any:
        """:meth:`eval_with_bulks` of a checkpoint script that moves ``state`` into place
        from its staging key (:func:`pack_staged`); the staging key is appended to
        ``keys`` (the script's last key) and computed from ``keys[0]``, the state key."""
        stage = staged_key(keys[0])
        call = self.pack_eval_bulks(script, [*keys, stage], args, bulks)
        return check_staged(await round_trip(self.client, pack_staged(stage, state, call), 4))

    async def claim(self, key: str, group: str, consumer: str, count: int) -> tuple[int, int]:
        """Take over every pending entry of ``group`` on ``key`` (min-idle 0: we hold the
        lease, so whoever had them is gone), then forget the consumers left with nothing:
        (entries claimed, entries trimmed from the stream while pending)."""
        claimed = trimmed = 0
        cursor: Any = "0-0"
        while True:
            reply = await self.eval(CLAIM_LUA, [key], group, consumer, cursor, count)
            cursor = reply[0]
            claimed += int(reply[1])
            trimmed += int(reply[2])
            if cursor in (b"0-0", "0-0"):
                break
        for info in await self.client.xinfo_consumers(key, group):
            name = text(info["name"])
            if name != consumer and int(info["pending"]) == 0:
                await self.client.xgroup_delconsumer(key, group, name)
        return claimed, trimmed

    def publisher(self, stream: str, maxlen: int) -> Publisher:
        return Publisher(
            self.link,
            _PUBLISH_HEAD
            + bulk(self.lease_key.encode())
            + bulk(stream.encode())
            + bulk(self.owner.encode())
            + bulk(b"%d" % maxlen),
        )


@dataclass(frozen=True)
class Published:
    """What one publish did: new entries, re-published ones (no-ops), rejected ones."""

    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_error: str = ""


@dataclass(frozen=True)
class Publisher:
    """XADDs entries to one stream through the fenced publish script, over the link."""

    link: RedisLink
    head: bytes

    async def publish(self, bodies: Sequence[bytes], args_per_body: int) -> Published:
        """``bodies``: one per entry, packed ``bulk(id) bulk(n) bulk(field) bulk(value)...``
        of ``args_per_body`` arguments; chunks of :data:`PUBLISH_CHUNK` pipelined in one
        round trip."""
        payloads = []
        for start in range(0, len(bodies), PUBLISH_CHUNK):
            chunk = bodies[start : start + PUBLISH_CHUNK]
            # EVAL, script, numkeys, 2 keys, owner, maxlen; then the entries
            n_args = 7 + args_per_body * len(chunk)
            payloads.append(b"".join([b"*%d\r\n" % n_args, self.head, *chunk]))
        replies = await self.link.round_trip(b"".join(payloads), len(payloads))
        added = dups = rejected = 0
        first_error = ""
        for reply in replies:
            a, d, r, err = check_reply(reply)
            added += int(a)
            dups += int(d)
            if int(r):
                rejected += int(r)
                first_error = first_error or text(err)
        return Published(added, dups, rejected, first_error)


__all__ = [
    "CHECKPOINT_DIGEST_LUA",
    "CHECKPOINT_FIRST_ACK",
    "CLAIM_LUA",
    "PUBLISH_CHUNK",
    "PUBLISH_LUA",
    "STAGED_STATE_LUA",
    "Fence",
    "LeaseLost",
    "Published",
    "Publisher",
    "check_reply",
    "check_staged",
    "digest_args",
    "is_lease_lost",
    "pack_staged",
    "staged_key",
    "text",
]
