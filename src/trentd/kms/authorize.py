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

from collections.abc import Iterator, Mapping

from ..auth import policy as policy_language
from ..auth.principals import ALLOW_ALL, ADMIN_NAME
from ..errors import AWSError
from ..auth.identity import session_result
from ..store.records import KeyRecord
from ..store.changes import ChangeFeed
from .cache import CachedReads, EpochCache
from .grant_rules import grant_allows

_ALLOW_ALL = policy_language.compile_cached(ALLOW_ALL, resource_policy=False)


def denied(caller, action: str, resource: str | None, reason: str) -> AWSError:
    """AWS's text; ``resource`` None leaves out "on resource: …", as AWS does for the
    kms:TagResource check of a CreateKey with tags."""
    where = f" on resource: {resource}" if resource is not None else ""
    return AWSError("AccessDeniedException",
                    f"User: {caller.shown_arn} is not authorized to perform: {action}{where} {reason}")


def _no_policy(kind: str, action: str) -> str:
    return f"because no {kind}-based policy allows the {action} action"


def _explicit(kind: str) -> str:
    article = "an" if kind[0] in "aeiou" else "a"  # "in a resource-based", "in an identity-based"
    return f"with an explicit deny in {article} {kind}-based policy"


def _within_session(caller, action: str, resource: str | None, session_allowed: bool) -> None:
    if not session_allowed:
        raise denied(caller, action, resource, "because no session policy allows the " + action + " action")


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
        # Compiled identity policies by principal, dropped with every other cache when the store
        # changes (store/changes.py): a new identity policy applies within a second everywhere.
        self._identity = EpochCache(getattr(store, "changes", None) or ChangeFeed(store), name="identity_policies")
        # allows_without_context(): verdicts of condition-free policies, by everything they depend on
        self._context_free_verdicts: dict = {}

    # --- identity policies ----------------------------------------------------------------
    def identity_policies(self, principal_arn: str, tx=None) -> list:
        """The principal's compiled identity policies; read in ``tx`` when the caller holds one
        (a second transaction on the same thread is not allowed)."""
        if self.dev and (principal_arn.endswith(f":user/{ADMIN_NAME}") or ":role/" in principal_arn):
            # --dev callers act as their account's administrator; so do role sessions (dev has no
            # registry of roles to hold their policies): only session policies narrow them
            return [_ALLOW_ALL]
        return self._identity.get((principal_arn,), lambda: self._load_identity_policies(principal_arn, tx))

    def _load_identity_policies(self, principal_arn: str, tx) -> list:
        if tx is not None:
            documents = tx.identity_policies(principal_arn)
        else:
            with self.store.read() as own:
                documents = own.identity_policies(principal_arn)
        return [policy_language.compile_cached(text, resource_policy=False) for text in documents.values()]

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
        session_denied, session_allowed = session_result(caller, request)
        if identity_denied:
            raise denied(caller, action, shown, _explicit("identity"))
        if session_denied:
            raise denied(caller, action, shown, "with an explicit deny in a session policy")
        if not identity_allowed:
            raise denied(caller, action, shown, _no_policy("identity", action))
        _within_session(caller, action, shown, session_allowed)

    def allows_without_context(self, tx, caller, action: str, key: KeyRecord) -> bool:
        """True when the key policy and the caller's identity policies allow ``action`` and none
        of them reads a condition key: the verdict then depends only on who, what and which key,
        so the request's condition context (the costliest part of authorizing a cryptographic
        call) need not be built. False sends the call the full way (check_key): a deny, a
        condition, a policy variable, a session or a grant are all decided there."""
        if caller.session is not None:
            return False
        key_policy = policy_language.compile_cached(key.policy, resource_policy=True)
        identity = self.identity_policies(caller.principal_arn, tx)
        if not key_policy.context_free or not all(p.context_free for p in identity):
            return False
        # The compiled policies are part of the memo key (held, so their ids cannot be reused):
        # a changed policy is a different object and misses.
        memo_key = (caller.principal_arn, caller.account, action, key.arn, key_policy, *identity)
        verdict = self._context_free_verdicts.get(memo_key)
        if verdict is None:
            request = self._request(caller, action, key.arn, {})
            by_key = key_policy.evaluate(request, resource_policy=True)
            results = [p.evaluate(request, resource_policy=False) for p in identity]
            identity_allowed = any(r.allowed for r in results)
            same_account = caller.account == key.account
            verdict = (not by_key.denied and not any(r.denied for r in results)
                       and ((by_key.allowed and (same_account or identity_allowed))
                            or (by_key.allowed_account and identity_allowed)))
            if len(self._context_free_verdicts) >= 10_000:
                self._context_free_verdicts.clear()
            self._context_free_verdicts[memo_key] = verdict
        return verdict

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
        session_denied, session_allowed = session_result(caller, request)
        if session_denied:
            raise denied(caller, action, key.arn, "with an explicit deny in a session policy")
        same_account = caller.account == key.account
        if by_key.allowed and (same_account or identity_allowed):
            return _within_session(caller, action, key.arn, session_allowed)
        if by_key.allowed_account and identity_allowed:
            return _within_session(caller, action, key.arn, session_allowed)
        if use_grants and self._granted(tx, caller, action, key, context):
            return _within_session(caller, action, key.arn, session_allowed)
        kind = "identity" if by_key.allowed or by_key.allowed_account else "resource"
        raise denied(caller, action, key.arn, _no_policy(kind, action))

    def _granted(self, tx, caller, action: str, key: KeyRecord, context: Mapping) -> bool:
        operation = action.removeprefix("kms:")
        load = lambda: tx.key_grants(key.account, key.region, key.key_id, grantee=caller.principal_arn)  # noqa: E731
        if isinstance(tx, CachedReads) and not caller.grant_tokens:
            # A request with grant tokens reads grants from the store (DESIGN.md, Consistency).
            grants = tx.cache.grants.get((key.account, key.region, key.key_id, caller.principal_arn), load)
        else:
            grants = load()
        return any(grant_allows(g, operation, context) for g in grants)

    @staticmethod
    def _request(caller, action: str, resource: str, context: Mapping):
        return policy_language.Request(principal_arn=caller.principal_arn, principal_account=caller.account,
                                       action=action, resource=resource, context=context)
