"""Requests that carry ``X-Amz-Security-Token``: find the session, check token and expiry.

Only requests with a token come here, so requests signed with long-term keys pay nothing for
temporary credentials. A session row is cached for a second like long-term secrets (a deleted
or swept session stops working within a second on every node); expiry is checked on every
request against the service clock, so the cache never extends a session's life.
"""

from __future__ import annotations

import hmac
import threading
import time

from ..errors import AWSError
from ..sts import sessions

CACHE_SECONDS = 1.0
UNRECOGNIZED = "The security token included in the request is invalid."
EXPIRED = "The security token included in the request is expired"


class TemporaryCredentials:
    def __init__(self, store, root_key, clock):
        self.store = store
        self.root_key = root_key
        self.clock = clock
        self._cache: dict[str, tuple[float, tuple | None]] = {}
        self._lock = threading.Lock()

    def needs_lookup(self, access_key_id: str) -> bool:
        """True when answering needs the store: a cache miss, or a test clock (kept in the store)."""
        if self.clock is not None and self.clock.movable:
            return True
        entry = self._cache.get(access_key_id)
        return entry is None or entry[0] < time.monotonic()

    def find(self, access_key_id: str, token: str) -> tuple[sessions.Session, str] | None:
        """(session, secret) when ``token`` is the session token of ``access_key_id``; None if
        either is unknown. Raises ExpiredTokenException for a known but expired session."""
        found = self._lookup(access_key_id)
        if found is None:
            return None
        session, secret, expected_hash = found
        if not hmac.compare_digest(sessions.token_hash(token), expected_hash):
            return None
        if self._now() >= session.expires:
            raise AWSError("ExpiredTokenException", EXPIRED)
        return session, secret

    def _now(self) -> float:
        return self.clock.now() if self.clock is not None else time.time()

    def _lookup(self, access_key_id: str) -> tuple | None:
        entry = self._cache.get(access_key_id)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        found = None
        if access_key_id.startswith(sessions.ACCESS_KEY_PREFIX):
            with self.store.read() as tx:
                record = tx.get_session(access_key_id)
            if record is not None:
                session, secret = sessions.load(record, self.root_key)
                found = (session, secret, record.token_hash)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (time.monotonic() + CACHE_SECONDS, found)
        return found
