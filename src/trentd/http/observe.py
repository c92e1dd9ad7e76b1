"""The labels of an API request's metrics (trentd/metrics.py), from names trentd knows only.

``operation`` is an operation of the service's botocore model, else ``unknown`` (a forged or
misspelt X-Amz-Target, an STS Action that does not exist, a request refused before its
operation was read). ``outcome`` is ``ok`` or the error code the caller was answered with, when
it is one of the service models' errors or AWS's common errors; anything else would be a code
trentd made up without declaring it, counted as ``other`` rather than trusted as a label.
"""

from __future__ import annotations

from ..pipeline.services import SERVICES as API_SERVICES
from ..protocol.codec import Codec
from ..protocol.model import load_service

SERVICES = tuple(API_SERVICES)
# AWS's common errors (not in the services' models) that the edge answers with: JSON services'
# spelling, then the Query (STS) spelling.
COMMON_ERRORS = frozenset({
    "AccessDeniedException", "IncompleteSignatureException", "InvalidSignatureException",
    "MissingAuthenticationTokenException", "UnrecognizedClientException", "ExpiredTokenException",
    "SerializationException", "UnknownOperationException", "ValidationException", "ThrottlingException",
    "RequestEntityTooLargeException", "RequestTimeoutException", "InternalFailure", "ServiceUnavailable",
    "AccessDenied", "InvalidAction", "MalformedQueryString", "ValidationError", "SignatureDoesNotMatch",
    "InvalidClientTokenId", "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken",
})


class RequestLabels:
    """Built once per process when metrics are on (from the compiled models: protocol/model.py)."""

    def __init__(self) -> None:
        self.operations: dict[str, frozenset[str]] = {}
        self.codecs: dict[str, Codec] = {}
        outcomes = set(COMMON_ERRORS)
        for service in SERVICES:
            model = load_service(service)
            self.operations[service] = model.operation_names
            self.codecs[service] = model.codec
            outcomes |= model.error_codes
        self.outcomes = frozenset(outcomes)

    def count(self, metrics, exchange, error, seconds: float) -> None:
        """Count one answered request; ``error`` is the AWSError it was answered with, or None."""
        service = exchange.service if exchange.service in self.operations else "unknown"
        operation = exchange.operation
        if operation not in self.operations.get(service, ()):
            operation = "unknown"
        if error is None:
            outcome = "ok"
        else:
            outcome = error.code
            if service in self.codecs:  # as the caller saw it: STS words the SigV4 failures its own way
                outcome = self.codecs[service].error_code(outcome)
            if outcome not in self.outcomes:
                outcome = "other"
        metrics.request(service, operation, outcome, seconds)
