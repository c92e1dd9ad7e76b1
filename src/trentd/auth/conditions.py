"""The Condition element of the IAM policy language: compiled once, evaluated per request.

Semantics (IAM User Guide, "Condition operators" and "Conditions with multiple context keys or
values"): operators AND together, keys inside one operator AND together, the values given for one
key OR together (NOR for a negated operator). A key absent from the request context makes a
positive operator false and a negated one true; ``…IfExists`` makes any absent key true; ``Null``
tests presence; ``ForAllValues:`` is true and ``ForAnyValue:`` false for an absent or empty key.
An empty list in the context counts as absent.

Evaluation is three-valued (Kleene): ``True``, ``False`` or ``UNKNOWN`` (``None``) when a request
value cannot be compared at all (a non-number under ``NumericEquals``, a malformed IP…). The caller
decides what ``UNKNOWN`` means, always the restrictive way: an Allow does not apply, a Deny does.
Policy literals are type-checked at parse time, so ``UNKNOWN`` only ever comes from the request.

Multi-valued context values (lists) used without a qualifier: a positive operator behaves as
``ForAnyValue:`` (some request value matches), and a negated operator is its exact complement
(no request value matches), so ``StringEquals`` and ``StringNotEquals`` never both hold.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import operator
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from ..errors import AWSError

UNKNOWN = None
_CONVERSION_ERRORS = (ValueError, TypeError, OverflowError, ArithmeticError, binascii.Error)


def malformed(message: str) -> AWSError:
    return AWSError("MalformedPolicyDocumentException", message)


class JsonNumber(str):
    """A number as written in the policy JSON. Kept as text so that numeric conditions compare
    exactly (Decimal, no float rounding) and string conditions see the digits as written."""


class Unresolvable(Exception):
    """A policy variable has no value in this request: IAM treats the whole statement as not
    matching (IAM User Guide, "Variables and tags")."""


# --- three-valued logic --------------------------------------------------------------------
def k_any(results) -> bool | None:
    seen_unknown = False
    for r in results:
        if r is True:
            return True
        if r is None:
            seen_unknown = True
    return UNKNOWN if seen_unknown else False


def k_all(results) -> bool | None:
    seen_unknown = False
    for r in results:
        if r is False:
            return False
        if r is None:
            seen_unknown = True
    return UNKNOWN if seen_unknown else True


def k_not(result: bool | None) -> bool | None:
    return None if result is None else not result


# --- policy variables and wildcards --------------------------------------------------------
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"\s*([^,]*?)\s*,\s*'([^']*)'\s*", re.DOTALL)
_SPECIAL = {"*": "*", "?": "?", "$": "$"}  # ${*} ${?} ${$}: the literal character, never a wildcard


class Template:
    """A policy string split into literal pattern text and ``${variable}`` references.
    ``parts`` holds ``str`` (policy text, wildcards active) and ``(name, default)`` tuples."""

    __slots__ = ("parts", "has_vars")

    def __init__(self, text: str, variables: bool):
        parts: list = []
        pos = 0
        for m in _VARIABLE.finditer(text) if variables else ():
            parts.append(text[pos:m.start()])
            inner = m.group(1)
            if inner in _SPECIAL:
                parts.append((None, _SPECIAL[inner]))
            else:
                d = _DEFAULT.fullmatch(inner)
                name, default = (d.group(1), d.group(2)) if d else (inner.strip(), None)
                parts.append((name.lower(), default))
            pos = m.end()
        parts.append(text[pos:])
        self.parts = tuple(p for p in parts if p != "")
        self.has_vars = any(isinstance(p, tuple) and p[0] is not None for p in self.parts)

    def segments(self, resolve) -> tuple[tuple[str, bool], ...]:
        """``(text, exact)`` pieces: ``exact`` text (variable values) never acts as a wildcard."""
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append((p, False))
            elif p[0] is None:
                out.append((p[1], True))
            else:
                value = resolve(p[0]) if resolve is not None else None
                if value is None:
                    value = p[1]
                if value is None:
                    raise Unresolvable(p[0])
                out.append((value, True))
        return tuple(out)

    def text(self, resolve) -> str:
        return "".join(t for t, _ in self.segments(resolve))


@lru_cache(maxsize=4096)
def glob_regex(segments: tuple[tuple[str, bool], ...], arn: bool = False):
    """Compile ``*``/``?`` wildcards; every other character is literal (regex metacharacters are
    escaped). With ``arn`` the first five colon-separated parts match separately (ArnLike): a
    wildcard there cannot cross a colon. Returns None for an ARN pattern with under six parts."""
    out, colons = [], 0
    for text, exact in segments:
        for ch in text:
            in_head = arn and colons < 5
            if ch == ":" and in_head:
                colons += 1
                out.append(":")
            elif ch == "*" and not exact:
                out.append("[^:]*" if in_head else ".*")
            elif ch == "?" and not exact:
                out.append("[^:]" if in_head else ".")
            else:
                out.append(re.escape(ch))
    if arn and colons < 5:
        return None
    return re.compile("".join(out), re.DOTALL)


# --- request values, converted defensively (never raise) ----------------------------------
def as_text(v) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)) or (isinstance(v, float) and math.isfinite(v)):
        return str(v)
    if isinstance(v, datetime):
        return as_utc(v).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def as_decimal(v) -> Decimal | None:
    try:
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return Decimal(v)
        if isinstance(v, float):
            return Decimal(repr(v)) if math.isfinite(v) else None
        if isinstance(v, Decimal):
            return v if v.is_finite() else None
        if isinstance(v, str) and _NUMBER.fullmatch(v.strip()):
            return Decimal(v.strip())
    except _CONVERSION_ERRORS:
        pass
    return None


def as_utc(d: datetime) -> datetime:
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


# W3C profile of ISO 8601 (YYYY-MM, YYYY-MM-DD, …Thh:mm[:ss[.s]]TZD); an all-digit string is
# epoch seconds, as with aws:EpochTime.
_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                   r"([Zz]|[+-]\d{2}:?\d{2})?)?)?", re.ASCII)


def parse_date(text: str) -> float:
    """Epoch seconds of an ISO 8601 date or epoch string; raises ValueError."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(text)
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    zone = timezone.utc
    if tz and tz not in "Zz":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        zone = timezone(timedelta(seconds=sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)))
    micro = int((frac or "0")[:6].ljust(6, "0"))
    d = datetime(int(year), int(month), int(day or 1), int(hh or 0), int(mm or 0), int(ss or 0), micro, zone)
    return d.timestamp()


