"""Request checking, compiled from the model's input shapes (a ``walk.ShapeWalker``).

Each shape compiles to ``check(value, path, errors) -> converted value`` over the leaf checkers
and AWS wording of ``validate.py``. The value is what the codec decoded (a JSON object, or Query
form fields folded into the same nesting): both wire protocols share these checkers.

Patterns in the model are Java regular expressions; the ``\\p{L}``, ``\\p{Z}`` and ``\\p{N}``
classes some use (STS and IAM tag keys and values; none in KMS) are translated for Python's
``re``, and messages still quote the model's pattern as AWS does.
"""

from __future__ import annotations

import re

from trentd.protocol.validate import (
    NOT_NULL,
    Check,
    Scalar,
    camel,
    failure,
    join_path,
    length_phrases,
    no_violations,
    scalar_for,
    type_error,
)
from trentd.protocol.walk import ShapeWalker

# Java's \p{…} classes in the model's patterns, in Python's re: \p{L} and \p{N} are Unicode
# letters and digits, \p{Z} the Unicode separators.
_JAVA_CLASS = re.compile(r"\[((?:\\p\{[LZN]\})+)([^\]]*)\]([*+])")
_SEPARATORS = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def python_pattern(java: str) -> str:
    """``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+`` -> an equivalent pattern Python's re understands."""

    def translate(m: re.Match) -> str:
        categories, rest, repeat = set(re.findall(r"\\p\{(\w)\}", m[1])), m[2], m[3]
        options = []
        if categories & {"L", "N"}:
            letters = "[^\\W_]" if {"L", "N"} <= categories else "[^\\W\\d_]" if "L" in categories else "\\d"
            options.append(f"(?u:{letters})")
        plain = (_SEPARATORS if "Z" in categories else "") + rest
        if plain:
            options.append(f"[{plain}]")
        return f"(?:{'|'.join(options)}){repeat}"

    return _JAVA_CLASS.sub(translate, java)


