"""Temporary credentials as a request carries them: the session record and its lookup.

A set is an access key id (``ASIA`` + 16), a secret access key and an opaque session token of
384 random bits. The store keeps the token's SHA-256 only (a stolen database hands out no usable
token) and the secret wrapped under the root key with the same AAD as long-term secrets, so
``trentd root-key rotate`` rewraps both. STS issues them (sts/sessions.py); auth/temporary.py
checks them on every call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..store.sessions import SessionRecord
from . import policy as policy_language
from . import principals

ACCESS_KEY_PREFIX = "ASIA"
ASSUMED_ROLE = "AssumedRole"
SESSION_TOKEN = "SessionToken"


@dataclass(frozen=True)
class Session:
    """What a request signed with temporary credentials carries (``Caller.session``)."""

    access_key_id: str
    kind: str  # ASSUMED_ROLE or SESSION_TOKEN
    account: str
    principal_arn: str  # the role, or the user of a GetSessionToken session
    session_arn: str  # arn:aws:sts::A:assumed-role/ROLE/SESSION, or the user's ARN
    session_name: str | None
    created: float
    expires: float
    policies: tuple = ()  # compiled session policies (identity-policy grammar)
    tags: dict = field(default_factory=dict)
    principal_id: str = ""  # the role's (or user's) stored unique id, read with the session

    @property
    def is_role(self) -> bool:
        return self.kind == ASSUMED_ROLE


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def load(record: SessionRecord, root_key, principal_id: str = "") -> tuple[Session, str]:
    """The session a stored row describes, and its unwrapped secret."""
    documents = json.loads(record.policies) if record.policies else []
    session = Session(
        access_key_id=record.access_key_id, kind=record.kind, account=record.account,
        principal_arn=record.principal_arn, session_arn=record.session_arn, session_name=record.session_name,
        created=record.created, expires=record.expires,
        policies=tuple(policy_language.compile_cached(d, resource_policy=False) for d in documents),
        tags=json.loads(record.tags) if record.tags else {}, principal_id=principal_id)
    return session, principals.unwrap_secret(root_key, record.access_key_id, record.wrapped_secret)
