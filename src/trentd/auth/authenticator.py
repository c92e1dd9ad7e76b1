"""Who is calling: access key lookup and the SigV4 signature check, or --dev's shortcut.

Secrets are unwrapped once and kept for one second, so the hot path does no database round
trip while a deleted access key still stops working within a second on every node.
"""

from __future__ import annotations

import re
import threading
import time

from ..errors import AWSError
from ..kms.service import Caller
from . import principals, sigv4
from .temporary import TemporaryCredentials

CACHE_SECONDS = 1.0
UNRECOGNIZED = "The security token included in the request is invalid."
_ACCOUNT_KEY = re.compile(r"\d{12}")


class Authenticator:
    def __init__(self, store, root_key, *, dev: bool, default_account: str, clock=None):
        self.store = store
        self.root_key = root_key
        self.dev = dev
        self.default_account = default_account
        self.temporary = TemporaryCredentials(store, root_key, clock)  # requests with a session token
        self._cache: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._lock = threading.Lock()

    def needs_lookup(self, cred: sigv4.Credential) -> bool:
        """False when the answer is in memory, so the caller can skip the hop to a thread."""
        if cred.security_token is not None:
            return self.temporary.needs_lookup(cred.access_key_id)
        if self.dev:
            return False
        entry = self._cache.get(cred.access_key_id)
        return entry is None or entry[0] < time.monotonic()

    def lookup(self, access_key_id: str) -> tuple[str, str] | None:
        """(principal ARN, secret) for an access key, or None. May touch the store."""
        entry = self._cache.get(access_key_id)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        with self.store.read() as tx:
            row = tx.get_access_key(access_key_id)
        found = None
        if row is not None:
            found = (row[0], principals.unwrap_secret(self.root_key, access_key_id, row[1]))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[access_key_id] = (time.monotonic() + CACHE_SECONDS, found)
        return found

    def authenticate(self, cred: sigv4.Credential, *, method, path, query, headers, body, request_id,
                     source_ip=None, user_agent=None, secure=False) -> Caller:
        if cred.security_token is not None:
            session = self._session(cred, method=method, path=path, query=query, headers=headers, body=body)
            if session is not None:
                return Caller(account=session.account, region=cred.region, principal_arn=session.principal_arn,
                              access_key_id=cred.access_key_id, request_id=request_id, source_ip=source_ip,
                              user_agent=user_agent, secure=secure, session=session)
        if self.dev:
            # --dev: any key works; a 12-digit access key id picks the account.
            account = cred.access_key_id if _ACCOUNT_KEY.fullmatch(cred.access_key_id) else self.default_account
            principal = principals.principal_arn(account, principals.ADMIN_NAME)
        else:
            found = self.lookup(cred.access_key_id)
            if found is None:
                raise AWSError("UnrecognizedClientException", UNRECOGNIZED)
            principal, secret = found
            sigv4.verify(cred, method=method, path=path, query=query, headers=headers, body=body, secret=secret)
            account = principal.split(":")[4]
        return Caller(account=account, region=cred.region, principal_arn=principal, access_key_id=cred.access_key_id,
                      request_id=request_id, source_ip=source_ip, user_agent=user_agent, secure=secure)

    def _session(self, cred: sigv4.Credential, *, method, path, query, headers, body):
        """The session of temporary credentials, its signature checked; None when --dev meets a
        token it does not know (dev accepts any credentials: the token is ignored)."""
        found = self.temporary.find(cred.access_key_id, cred.security_token)
        if found is None:
            if self.dev:
                return None
            raise AWSError("UnrecognizedClientException", UNRECOGNIZED)
        session, secret = found
        if not self.dev:
            sigv4.verify(cred, method=method, path=path, query=query, headers=headers, body=body, secret=secret)
        return session