class InputCompiler(ShapeWalker[Check]):
    """Compiles input shapes once; ``overrides`` maps (structure, member) to constraint overrides
    (e.g. ``{("ListAliasesRequest", "Limit"): {"max": 100}}``) for documented limits stricter
    than the model."""

    def __init__(self, shapes: dict, overrides: dict | None = None):
        super().__init__(shapes)
        self._overrides = overrides or {}

    def members(self, name: str | None) -> frozenset[str]:
        """The member names of a structure shape (none for no shape)."""
        return frozenset(self.shapes[name].get("members", ())) if name else frozenset()

    # -- leaves

    def scalar(self, name: str, overrides: dict | None = None) -> Scalar:
        shape = self.shapes[name]
        java = shape.get("pattern", "")
        if "\\p{" not in java:
            return _scalar(shape, overrides)
        python = python_pattern(java)
        inner = _scalar({**shape, "pattern": python}, overrides)
        violations = inner.violations

        def restore(phrase: str) -> str:
            return phrase.replace(python, java)

        return Scalar(inner.convert, lambda v: [restore(p) for p in violations(v)], inner.sensitive,
                      [restore(p) for p in inner.phrases])

    def sensitive(self, name: str, _seen: frozenset = frozenset()) -> bool:
        """True if the shape or anything reachable from it is sensitive: its value is never echoed."""
        shape = self.shapes[name]
        if shape.get("sensitive"):
            return True
        if name in _seen:
            return False
        seen = _seen | {name}
        if shape["type"] == "structure":
            return any(self.sensitive(m["shape"], seen) for m in shape["members"].values())
        if shape["type"] == "list":
            return self.sensitive(shape["member"]["shape"], seen)
        if shape["type"] == "map":
            return any(self.sensitive(shape[part]["shape"], seen) for part in ("key", "value"))
        return False

    # -- the walk

    def shape(self, name: str, overrides: dict | None = None) -> Check:
        if overrides:
            return self.scalar(name, overrides).checker()
        return super().shape(name)

    def compile_leaf(self, name: str, shape: dict) -> Check:
        return self.scalar(name).checker()

    def compile_structure(self, name: str, shape: dict) -> Check:
        required = set(shape.get("required", ()))
        members = tuple(
            (
                member,
                camel(member),
                self.shape(spec["shape"], self._overrides.get((name, member))),
                member in required,
                self.sensitive(spec["shape"]),
            )
            for member, spec in shape["members"].items()
        )

        def check(value, path, errors):
            if type(value) is not dict:
                raise type_error(value, "a Structure")
            out = {}
            get = value.get
            for member, cname, sub, req, sens in members:
                v = get(member)
                if v is None:  # JSON null is the same as absent
                    if req:
                        errors.append(failure(None, join_path(path, cname), NOT_NULL, sens))
                    continue
                out[member] = sub(v, f"{path}.{cname}" if path else cname, errors)
            return out

        return check

    def compile_list(self, name: str, shape: dict) -> Check:
        element_shape = shape["member"]["shape"]
        element = self.shape(element_shape)
        element_sensitive = self.sensitive(element_shape)
        counts = length_phrases(shape.get("min"), shape.get("max"), "length")
        sensitive = self.sensitive(name)

        def check(value, path, errors):
            if type(value) is not list:
                raise type_error(value, "a List")
            for phrase in counts(len(value)):
                errors.append(failure(value, path, phrase, sensitive))
            out = []
            for i, item in enumerate(value, 1):
                item_path = f"{path}.{i}.member"
                if item is None:
                    errors.append(failure(None, item_path, NOT_NULL, element_sensitive))
                    continue
                out.append(element(item, item_path, errors))
            return out

        return check

    def compile_map(self, name: str, shape: dict) -> Check:
        key = self.scalar(shape["key"]["shape"])  # JSON object keys are always strings
        value_name = shape["value"]["shape"]
        sensitive = self.sensitive(name)
        if self.kind(value_name) in ("structure", "list", "map"):
            return _nested_map(self.shape(value_name), key, sensitive)
        value = self.scalar(value_name)
        key_violations = None if key.violations is no_violations else key.violations
        value_violations = None if value.violations is no_violations else value.violations
        convert = value.convert

        def check(data, path, errors):
            if type(data) is not dict:
                raise type_error(data, "a Map")
            out = {}
            bad_value = has_null = False
            for k, v in data.items():
                if v is None:
                    has_null = True
                    continue
                out[k] = v = convert(v)
                if value_violations is not None and value_violations(v):
                    bad_value = True
            bad_key = key_violations is not None and any(key_violations(k) for k in data)
            if bad_key or bad_value or has_null:
                _map_errors(data, path, errors, sensitive, bad_key and key.phrases,
                            (value.phrases if bad_value else []) + ([NOT_NULL] if has_null else []))
            return out

        return check


def _scalar(shape: dict, overrides: dict | None) -> Scalar:
    scalar = scalar_for(shape, overrides)
    if scalar is None:  # a kind no supported model uses in its inputs (double, float…)
        raise NotImplementedError(f"no checker for {shape['type']} shapes")
    return scalar


def _map_errors(data, path, errors, sensitive, key_phrases, value_phrases) -> None:
    """AWS reports a map's scalar keys and values once per map, listing the shape's constraints."""
    if key_phrases:
        phrase = f"Map keys must satisfy constraint: [{', '.join(key_phrases)}]"
        errors.append(failure(data, path, phrase, sensitive))
    if value_phrases:
        phrase = f"Map value must satisfy constraint: [{', '.join(value_phrases)}]"
        errors.append(failure(data, path, phrase, sensitive))


def _nested_map(value_check: Check, key: Scalar, sensitive: bool) -> Check:
    """Maps of structures or lists (none in KMS): values are checked at ``<map path>.<key>``."""

    def check(data, path, errors):
        if type(data) is not dict:
            raise type_error(data, "a Map")
        out = {}
        for k, v in data.items():
            if v is None:
                errors.append(failure(None, f"{path}.{k}", NOT_NULL, sensitive))
            else:
                out[k] = value_check(v, f"{path}.{k}", errors)
        if any(key.violations(k) for k in data):
            _map_errors(data, path, errors, sensitive, key.phrases, [])
        return out

    return check
