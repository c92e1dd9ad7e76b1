"""The Condition element of the IAM policy language: compiled once, evaluated per request.

Semantics (IAM User Guide, "Condition operators" and "Conditions with multiple context keys or
values"): operators AND together, keys inside one operator AND together, the values given for one
key OR together (NOR for a negated operator). A key absent from the request context makes a
positive operator false and a negated one true; ``…IfExists`` makes any absent key true; ``Null``
tests presence; ``ForAllValues:`` is true and ``ForAnyValue:`` false for an absent or empty key.
An empty list in the context counts as absent.

Evaluation is three-valued (Kleene): ``True``, ``False`` or ``UNKNOWN`` (``None``) when a request
value cannot be compared at all (a non-number under ``NumericEquals``, a malformed IP…). The caller
resolves ``UNKNOWN`` the restrictive way: an Allow does not apply, a Deny does. Policy literals
are type-checked at parse time, so ``UNKNOWN`` only ever comes from the request side.

Multi-valued context values (lists) used without a qualifier: a positive operator behaves as
``ForAnyValue:`` (some request value matches) and a negated operator is its exact complement
(no request value matches), so ``StringEquals`` and ``StringNotEquals`` never both hold.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import operator
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any, Callable

from ..errors import AWSError

UNKNOWN = None


def malformed(message: str) -> AWSError:
    return AWSError("MalformedPolicyDocumentException", message)


class Unresolvable(Exception):
    """A policy variable has no value in this request: IAM treats the whole statement as not
    matching (IAM User Guide, "Variables and tags")."""


# --- three-valued logic --------------------------------------------------------------------
def k_any(results) -> bool | None:
    unknown = False
    for r in results:
        if r is True:
            return True
        unknown = unknown or r is None
    return UNKNOWN if unknown else False


def k_all(results) -> bool | None:
    unknown = False
    for r in results:
        if r is False:
            return False
        unknown = unknown or r is None
    return UNKNOWN if unknown else True


def k_not(result: bool | None) -> bool | None:
    return None if result is None else not result


# --- policy variables and wildcards --------------------------------------------------------
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"\s*([^,]*?)\s*,\s*'([^']*)'\s*", re.DOTALL)  # ${aws:userid, 'anonymous'}
_SPECIAL = ("*", "?", "$")  # ${*} ${?} ${$}: that character, literally — never a wildcard


class Template:
    """A policy string split into pattern text (``str`` parts, wildcards active) and variable
    references (``(name, default)``; name None for ${*} ${?} ${$}, whose default is the char)."""

    __slots__ = ("parts", "has_vars")

    def __init__(self, text: str, variables: bool):
        parts, pos = [], 0
        for m in _VARIABLE.finditer(text) if variables else ():
            inner = m.group(1)
            d = _DEFAULT.fullmatch(inner)
            ref = (None, inner) if inner in _SPECIAL else (d[1].lower(), d[2]) if d else (inner.strip().lower(), None)
            parts += [text[pos:m.start()], ref]
            pos = m.end()
        parts.append(text[pos:])
        self.parts = tuple(p for p in parts if p != "")
        self.has_vars = any(type(p) is tuple and p[0] is not None for p in self.parts)

    def segments(self, resolve) -> tuple[tuple[str, bool], ...]:
        """``(text, exact)`` pieces; ``exact`` text (a variable's value) is matched literally."""
        out = []
        for p in self.parts:
            if type(p) is str:
                out.append((p, False))
                continue
            value = resolve(p[0]) if p[0] is not None and resolve is not None else None
            value = p[1] if value is None else value
            if value is None:
                raise Unresolvable(p[0])
            out.append((value, True))
        return tuple(out)

    def text(self, resolve) -> str:
        return "".join(t for t, _ in self.segments(resolve))


class Glob:
    """A wildcard pattern: ``*`` any run, ``?`` one character, everything else literal. Matched
    greedily, piece by piece (the fixed-length pieces between stars, each at its leftmost place),
    never with a backtracking regex: ``*a*a*a…b`` against a long value stays O(n·m), where ``re``
    takes exponential time — a ReDoS through caller-controlled values such as encryption context."""

    __slots__ = ("pieces", "lengths", "min_len", "fullmatch")

    def __init__(self, segments: tuple[tuple[str, bool], ...]):
        pieces: list[list[tuple[str, bool]]] = []
        piece: list[tuple[str, bool]] = []
        for text, exact in segments:
            for ch in text:
                if ch == "*" and not exact:
                    pieces.append(piece)
                    piece = []
                else:
                    piece.append((ch, ch == "?" and not exact))
        pieces.append(piece)
        # a piece without ``?`` wildcards is a str (C-speed find/startswith), else a fixed-width regex
        self.pieces = tuple("".join(c for c, _ in p) if not any(w for _, w in p) else
                            re.compile("".join("." if w else re.escape(c) for c, w in p), re.DOTALL) for p in pieces)
        self.lengths = tuple(len(p) for p in pieces)
        self.min_len = sum(self.lengths)
        self.fullmatch = self._fast_path() or self._match  # ``fullmatch(s) -> bool``

    def _fast_path(self):
        """The shapes real policies use ("*", "kms:*", literals) as one or two C-level calls."""
        if not all(type(p) is str for p in self.pieces) or len(self.pieces) > 2:
            return None
        if len(self.pieces) == 1:
            return self.pieces[0].__eq__
        head, tail, least = self.pieces[0], self.pieces[1], self.min_len
        if not head and not tail:
            return lambda s: True
        return lambda s: len(s) >= least and s.startswith(head) and s.endswith(tail)

    @staticmethod
    def _at(piece, s: str, pos: int) -> bool:
        return s.startswith(piece, pos) if type(piece) is str else piece.match(s, pos) is not None

    def _match(self, s: str) -> bool:
        pieces, lengths = self.pieces, self.lengths
        if len(pieces) == 1:
            return len(s) == lengths[0] and self._at(pieces[0], s, 0)
        end = len(s) - lengths[-1]
        if len(s) < self.min_len or not self._at(pieces[0], s, 0) or not self._at(pieces[-1], s, end):
            return False
        pos = lengths[0]
        for piece, n in zip(pieces[1:-1], lengths[1:-1], strict=True):
            if isinstance(piece, str):
                at = s.find(piece, pos, end)
            else:
                m = piece.search(s, pos, end)
                at = -1 if m is None else m.start()
            if at < 0:
                return False
            pos = at + n
        return True


class ArnGlob:
    """ArnEquals/ArnLike: the six colon-separated parts match one by one, so a wildcard in the
    first five cannot cross a colon; the last part (the resource) may contain colons."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Glob, ...]):
        self.parts = parts

    def fullmatch(self, s: str) -> bool:
        values = s.split(":", 5)
        return len(values) == 6 and all(g.fullmatch(v) for g, v in zip(self.parts, values, strict=True))


def any_match(globs, s: str) -> bool:
    for g in globs:  # a plain loop: measurably faster than any() over a generator on the hot path
        if g.fullmatch(s):
            return True
    return False


@lru_cache(maxsize=4096)
def glob(segments: tuple[tuple[str, bool], ...], arn: bool = False):
    """Compile ``(text, exact)`` segments (``exact`` text is literal even if it holds ``*``/``?``).
    For ``arn``, None when the pattern has fewer than six colon-separated parts."""
    if not arn:
        return Glob(segments)
    parts: list[tuple[tuple[str, bool], ...]] = []
    current: list[tuple[str, bool]] = []
    for text, exact in segments:
        for i, chunk in enumerate(text.split(":", 5 - len(parts)) if len(parts) < 5 else [text]):
            if i:
                parts.append(tuple(current))
                current = []
            current.append((chunk, exact))
    parts.append(tuple(current))
    return ArnGlob(tuple(Glob(p) for p in parts)) if len(parts) == 6 else None


# --- request values, converted defensively: None when the value cannot be used ----------------
def _safe(convert):
    @wraps(convert)
    def wrapper(v):
        try:
            return convert(v)
        except (ValueError, TypeError, OverflowError, ArithmeticError, binascii.Error):
            return None
    return wrapper


def as_utc(d: datetime) -> datetime:
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


def as_text(v) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)) or (isinstance(v, float) and math.isfinite(v)):
        return str(v)
    return as_utc(v).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else None


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@_safe
def as_decimal(v) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)  # repr: 0.1 stays 0.1
        return d if d.is_finite() else None
    return Decimal(v.strip()) if isinstance(v, str) and _NUMBER.fullmatch(v.strip()) else None


# W3C profile of ISO 8601: YYYY-MM[-DD[Thh:mm[:ss[.s]][TZD]]]; a numeric string is epoch seconds
# (as aws:EpochTime). A missing zone means UTC.
_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                   r"([Zz]|[+-]\d{2}:?\d{2})?)?)?", re.ASCII)


def parse_date(text: str) -> float:
    """Epoch seconds of an ISO 8601 or epoch string; raises ValueError."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        if not math.isfinite(float(text)):
            raise ValueError(text)
        return float(text)
    m = _DATE.fullmatch(text)
    if not m:
        raise ValueError(text)
    *fields, frac, tz = m.groups()
    year, month, day, hh, mm, ss = (int(f or d) for f, d in zip(fields, (0, 0, 1, 0, 0, 0), strict=True))
    offset = 0 if not tz or tz in "Zz" else int(tz[0] + "1") * (int(tz[1:3]) * 3600 + int(tz[-2:]) * 60)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime(year, month, day, hh, mm, ss, micro, timezone(timedelta(seconds=offset))).timestamp()


@_safe
def as_epoch(v) -> float | None:
    if isinstance(v, datetime):
        return as_utc(v).timestamp()
    if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        return float(v) if math.isfinite(float(v)) else None
    return parse_date(v) if isinstance(v, str) else None


def as_bool(v) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"true": True, "false": False}.get(v.strip().lower()) if isinstance(v, str) else None


