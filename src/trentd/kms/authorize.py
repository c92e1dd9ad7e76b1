"""Authorization as AWS KMS does it: the key policy, the caller's identity policies, and grants.

Order (IAM policy evaluation logic, KMS flavour):
1. an explicit Deny in the key policy or an identity policy → denied;
2. the key policy allows the caller directly → allowed (cross-account callers also need an
   identity-policy Allow);
3. the key policy allows the caller's account (`arn:aws:iam::ACCT:root`): this delegates to
   identity policies → allowed when one of them allows;
4. a grant on the key names the caller and the operation, and its constraints hold → allowed;
5. otherwise denied, with AWS's message saying which kind of policy was missing.
Operations without a key (CreateKey, ListKeys, …) consult identity policies only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone

from ..auth import policy as policy_language
from ..auth.principals import ALLOW_ALL, ADMIN_NAME
from ..errors import AWSError
from ..http.sts import user_id
from ..store.records import KeyRecord
from .grant_rules import grant_allows

IDENTITY_CACHE_SECONDS = 1.0  # a changed identity policy takes effect within a second everywhere
_ALLOW_ALL = policy_language.compile_cached(ALLOW_ALL, resource_policy=False)


def denied(caller, action: str, resource: str | None, reason: str) -> AWSError:
    """AWS's text; ``resource`` None leaves out "on resource: …", as AWS does for the
    kms:TagResource check of a CreateKey with tags."""
    where = f" on resource: {resource}" if resource is not None else ""
    return AWSError("AccessDeniedException",
                    f"User: {caller.principal_arn} is not authorized to perform: {action}{where} {reason}")


def _no_policy(kind: str, action: str) -> str:
    return f"because no {kind}-based policy allows the {action} action"


def _explicit(kind: str) -> str:
    article = "an" if kind[0] in "aeiou" else "a"  # "in a resource-based", "in an identity-based"
    return f"with an explicit deny in {article} {kind}-based policy"


class RequestContext(Mapping):
    """Condition keys of one request (lower-case names). Keys that cost a store read
    (the key's tags and aliases) are loaded only if a policy asks for them."""

    def __init__(self, values: dict, loaders: dict):
        self._values = values
        self._loaders = loaders  # prefix -> callable(suffix) -> value

    def __getitem__(self, name: str):
        name = name.lower()
        if name in self._values:
            return self._values[name]
        for prefix, load in self._loaders.items():
            if name.startswith(prefix):
                value = self._values[name] = load(name[len(prefix):])
                if value is None:
                    raise KeyError(name)
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Authorizer:
    def __init__(self, store, dev: bool):
        self.store = store
        self.dev = dev
        self._identity: dict[str, tuple[float, list]] = {}
        self._lock = threading.Lock()

    # --- identity policies ----------------------------------------------------------------
    def identity_policies(self, principal_arn: str, tx=None) -> list:
        """The principal's compiled identity policies; read in ``tx`` when the caller holds one
        (a second transaction on the same thread is not allowed)."""
        if self.dev and principal_arn.endswith(f":user/{ADMIN_NAME}"):
            return [_ALLOW_ALL]  # --dev callers act as their account's administrator
        entry = self._identity.get(principal_arn)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
        if tx is not None:
            documents = tx.identity_policies(principal_arn)
        else:
            with self.store.read() as own:
                documents = own.identity_policies(principal_arn)
        compiled = [policy_language.compile_cached(text, resource_policy=False) for text in documents.values()]
        with self._lock:
            if len(self._identity) > 10_000:
                self._identity.clear()
            self._identity[principal_arn] = (time.monotonic() + IDENTITY_CACHE_SECONDS, compiled)
        return compiled

    def _identity_result(self, request, tx=None) -> tuple[bool, bool]:
        policies = self.identity_policies(request.principal_arn, tx)
        results = [p.evaluate(request, resource_policy=False) for p in policies]
        return any(r.denied for r in results), any(r.allowed for r in results)

    # --- decisions ------------------------------------------------------------------------
    def check_account(self, caller, action: str, resource: str, context: Mapping, *,
                      shown_resource: str | None = "") -> None:
        """Operations on no key: identity policies alone decide. ``shown_resource``: the
        resource the AccessDenied message names ("" — the evaluated one; None — none)."""
        request = self._request(caller, action, resource, context)
        identity_denied, identity_allowed = self._identity_result(request)
        shown = resource if shown_resource == "" else shown_resource
        if identity_denied:
            raise denied(caller, action, shown, _explicit("identity"))
        if not identity_allowed:
            raise denied(caller, action, shown, _no_policy("identity", action))

    def check_key(self, tx, caller, action: str, key: KeyRecord, context: Mapping, *, policy_text: str | None = None,
                  use_grants: bool = True) -> None:
        """Raise AccessDeniedException unless ``caller`` may do ``action`` on ``key``.
        ``policy_text`` evaluates a proposed key policy instead of the stored one (lockout check)."""
        request = self._request(caller, action, key.arn, context)
        key_policy = policy_language.compile_cached(policy_text or key.policy, resource_policy=True)
        by_key = key_policy.evaluate(request, resource_policy=True)
        if by_key.denied:
            raise denied(caller, action, key.arn, _explicit("resource"))
        identity_denied, identity_allowed = self._identity_result(request, tx)
        if identity_denied:
            raise denied(caller, action, key.arn, _explicit("identity"))
        same_account = caller.account == key.account
        if by_key.allowed and (same_account or identity_allowed):
            return
        if by_key.allowed_account and identity_allowed:
            return
        if use_grants and self._granted(tx, caller, action, key, context):
            return
        kind = "identity" if by_key.allowed or by_key.allowed_account else "resource"
        raise denied(caller, action, key.arn, _no_policy(kind, action))

    def _granted(self, tx, caller, action: str, key: KeyRecord, context: Mapping) -> bool:
        operation = action.removeprefix("kms:")
        grants = tx.key_grants(key.account, key.region, key.key_id, grantee=caller.principal_arn)
        return any(grant_allows(g, operation, context) for g in grants)

    @staticmethod
    def _request(caller, action: str, resource: str, context: Mapping):
        return policy_language.Request(principal_arn=caller.principal_arn, principal_account=caller.account,
                                       action=action, resource=resource, context=context)


def base_context(caller, key: KeyRecord | None, extra: dict) -> dict:
    """Global and KMS condition keys every request carries (names lower-cased)."""
    now = datetime.now(timezone.utc)
    kind, _, name = caller.principal_arn.split(":", 5)[5].partition("/")
    values = {
        "aws:principalarn": caller.principal_arn,
        "aws:principalaccount": caller.account,
        "aws:principaltype": "User" if kind == "user" else "AssumedRole" if kind == "assumed-role" else "Account",
        "aws:username": name if kind == "user" else None,
        "aws:userid": user_id(caller.principal_arn),  # the unique id (AIDA…), as GetCallerIdentity shows
        "aws:sourceip": caller.source_ip,
        "aws:requestedregion": caller.region,
        "aws:securetransport": caller.secure,
        "aws:currenttime": now,
        "aws:epochtime": int(now.timestamp()),
        "kms:calleraccount": caller.account,
        "kms:grantisforawsresource": False,
    }
    if key is not None:
        values.update({
            "kms:keyspec": key.key_spec, "kms:keyusage": key.key_usage, "kms:keyorigin": key.origin,
            "kms:multiregion": key.multi_region,
        })
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}
