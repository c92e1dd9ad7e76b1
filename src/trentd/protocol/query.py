"""The AWS Query codec (STS today, IAM next): form-encoded fields in, XML out.

Chosen by ``model.Service`` for models whose ``metadata.protocol`` is ``query``; nothing in it is
particular to one service but ``AUTH_CODES`` (data, keyed by service).

Requests are flat form fields (``Tags.member.1.Key=team``, ``PolicyArns.member.2.arn=…``): they
are folded (``FormFolder``, compiled once per shape) into the nested, typed value the model's
input shape describes, then checked by the same compiled checkers as JSON requests (inputs.py),
with the Query protocol's wording: code ``ValidationError`` (not ValidationException), HTTP 400.
Answers are XML serialized from the operation's output shape (``XmlOutput``):
``<ActionResponse xmlns=…><ActionResult>…</ActionResult><ResponseMetadata>…``; errors are
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from trentd.errors import AWSError
from trentd.protocol.validate import Check
from trentd.protocol.walk import ShapeWalker

CONTENT_TYPE = b"text/xml"
FORM_TYPE = "application/x-www-form-urlencoded"

# How a Query service words the SigV4 failures the edge raises in the JSON services' words, and
# its status for each. STS's (traps.md "STS on the wire"): it answers 403 where KMS answers 400.
_QUERY_AUTH_CODES = {
        "UnrecognizedClientException": ("InvalidClientTokenId", 403),
        "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
        "IncompleteSignatureException": ("IncompleteSignature", 400),
        "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
        "ExpiredTokenException": ("ExpiredToken", 403),
        "AccessDeniedException": ("AccessDenied", 403),
        "MalformedPolicyDocumentException": ("MalformedPolicyDocument", 400),
}
# IAM words them as STS does (an inactive or unknown key: InvalidClientTokenId, 403), and its
# faults with the model's ServiceFailure (500) rather than KMS's names.
AUTH_CODES: dict[str, dict[str, tuple[str, int]]] = {
    "sts": _QUERY_AUTH_CODES,
    "iam": {**_QUERY_AUTH_CODES, "KMSInternalException": ("ServiceFailure", 500),
            "DependencyTimeoutException": ("ServiceFailure", 500)},
}

# Where a service writes members in another order than the model lists them (STS's documented
# example and real answers: Arn first), so clients that read XML by position see what AWS sends.
WIRE_ORDER = {"GetCallerIdentityResponse": ("Arn", "UserId", "Account")}

_INTEGER = re.compile(r"-?\d{1,19}")


def is_form(headers) -> bool:
    """True when the request's content type is a form (a Query caller expecting XML)."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == FORM_TYPE


def parse_form(body: bytes) -> dict[str, str]:
    """The form's fields; the last value wins when a name repeats."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise AWSError("MalformedQueryString", "The request body is not a valid form-encoded query string.") from None
    return {name: values[-1] for name, values in fields.items()}


# --- form fields -> nested values ---------------------------------------------------------------
Fold = Callable[[str, dict], Any]


class FormFolder(ShapeWalker[Fold]):
    """``fold(path, form)``: the value of a shape whose form field (or prefix of fields) is
    ``path``; None when absent. Structure members are ``path.Member``, list elements
    ``path.member.N``."""

    def compile_structure(self, name: str, shape: dict) -> Fold:
        members = tuple((member, self.shape(spec["shape"])) for member, spec in shape["members"].items())

        def fold(path: str, form: dict) -> dict | None:
            out = {}
            for member, sub in members:
                value = sub(f"{path}.{member}" if path else member, form)
                if value is not None:
                    out[member] = value
            return out if out or not path else None

        return fold

    def compile_list(self, name: str, shape: dict) -> Fold:
        element = self.shape(shape["member"]["shape"])

        def fold(path: str, form: dict) -> list | None:
            """``path.member.N…`` in N order; ``path=`` with no members is an empty list."""
            head = f"{path}.member."
            indexes = sorted({int(i) for i in (k[len(head):].split(".", 1)[0] for k in form if k.startswith(head))
                              if i.isdigit()})
            if not indexes:
                return [] if form.get(path) == "" else None
            return [element(f"{head}{i}", form) for i in indexes]

        return fold

    def compile_map(self, name: str, shape: dict) -> Fold:
        return self.compile_leaf(name, shape)  # no Query input of STS or IAM is a map

    def compile_leaf(self, name: str, shape: dict) -> Fold:
        kind = shape["type"]

        def fold(path: str, form: dict):
            raw = form.get(path)
            return None if raw is None else _scalar(kind, raw)

        return fold


def _scalar(kind: str, raw: str):
    """A form value as the JSON type the checkers expect; anything else is left as text, and
    the checker then words the type error."""
    if kind in ("integer", "long"):
        return int(raw) if _INTEGER.fullmatch(raw) else raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


# --- results -> XML -------------------------------------------------------------------------------
Xml = Callable[[Any], str]


def _timestamp(value) -> str:
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _boolean(value) -> str:
    return "true" if value else "false"


def _text(value) -> str:
    return escape(str(value))


class XmlOutput(ShapeWalker[Xml]):
    """``xml(value) -> str``: the elements inside a shape's element."""

    def compile_structure(self, name: str, shape: dict) -> Xml:
        specs = shape["members"]
        members = tuple((member, self.shape(specs[member]["shape"])) for member in WIRE_ORDER.get(name, specs))

        def xml(value: dict) -> str:
            parts = []
            for member, sub in members:
                v = value.get(member)
                if v is not None:
                    parts.append(f"<{member}>{sub(v)}</{member}>")
            return "".join(parts)

        return xml

    def compile_list(self, name: str, shape: dict) -> Xml:
        element = self.shape(shape["member"]["shape"])
        return lambda value: "".join(f"<member>{element(v)}</member>" for v in value)

    def compile_map(self, name: str, shape: dict) -> Xml:
        return _text  # no Query answer of STS is a map

    def compile_leaf(self, name: str, shape: dict) -> Xml:
        kind = shape["type"]
        if kind == "timestamp":
            return _timestamp
        if kind == "boolean":
            return _boolean
        return _text