@_safe
def as_bytes(v) -> bytes | None:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return base64.b64decode(v, validate=True) if isinstance(v, str) else None


@_safe
def as_ip(v):
    ip = ipaddress.ip_address(v.strip()) if isinstance(v, str) else v
    if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return None
    # a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; they must meet IPv4 ranges
    # (else a Deny on an IPv4 range would silently never apply)
    return getattr(ip, "ipv4_mapped", None) or ip


# --- matchers: does one request value match any of the policy's values for a key? ----------
class _StringMatcher:
    """String* and Arn* operators. Constant values are precompiled (a set, or globs); values with
    variables are resolved per request, lazily, only if no constant matched."""

    def __init__(self, mode: str, templates: list[Template]):
        self.mode = mode
        self.dynamic = tuple(t for t in templates if t.has_vars)
        constants = [t.segments(None) for t in templates if not t.has_vars]
        self.exact = frozenset(self._fold("".join(s for s, _ in seg)) for seg in constants)
        self.globs = tuple(self._glob(seg) for seg in constants) if mode in ("like", "arn") else None

    def _fold(self, s: str) -> str:
        return s.lower() if self.mode == "ieq" else s

    def _glob(self, segments):
        lone_star = segments == (("*", False),)  # ArnLike "*" matches any ARN
        return glob(segments, arn=self.mode == "arn" and not lone_star)

    def match(self, v, resolve) -> bool | None:
        s = as_text(v)
        if s is None:
            return UNKNOWN
        if any_match(self.globs, s) if self.globs is not None else self._fold(s) in self.exact:
            return True
        result: bool | None = False
        for t in self.dynamic:
            segments = t.segments(resolve)
            if self.mode in ("like", "arn"):
                g = self._glob(segments)
                hit = UNKNOWN if g is None else g.fullmatch(s)
            else:
                hit = self._fold("".join(x for x, _ in segments)) == self._fold(s)
            if hit:
                return True
            result = UNKNOWN if hit is None else result
        return result


