"""Fenced Redis calls of a lease owner: calls that first check the lease is still ours.

The feature processor and the forecaster both work on a symbol only while they hold its
lease (:mod:`cif.features.leases`), and every call that changes shared state checks the
lease in the same atomic step. The hot loop's calls (the processor's group read, both
services' publishes) are plain commands in a transaction under ``WATCH`` of the lease
(:class:`LeaseWatch`); the rarer ones (checkpoints, acks, claims) Lua scripts starting with
:data:`~cif.features.leases.FENCE_LUA` (``KEYS[1]`` = the lease, ``ARGV[1]`` = our owner
id). What lives here is the part they share: the watch and the publisher on it, the
checkpoint script's pieces (digest hash, acks), the fenced ``XAUTOCLAIM`` and the reply
handling that turns ``LEASE_LOST`` into :class:`LeaseLost`.

The calls of a session's hot loop (its fenced reads, its publishes) go over the session's
own :class:`~cif.bus.link.RedisLink`; the checkpoints, which run in the background beside
the loop's calls, over the shared redis-py client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cif._core import pack_xadds
from cif.bus.link import RedisLink
from cif.bus.stream_writer import (
    EXEC,
    MULTI,
    bulk,
    count_xadds,
    pack_command,
    pack_command_bulks,
    round_trip,
    xadd_head,
)
from cif.digest import ChainDigest
from cif.features.leases import FENCE_LUA


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


# The checkpoint scripts' shared piece. Their layout: KEYS[5] is the digest hash, ARGV[2]
# the group, ARGV[5..9] the digest (state, count, hex, first seq, last seq; state '' = no
# digest recorded). The output digest (cif.digest) is stored by the same call as the
# state, so after a crash both resume from the same row and no re-processed row counts
# twice. The inputs a checkpoint covers are acked once it has landed (ACK_LUA).
CHECKPOINT_DIGEST_LUA = """
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], 'state', ARGV[5], 'count', ARGV[6], 'digest', ARGV[7],
             'first_seq', ARGV[8], 'last_seq', ARGV[9])
end
"""

# KEYS: lease, stream. ARGV: owner, group, entry IDs... The acks of entries a landed
# checkpoint covers, a chunk at a time, riding along the hot loop's reads.
ACK_LUA = (
    FENCE_LUA
    + """
