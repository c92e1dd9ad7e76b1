"""The IAM policy language: parse and compile a policy document once, evaluate it per request.

``parse_policy`` validates a document the way AWS does on PutKeyPolicy / PutUserPolicy and raises
``MalformedPolicyDocumentException``; ``Policy.evaluate`` answers, for one request, whether an
applicable Deny matched and whether an Allow matched directly or via the caller's account
(in a key policy, the account principal delegates to the account's IAM policies).

Fail-closed rules, applied wherever trentd cannot be sure what AWS would match:
* a condition that cannot be evaluated (request value of the wrong type) makes an Allow not
  apply and a Deny apply (``conditions`` evaluates three-valued);
* principal matching is exact for an Allow, and for a Deny also case-insensitive and covering
  every session of a role named by an ``assumed-role`` ARN (requests carry the role ARN only);
* NotPrincipal exempts a caller from a Deny only if both its ARN and its account are listed (AWS
  "might" check the account first), and from an Allow as soon as either is listed.
Statements missing Action or Resource are accepted in resource policies but have no effect (KMS
PutKeyPolicy behaviour); IAM refuses them in identity policies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..errors import AWSError
from .conditions import (OPERATORS, Condition, NullCondition, Template, Unresolvable, any_match, as_text,
                         compile_matcher, glob, k_all, literal, malformed)

VERSIONS = ("2012-10-17", "2008-10-17")  # only 2012-10-17 has policy variables
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."
VENDOR_MESSAGE = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
_DIRECT, _ACCOUNT = 1, 2  # how an Allow names the caller: itself ("*", its ARN) / its account


@dataclass(frozen=True, slots=True)
class Request:
    principal_arn: str  # for a role session, the role ARN
    principal_account: str
    action: str  # "kms:Encrypt"
    resource: str  # key ARN, alias ARN or "*"
    context: Mapping[str, object]  # condition keys, lower-case names


@dataclass(frozen=True, slots=True)
class Result:
    denied: bool  # an applicable Deny matched
    allowed: bool  # an Allow names the caller directly (or any Allow of an identity policy)
    allowed_account: bool  # an Allow names the caller's account: delegates to its IAM policies


_RESULTS = {(d, a, c): Result(d, a, c) for d in (False, True) for a in (False, True) for c in (False, True)}


# --- JSON ------------------------------------------------------------------------------------
class JsonNumber(str):
    """A number as written in the policy JSON, kept as text: numeric conditions compare it
    exactly (Decimal, no float rounding); elements that need strings refuse it (``type() is str``)."""


def _object(pairs) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:  # IAM grammar: an element must not appear twice (and parsers disagree on which wins)
            raise malformed(f"Policy contains a duplicate element: {key}.")
        out[key] = value
    return out


def _reject_constant(name):
    raise ValueError(name)  # NaN / Infinity are not JSON


def _load(text) -> object:
    try:
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8")
        return json.loads(text, object_pairs_hook=_object, parse_int=JsonNumber, parse_float=JsonNumber,
                          parse_constant=_reject_constant)
    except (ValueError, TypeError, RecursionError):
        raise malformed("Syntax errors in policy.") from None


def _strings(value) -> list | None:
    """A string or a list of strings as a list; None if anything else (JSON numbers included)."""
    items = value if isinstance(value, list) else [value]
    return items if all(type(v) is str for v in items) else None


# --- principals ------------------------------------------------------------------------------
_NAME = r"[\w+=,.@-]+"
_AWS_PRINCIPAL = re.compile(
    rf"(?P<account_id>\d{{12}})|arn:(?P<partition>aws[a-z-]*):(?:iam::(?P<iam_account>\d{{12}}):(?:(?P<root>root)"
    rf"|(?P<kind>user|role)(?:/{_NAME})*/(?P<name>{_NAME}))|sts::(?P<sts_account>\d{{12}}):(?:assumed-role/"
    rf"(?P<role>{_NAME})/{_NAME}|federated-user/{_NAME}))", re.ASCII)


class _Principals:
    """A compiled Principal or NotPrincipal element."""

    __slots__ = ("anyone", "arns", "arns_folded", "accounts", "sessions")

    def __init__(self):
        self.anyone = False
        self.arns, self.accounts, self.sessions = set(), set(), set()  # sessions: (account, role name)
        self.arns_folded: frozenset = frozenset()

    def add_aws(self, value: str, principal_exists) -> None:
        if value == "*":
            self.anyone = True
            return
        m = _AWS_PRINCIPAL.fullmatch(value)
        if m is None:  # wildcards inside ARNs, unique ids (AIDA…), other services' ARNs
            raise malformed(INVALID_PRINCIPALS)
        if m["account_id"] or m["root"]:
            self.accounts.add(m["account_id"] or m["iam_account"])
        elif m["kind"]:
            if principal_exists is not None and not principal_exists(value):
                raise malformed(INVALID_PRINCIPALS)
            self.arns.add(value)
        elif m["role"]:  # a role session: the role must exist
            role_arn = f"arn:{m['partition']}:iam::{m['sts_account']}:role/{m['role']}"
            if principal_exists is not None and not principal_exists(role_arn):
                raise malformed(INVALID_PRINCIPALS)
            self.sessions.add((m["sts_account"], m["role"].lower()))
        # federated users: valid, but no trentd caller is one

    def _session_named(self, request: Request) -> bool:
        kind, _, path = request.principal_arn.rpartition(":")[2].partition("/")
        return kind == "role" and (request.principal_account, path.rpartition("/")[2].lower()) in self.sessions

    def match(self, request: Request, deny: bool) -> int:
        """How this Principal names the caller (_DIRECT/_ACCOUNT bits; 0: not at all)."""
        if self.anyone:
            return _DIRECT
        arn, account = request.principal_arn, request.principal_account
        if deny:  # a Deny naming the account covers everyone in it
            named = arn.lower() in self.arns_folded or account in self.accounts
            return _DIRECT if named or (self.sessions and self._session_named(request)) else 0
        how = _DIRECT if arn in self.arns else 0
        if account in self.accounts:
            how |= _ACCOUNT | (_DIRECT if arn.endswith(f":iam::{account}:root") else 0)
        return how

    def exempts(self, request: Request, deny: bool) -> bool:
        """NotPrincipal: is the caller left out of this statement?"""
        if self.anyone:
            return True
        arn, account = request.principal_arn, request.principal_account
        if deny:
            return account in self.accounts and (arn in self.arns or arn.endswith(f":iam::{account}:root"))
        return (arn.lower() in self.arns_folded or account in self.accounts
                or bool(self.sessions and self._session_named(request)))


def _parse_principals(value, principal_exists) -> _Principals:
    principals = _Principals()
    if value == "*":
        principals.anyone = True
        return principals
    if not isinstance(value, dict) or not value:
        raise malformed(INVALID_PRINCIPALS)
    for kind, ids in value.items():
        items = _strings(ids)
        if not items or kind not in ("AWS", "Service", "Federated") or not all(i.strip() == i != "" for i in items):
            raise malformed(INVALID_PRINCIPALS)
        for item in items if kind == "AWS" else ():  # Service / Federated principals name no trentd caller
            principals.add_aws(item, principal_exists)
    principals.arns_folded = frozenset(a.lower() for a in principals.arns)
    return principals


# --- actions and resources -------------------------------------------------------------------
def _parse_actions(value):
    """The statement's action patterns, lower-cased: action names are case-insensitive.
    An empty list is refused rather than ignored: ``"NotAction": []`` in a Deny means "deny all"."""
    items = _strings(value)
    if items is None:
        raise malformed(VENDOR_MESSAGE)
    if not items:
        raise malformed("Policy statement must contain actions.")
    for action in items:
        if action != "*" and ":" not in action:
            raise malformed(VENDOR_MESSAGE)
        if action.count(":") > 1:
            raise malformed("Actions/Condition can contain only one colon.")
    return tuple(glob(((a.lower(), False),)) for a in items)


class _Resources:
    """Resource patterns: case-sensitive wildcards; ``${…}`` variables resolved per request."""

    __slots__ = ("globs", "dynamic")

    def __init__(self, templates: list[Template]):
        self.globs = tuple(glob(t.segments(None)) for t in templates if not t.has_vars)
        self.dynamic = tuple(t for t in templates if t.has_vars)

    def match(self, resource: str, resolve) -> bool:
        if any_match(self.globs, resource):
            return True
        return any(glob(t.segments(resolve)).fullmatch(resource) for t in self.dynamic)


def _parse_resources(value, identity: bool, variables: bool) -> _Resources:
    items = _strings(value)
    if items is None:
        raise malformed("Resource must be a string or a list of strings.")
    if not items:  # refused, not ignored, for the same reason as an empty action list
        raise malformed("Policy statement must contain resources.")
    for resource in items if identity else ():
        if resource != "*" and not resource.startswith("arn:"):
            raise malformed(f'Resource {resource} must be in ARN format or "*".')
    return _Resources([Template(r, variables) for r in items])


# --- the Condition block --------------------------------------------------------------------
_QUALIFIERS = {"foranyvalue": "any", "forallvalues": "all"}

# ForAllValues with a single-valued key matches requests that lack the key, so KMS refuses it
# (KMS guide "conditions-kms": OverlyPermissiveCondition). The two documented families get AWS's
# messages; trentd applies the same rule to the other well-known single-valued keys.
_SINGLE_VALUED = frozenset(
    "kms:calleraccount kms:viaservice kms:keyspec kms:keyusage kms:keyorigin kms:customermasterkeyspec "
    "kms:customermasterkeyusage kms:encryptionalgorithm kms:signingalgorithm kms:macalgorithm "
    "kms:requestalias kms:granteeprincipal kms:retiringprincipal kms:bypasspolicylockoutsafetycheck "
    "kms:grantisforawsresource kms:messagetype kms:datakeypairspec kms:expirationmodel kms:multiregion "
    "kms:multiregionkeytype kms:wrappingalgorithm kms:wrappingkeyspec kms:validto kms:keyagreementalgorithm "
    "kms:reencryptonsamekey kms:primaryregion kms:replicaregion aws:principalarn aws:principalaccount "
    "aws:principaltype aws:username aws:userid aws:sourceip aws:securetransport aws:currenttime "
    "aws:epochtime aws:tokenissuetime aws:sourcevpce aws:sourcevpc aws:sourcearn aws:sourceaccount "
    "aws:useragent aws:requestedregion aws:multifactorauthpresent aws:principalorgid".split())
_OVERLY = ("OverlyPermissiveCondition{tag}: Using the ForAllValues set operator with a single-valued "
           "condition key matches requests without the specified {what} or with an unspecified {what}. "
           "To fix, remove ForAllValues.")


def _check_single_valued(name: str, key: str) -> None:
    if name.startswith("kms:encryptioncontext:"):
        raise malformed(_OVERLY.format(tag=":EncryptionContext", what="encryption context"))
    if name.startswith("aws:requesttag/"):
        raise malformed(_OVERLY.format(tag=":RequestTag", what="tag"))
    if name in _SINGLE_VALUED or name.startswith(("aws:resourcetag/", "aws:principaltag/")):
        raise malformed(_OVERLY.format(tag="", what=key))


def _split_operator(op: str) -> tuple[str | None, str, bool]:
    """``ForAllValues:StringLikeIfExists`` -> ("all", "stringlike", True); case-insensitive."""
    head, sep, rest = op.partition(":")
    qualifier = _QUALIFIERS.get(head.lower()) if sep else None
    base = (rest if sep else op).lower()
    if_exists = base.endswith("ifexists") and base != "ifexists"
    base = base[:-len("ifexists")] if if_exists else base
    if (sep and qualifier is None) or (base != "null" and base not in OPERATORS):
        raise malformed(f"Invalid condition operator: {op}.")
    if base == "null" and (if_exists or qualifier):
        raise malformed(f"Invalid condition operator: {op}. Null takes neither IfExists nor a set operator.")
    return qualifier, base, if_exists


def _value_list(raw, op: str, key: str) -> list:
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, (str, bool)) for v in values):
        raise malformed(f"Condition {op} has an invalid value for {key}: {raw!r}.")
    return values


def _parse_conditions(block, variables: bool) -> tuple[Condition | NullCondition, ...]:
    if not isinstance(block, dict):
        raise malformed("The Condition element must be a JSON object.")
    out: list[Condition | NullCondition] = []
    for op, keys in block.items():
        qualifier, base, if_exists = _split_operator(op)
        if not isinstance(keys, dict):
            raise malformed(f"Condition {op} must map condition keys to values.")
        for key, raw in keys.items():
            if ":" not in key:
                raise malformed(VENDOR_MESSAGE)
            name, values = key.lower(), _value_list(raw, op, key)
            if qualifier == "all":
                _check_single_valued(name, key)
            if base == "null":
                out.append(NullCondition(name, tuple(literal("bool", v, op) for v in values)))
                continue
            family, mode, negated = OPERATORS[base]
            out.append(Condition(name, compile_matcher(family, mode, values, op, variables), negated,
                                 qualifier, if_exists))
    return tuple(out)


# --- statements ------------------------------------------------------------------------------
_STATEMENT_ELEMENTS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                       "NotResource", "Condition")


class _Statement:
    __slots__ = ("deny", "principals", "not_principal", "actions", "not_action", "resources", "not_resource",
                 "conditions", "index")
    deny: bool
    principals: _Principals | None  # None in an identity policy
    not_principal: bool
    actions: tuple  # compiled globs (_parse_actions)
    not_action: bool
    resources: _Resources
    not_resource: bool
    conditions: tuple[Condition | NullCondition, ...]
    index: int  # its place in the document's Statement list (the simulator points at it)

    def targets(self, request: Request, action: str, resolve) -> int:
        """_DIRECT/_ACCOUNT bits when its principal, action and resource match, conditions aside."""
        if self.principals is None:  # identity policy: the caller is the principal
            how = _DIRECT
        elif self.not_principal:
            how = 0 if self.principals.exempts(request, self.deny) else _DIRECT
        else:
            how = self.principals.match(request, self.deny)
        if not how or any_match(self.actions, action) == self.not_action:
            return 0
        try:
            if self.resources.match(request.resource, resolve) == self.not_resource:
                return 0
        except Unresolvable:  # IAM: a variable without a value voids the statement
            return 0
        return how

    def applies(self, request: Request, action: str, resolve) -> int:
        """_DIRECT/_ACCOUNT bits when this statement applies to the request, else 0."""
        how = self.targets(request, action, resolve)
        if not how or not self.conditions:
            return how
        try:
            verdict = k_all(c.evaluate(request.context, resolve) for c in self.conditions)
        except Unresolvable:
            return 0
        # UNKNOWN (None) fails closed: it never satisfies an Allow and always satisfies a Deny
        return how if (verdict is not False if self.deny else verdict is True) else 0


def _either(st: dict, name: str):
    """(value, negated) of ``name`` / ``Not<name>``; refuses both at once."""
    if name in st and "Not" + name in st:
        raise malformed(f"Policy statement cannot contain both {name} and Not{name}.")
    return (st[name], False) if name in st else (st.get("Not" + name), "Not" + name in st)


def _parse_statement(st, resource_policy: bool, variables: bool, principal_exists) -> _Statement | None:
    """Compile one statement; None when it is valid but can never apply (no Action/Resource)."""
    if not isinstance(st, dict):
        raise malformed("Policy statements must be JSON objects.")
    for element in st:
        if element not in _STATEMENT_ELEMENTS:
            raise malformed(f"Policy statement contains an unsupported element: {element}.")
    if "Effect" not in st:
        raise malformed("Missing required field Effect")
    if st["Effect"] not in ("Allow", "Deny") or type(st["Effect"]) is not str:
        raise malformed(f"Policy statement has an invalid Effect: {st['Effect']!r}. Use Allow or Deny.")
    s = _Statement()
    s.deny = st["Effect"] == "Deny"
    principal, s.not_principal = _either(st, "Principal")
    if not resource_policy and ("Principal" in st or "NotPrincipal" in st):
        raise malformed("Policy document should not specify a principal.")
    if resource_policy and principal is None:
        raise malformed("Policy contains a statement with no principal.")
    s.principals = _parse_principals(principal, principal_exists) if resource_policy else None
    actions, s.not_action = _either(st, "Action")
    if actions is None and not resource_policy:
        raise malformed("Policy statement must contain actions.")
    parsed_actions = None if actions is None else _parse_actions(actions)
    resources, s.not_resource = _either(st, "Resource")
    if resources is None and not resource_policy:
        raise malformed("Policy statement must contain resources.")
    parsed_resources = None if resources is None else _parse_resources(resources, not resource_policy, variables)
    s.conditions = _parse_conditions(st["Condition"], variables) if "Condition" in st else ()
    if parsed_actions is None or parsed_resources is None:
        return None
    s.actions, s.resources = parsed_actions, parsed_resources
    return s


# --- documents -------------------------------------------------------------------------------
class Policy:
    """A compiled policy document; immutable and safe to share between threads."""

    __slots__ = ("statements", "resource_policy", "variables", "context_free")

    def __init__(self, statements: tuple[_Statement, ...], resource_policy: bool, variables: bool):
        self.statements, self.resource_policy, self.variables = statements, resource_policy, variables
        # No condition and no policy variable: its verdict depends only on the principal, action
        # and resource, never on a request's condition keys (kms/authorize.py uses this).
        self.context_free = not any(st.conditions or st.resources.dynamic for st in statements)

    def evaluate(self, request: Request, *, resource_policy: bool) -> Result:
        if resource_policy != self.resource_policy:  # a caller bug, never a request's doing
            raise ValueError("policy compiled as a different kind (resource vs identity)")
        action = request.action.lower()
        resolve = _resolver(request) if self.variables else None
        denied, how = False, 0
        for st in self.statements:
            bits = st.applies(request, action, resolve)
            if bits and st.deny:
                denied = True
            elif bits:
                how |= bits
        return _RESULTS[denied, bool(how & _DIRECT), bool(how & _ACCOUNT)]

    def explain(self, request: Request) -> list[tuple[int, bool, bool]]:
        """(index in the document, deny, applies) of each statement whose principal, action and
        resource match the request; ``applies``: its conditions hold too. What the IAM simulator
        reports (the statements that decided, the condition keys it lacked); not on the hot path."""
        action = request.action.lower()
        resolve = _resolver(request) if self.variables else None
        return [(st.index, st.deny, bool(st.applies(request, action, resolve))) for st in self.statements
                if st.targets(request, action, resolve)]


def _username(request: Request) -> str | None:
    kind, _, path = request.principal_arn.rpartition(":")[2].partition("/")
    return path.rpartition("/")[2] if kind == "user" else None  # roles have no aws:username


_FALLBACKS = {"aws:principalarn": lambda r: r.principal_arn, "aws:principalaccount": lambda r: r.principal_account,
              "aws:username": _username}


def _resolver(request: Request) -> Callable[[str], str | None]:
    """Values for ``${name}``: single-valued context keys (multi-valued keys cannot be variables)."""
    context = request.context

    def resolve(name: str) -> str | None:
        value = context.get(name)
        if value is None and name in _FALLBACKS:
            value = _FALLBACKS[name](request)
        return None if isinstance(value, (list, tuple, set, frozenset, dict)) else as_text(value)

    return resolve


def parse_policy(text: str, *, resource_policy: bool,
                 principal_exists: Callable[[str], bool] | None = None) -> Policy:
    """Validate and compile a policy; raises MalformedPolicyDocumentException. ``principal_exists``
    (IAM user and role ARNs) is consulted when given: KMS refuses principals that do not exist."""
    doc = _load(text)
    if not isinstance(doc, dict):
        raise malformed("The policy must be a JSON object.")
    for element in doc:
        if element not in ("Version", "Id", "Statement"):
            raise malformed(f"Policy contains an unsupported element: {element}.")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS or type(version) is not str:
        raise malformed(f"Policy has an invalid Version: {version!r}.")
    if "Id" in doc and type(doc["Id"]) is not str:
        raise malformed("The policy Id must be a string.")
    if "Statement" not in doc:
        raise malformed("Policy is missing required element - Statement.")
    raw = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    sids = [st.get("Sid") for st in raw if isinstance(st, dict) and "Sid" in st]
    if any(type(sid) is not str for sid in sids):
        raise malformed("The Sid of a statement must be a string.")
    if len({s for s in sids if s}) != len([s for s in sids if s]):
        raise malformed("Statement IDs (SID) in a single policy must be unique.")
    variables = version == "2012-10-17"
    compiled = [_parse_statement(st, resource_policy, variables, principal_exists) for st in raw]
    for index, st in enumerate(compiled):
        if st is not None:
            st.index = index
    return Policy(tuple(s for s in compiled if s is not None), resource_policy, variables)


@lru_cache(maxsize=2048)
def _compiled(text: str, resource_policy: bool) -> Policy:
    return parse_policy(text, resource_policy=resource_policy)


def compile_cached(text: str, *, resource_policy: bool) -> Policy:
    """``parse_policy`` memoised by text (no principal-existence check: that happens when a
    policy is stored). Malformed documents are not cached and raise every time."""
    return _compiled(text, resource_policy)


def checked_identity_policy(document: str) -> str:
    """An identity or session policy as IAM and STS check it when it is put or passed: the policy
    engine's grammar, refused with their code, MalformedPolicyDocument (KMS's is
    MalformedPolicyDocumentException)."""
    try:
        parse_policy(document, resource_policy=False)
    except AWSError as exc:
        raise AWSError("MalformedPolicyDocument", exc.message) from None
    return document