def as_epoch(v) -> float | None:
    try:
        if isinstance(v, datetime):
            return as_utc(v).timestamp()
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float, Decimal)):
            f = float(v)
            return f if math.isfinite(f) else None
        if isinstance(v, str):
            return parse_date(v)
    except _CONVERSION_ERRORS:
        pass
    return None


def as_bool(v) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return {"true": True, "false": False}.get(v.strip().lower())
    return None


def as_bytes(v) -> bytes | None:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        try:
            return base64.b64decode(v, validate=True)
        except _CONVERSION_ERRORS:
            return None
    return None


def as_ip(v):
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return v
    if isinstance(v, str):
        try:
            return ipaddress.ip_address(v.strip())
        except _CONVERSION_ERRORS:
            return None
    return None


# --- matchers: "does one request value match any of the policy's values?" ------------------
class _StringMatcher:
    """StringEquals / StringEqualsIgnoreCase / StringLike and, with ``arn``, ArnEquals/ArnLike.
    Constant values are precompiled (a set, or one alternation regex); values containing
    variables are resolved per request, lazily, only if no constant matched."""

    def __init__(self, mode: str, templates: list[Template]):
        self.mode = mode
        self.dynamic = tuple(t for t in templates if t.has_vars)
        constants = [t.segments(None) for t in templates if not t.has_vars]
        self.exact = frozenset(self._key("".join(s for s, _ in seg)) for seg in constants)
        self.regex = None
        if mode in ("like", "arn") and constants:
            compiled = [self._compile(seg) for seg in constants]
            self.regex = re.compile("|".join(f"(?:{c.pattern})" for c in compiled), re.DOTALL)

    def _key(self, s: str) -> str:
        return s.lower() if self.mode == "ieq" else s

    def _compile(self, segments):
        if self.mode == "arn" and "".join(s for s, _ in segments) == "*":
            return glob_regex(segments)  # a lone "*" matches any ARN
        return glob_regex(segments, arn=self.mode == "arn")

    def match(self, v, resolve) -> bool | None:
        s = as_text(v)
        if s is None:
            return UNKNOWN
        if self.regex is not None:
            if self.regex.fullmatch(s):
                return True
        elif self._key(s) in self.exact:
            return True
        result = False
        for t in self.dynamic:
            segments = t.segments(resolve)
            if self.mode in ("like", "arn"):
                rx = self._compile(segments)
                hit = UNKNOWN if rx is None else bool(rx.fullmatch(s))
            else:
                hit = self._key("".join(x for x, _ in segments)) == self._key(s)
            if hit:
                return True
            if hit is None:
                result = UNKNOWN
        return result


