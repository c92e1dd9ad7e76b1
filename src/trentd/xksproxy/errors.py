"""The XKS Proxy API's errors: each ``errorName`` with the HTTP status the specification gives it
(aws/aws-kms-xksproxy-api-spec v1, "Error codes"), answered as ``{"errorName", "errorMessage"}``.
Messages are printable ASCII and shorter than 512 characters, as the spec requires."""

from __future__ import annotations

import json

STATUS = {
    "ValidationException": 400,
    "InvalidStateException": 400,
    "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400,
    "AuthenticationFailedException": 401,
    "AccessDeniedException": 403,
    "KeyNotFoundException": 404,
    "InvalidUriPathException": 404,
    "ThrottlingException": 429,
    "InternalException": 500,
    "UnsupportedOperationException": 501,
    "DependencyTimeoutException": 503,
}
MAX_MESSAGE = 511


class XksError(Exception):
    def __init__(self, name: str, message: str):
        if name not in STATUS:
            raise ValueError(f"not an XKS error name: {name}")
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = printable(message)

    @property
    def status(self) -> int:
        return STATUS[self.name]

    def body(self) -> bytes:
        return json.dumps({"errorName": self.name, "errorMessage": self.message}).encode()


def printable(text: str) -> str:
    """Only 0x20-0x7e, under 512 characters (anything else becomes '?')."""
    clean = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return clean[:MAX_MESSAGE]
