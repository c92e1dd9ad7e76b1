"""Leaf shapes (string, blob, integer, boolean, timestamp) and the AWS wording of input errors.

The compound shapes (structure, list, map) are compiled in ``inputs.InputCompiler`` from these
pieces into ``check(value, path, errors) -> converted value`` closures:

* wrong JSON types raise ``SerializationException`` at once (Coral deserializes the whole request
  before validating, so a type error anywhere wins over every constraint error);
* constraint failures are appended to ``errors`` as full AWS sentences, in member order, and
  ``raise_if_invalid`` raises one ``ValidationException``: ``N validation error(s) detected: e1; e2``.

Messages (Coral wording): ``Value '<v>' at '<path>' failed to satisfy constraint: <phrase>``;
``Value null at '<path>' …: Member must not be null``; shapes that are or contain ``sensitive``
never show a value (``Value at '<path>' …``, also when null). Paths are lowerCamelCase member
names joined by ``.``; list elements are ``<list>.<1-based index>.member``. A map with scalar
keys/values is reported once per map, as AWS does: ``Value '{k=v, …}' at 'encryptionContext' failed
to satisfy constraint: Map keys must satisfy constraint: [<the key shape's constraints>]`` (``Map
value must satisfy constraint: […]`` likewise); non-scalar map values (none in KMS) are checked at
``<map path>.<key>``. Values render like Java's ``toString``: blobs ``java.nio.HeapByteBuffer[pos=0
lim=N cap=N]``, lists ``[a, b]``, maps and structures ``{k=v, k2=v2}``, booleans ``true``.

Type errors: ``STRING_VALUE|NUMBER_VALUE|DECIMAL_VALUE|TRUE_VALUE|FALSE_VALUE can not be converted
to an Integer|a Long|a String|a Boolean|a Timestamp|a List|a Structure|a Map``, ``Start of list
found where not expected``, ``Start of structure or map found where not expected``; blobs: ``only
base-64-encoded strings are convertible to bytes`` and ``Base64 encoded length is expected a
multiple of 4 bytes but found: N``. Integers need ``type(v) is int`` within Java's range (bools and
``32.0`` are refused); timestamps are epoch-second numbers, returned as ``float``. String lengths
count code points.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from trentd.errors import AWSError
from trentd.protocol.jsonio import b64decode_strict
from trentd.protocol.jsonio import serialization_error as _serialization

Check = Callable[[Any, str, list], Any]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_TOKENS = {str: "STRING_VALUE", int: "NUMBER_VALUE", float: "DECIMAL_VALUE"}


def type_error(value: Any, target: str) -> AWSError:
    """``target`` carries its article: 'an Integer', 'a String'…"""
    t = type(value)
    if t is list:
        return _serialization("Start of list found where not expected")
    if t is dict:
        return _serialization("Start of structure or map found where not expected")
    token = ("TRUE_VALUE" if value else "FALSE_VALUE") if t is bool else _TOKENS.get(t, "VALUE")
    return _serialization(f"{token} can not be converted to {target}")


def render(value: Any) -> str:
    """Java-style ``toString`` of a parsed value, as Coral echoes it in messages."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is bytes:
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if t is list:
        return "[" + ", ".join(render(v) for v in value) + "]"
    if t is dict:
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value)


def failure(value: Any, path: str, phrase: str, sensitive: bool) -> str:
    if sensitive:
        return f"Value at '{path}' failed to satisfy constraint: {phrase}"
    if value is None:
        return f"Value null at '{path}' failed to satisfy constraint: {phrase}"
    return f"Value '{render(value)}' at '{path}' failed to satisfy constraint: {phrase}"


NOT_NULL = "Member must not be null"


def camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def join_path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


# ---------------------------------------------------------------- scalar constraints


def length_phrases(lo, hi, word: str) -> Callable[[int], list]:
    """Phrase builder for min/max; ``word`` is 'length' (strings, blobs, lists) or 'value'."""

    def phrases(n: int):
        if (hi is None or n <= hi) and (lo is None or n >= lo):
            return ()
        out = []
        if hi is not None and n > hi:
            out.append(f"Member must have {word} less than or equal to {hi}")
        if lo is not None and n < lo:
            out.append(f"Member must have {word} greater than or equal to {lo}")
        return out

    return phrases


def all_phrases(shape: dict) -> list[str]:
    """Every constraint of a scalar shape, for the ``Map keys must satisfy constraint: [...]`` list."""
    word = "value" if shape["type"] in ("integer", "long") else "length"
    out = []
    if "max" in shape:
        out.append(f"Member must have {word} less than or equal to {shape['max']}")
    if "min" in shape:
        out.append(f"Member must have {word} greater than or equal to {shape['min']}")
    if "pattern" in shape:
        out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    if "enum" in shape:
        out.append(f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]")
    return out


