"""The STS Query protocol, generated from botocore's STS model like the KMS side.

Requests are flat form fields (``Tags.member.1.Key=team``, ``PolicyArns.member.2.arn=…``): they
are folded into the nested, typed value the model's input shape describes, then checked by the
same compiled checkers as KMS requests (protocol/model.py), with STS's wording: code
``ValidationError`` (not ValidationException), HTTP 400. Answers are XML serialized from the
operation's output shape: ``<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>``.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from botocore.loaders import Loader

from ..errors import AWSError
from ..protocol.model import InputCompiler
from ..protocol.validate import Scalar, scalar_for

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
VERSION = "2011-06-15"

# Java's \p{…} classes in the model's patterns (tag keys and values), in Python's re: \p{L} and
# \p{N} are Unicode letters and digits, \p{Z} the Unicode separators.
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


class QueryInputs(InputCompiler):
    """The KMS input compiler, with patterns in Java's dialect translated for Python; messages
    still quote the model's pattern as AWS does."""

    def scalar(self, name: str, overrides: dict | None = None) -> Scalar | None:
        shape = self._shapes[name]
        java = shape.get("pattern", "")
        if "\\p{" not in java:
            return super().scalar(name, overrides)
        python = python_pattern(java)
        inner = scalar_for({**shape, "pattern": python}, overrides)
        restore = lambda phrase: phrase.replace(python, java)  # noqa: E731
        violations = inner.violations
        return Scalar(inner.convert, lambda v: [restore(p) for p in violations(v)], inner.sensitive,
                      [restore(p) for p in inner.phrases])


class StsModel:
    """botocore's STS model compiled once: ``parse`` form fields, ``serialize`` results."""

    def __init__(self):
        model = Loader().load_service_model("sts", "service-2")
        self.shapes = model["shapes"]
        self.operations = model["operations"]
        self._inputs = QueryInputs(self.shapes)

    def parse(self, action: str, form: dict[str, str]) -> dict:
        spec = self.operations[action]
        input_shape = spec.get("input", {}).get("shape")
        if input_shape is None:
            return {}
        value = _fold(self.shapes, input_shape, "", form)
        errors: list[str] = []
        try:
            out = self._inputs.shape(input_shape)(value, "", errors)
        except AWSError as exc:  # a type the form could not carry (not a number, say)
            raise AWSError("ValidationError", exc.message) from None
        if errors:
            n = len(errors)
            raise AWSError("ValidationError",
                           f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))
        return out

    def serialize(self, action: str, result: dict, request_id: str) -> bytes:
        output = self.operations[action].get("output", {})
        body = _xml_members(self.shapes, output["shape"], result) if "shape" in output else ""
        wrapper = output.get("resultWrapper", f"{action}Result")
        return (f'<{action}Response xmlns="{NAMESPACE}"><{wrapper}>{body}</{wrapper}>'
                f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
                f"</{action}Response>").encode()


@functools.cache
def model() -> StsModel:
    return StsModel()


# --- form fields -> nested values ---------------------------------------------------------------
def _fold(shapes: dict, name: str, path: str, form: dict[str, str]):
    """The value of shape ``name`` whose form field (or prefix of fields) is ``path``; None when
    absent. Structure members are ``path.Member``, list elements ``path.member.N``."""
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        out = {}
        for member, spec in shape["members"].items():
            value = _fold(shapes, spec["shape"], f"{path}.{member}" if path else member, form)
            if value is not None:
                out[member] = value
        return out if out or not path else None
    if kind == "list":
        return _fold_list(shapes, shape, path, form)
    raw = form.get(path)
    return None if raw is None else _scalar(kind, raw)


def _fold_list(shapes: dict, shape: dict, path: str, form: dict[str, str]):
    """``path.member.N…`` in N order; ``path=`` with no members is an empty list."""
    head = f"{path}.member."
    indexes = sorted({int(i) for i in (k[len(head):].split(".", 1)[0] for k in form if k.startswith(head))
                      if i.isdigit()})
    if not indexes:
        return [] if form.get(path) == "" else None
    element = shape["member"]["shape"]
    return [_fold(shapes, element, f"{head}{i}", form) for i in indexes]


def _scalar(kind: str, raw: str):
    """A form value as the JSON type the checkers expect; anything else is left as text, and
    the checker then words the type error."""
    if kind in ("integer", "long"):
        return int(raw) if re.fullmatch(r"-?\d{1,19}", raw) else raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


# --- results -> XML -------------------------------------------------------------------------------
# Where STS writes members in another order than the model lists them (its documented example
# and real answers: Arn first), so clients that read XML by position see what AWS sends.
_WIRE_ORDER = {"GetCallerIdentityResponse": ("Arn", "UserId", "Account")}


def _xml_members(shapes: dict, name: str, value: dict) -> str:
    members = shapes[name]["members"]
    parts = []
    for member in _WIRE_ORDER.get(name, members):
        if value.get(member) is not None:
            parts.append(f"<{member}>{_xml_value(shapes, members[member]['shape'], value[member])}</{member}>")
    return "".join(parts)


def _xml_value(shapes: dict, name: str, value) -> str:
    kind = shapes[name]["type"]
    if kind == "structure":
        return _xml_members(shapes, name, value)
    if kind == "list":
        element = shapes[name]["member"]["shape"]
        return "".join(f"<member>{_xml_value(shapes, element, v)}</member>" for v in value)
    if kind == "timestamp":
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))
