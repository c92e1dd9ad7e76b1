"""Who is calling: access key lookup and the SigV4 signature check, or --dev's shortcut.

Secrets are unwrapped once and kept in memory (auth/credential_cache.py), so the hot path does no
database round trip while a deleted access key (or principal) stops working at once on the node
that deleted it and within a second on every other.
"""

from __future__ import annotations

import re
import time

from ..errors import AWSError
from . import principals, sigv4
from .identity import Caller, stored_user_id
from .credential_cache import CredentialCache
from .key_usage import RECENT
from .temporary import TemporaryCredentials

UNRECOGNIZED = "The security token included in the request is invalid."
_ACCOUNT_KEY = re.compile(r"\d{12}")


class Authenticator:
    def __init__(self, store, root_key, *, dev: bool, default_account: str, clock=None):
        self.store = store
        self.root_key = root_key
        self.dev = dev
        self.default_account = default_account
        self.temporary = TemporaryCredentials(store, root_key, clock)  # requests with a session token
        self._cache = CredentialCache(store)

    def needs_lookup(self, cred: sigv4.Credential) -> bool:
        """False when the answer is in memory, so the caller can skip the hop to a thread."""
        if cred.security_token is not None:
            return self.temporary.needs_lookup(cred.access_key_id)
        if self.dev:
            return False
        return not self._cache.has(cred.access_key_id)

    def lookup(self, access_key_id: str) -> tuple[str, str, str] | None:
        """(principal ARN, secret, the principal's unique id) for an access key, or None. May
        touch the store; cached, so the id costs nothing on the hot path."""
        return self._cache.get(access_key_id, lambda: self._load(access_key_id))

    def _load(self, access_key_id: str) -> tuple[str, str, str] | None:
        with self.store.read() as tx:
            row = tx.get_access_key(access_key_id)
            unique = stored_user_id(tx, row[0]) if row is not None else ""
        if row is None:
            return None
        return row[0], principals.unwrap_secret(self.root_key, access_key_id, row[1]), unique

    def authenticate(self, cred: sigv4.Credential, *, method, path, query, headers, body, request_id,
                     source_ip=None, user_agent=None, secure=False) -> Caller:
        if cred.security_token is not None:
            session = self._session(cred, method=method, path=path, query=query, headers=headers, body=body)
            if session is not None:
                return Caller(account=session.account, region=cred.region, principal_arn=session.principal_arn,
                              access_key_id=cred.access_key_id, request_id=request_id, source_ip=source_ip,
                              user_agent=user_agent, secure=secure, session=session,
                              principal_id=session.principal_id)
        if self.dev:
            # --dev: any key works; a 12-digit access key id picks the account.
            account = cred.access_key_id if _ACCOUNT_KEY.fullmatch(cred.access_key_id) else self.default_account
            principal = principals.principal_arn(account, principals.ADMIN_NAME)
            unique = ""
        else:
            found = self.lookup(cred.access_key_id)
            if found is None:
                raise AWSError("UnrecognizedClientException", UNRECOGNIZED)
            principal, secret, unique = found
            sigv4.verify(cred, method=method, path=path, query=query, headers=headers, body=body, secret=secret)
            RECENT.note(cred.access_key_id, time.time(), cred.service, cred.region)  # GetAccessKeyLastUsed
            account = principal.split(":")[4]
        return Caller(account=account, region=cred.region, principal_arn=principal, access_key_id=cred.access_key_id,
                      request_id=request_id, source_ip=source_ip, user_agent=user_agent, secure=secure,
                      principal_id=unique)

    def _session(self, cred: sigv4.Credential, *, method, path, query, headers, body):
        """The session of temporary credentials, its signature checked; None when --dev meets a
        token it does not know (dev accepts any credentials: the token is ignored)."""
        found = self.temporary.find(cred.access_key_id, cred.security_token or "")
        if found is None:
            if self.dev:
                return None
            raise AWSError("UnrecognizedClientException", UNRECOGNIZED)
        session, secret = found
        if not self.dev:
            sigv4.verify(cred, method=method, path=path, query=query, headers=headers, body=body, secret=secret)
        return session
