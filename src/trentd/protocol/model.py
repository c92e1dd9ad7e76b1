"""The wire contract, generated from botocore's bundled service models (no per-operation code).

``load_service(name)`` reads ``service-2`` once and picks the codec of the wire protocol the
model's ``metadata.protocol`` names (``CODECS``: AWS JSON 1.1 in json11.py for KMS and CloudTrail,
Query with XML answers in query.py for STS and IAM). One walk of the shapes (walk.py) then
compiles, per operation: an input checker (inputs.py, over the leaf checkers and AWS wording of
validate.py), the codec's parser and serializer, and the audit's renderers (redaction.py). Per
request there are no model lookups: ``Operation.parse(body)`` = the codec's safe decoding +
compiled checker; ``Operation.serialize(output)`` = compiled serializer (+ orjson for JSON).

A new service of a known protocol (IAM, CloudTrail) needs no code here, only ``load_service``:
its Query wording of SigV4 failures goes in ``query.AUTH_CODES``, what its audit events show in
``redaction.RULES``. A new wire protocol is one codec (``codec.Codec``) in ``CODECS``.

Documented limits stricter than the model are applied here through ``LIMIT_OVERRIDES``, with the
model's own message shape (``Member must have value less than or equal to 100``); constraints a
service checks itself with an exception of its own model are lifted through ``SERVICE_CHECKED``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import orjson
from botocore.loaders import Loader

from trentd.errors import AWSError
from trentd.protocol.codec import Codec
from trentd.protocol.inputs import InputCompiler
from trentd.protocol.json11 import Json11
from trentd.protocol.query import Query
from trentd.protocol.redaction import RULES, AuditCompiler, AuditView

# The codec of each wire protocol, by the name a model's ``metadata.protocol`` gives it.
CODECS: dict[str, type[Codec]] = {"json": Json11, "query": Query}

# Documented maxima stricter than the model's 1..1000 for List* ``Limit`` (traps.md, kms-api.md §5).
LIMIT_OVERRIDES: dict[str, dict[tuple[str, str], dict]] = {
    "kms": {
        ("ListAliasesRequest", "Limit"): {"max": 100},
        ("ListGrantsRequest", "Limit"): {"max": 100},
        ("ListRetirableGrantsRequest", "Limit"): {"max": 100},
        ("ListResourceTagsRequest", "Limit"): {"max": 50},
    }
}

# Enum lists as AWS words them in "Member must satisfy enum value set: [...]": its service lists
# some enums in its own (hash) order, not the model's. Applied only while the sets agree.
ENUM_ORDER_OVERRIDES: dict[str, dict[str, list[str]]] = {
    "kms": {
        "MacAlgorithmSpec": ["HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"],
    }
}

# Constraints of the model that the service checks itself, answering with an exception of its own
# model rather than a ValidationException: CloudTrail's LookupEvents declares
# InvalidLookupAttributesException, InvalidEventCategoryException and InvalidMaxResultsException
# for exactly these values (cloudtrail/lookup.py words them). Removed from the shapes before
# compiling, so the generic checker leaves them to the handler.
SERVICE_CHECKED: dict[str, dict[str, tuple[str, ...]]] = {
    "cloudtrail": {
        "LookupAttributeKey": ("enum",),
        "EventCategory": ("enum",),
        "MaxResults": ("min", "max"),
    }
}

# AWS's reference states, for each KMS operation, "Cross-account use: Yes|No" (kms-api.md): the
# documentation botocore bundles carries the same sentence.
_CROSS_ACCOUNT_YES = re.compile(r"Cross-account use</b>:\s*Yes")


class Operation:
    """One API operation, compiled once: ``parse`` a request body, ``request`` the fields the
    codec decoded, ``serialize`` a handler's result, and what its audit event shows (``audit``)."""

    __slots__ = ("name", "input_shape", "output_shape", "errors", "input_members", "cross_account_documented",
                 "parse", "request", "read", "serialize", "audit")

    parse: Callable[[Any], dict]
    request: Callable[[dict], dict]
    read: Callable[[Any], dict]
    serialize: Callable[..., bytes]

    def __init__(self, name: str, spec: dict, codec: Codec, inputs: InputCompiler, audit: AuditCompiler | None):
        self.name = name
        self.input_shape: str | None = spec.get("input", {}).get("shape")
        self.output_shape: str | None = spec.get("output", {}).get("shape")
        #: modelled error codes (ValidationException, AccessDenied… are not modelled but always possible)
        self.errors: frozenset[str] = frozenset(e["shape"] for e in spec.get("errors", ()))
        self.input_members: frozenset[str] = inputs.members(self.input_shape)
        #: whether AWS documents that the operation may act on another account's resource
        self.cross_account_documented = bool(_CROSS_ACCOUNT_YES.search(spec.get("documentation", "")))
        check = inputs.shape(self.input_shape) if self.input_shape else None
        #: body bytes -> the validated request (``AWSError`` on anything else)
        self.parse = codec.body_parser(self.input_shape, check)
        #: what ``codec.parse(body)`` decoded -> the validated request
        self.request = codec.request_checker(self.input_shape, check)
        #: what ``codec.locate`` returned with the operation's name -> the validated request
        self.read = self.parse if codec.locates_body else self.request
        #: ``serialize(result, request_id="") -> bytes``
        self.serialize = codec.serializer(name, spec)
        #: the audit's renderers (protocol/redaction.py); None for a service without redaction rules
        self.audit: AuditView | None = audit.operation(self.input_shape, self.output_shape) if audit else None

    def __repr__(self) -> str:
        return f"Operation({self.name!r})"