class Scalar:
    """A leaf shape: ``convert`` (raises on wrong JSON type) and ``violations`` (constraint phrases)."""

    __slots__ = ("convert", "violations", "sensitive", "phrases")

    def __init__(self, convert, violations, sensitive: bool, phrases: list[str]):
        self.convert = convert
        self.violations = violations
        self.sensitive = sensitive
        self.phrases = phrases

    def checker(self) -> Check:
        convert, violations, sensitive = self.convert, self.violations, self.sensitive

        def check(value, path, errors):
            value = convert(value)
            bad = violations(value)
            if bad:  # the common case costs one falsy test
                errors.extend(failure(value, path, phrase, sensitive) for phrase in bad)
            return value

        return check


def no_violations(_value) -> tuple:
    return ()


def string_scalar(shape: dict) -> Scalar:
    lo, hi = shape.get("min"), shape.get("max")
    lengths = length_phrases(lo, hi, "length")
    # Java patterns are unanchored and matched against the whole string; re.ASCII keeps \w, \d
    # and \s to their Java (ASCII) meaning.
    regex = re.compile(shape["pattern"], re.ASCII).fullmatch if "pattern" in shape else None
    pattern_phrase = f"Member must satisfy regular expression pattern: {shape.get('pattern')}"
    enum = frozenset(shape["enum"]) if "enum" in shape else None
    enum_phrase = f"Member must satisfy enum value set: [{', '.join(shape.get('enum', ()))}]"

    def convert(value):
        if type(value) is not str:
            raise type_error(value, "a String")
        return value

    def violations(value: str):
        n = len(value)
        if (lo is None or n >= lo) and (hi is None or n <= hi) and (regex is None or regex(value)) and (
            enum is None or value in enum
        ):
            return ()
        out = list(lengths(n))
        if regex is not None and regex(value) is None:
            out.append(pattern_phrase)
        if enum is not None and value not in enum:
            out.append(enum_phrase)
        return out

    plain = lo is None and hi is None and regex is None and enum is None
    sensitive = bool(shape.get("sensitive"))
    return Scalar(convert, no_violations if plain else violations, sensitive, all_phrases(shape))


def blob_scalar(shape: dict) -> Scalar:
    lengths = length_phrases(shape.get("min"), shape.get("max"), "length")

    def convert(value):
        if type(value) is not str:
            if type(value) in (list, dict):
                raise type_error(value, "a Blob")
            raise _serialization("only base-64-encoded strings are convertible to bytes")
        try:
            return b64decode_strict(value)  # constraints then apply to the decoded bytes
        except ValueError:  # binascii.Error, or non-ASCII text
            if len(value) % 4:
                raise _serialization(
                    f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(value)}"
                ) from None
            raise _serialization("only base-64-encoded strings are convertible to bytes") from None

    def violations(value: bytes):
        return lengths(len(value))

    return Scalar(convert, violations, bool(shape.get("sensitive")), all_phrases(shape))


def integer_scalar(shape: dict, overrides: dict) -> Scalar:
    lo = overrides.get("min", shape.get("min"))
    hi = overrides.get("max", shape.get("max"))
    # Coral binds integers to Java int/long: a wider JSON number cannot be deserialized
    if shape["type"] == "integer":
        floor, ceiling, target = _INT_MIN, _INT_MAX, "an Integer"
    else:
        floor, ceiling, target = _LONG_MIN, _LONG_MAX, "a Long"

    def convert(value):
        if type(value) is not int or not floor <= value <= ceiling:
            raise type_error(value, target)
        return value

    merged = {**shape, **overrides}
    return Scalar(convert, length_phrases(lo, hi, "value"), bool(shape.get("sensitive")), all_phrases(merged))


def boolean_scalar(shape: dict) -> Scalar:
    def convert(value):
        if type(value) is not bool:
            raise type_error(value, "a Boolean")
        return value

    return Scalar(convert, no_violations, False, [])


def timestamp_scalar(shape: dict) -> Scalar:
    def convert(value):
        t = type(value)
        if t is int and _LONG_MIN <= value <= _LONG_MAX or t is float and math.isfinite(value):
            return float(value)
        raise type_error(value, "a Timestamp")

    return Scalar(convert, no_violations, False, [])


def scalar_for(shape: dict, overrides: dict | None = None) -> Scalar | None:
    """The leaf checker for a scalar shape; None for structures, lists and maps."""
    kind = shape["type"]
    if kind == "string":
        return string_scalar(shape)
    if kind == "blob":
        return blob_scalar(shape)
    if kind in ("integer", "long"):
        return integer_scalar(shape, overrides or {})
    if kind == "boolean":
        return boolean_scalar(shape)
    if kind == "timestamp":
        return timestamp_scalar(shape)
    return None


def raise_if_invalid(errors: list[str]) -> None:
    if errors:
        n = len(errors)
        plural = "s" if n > 1 else ""
        raise AWSError("ValidationException", f"{n} validation error{plural} detected: " + "; ".join(errors))
