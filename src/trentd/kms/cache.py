"""Key records, alias targets and grants held in memory for the hot path.

The cryptographic operations read their key through ``CachedReads`` (``Service.hot_reads()``):
a read transaction that is opened only when something is not in the cache, so an Encrypt on a
cached key makes no database round trip. Entries are tagged with the epoch of the store's
``ChangeFeed`` (store/changes.py) current before their value was read and are served only while
that epoch lasts: any committed change in this process drops them at once, a change made
elsewhere within a second. Management operations never read through here.

What is cached, per process, each a bounded map (memory stays flat with 100,000 keys):
- key records with their side tables applied (KEY_LOADERS), by (account, Region, key id);
- alias targets, by (account, Region, alias name);
- grants on a key for a grantee, by (account, Region, key id, grantee) — only for requests
  without GrantTokens: those check each token's grant in the store (DESIGN.md, Consistency).
Misses are never cached, so a key created on another node is usable there at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

from .. import metrics

DEFAULT_SIZE = 10_000
_fresh = threading.local()


@contextmanager
def fresh_reads():
    """Read every entry from the store (and cache what was read): the retry of a call whose
    cached state led to an error, so that only the *allowing* direction of a change can be late
    by up to a second, never an Enable, a CancelKeyDeletion or a new grant."""
    _fresh.active = True
    try:
        yield
    finally:
        _fresh.active = False


def watch_hits() -> None:
    """Start noting whether this thread is served a cached entry (``served_from_cache``)."""
    _fresh.served = False


def served_from_cache() -> bool:
    """Whether a cached entry was served on this thread since ``watch_hits()``: only then can
    an error be the answer of stale state, worth one retry with fresh reads."""
    return getattr(_fresh, "served", False)


class EpochCache:
    """A bounded map whose entries are valid only in the epoch they were read in.

    No lock and no recency bookkeeping: a dict's get and set are atomic under the GIL, and
    evicting the oldest insertion (rather than the least recently used entry) only costs a hot
    entry one more load when it is evicted, whereas an LRU's lock and reordering cost every hit."""

    def __init__(self, changes, size: int = DEFAULT_SIZE, name: str = "other"):
        self.changes = changes
        self._size = size
        self.name = name  # the cache's label in trentd_cache_hits_total and _misses_total
        self._entries: dict[tuple, tuple[int, object]] = {}

    def get(self, ident: tuple, load: Callable[[], object]):
        """The cached value of ``ident``, or ``load()`` (cached unless None)."""
        epoch = self.changes.epoch()  # before load(): see store/changes.py
        if epoch is None:
            return load()
        entries = self._entries
        if not getattr(_fresh, "active", False):
            entry = entries.get(ident)
            if entry is not None and entry[0] == epoch:
                _fresh.served = True
                if metrics.ACTIVE is not None:
                    metrics.ACTIVE.cache_hit(self.name)
                return entry[1]
        if metrics.ACTIVE is not None:
            metrics.ACTIVE.cache_miss(self.name)
        value = load()
        if value is not None:
            entries.pop(ident, None)  # re-inserted last: the oldest insertion goes first
            entries[ident] = (epoch, value)
            while len(entries) > self._size:
                try:
                    del entries[next(iter(entries))]
                except (KeyError, StopIteration, RuntimeError):  # raced with another thread: harmless
                    break
        return value

    def __len__(self) -> int:
        return len(self._entries)


class CachedReads:
    """Stands in for a read ``Tx``: the real transaction opens on the first store access (on the
    event loop that access raises MustOffload instead, trentd/inline.py). ``Service`` looks up
    keys, aliases and grants through ``cache`` when given one of these."""

    def __init__(self, store, cache: "KeyStateCache"):
        self.store = store
        self.cache = cache
        self._context = None
        self._tx = None

    def __getattr__(self, name: str):  # only reached for Tx attributes: open the transaction
        return getattr(self._open(), name)

    def _open(self):
        if self._tx is None:
            context = self.store.read()
            self._tx = context.__enter__()
            self._context = context
        return self._tx

    def __enter__(self) -> "CachedReads":
        return self

    def __exit__(self, *exc_info) -> bool | None:
        context, self._context, self._tx = self._context, None, None
        if context is not None:
            return context.__exit__(*exc_info)
        return None


class KeyStateCache:
    def __init__(self, changes, size: int = DEFAULT_SIZE):
        self.keys = EpochCache(changes, size, "keys")
        self.aliases = EpochCache(changes, size, "aliases")
        self.grants = EpochCache(changes, size, "grants")

    def reads(self, store) -> CachedReads:
        return CachedReads(store, self)
