"""The AWS JSON 1.1 codec (KMS today, CloudTrail next): JSON object in, JSON object out.

Chosen by ``model.Service`` for models whose ``metadata.protocol`` is ``json``. A request body
is parsed safely (``jsonio.loads_object``) and checked by the operation's compiled input checker;
an answer is serialized from the operation's output shape by ``JsonOutput`` (compiled once per
shape) and orjson; an error is ``{"__type": code, "message": …}`` with the error's HTTP status.
Operations without an output shape (CreateAlias, TagResource…) and empty outputs reply ``{}``,
which botocore and the other SDKs accept.

Output rules: ``bytes`` -> standard base64 string; timestamps (``datetime``, naive = UTC, or epoch
int/float) -> JSON **number** of epoch seconds rounded to milliseconds (AWS's precision; the JS v3
and Go v2 SDKs refuse ISO strings, which is what orjson would write for a datetime); ``None``
members are omitted; members not in the model are dropped so internal fields never leak.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from trentd.errors import AWSError
from trentd.protocol.jsonio import b64encode, loads_object
from trentd.protocol.validate import Check, raise_if_invalid
from trentd.protocol.walk import ShapeWalker

EMPTY = b"{}"
CONTENT_TYPE = b"application/x-amz-json-1.1"

Serializer = Callable[[Any], Any]


def _timestamp(value) -> float | int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return round(value.timestamp(), 3)
    if type(value) is int:
        return value
    if type(value) is float:
        return round(value, 3)
    raise TypeError(f"timestamp expected, got {type(value).__name__}")  # a handler bug: a 500


def _unchanged(value: Any) -> Any:
    return value


class JsonOutput(ShapeWalker["Serializer | None"]):
    """Compiles output shapes into ``serialize(python value) -> JSON-ready value``.
    ``None`` stands for "pass through unchanged" (strings, numbers, booleans) to save a call."""

    def serializer(self, name: str) -> Serializer:
        ser = self.shape(name)
        return ser if ser is not None else _unchanged

    def compile_leaf(self, name: str, shape: dict) -> Serializer | None:
        kind = shape["type"]
        if kind == "blob":
            return b64encode
        if kind == "timestamp":
            return _timestamp
        return None

    def compile_structure(self, name: str, shape: dict) -> Serializer:
        members = tuple((member, self.shape(spec["shape"])) for member, spec in shape["members"].items())

        def serialize(value: dict) -> dict:
            out = {}
            get = value.get
            for member, ser in members:
                v = get(member)
                if v is not None:
                    out[member] = v if ser is None else ser(v)
            return out

        return serialize

    def compile_list(self, name: str, shape: dict) -> Serializer:
        ser = self.shape(shape["member"]["shape"])
        if ser is None:
            return list
        return lambda value: [ser(v) for v in value]

    def compile_map(self, name: str, shape: dict) -> Serializer:
        ser = self.shape(shape["value"]["shape"])
        if ser is None:
            return dict
        return lambda value: {k: ser(v) for k, v in value.items()}


class Json11:
    """The codec of one JSON 1.1 service: ``parse`` a body, compile an operation's parser and
    serializer, word an ``error``."""

    protocol = "json"
    content_type = CONTENT_TYPE
    locates_body = True

    def __init__(self, service: str, metadata: dict, shapes: dict):
        self.service = service
        self.target_prefix: str = metadata["targetPrefix"]
        self._outputs = JsonOutput(shapes)

    @staticmethod
    def parse(body: bytes | bytearray | memoryview | None) -> dict:
        """The body as a JSON object (not yet checked against any shape)."""
        return loads_object(body)

    def locate(self, headers: dict, body: bytes) -> tuple[str, bytes]:
        """The operation the ``X-Amz-Target`` header names ("" when it names another service),
        and the body, not read yet: ``Operation.read`` parses it."""
        # The name follows the last dot: CloudTrail's prefix has dots of its own
        # (com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents).
        prefix, _, name = headers.get("x-amz-target", "").rpartition(".")
        return (name if prefix == self.target_prefix else ""), body

    @staticmethod
    def unknown_operation(name: str, located: Any) -> AWSError:
        return AWSError("UnknownOperationException", f"Unknown operation {name or '(none)'}.")

    def request_checker(self, input_shape: str | None, check: Check | None) -> Callable[[dict], dict]:
        """A parsed body -> the validated request (raises ``ValidationException``)."""
        if check is None:
            return lambda data: {}

        def request(data: dict) -> dict:
            errors: list[str] = []
            out = check(data, "", errors)
            raise_if_invalid(errors)
            return out

        return request

    def body_parser(self, input_shape: str | None, check: Check | None) -> Callable[[Any], dict]:
        """Body bytes -> validated dict keyed by the model's member names (blobs as ``bytes``,
        timestamps as ``float``); raises ``AWSError`` (SerializationException or
        ValidationException) and nothing else. The hot path: one closure, no lookups."""
        if check is None:
            def parse_empty(body) -> dict:
                loads_object(body)
                return {}

            return parse_empty

        def parse(body) -> dict:
            data = loads_object(body)
            errors: list[str] = []
            out = check(data, "", errors)
            if errors:
                raise_if_invalid(errors)
            return out

        return parse

    def serializer(self, operation: str, spec: dict) -> Callable[..., bytes]:
        """``serialize(output, request_id="") -> bytes`` for one operation (the request id is
        a header in this protocol, not part of the body)."""
        output_shape = spec.get("output", {}).get("shape")
        if output_shape is None:
            return lambda output, request_id="": EMPTY
        ser = self._outputs.serializer(output_shape)
        dumps = orjson.dumps

        def serialize(output: dict | None, request_id: str = "") -> bytes:
            if not output:
                return EMPTY
            return dumps(ser(output))

        return serialize

    def error(self, err: AWSError, request_id: str) -> tuple[int, bytes, bytes]:
        return err.status, orjson.dumps(err.body()), self.content_type

    @staticmethod
    def error_code(code: str) -> str:
        """The code as the caller sees it: as raised."""
        return code