class Query:
    """The codec of one Query service: ``parse`` a form, compile an operation's parser and
    serializer, word an ``error``."""

    protocol = "query"
    content_type = CONTENT_TYPE
    locates_body = False
    request_type = FORM_TYPE

    def __init__(self, service: str, metadata: dict, shapes: dict):
        self.service = service
        self.namespace: str = metadata["xmlNamespace"]
        self._auth_codes = AUTH_CODES.get(service, {})
        self._fold = FormFolder(shapes)
        self._xml = XmlOutput(shapes)

    parse = staticmethod(parse_form)

    @staticmethod
    def locate(headers: dict, body: bytes) -> tuple[str, dict[str, str]]:
        """The operation the form's ``Action`` field names, and the form's fields (what
        ``Operation.read`` checks); ``MalformedQueryString`` when the body is no form."""
        fields = parse_form(body)
        return fields.get("Action") or "", fields

    @staticmethod
    def unknown_operation(name: str, located: dict[str, str]) -> AWSError:
        version = located.get("Version", "NO_VERSION_SPECIFIED")
        return AWSError("InvalidAction", f"Could not find operation {name} for version {version}")

    def request_checker(self, input_shape: str | None, check: Check | None) -> Callable[[dict], dict]:
        """Form fields -> the validated request (raises ``ValidationError``)."""
        if input_shape is None or check is None:
            return lambda fields: {}
        fold = self._fold.shape(input_shape)

        def request(fields: dict) -> dict:
            value = fold("", fields)
            errors: list[str] = []
            try:
                out = check(value, "", errors)
            except AWSError as exc:  # a type the form could not carry (not a number, say)
                raise AWSError("ValidationError", exc.message) from None
            if errors:
                n = len(errors)
                raise AWSError("ValidationError",
                               f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(errors))
            return out

        return request

    def body_parser(self, input_shape: str | None, check: Check | None) -> Callable[[Any], dict]:
        request = self.request_checker(input_shape, check)
        return lambda body: request(parse_form(body))

    def serializer(self, operation: str, spec: dict) -> Callable[..., bytes]:
        """``serialize(result, request_id) -> bytes``: the XML answer of one operation."""
        output = spec.get("output", {})
        xml = self._xml.shape(output["shape"]) if "shape" in output else None
        wrapper = output.get("resultWrapper", f"{operation}Result")
        head = f'<{operation}Response xmlns="{self.namespace}"><{wrapper}>'
        middle = f"</{wrapper}><ResponseMetadata><RequestId>"
        tail = f"</RequestId></ResponseMetadata></{operation}Response>"

        def serialize(result: dict | None, request_id: str = "") -> bytes:
            body = xml(result) if xml is not None else ""
            return f"{head}{body}{middle}{request_id}{tail}".encode()

        return serialize

    def error(self, err: AWSError, request_id: str) -> tuple[int, bytes, bytes]:
        code, status = self._auth_codes.get(err.code, (err.code, err.status))
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{self.namespace}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(err.message or '')}</Message></Error><RequestId>{request_id}</RequestId>"
            f"</ErrorResponse>"
        )
        return status, body.encode(), self.content_type

    def error_code(self, code: str) -> str:
        """The code as the caller sees it (this service's wording of the SigV4 failures)."""
        return self._auth_codes.get(code, (code,))[0]
