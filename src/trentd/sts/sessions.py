"""Temporary credentials: issued by GetSessionToken and AssumeRole (the session record and its
lookup live in auth/sessions.py; auth/temporary.py checks them on every call). Expiry is read
through the service clock, so tests move it with ``POST /_trentd/clock``; every node sees the
same rows, so credentials issued by one node work on all of them.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from datetime import datetime, timezone

from ..auth import principals
from ..auth.sessions import ACCESS_KEY_PREFIX, ASSUMED_ROLE, SESSION_TOKEN, Session, token_hash
from ..store.sessions import SessionRecord

__all__ = ["ASSUMED_ROLE", "SESSION_TOKEN", "Session", "assumed_role_arn", "issue", "iso_time", "sweep_expired"]

TOKEN_BYTES = 48  # 384 bits of randomness
# Expired rows are kept a day so that a late caller is told "expired", not "invalid".
SWEEP_GRACE_SECONDS = 86400.0
SWEEP_EVERY_SECONDS = 60.0
_ALNUM = string.ascii_uppercase + string.digits


def new_access_key_id() -> str:
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_ALNUM) for _ in range(16))


def assumed_role_arn(role_arn: str, session_name: str) -> str:
    """arn:aws:iam::A:role/path/R -> arn:aws:sts::A:assumed-role/R/SESSION (the path is dropped)."""
    account = role_arn.split(":")[4]
    role_name = role_arn.rsplit("/", 1)[1]
    return f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"


def issue(tx, root_key, *, now: float, duration: int, kind: str, account: str, principal_arn: str,
          session_arn: str, session_name: str | None = None, policies: list[str] | None = None,
          tags: dict | None = None) -> dict:
    """Store a new set of credentials; returns the STS ``Credentials`` structure."""
    access_key_id = new_access_key_id()
    secret = secrets.token_urlsafe(30)  # 40 characters, like AWS's
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = float(int(now) + duration)  # whole seconds, as the wire format shows them
    tx.insert_session(SessionRecord(
        access_key_id=access_key_id, token_hash=token_hash(token),
        wrapped_secret=principals.wrap_secret(root_key, access_key_id, secret), account=account,
        principal_arn=principal_arn, session_arn=session_arn, kind=kind, session_name=session_name,
        policies=json.dumps(policies) if policies else None, tags=json.dumps(tags) if tags else None,
        created=now, expires=expires))
    return {"AccessKeyId": access_key_id, "SecretAccessKey": secret, "SessionToken": token, "Expiration": expires}


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_last_sweep = [float("-inf")]


def sweep_expired(svc) -> None:
    """Background job: forget credentials that expired more than a day ago. Any node may run it
    (deleting the same rows twice is harmless); once a minute is plenty, and spares SQLite a
    write transaction every second."""
    if time.monotonic() - _last_sweep[0] < SWEEP_EVERY_SECONDS:
        return
    _last_sweep[0] = time.monotonic()
    with svc.store.write() as tx:
        tx.delete_sessions_expired_before(svc.clock.now() - SWEEP_GRACE_SECONDS)
