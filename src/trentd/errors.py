"""AWS-shaped errors, shared by every layer.

An ``AWSError`` carries the wire ``__type`` (``code``), the optional message and the HTTP
status. Client errors are 400; the three modelled faults (KMSInternalException,
DependencyTimeoutException, KeyUnavailableException) are 500 so SDKs retry them.
Some KMS errors carry no message at all (InvalidCiphertextException, KMSInvalidSignatureException,
KMSInvalidMacException): pass ``message=None`` and the body omits it.
"""

from __future__ import annotations

FAULTS = frozenset({"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException"})


class AWSError(Exception):
    def __init__(self, code: str, message: str | None = None, status: int | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status if status is not None else (500 if code in FAULTS else 400)

    def body(self) -> dict:
        out = {"__type": self.code}
        if self.message is not None:
            out["message"] = self.message
        return out


def validation(message: str) -> AWSError:
    return AWSError("ValidationException", message)


def not_found(message: str) -> AWSError:
    return AWSError("NotFoundException", message)


def invalid_state(message: str) -> AWSError:
    return AWSError("KMSInvalidStateException", message)


def invalid_ciphertext() -> AWSError:
    return AWSError("InvalidCiphertextException")


def internal(message: str = "An internal error occurred.") -> AWSError:
    return AWSError("KMSInternalException", message)