class Service:
    """A botocore service model compiled for serving; build it with ``load_service``. Its
    ``codec`` is the wire protocol the model's ``metadata.protocol`` names."""

    def __init__(self, name: str, model: dict):
        meta = model["metadata"]
        self.name = name
        self.protocol: str = meta["protocol"]
        self.api_version: str = meta["apiVersion"]
        self.signing_name: str = meta.get("signingName", meta["endpointPrefix"])
        shapes = _with_aws_enum_order(model["shapes"], ENUM_ORDER_OVERRIDES.get(name, {}))
        shapes = _without_service_checked(shapes, SERVICE_CHECKED.get(name, {}))
        codec_class = CODECS.get(self.protocol)
        if codec_class is None:
            raise NotImplementedError(f"no codec for the {self.protocol!r} protocol of {name}")
        self.codec: Codec = codec_class(name, meta, shapes)
        #: JSON services: the X-Amz-Target prefix (TrentService); None for Query services
        self.target_prefix: str | None = meta.get("targetPrefix")
        inputs = InputCompiler(shapes, LIMIT_OVERRIDES.get(name))
        rules = RULES.get(name)
        audit = AuditCompiler(shapes, rules) if rules is not None else None
        operations = model["operations"].items()
        self._operations = {op: Operation(op, spec, self.codec, inputs, audit) for op, spec in operations}
        self.operation_names: frozenset[str] = frozenset(self._operations)
        #: the error codes the model declares (its exception shapes, as the wire spells them)
        self.error_codes: frozenset[str] = frozenset(
            shape.get("error", {}).get("code", shape_name) for shape_name, shape in shapes.items()
            if shape.get("exception"))

    def operation(self, name: str) -> Operation | None:
        return self._operations.get(name)

    def __repr__(self) -> str:
        return f"Service({self.name!r}, {len(self._operations)} operations)"


def _with_aws_enum_order(shapes: dict, orders: dict[str, list[str]]) -> dict:
    out = dict(shapes)
    for shape_name, order in orders.items():
        shape = shapes.get(shape_name)
        if shape is not None and set(shape.get("enum", ())) == set(order):
            out[shape_name] = {**shape, "enum": list(order)}
    return out


def _without_service_checked(shapes: dict, checked: dict[str, tuple[str, ...]]) -> dict:
    if not checked:
        return shapes
    out = dict(shapes)
    for shape_name, traits in checked.items():
        out[shape_name] = {k: v for k, v in shapes[shape_name].items() if k not in traits}
    return out


def load_service(name: str = "kms") -> Service:
    """Loaded and compiled once per process (``load_service()`` and ``load_service("kms")`` share it)."""
    return _load(name)


@functools.cache
def _load(name: str) -> Service:
    return Service(name, Loader().load_service_model(name, "service-2"))


def error_body(err: AWSError) -> bytes:
    """A JSON 1.1 error body (``{"__type": …, "message": …}``)."""
    return orjson.dumps(err.body())