class _ValueMatcher:
    """Numeric, Date, Bool, Binary and IP operators: request value converted by ``convert``,
    then compared with ``test`` against each precompiled policy value."""

    def __init__(self, values: tuple, convert, test, templates: tuple = ()):
        self.values, self.convert, self.test, self.templates = values, convert, test, templates

    def match(self, v, resolve) -> bool | None:
        x = self.convert(v)
        if x is None:
            return UNKNOWN
        if any(self.test(x, p) for p in self.values):
            return True
        for t in self.templates:  # Bool with a policy variable
            if self.test(x, as_bool(t.text(resolve))):
                return True
        return False


# --- parse-time compilation of policy literals --------------------------------------------
def _literal_text(value, op: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise malformed(f"Invalid value in condition {op}: {value!r}.")


def _compile_number(value, op: str) -> Decimal:
    d = as_decimal(str(value)) if isinstance(value, str) else None
    if d is None:
        raise malformed(f"Condition {op} requires a numeric value, not {value!r}.")
    return d


def _compile_date(value, op: str) -> float:
    try:
        if isinstance(value, str):
            return parse_date(value)
    except _CONVERSION_ERRORS:
        pass
    raise malformed(f"Condition {op} requires an ISO 8601 date or epoch time, not {value!r}.")


def _compile_bool(value, op: str) -> bool:
    b = value if isinstance(value, bool) else as_bool(value) if type(value) is str else None
    if b is None:
        raise malformed(f"Condition {op} requires true or false, not {value!r}.")
    return b


def _compile_binary(value, op: str) -> bytes:
    b = as_bytes(value) if type(value) is str else None
    if b is None:
        raise malformed(f"Condition {op} requires a base64-encoded value, not {value!r}.")
    return b


def _compile_network(value, op: str):
    try:
        if type(value) is str:
            return ipaddress.ip_network(value.strip(), strict=False)
    except _CONVERSION_ERRORS:
        pass
    raise malformed(f"Condition {op} requires an IP address or CIDR block, not {value!r}.")


_CMP = {"equals": operator.eq, "lessthan": operator.lt, "lessthanequals": operator.le,
        "greaterthan": operator.gt, "greaterthanequals": operator.ge}

# lower-case operator name -> (family, comparison or mode, negated)
OPERATORS: dict[str, tuple[str, object, bool]] = {
    "stringequals": ("string", "eq", False), "stringnotequals": ("string", "eq", True),
    "stringequalsignorecase": ("string", "ieq", False), "stringnotequalsignorecase": ("string", "ieq", True),
    "stringlike": ("string", "like", False), "stringnotlike": ("string", "like", True),
    "bool": ("bool", None, False), "binaryequals": ("binary", None, False),
    "ipaddress": ("ip", None, False), "notipaddress": ("ip", None, True),
    "arnequals": ("string", "arn", False), "arnlike": ("string", "arn", False),
    "arnnotequals": ("string", "arn", True), "arnnotlike": ("string", "arn", True),
    "numericnotequals": ("numeric", operator.eq, True), "datenotequals": ("date", operator.eq, True),
}
for _suffix, _cmp in _CMP.items():
    OPERATORS["numeric" + _suffix] = ("numeric", _cmp, False)
    OPERATORS["date" + _suffix] = ("date", _cmp, False)


def compile_matcher(family: str, mode, values: list, op: str, variables: bool):
    """Type-check the policy's values for one key and build its matcher; bad literals are
    rejected here, so a policy that parses never compares a value of the wrong type."""
    if family == "string":
        templates = [Template(_literal_text(v, op), variables) for v in values]
        if mode == "arn":
            for t in templates:
                segments = t.segments(None) if not t.has_vars else None
                if segments is not None and "".join(s for s, _ in segments) != "*" and glob_regex(segments, True) is None:
                    raise malformed(f"Condition {op} requires an ARN, not {t.text(None)!r}.")
        return _StringMatcher(mode, templates)
    if family == "numeric":
        return _ValueMatcher(tuple(_compile_number(v, op) for v in values), as_decimal, mode)
    if family == "date":
        return _ValueMatcher(tuple(_compile_date(v, op) for v in values), as_epoch, mode)
    if family == "bool":
        templates = [Template(v, variables) if type(v) is str else None for v in values]
        dynamic = tuple(t for t in templates if t is not None and t.has_vars)
        fixed = tuple(_compile_bool(v, op) for v, t in zip(values, templates) if t is None or not t.has_vars)
        return _ValueMatcher(fixed, as_bool, operator.eq, dynamic)
    if family == "binary":
        return _ValueMatcher(tuple(_compile_binary(v, op) for v in values), as_bytes, operator.eq)
    return _ValueMatcher(tuple(_compile_network(v, op) for v in values), as_ip, lambda ip, net: ip in net)


# --- compiled conditions --------------------------------------------------------------------
def context_values(context, key: str) -> tuple | None:
    """The request's values for ``key`` as a tuple, or None when absent (or an empty list)."""
    v = context.get(key)
    if v is None:
        return None
    if isinstance(v, (list, tuple, set, frozenset)):
        return tuple(v) or None
    return (v,)


class Condition:
    """One (operator, key) pair of a Condition block."""

    __slots__ = ("key", "matcher", "negated", "qualifier", "if_exists")

    def __init__(self, key, matcher, negated, qualifier, if_exists):
        self.key, self.matcher, self.negated = key, matcher, negated
        self.qualifier, self.if_exists = qualifier, if_exists

    def evaluate(self, context, resolve) -> bool | None:
        values = context_values(context, self.key)
        if values is None:
            if self.if_exists or self.qualifier == "all":
                return True
            return False if self.qualifier == "any" else self.negated
        match = self.matcher.match
        if self.qualifier is None:  # see the module docstring for multi-valued keys
            hit = k_any(match(v, resolve) for v in values)
            return k_not(hit) if self.negated else hit
        each = (k_not(match(v, resolve)) if self.negated else match(v, resolve) for v in values)
        return k_all(each) if self.qualifier == "all" else k_any(each)


class NullCondition:
    """``Null: {key: true}`` holds when the key is absent, ``false`` when it is present."""

    __slots__ = ("key", "wants_absent")

    def __init__(self, key, wants_absent):
        self.key, self.wants_absent = key, wants_absent

    def evaluate(self, context, resolve) -> bool:
        absent = context_values(context, self.key) is None
        return any(absent == want for want in self.wants_absent)


# --- parsing a Condition block ---------------------------------------------------------------
_QUALIFIERS = {"foranyvalue": "any", "forallvalues": "all"}
VENDOR_MESSAGE = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."

# ForAllValues with a single-valued key matches requests that lack the key: KMS refuses it
# ("OverlyPermissiveCondition", KMS guide "conditions-kms"). The two documented families get
# AWS's messages; the other well-known single-valued keys get the same rule (trentd's choice).
_SINGLE_VALUED = frozenset((
    "kms:calleraccount", "kms:viaservice", "kms:keyspec", "kms:keyusage", "kms:keyorigin",
    "kms:customermasterkeyspec", "kms:customermasterkeyusage", "kms:encryptionalgorithm",
    "kms:signingalgorithm", "kms:macalgorithm", "kms:requestalias", "kms:granteeprincipal",
    "kms:retiringprincipal", "kms:bypasspolicylockoutsafetycheck", "kms:grantisforawsresource",
    "kms:messagetype", "kms:datakeypairspec", "kms:expirationmodel", "kms:multiregion",
    "kms:multiregionkeytype", "kms:wrappingalgorithm", "kms:wrappingkeyspec", "kms:validto",
    "kms:keyagreementalgorithm", "kms:reencryptonsamekey", "kms:primaryregion", "kms:replicaregion",
    "aws:principalarn", "aws:principalaccount", "aws:principaltype", "aws:username", "aws:userid",
    "aws:sourceip", "aws:securetransport", "aws:currenttime", "aws:epochtime", "aws:tokenissuetime",
    "aws:sourcevpce", "aws:sourcevpc", "aws:sourcearn", "aws:sourceaccount", "aws:useragent",
    "aws:requestedregion", "aws:multifactorauthpresent", "aws:principalorgid"))
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


def _split_operator(op) -> tuple[str | None, str, bool]:
    """``ForAllValues:StringLikeIfExists`` -> ("all", "stringlike", True). Names are matched
    without regard to case."""
    if type(op) is not str:
        raise malformed(f"Invalid condition operator: {op!r}.")
    head, sep, rest = op.partition(":")
    qualifier = _QUALIFIERS.get(head.lower()) if sep else None
    if sep and qualifier is None:
        raise malformed(f"Invalid condition operator: {op}.")
    base = (rest if sep else op).lower()
    if_exists = base.endswith("ifexists") and base != "ifexists"
    base = base[:-len("ifexists")] if if_exists else base
    if base == "null" and (if_exists or qualifier):
        raise malformed(f"Invalid condition operator: {op}. Null takes neither IfExists nor a set operator.")
    if base != "null" and base not in OPERATORS:
        raise malformed(f"Invalid condition operator: {op}.")
    return qualifier, base, if_exists


def _value_list(raw, op: str, key: str) -> list:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise malformed(f"Condition {op} gives no values for {key}.")
    for v in values:
        if not isinstance(v, (str, bool)):
            raise malformed(f"Invalid value in condition {op} for {key}: {v!r}.")
    return values


def parse_conditions(block, variables: bool) -> tuple:
    if not isinstance(block, dict):
        raise malformed("The Condition element must be a JSON object.")
    out = []
    for op, keys in block.items():
        qualifier, base, if_exists = _split_operator(op)
        if not isinstance(keys, dict):
            raise malformed(f"Condition {op} must map condition keys to values.")
        for key, raw in keys.items():
            if ":" not in key:
                raise malformed(VENDOR_MESSAGE)
            name = key.lower()
            values = _value_list(raw, op, key)
            if qualifier == "all":
                _check_single_valued(name, key)
            if base == "null":
                out.append(NullCondition(name, tuple(_compile_bool(v, op) for v in values)))
                continue
            family, mode, negated = OPERATORS[base]
            matcher = compile_matcher(family, mode, values, op, variables)
            out.append(Condition(name, matcher, negated, qualifier, if_exists))
    return tuple(out)
