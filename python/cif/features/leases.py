"""Per-symbol ownership leases in Redis: at most one processor works on a symbol at a time.

A lease is a plain key, ``lease:features:{btcusdt}`` (under the namespace), whose value is
the owner id (``host:pid:random``) and which expires after the TTL unless renewed:

- acquire: ``SET key owner NX PX ttl`` (or, if the value is already ours, a renewal);
- renew and release: compare-and-set scripts that touch the key only while it still holds
  our id, so a processor that lost its lease (paused, partitioned) cannot extend or delete
  the new owner's lease.

The symbol is the key's hash tag, so the lease shares the slot of the symbol's streams and
checkpoint: scripts that must only act while the lease is ours (publishing feature rows,
checkpointing) check it in the same atomic call (fencing, see :data:`FENCE_LUA`), which is
Cluster-valid. The wall clock of the Redis server decides expiry; the processor's own clock
only paces renewals.
"""

from __future__ import annotations

import os
import secrets
import socket

import redis.asyncio as aioredis

from cif.bus.keys import features_key

#: Lua prelude of fenced scripts: KEYS[1] is the lease, ARGV[1] our owner id. A script
#: starting with it returns the error ``LEASE_LOST`` (and changes nothing) once the lease
#: is someone else's or gone.
FENCE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LEASE_LOST lease is not held by this owner')
end
"""

_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def owner_id() -> str:
    """A process-unique owner id: ``host:pid:random`` (the random part tells apart two
    processes that reuse a pid, e.g. in containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _symbol_key(kind: str, symbol: str, namespace: str) -> str:
    # features_key validates the symbol and applies the namespace; the kind replaces
    # its "features:" part so the key keeps the same {symbol} hash tag.
    key = features_key(symbol, namespace)
    prefix = f"{namespace}:" if namespace else ""
    return prefix + kind + key[len(prefix) + len("features") :]


def lease_key(symbol: str, namespace: str = "", role: str = "features") -> str:
    """The lease of ``symbol`` for ``role``: ``lease:features:{btcusdt}``."""
    return _symbol_key(f"lease:{role}", symbol, namespace)


def state_key(symbol: str, namespace: str = "") -> str:
    """The feature processor's checkpoint of ``symbol``: ``features-state:{btcusdt}``."""
    return _symbol_key("features-state", symbol, namespace)


class Lease:
    """One symbol's lease, held (or wanted) by ``owner``."""

    def __init__(self, client: aioredis.Redis, key: str, owner: str, ttl_s: float) -> None:
        if not ttl_s > 0:
            raise ValueError(f"lease ttl must be > 0, got {ttl_s}")
        self.client = client
        self.key = key
        self.owner = owner
        self.ttl_ms = max(1, int(ttl_s * 1000))

    async def acquire(self) -> bool:
        """Take the lease if it is free (or renew it if it is already ours)."""
        if await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease by the TTL; False if it is not ours (any more)."""
        result = await self.client.eval(_RENEW_LUA, 1, self.key, self.owner, self.ttl_ms)
        return bool(result)

    async def release(self) -> bool:
        """Give the lease up (only if it is still ours), so a stand-by takes over at once."""
        result = await self.client.eval(_RELEASE_LUA, 1, self.key, self.owner)
        return bool(result)

    async def holder(self) -> str | None:
        """The current owner id, or None when the lease is free."""
        raw = await self.client.get(self.key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)