@dataclass(frozen=True, slots=True)
class _ValueMatcher:
    """Numeric, Date, Bool, Binary and IP operators: the request value is converted, then
    compared by ``test`` with each precompiled policy value (``dynamic``: Bool variables)."""

    values: tuple
    convert: Callable[[Any], Any]  # request value -> comparable, None when it cannot be used
    test: Callable[[Any, Any], bool]  # (request value, policy value)
    dynamic: tuple[Template, ...] = ()

    def match(self, v, resolve) -> bool | None:
        x = self.convert(v)
        if x is None:
            return UNKNOWN
        if any(self.test(x, p) for p in self.values):
            return True
        result: bool | None = False
        for t in self.dynamic:  # a Bool variable whose value is not true/false: UNKNOWN
            b = as_bool(t.text(resolve))
            if b is not None and self.test(x, b):
                return True
            result = UNKNOWN if b is None else result
        return result


# --- parse-time compilation of policy literals ---------------------------------------------
def _network(v):
    return ipaddress.ip_network(v.strip(), strict=False)


# family -> (literal converter, what the literal must be). ``type(v) is str`` keeps JSON numbers
# (JsonNumber) out of Bool, Binary and IP; numbers and dates accept them.
_LITERALS = {
    "numeric": (lambda v: as_decimal(v) if isinstance(v, str) else None, "a number"),
    "date": (_safe(lambda v: parse_date(v) if isinstance(v, str) else None), "an ISO 8601 date or epoch time"),
    "bool": (lambda v: v if isinstance(v, bool) else as_bool(v) if type(v) is str else None, "true or false"),
    "binary": (lambda v: as_bytes(v) if type(v) is str else None, "a base64-encoded value"),
    "ip": (_safe(lambda v: _network(v) if type(v) is str else None), "an IP address or CIDR block"),
}
_CONVERT = {"numeric": as_decimal, "date": as_epoch, "bool": as_bool, "binary": as_bytes, "ip": as_ip}


