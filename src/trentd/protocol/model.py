"""The wire contract, generated from botocore's bundled service model (no per-operation code).

``load_service("kms")`` reads ``service-2`` once and compiles, per operation, an input checker
(``InputCompiler`` below, over the leaf checkers and AWS wording of ``validate.py``) and an output
serializer (``jsonio.OutputCompiler``). Per request there are no model lookups:
``Operation.parse(body)`` = safe JSON (``jsonio.loads_object``) + compiled checker;
``Operation.serialize(output)`` = compiled serializer + orjson. Operations without an output shape
(CreateAlias, TagResource…) and empty outputs reply ``{}``, which botocore and the other SDKs accept.

Documented limits stricter than the model are applied here through ``LIMIT_OVERRIDES``, with the
model's own message shape (``Member must have value less than or equal to 100``).
"""

from __future__ import annotations

import functools
import re

from botocore.loaders import Loader

from trentd.errors import AWSError
from trentd.protocol import jsonio
from trentd.protocol.jsonio import OutputCompiler
from trentd.protocol.validate import (
    NOT_NULL,
    Check,
    Scalar,
    camel,
    failure,
    join_path,
    length_phrases,
    no_violations,
    raise_if_invalid,
    scalar_for,
    type_error,
)

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

EMPTY = b"{}"

# AWS's reference states, for each KMS operation, "Cross-account use: Yes|No" (kms-api.md): the
# documentation botocore bundles carries the same sentence.
_CROSS_ACCOUNT_YES = re.compile(r"Cross-account use</b>:\s*Yes")


class Operation:
    """One API operation: ``parse`` a request body, ``serialize`` a handler's result."""

    __slots__ = ("name", "input_shape", "output_shape", "errors", "input_members", "cross_account_documented",
                 "_check", "_serialize")

    def __init__(self, name: str, spec: dict, inputs: "InputCompiler", outputs: OutputCompiler):
        self.name = name
        self.input_shape: str | None = spec.get("input", {}).get("shape")
        self.output_shape: str | None = spec.get("output", {}).get("shape")
        #: modelled error codes (ValidationException, AccessDenied… are not modelled but always possible)
        self.errors: frozenset[str] = frozenset(e["shape"] for e in spec.get("errors", ()))
        self.input_members: frozenset[str] = inputs.members(self.input_shape)
        #: whether AWS documents that the operation may act on another account's resource
        self.cross_account_documented = bool(_CROSS_ACCOUNT_YES.search(spec.get("documentation", "")))
        self._check = inputs.shape(self.input_shape) if self.input_shape else None
        self._serialize = outputs.shape(self.output_shape) if self.output_shape else None

    def parse(self, body: bytes | bytearray | memoryview | None) -> dict:
        """JSON bytes -> validated dict keyed by the model's member names (blobs as ``bytes``,
        timestamps as ``float``); raises ``AWSError`` (SerializationException or
        ValidationException) and nothing else."""
        data = jsonio.loads_object(body)
        if self._check is None:
            return {}
        errors: list[str] = []
        out = self._check(data, "", errors)
        raise_if_invalid(errors)
        return out

    def serialize(self, output: dict | None) -> bytes:
        if not output or self._serialize is None:
            return EMPTY
        return jsonio.dumps(self._serialize(output))

    def __repr__(self) -> str:
        return f"Operation({self.name!r})"


class Service:
    """A botocore service model compiled for serving; build it with ``load_service``."""

    def __init__(self, name: str, model: dict):
        meta = model["metadata"]
        self.name = name
        self.target_prefix: str = meta["targetPrefix"]
        self.api_version: str = meta["apiVersion"]
        self.signing_name: str = meta.get("signingName", meta["endpointPrefix"])
        shapes = _with_aws_enum_order(model["shapes"], ENUM_ORDER_OVERRIDES.get(name, {}))
        inputs = InputCompiler(shapes, LIMIT_OVERRIDES.get(name))
        outputs = OutputCompiler(shapes)
        operations = model["operations"].items()
        self._operations = {op: Operation(op, spec, inputs, outputs) for op, spec in operations}
        self.operation_names: frozenset[str] = frozenset(self._operations)

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


def load_service(name: str = "kms") -> Service:
    """Loaded and compiled once per process (``load_service()`` and ``load_service("kms")`` share it)."""
    return _load(name)


@functools.cache
def _load(name: str) -> Service:
    return Service(name, Loader().load_service_model(name, "service-2"))


def error_body(err: AWSError) -> bytes:
    return jsonio.dumps(err.body())


# ---------------------------------------------------------------- input compiler (compound shapes)


class InputCompiler:
    """Compiles input shapes once; ``overrides`` maps (structure, member) to constraint overrides
    (e.g. ``{("ListAliasesRequest", "Limit"): {"max": 100}}``) for documented limits stricter
    than the model."""

    def __init__(self, shapes: dict, overrides: dict | None = None):
        self._shapes = shapes
        self._overrides = overrides or {}
        self._cache: dict[str, Check] = {}

    def members(self, name: str | None) -> frozenset[str]:
        """The member names of a structure shape (none for no shape)."""
        return frozenset(self._shapes[name].get("members", ())) if name else frozenset()

    # -- leaves

    def scalar(self, name: str, overrides: dict | None = None) -> Scalar | None:
        return scalar_for(self._shapes[name], overrides)

    def sensitive(self, name: str, _seen: frozenset = frozenset()) -> bool:
        """True if the shape or anything reachable from it is sensitive: its value is never echoed."""
        shape = self._shapes[name]
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

    # -- dispatch

    def shape(self, name: str, overrides: dict | None = None) -> Check:
        if overrides:
            return self.scalar(name, overrides).checker()
        if name in self._cache:
            return self._cache[name]
        # a forwarding stub makes recursive shapes terminate; replaced once compiled
        self._cache[name] = lambda v, p, e: self._cache[name](v, p, e)
        kind = self._shapes[name]["type"]
        if kind == "structure":
            check = self._structure(name)
        elif kind == "list":
            check = self._list(name)
        elif kind == "map":
            check = self._map(name)
        else:
            check = self.scalar(name).checker()
        self._cache[name] = check
        return check

    # -- compounds

    def _structure(self, name: str) -> Check:
        shape = self._shapes[name]
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

    def _list(self, name: str) -> Check:
        shape = self._shapes[name]
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

    def _map(self, name: str) -> Check:
        shape = self._shapes[name]
        key = self.scalar(shape["key"]["shape"])  # JSON object keys are always strings
        value_name = shape["value"]["shape"]
        value = self.scalar(value_name)
        sensitive = self.sensitive(name)
        if value is None:
            return _nested_map(self.shape(value_name), key, sensitive)
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
