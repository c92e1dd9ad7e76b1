"""Who is calling: the authenticated principal, its unique id, and the condition keys every
request carries.

``Caller`` is built once per request by the authenticator (auth/authenticator.py) or the console;
``user_id`` is the IAM-shaped unique id GetCallerIdentity answers, audit events show and
``aws:userid`` holds; ``base_context`` and ``session_result`` are the parts of policy evaluation
that depend on the caller alone (KMS and STS both use them).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from ..store.records import KeyRecord, key_arn


ID_PREFIX = {"user": "AIDA", "role": "AROA", "group": "AGPA", "policy": "ANPA"}
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # AWS's unique ids: prefix + 17 of these


def user_id(principal_arn: str) -> str:
    """The id of a principal that has none stored (made before schema 12), derived from its ARN
    as trentd always has: a rename stores it (iam/users.py), so it never changes after."""
    prefix = "AROA" if ":role/" in principal_arn else "AIDA"
    return prefix + hashlib.sha256(principal_arn.encode()).hexdigest()[:17].upper()


def new_unique_id(kind: str) -> str:
    """A new entity's id: random, as AWS's, so a user made again with an old name is another user."""
    return ID_PREFIX[kind] + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def stored_user_id(tx, principal_arn: str) -> str:
    """The principal's unique id as the store holds it (derived for a row without one)."""
    return tx.principal_unique_id(principal_arn) or user_id(principal_arn)


@dataclass(frozen=True)
class Caller:
    """Who is asking, and in which account and Region (from the SigV4 credential scope): the
    authenticated principal only. What it asks rides in an ``Invocation`` (auth/invocation.py)."""

    account: str
    region: str
    principal_arn: str
    access_key_id: str
    request_id: str = ""
    source_ip: str | None = None
    user_agent: str | None = None
    secure: bool = False
    # Temporary credentials (auth/sessions.py Session): principal_arn is then the principal that
    # policies see (the role of an assumed-role session), and the session carries the ARN callers
    # are shown, its session policies and tags.
    session: Any = field(default=None, compare=False, repr=False)
    # The principal's stored unique id (AIDA…/AROA…), read with its credentials; "" when unknown
    # (--dev's implicit administrator): derived from the ARN then.
    principal_id: str = ""

    @property
    def unique_id(self) -> str:
        """The id GetCallerIdentity answers and aws:userid holds (a role session's: AROA…:NAME)."""
        unique = self.principal_id or user_id(self.principal_arn)
        if self.session is not None and self.session.is_role:
            return f"{unique}:{self.session.session_name}"
        return unique

    @property
    def shown_arn(self) -> str:
        """The caller as AccessDenied messages and GetCallerIdentity show it."""
        return self.session.session_arn if self.session is not None else self.principal_arn

    def in_region(self, region: str) -> Caller:
        return replace(self, region=region)

    def key_arn(self, key_id: str) -> str:
        return key_arn(self.account, self.region, key_id)

    def alias_arn(self, alias_name: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:{alias_name}"


def session_result(caller, request) -> tuple[bool, bool]:
    """(denied, allowed) by the session policies of temporary credentials. A session without
    policies has the full permissions of its principal: (False, True). With them, an action
    needs an Allow from a session policy as well as from the usual policies (IAM, "Session
    policies"): a session policy can only narrow, never widen."""
    session = caller.session
    if session is None or not session.policies:
        return False, True
    results = [p.evaluate(request, resource_policy=False) for p in session.policies]
    return any(r.denied for r in results), any(r.allowed for r in results)


def base_context(caller, key: KeyRecord | None, extra: dict) -> dict:
    """Global and KMS condition keys every request carries (names lower-cased)."""
    now = datetime.now(timezone.utc)
    kind, _, name = caller.principal_arn.split(":", 5)[5].partition("/")
    values = {
        "aws:principalarn": caller.principal_arn,
        "aws:principalaccount": caller.account,
        # a role calls only through a session of it (principal_arn is then the role's ARN)
        "aws:principaltype": "User" if kind == "user" else "AssumedRole" if kind in ("role", "assumed-role")
        else "Account",
        "aws:username": name if kind == "user" else None,
        "aws:userid": caller.unique_id,  # as GetCallerIdentity shows it
        "aws:sourceip": caller.source_ip,
        "aws:requestedregion": caller.region,
        "aws:securetransport": caller.secure,
        "aws:currenttime": now,
        "aws:epochtime": int(now.timestamp()),
        "kms:calleraccount": caller.account,
        "kms:grantisforawsresource": False,
    }
    if caller.session is not None:
        values.update(_session_keys(caller.session))
    if key is not None:
        values.update({
            "kms:keyspec": key.key_spec, "kms:keyusage": key.key_usage, "kms:keyorigin": key.origin,
            "kms:multiregion": key.multi_region,
        })
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def _session_keys(session) -> dict:
    """Condition keys of temporary credentials: the session's tags and when it was issued."""
    issued = datetime.fromtimestamp(session.created, timezone.utc)
    values = {f"aws:principaltag/{k.lower()}": v for k, v in session.tags.items()}
    values["aws:tokenissuetime"] = issued
    return values