def literal(family: str, v, op: str):
    convert, what = _LITERALS[family]
    x = convert(v)
    if x is None:
        raise malformed(f"Condition {op} requires {what}, not {v!r}.")
    return x


def _in_network(ip, network) -> bool:
    return ip in network


_CMP = {"equals": operator.eq, "lessthan": operator.lt, "lessthanequals": operator.le,
        "greaterthan": operator.gt, "greaterthanequals": operator.ge}
# lower-case operator name -> (family, string mode or comparison, negated)
OPERATORS: dict[str, tuple[str, object, bool]] = {
    "stringequals": ("string", "eq", False), "stringnotequals": ("string", "eq", True),
    "stringequalsignorecase": ("string", "ieq", False), "stringnotequalsignorecase": ("string", "ieq", True),
    "stringlike": ("string", "like", False), "stringnotlike": ("string", "like", True),
    "arnequals": ("string", "arn", False), "arnlike": ("string", "arn", False),
    "arnnotequals": ("string", "arn", True), "arnnotlike": ("string", "arn", True),
    "bool": ("bool", operator.eq, False), "binaryequals": ("binary", operator.eq, False),
    "ipaddress": ("ip", _in_network, False), "notipaddress": ("ip", _in_network, True),
    "numericnotequals": ("numeric", operator.eq, True), "datenotequals": ("date", operator.eq, True),
    **{f"numeric{name}": ("numeric", cmp, False) for name, cmp in _CMP.items()},
    **{f"date{name}": ("date", cmp, False) for name, cmp in _CMP.items()},
}


def compile_matcher(family: str, mode, values: list, op: str, variables: bool):
    """Type-check one key's policy values and build its matcher. Variables are honoured only
    in string, ARN and Bool values (IAM: not in Numeric, Date, Binary, IP or Null)."""
    if family == "string":  # JSON true/false compare as the strings "true"/"false"
        texts = [as_text(v) for v in values]  # values are str or bool (policy._value_list): never None
        templates = [Template(text, variables) for text in texts if text is not None]
        for t in templates:
            if mode == "arn" and not t.has_vars and t.text(None) != "*" and glob(t.segments(None), True) is None:
                raise malformed(f"Condition {op} requires an ARN, not {t.text(None)!r}.")
        return _StringMatcher(mode, templates)
    dynamic: tuple[Template, ...] = ()
    if family == "bool" and variables:
        dynamic = tuple(t for t in (Template(v, True) for v in values if type(v) is str) if t.has_vars)
        values = [v for v in values if not (type(v) is str and Template(v, True).has_vars)]
    return _ValueMatcher(tuple(literal(family, v, op) for v in values), _CONVERT[family], mode, dynamic)


# --- compiled conditions -------------------------------------------------------------------
def context_values(context, key: str) -> tuple | None:
    """The request's values for ``key`` as a tuple; None when absent or an empty list."""
    v = context.get(key)
    if v is None:
        return None
    return (tuple(v) or None) if isinstance(v, (list, tuple, set, frozenset)) else (v,)


@dataclass(frozen=True, slots=True)
class Condition:
    """One (operator, key) pair of a Condition block."""

    key: str
    matcher: _StringMatcher | _ValueMatcher
    negated: bool
    qualifier: str | None  # "any", "all" or None
    if_exists: bool

    def evaluate(self, context, resolve) -> bool | None:
        values = context_values(context, self.key)
        if values is None:
            if self.if_exists or self.qualifier == "all":
                return True
            return False if self.qualifier == "any" else self.negated
        match = self.matcher.match
        if self.qualifier is None:  # lists without a qualifier: see the module docstring
            hit = k_any(match(v, resolve) for v in values)
            return k_not(hit) if self.negated else hit
        each = (k_not(match(v, resolve)) if self.negated else match(v, resolve) for v in values)
        return k_all(each) if self.qualifier == "all" else k_any(each)


@dataclass(frozen=True, slots=True)
class NullCondition:
    """``Null: {key: true}`` holds when the key is absent; ``false`` when it is present."""

    key: str
    wants_absent: tuple[bool, ...]

    def evaluate(self, context, resolve) -> bool:
        absent = context_values(context, self.key) is None
        return any(absent == want for want in self.wants_absent)
