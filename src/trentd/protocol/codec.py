"""What a wire protocol's codec offers (json11.Json11, query.Query); ``model.Service.codec``."""

from __future__ import annotations

from typing import Any, Callable, Protocol

from trentd.errors import AWSError
from trentd.protocol.validate import Check


class Codec(Protocol):
    protocol: str  # the name a model's metadata.protocol gives it
    content_type: bytes  # of answers and errors
    # locate() leaves the body undecoded: Operation.read parses the body (else it checks the
    # fields locate() decoded)
    locates_body: bool

    def __init__(self, service: str, metadata: dict, shapes: dict) -> None: ...

    def parse(self, body: bytes) -> dict:
        """The body decoded (a JSON object, or form fields), not yet checked against any shape."""
        ...

    def locate(self, headers: dict, body: bytes) -> tuple[str, Any]:
        """The operation a request names ("" when it names none) and its body decoded as far as
        naming it needed (JSON 1.1: the ``X-Amz-Target`` header, the body untouched; Query: the
        form's ``Action`` field, the form's fields): what ``Operation.read`` takes."""
        ...

    def unknown_operation(self, name: str, located: Any) -> AWSError:
        """The error for a name the model does not know, in this protocol's words."""
        ...

    def request_checker(self, input_shape: str | None, check: Check | None) -> Callable[[dict], dict]:
        """``parse``'s result -> the validated request of one operation."""
        ...

    def body_parser(self, input_shape: str | None, check: Check | None) -> Callable[[Any], dict]:
        """Body bytes -> the validated request of one operation."""
        ...

    def serializer(self, operation: str, spec: dict) -> Callable[..., bytes]:
        """``serialize(result, request_id="") -> bytes`` for one operation."""
        ...

    def error(self, err: AWSError, request_id: str) -> tuple[int, bytes, bytes]:
        """(HTTP status, body, content type) of an error answer."""
        ...

    def error_code(self, code: str) -> str:
        """The code the caller sees for an error raised with ``code``."""
        ...