return redis.call('XACK', KEYS[2], ARGV[2], unpack(ARGV, 3, #ARGV))
"""
)

#: entry IDs acked per call. Redis acks ~0.5 M IDs/s from a script and serves no other
#: client meanwhile: a checkpoint's few thousand acks in one call held every stage of the
#: pipeline for 4-7 ms, a chunk of 200 takes ~0.4 ms. One chunk rides along each read,
#: and a busy loop reads ~100 times a second per symbol: far more than it needs to ack.
ACK_CHUNK = 200

# A checkpoint's state (megabytes for the feature processor) does not go through the
# script: a script argument is copied into Lua and back out again, which held Redis, and
# with it every client of the server, for ~3 ms per MB (23 ms for 7.4 MB). Nor does it go in
# one command: Redis writes each command to its append-only file whole, and the write of a
# multi-MB state held every client for 5-19 ms (its latency monitor, `aof-write`, at 5,000
# ticks/s). The state is written to a staging key of this owner's in pieces of
# STAGE_PIECE_BYTES, one round trip each, and then the fenced script checks the staged length
# and RENAMEs it into place: O(1), and only while the lease is ours. A refused checkpoint
# leaves its state in the staging key, which expires (STAGE_TTL_MS) unless the next
# checkpoint overwrites it; the state key itself never expires.
STAGED_STATE_LUA = """
if redis.call('STRLEN', KEYS[#KEYS]) ~= tonumber(ARGV[#ARGV]) then
  return redis.error_reply('STAGED_INCOMPLETE the staged state is not the length sent')
end
redis.call('RENAME', KEYS[#KEYS], KEYS[2])
redis.call('PERSIST', KEYS[2])
"""

#: Bytes of a checkpoint's state per command (and per write to Redis's append-only file).
STAGE_PIECE_BYTES = 256 * 1024
#: How long a staged state no checkpoint moved into place stays (ms).
STAGE_TTL_MS = 600_000


def staged_key(state_key: str, owner: str) -> str:
    """Where ``owner``'s checkpoint state waits for its fenced script:
    ``<state key>:staged:<owner>`` (the same hash slot; an owner of its own, so a zombie's
    pieces never mix with the owner's)."""
    return f"{state_key}:staged:{owner}"


def pack_stage_pieces(stage_key: str, state: bytes) -> list[tuple[list[bytes], int]]:
    """The round trips that write ``state`` to ``stage_key``: per round trip, its
    pre-packed commands (in pieces to write one after the other: a piece of the state is
    not joined into its command) and how many replies they get.

    The first replaces whatever the key held and sets its expiry: a whole ``SET`` for a
    state of one piece; else ``DEL``, the *last* piece by ``SETRANGE`` (which sizes the
    string once, so the pieces before it are written in place rather than the string
    grown and copied again and again) and ``PEXPIRE``. Then every other piece in order."""
    key = stage_key.encode()
    n = len(state)
    piece = STAGE_PIECE_BYTES
    ttl = b"%d" % STAGE_TTL_MS

    def setrange(offset: int, end: int) -> list[bytes]:
        off = b"%d" % offset
        head = b"*4\r\n$8\r\nSETRANGE\r\n%s%s$%d\r\n" % (bulk(key), bulk(off), end - offset)
        return [head, state[offset:end], b"\r\n"]

    if n <= piece:
        head = b"*5\r\n$3\r\nSET\r\n%s$%d\r\n" % (bulk(key), n)
        return [([head, state, b"\r\n" + bulk(b"PX") + bulk(ttl)], 1)]
    last = (n - 1) // piece * piece
    first = [pack_command(b"DEL", key), *setrange(last, n), pack_command(b"PEXPIRE", key, ttl)]
    return [(first, 3), *(([*setrange(off, off + piece)], 1) for off in range(0, last, piece))]


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


class LeaseWatch:
    """Commands run only while the lease is ours, as plain commands in ``MULTI``/``EXEC``
    under ``WATCH`` of the lease key, on the session's link: the hot loop's fenced reads and
    publishes.

    Why not a fenced script (:data:`FENCE_LUA`) like the rarer calls: Redis runs commands
    from Lua several times slower (each argument and reply converted to Lua and back: a
    fenced ``XREADGROUP`` of a batch took ~300 µs, the same read natively ~80), and the
    server, single-threaded, holds every other client meanwhile.

    How it fences: every transaction is sent with ``WATCH lease`` and ``GET lease`` after
    it, in the same round trip, so the next transaction always runs under a watch whose
    reply said the lease was ours. Redis aborts ``EXEC`` (a nil reply) when the watched
    key was written or expired since: the lease was taken over, lapsed, or only renewed by
    us. Then the ``GET`` decides: still ours, the transaction is sent again; not,
    :class:`LeaseLost`. A transaction that ran did so while the lease was ours. The watch is
    state of one connection: one confirmed on a connection that is gone is confirmed again
    first, and a transaction is only sent on the connection its watch was confirmed on (the
    link raises otherwise, and does not connect again under it).

    Only this object may send ``MULTI``/``EXEC``/``UNWATCH`` on the link; other calls
    (scripts, blocking reads) may ride along in a transaction's round trip or their own.
    """

    def __init__(self, link: RedisLink, lease_key: str, owner: str) -> None:
        self.link = link
        self.lease_key = lease_key
        self.owner = owner.encode()
        #: the connection of the link whose watch was confirmed ours (None: not yet)
        self.confirmed_on: int | None = None
        #: transactions aborted by a write of the lease key (our renewals) and sent again
        self.retried = 0
        #: called for each of them (the owner's counters; the stats line shows them)
        self.on_retry: Callable[[], object] | None = None
        self._watch = pack_command(b"WATCH", lease_key) + pack_command(b"GET", lease_key)

    def _check_watch(self, replies: Sequence[Any], connection: int | None) -> bool:
        """Whether the ``WATCH``/``GET`` replies say the lease is ours; records it."""
        check_reply(replies[0])
        holder = check_reply(replies[1])
        if isinstance(holder, str):
            holder = holder.encode()
        ours = bool(holder == self.owner)
        self.confirmed_on = connection if ours else None
        return ours

    async def _confirm(self) -> None:
        connection, replies = await self.link.numbered_round_trip(self._watch, 2)
        if not self._check_watch(replies, connection):
            raise LeaseLost("LEASE_LOST lease is not held by this owner")

    async def transact(
        self, commands: bytes, n: int, before: bytes = b"", n_before: int = 0
    ) -> tuple[list[Any], list[Any]]:
        """Run the ``n`` pre-packed ``commands`` as one transaction while the lease is ours;
        ``before``: ``n_before`` commands sent ahead of it in the same round trip, outside it
        (and not sent again if the transaction is). Returns the replies of ``before`` and
        of the transaction (error replies in their place). :class:`LeaseLost` when the
        lease is not ours; a transaction with a bad command (``EXECABORT``) raises it."""
        before_replies: list[Any] = []
        while True:
            if self.confirmed_on is None or self.confirmed_on != self.link.connection:
                await self._confirm()
            connection = self.confirmed_on
            # Unconfirmed until the new watch's GET is read: a caller cancelled (or a
            # connection lost) before that must not send the next transaction under it.
            self.confirmed_on = None
            payload = b"".join([before, MULTI, commands, EXEC, self._watch])
            replies = await self.link.round_trip(payload, n_before + n + 4, connection=connection)
            if n_before:
                before_replies = replies[:n_before]
                before, n_before = b"", 0
                replies = replies[len(before_replies) :]
            *queued, executed = replies[: n + 2]
            ours = self._check_watch(replies[n + 2 :], connection)
            if executed is None:  # aborted: the lease key was written or lapsed
                if not ours:
                    raise LeaseLost("LEASE_LOST lease is not held by this owner")
                self.retried += 1
                if self.on_retry is not None:
                    self.on_retry()
                continue
            if isinstance(executed, BaseException):
                raise next((r for r in queued if isinstance(r, BaseException)), executed)
            return before_replies, executed

    async def call(self, command: bytes, before: Sequence[bytes] = ()) -> Any:
        """One pre-packed command run while the lease is ours: its reply (an error reply
        raised). ``before``: commands whose replies are not wanted (acks, a wait for
        entries), sent ahead in the same round trip outside the transaction; an error among
        them is raised too."""
        earlier, (reply,) = await self.transact(command, 1, b"".join(before), len(before))
        for r in earlier:
            check_reply(r)
        return check_reply(reply)


@dataclass(frozen=True)
class Fence:
    """One owner's fenced calls on one symbol: ``lease_key`` held by ``owner``;
    ``link``: the session's own connection, for its hot loop."""

    client: aioredis.Redis
    link: RedisLink
    lease_key: str
    owner: str
    #: the hot loop's fenced transactions on the link
    watch: LeaseWatch = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "watch", LeaseWatch(self.link, self.lease_key, self.owner))

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
        from this owner's staging key (:func:`staged_key` of ``keys[0]``, the state key),
        written there first by :meth:`stage_state`. The staging key is appended to
        ``keys`` (the script's last key) and the state's length to the arguments (its
        last), which the script checks (:data:`STAGED_STATE_LUA`): a refused or incomplete
        staging raises (``LEASE_LOST`` as :class:`LeaseLost`) and changes nothing."""
        stage = await self.stage_state(keys[0], state)
        call = self.pack_eval_bulks(
            script, [*keys, stage], args, [*bulks, bulk(b"%d" % len(state))]
        )
        (reply,) = await round_trip(self.client, call, 1)
        return check_reply(reply)

    async def stage_state(self, state_key: str, state: bytes) -> str:
        """Write ``state`` to this owner's staging key for ``state_key``, a piece per round
        trip (:func:`pack_stage_pieces`); returns the key. Needs no lease: only the fenced
        script moves it into place."""
        stage = staged_key(state_key, self.owner)
        for pieces, n_replies in pack_stage_pieces(stage, state):
            for reply in await round_trip(self.client, pieces, n_replies):
                check_reply(reply)
        return stage

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
        return Publisher(self.watch, xadd_head(stream, maxlen))


@dataclass(frozen=True)
class Published:
    """What one publish did: new entries, re-published ones (no-ops), rejected ones."""

    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_error: str = ""


@dataclass(frozen=True)
class Publisher:
    """XADDs entries to one stream while the lease is ours (one fenced transaction)."""

    watch: LeaseWatch
    #: ``XADD <stream> MAXLEN ~ <maxlen>`` as RESP bulk strings
    head: bytes

    async def publish(self, bodies: Sequence[bytes], args_per_body: int) -> Published:
        """``bodies``: one per entry, packed ``bulk(id) bulk(n) bulk(field) bulk(value)...``
        of ``args_per_body`` arguments; all XADDed in one transaction, one round trip."""
        n_fields = (args_per_body - 2) // 2
        head = self.head
        n = len(bodies)
        commands = pack_xadds([head] * n, list(bodies), [n_fields] * n)
        _, replies = await self.watch.transact(commands, len(bodies))
        return Published(*count_xadds(replies))


__all__ = [
    "ACK_CHUNK",
    "ACK_LUA",
    "CHECKPOINT_DIGEST_LUA",
    "CLAIM_LUA",
    "STAGED_STATE_LUA",
    "Fence",
    "LeaseLost",
    "LeaseWatch",
    "Published",
    "Publisher",
    "check_reply",
    "digest_args",
    "is_lease_lost",
    "pack_stage_pieces",
    "staged_key",
    "text",
]
