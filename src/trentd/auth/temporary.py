"""Requests that carry ``X-Amz-Security-Token``: find the session, check token and expiry.

Only requests with a token come here, so requests signed with long-term keys pay nothing for
temporary credentials. A session row is cached like long-term secrets (auth/credential_cache.py:
a session deleted with its principal, or swept, stops working at once on the node that deleted
it and within a second on every other); expiry is checked on every request against the service
clock, so the cache never extends a session's life.
"""

from __future__ import annotations

import hmac
import time

from ..errors import AWSError
from . import sessions
from .credential_cache import CredentialCache
from .identity import stored_user_id

UNRECOGNIZED = "The security token included in the request is invalid."
EXPIRED = "The security token included in the request is expired"


class TemporaryCredentials:
    def __init__(self, store, root_key, clock):
        self.store = store
        self.root_key = root_key
        self.clock = clock
        self._cache = CredentialCache(store)

    def needs_lookup(self, access_key_id: str) -> bool:
        """True when answering needs the store: a cache miss, or a test clock (kept in the store)."""
        if self.clock is not None and self.clock.movable:
            return True
        return not self._cache.has(access_key_id)

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
        return self._cache.get(access_key_id, lambda: self._load(access_key_id))

    def _load(self, access_key_id: str) -> tuple | None:
        if not access_key_id.startswith(sessions.ACCESS_KEY_PREFIX):
            return None
        with self.store.read() as tx:
            record = tx.get_session(access_key_id)
            unique = stored_user_id(tx, record.principal_arn) if record is not None else ""
        if record is None:
            return None
        session, secret = sessions.load(record, self.root_key, unique)
        return session, secret, record.token_hash
