"""The API services the endpoint answers, keyed by the SigV4 credential scope's service name.

Each entry joins, once at import: the botocore model (``load_service``), its codec (the model's
``metadata.protocol``: protocol/json11.py or protocol/query.py, which also finds the operation a
request names), the service's operation table (a row per operation: ``handler``, ``inline``,
``cached``, ``audit``), and trentd's answer for an operation of the model it does not implement.

Adding a service (IAM over Query, CloudTrail over JSON 1.1): its operation table (rows of the
shape ``Row`` below) and one entry in ``SERVICES``; the pipeline (core.py) treats every entry alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from ..audit.events import AuditFacts
from ..cloudtrail.operations import OPERATIONS as CLOUDTRAIL_OPERATIONS
from ..cloudtrail.operations import UNSUPPORTED as CLOUDTRAIL_UNSUPPORTED
from ..errors import AWSError
from ..kms.operations import OPERATIONS as KMS_OPERATIONS
from ..protocol.codec import Codec
from ..protocol.model import Service, load_service
from ..iam.operations import OPERATIONS as IAM_OPERATIONS
from ..sts.operations import OPERATIONS as STS_OPERATIONS


class Row(Protocol):
    """What the pipeline reads of an operation's row (kms/operations.py, sts/operations.py,
    cloudtrail/operations.py)."""

    @property
    def handler(self) -> Callable: ...  # handler(svc, call, request) -> result

    @property
    def inline(self) -> bool: ...  # tried on the event loop first (trentd/inline.py)

    @property
    def cached(self) -> bool: ...  # reads cached state: one retry with fresh reads (kms/api.py run)

    @property
    def audit(self) -> AuditFacts: ...  # what its audit event shows (audit/events.py)


class ApiService:
    """One API service of the endpoint."""

    __slots__ = ("name", "model", "codec", "operations", "_unsupported")

    def __init__(self, name: str, operations: Mapping[str, Row], unsupported: tuple[str, str]):
        self.name = name  # the credential scope's service name; the audit event's source
        self.model: Service = load_service(name)
        self.codec: Codec = self.model.codec
        self.operations = operations  # looked up per request: a row replaced in it is seen
        self._unsupported = unsupported  # (code, message with {name})

    def unsupported(self, name: str) -> AWSError:
        """The answer for an operation of the model that trentd does not implement."""
        code, message = self._unsupported
        return AWSError(code, message.format(name=name))

    def __repr__(self) -> str:
        return f"ApiService({self.name!r}, {len(self.operations)} operations)"


SERVICES: dict[str, ApiService] = {
    "kms": ApiService("kms", KMS_OPERATIONS,
                      ("UnsupportedOperationException", "{name} is not supported by trentd yet.")),
    "sts": ApiService("sts", STS_OPERATIONS, ("InvalidAction", "{name} is not supported by trentd.")),
    # IAM: an operation trentd lacks is a 400 at once, never a 5xx (Terraform retries those).
    "iam": ApiService("iam", IAM_OPERATIONS, ("InvalidAction", "{name} is not supported by trentd.")),
    "cloudtrail": ApiService("cloudtrail", CLOUDTRAIL_OPERATIONS, CLOUDTRAIL_UNSUPPORTED),
}
# Before the credential scope is known (a request that fails SigV4 parsing), errors are worded by
# the content type: a form-encoded body is a Query caller expecting XML, with STS's wording.
UNSCOPED = SERVICES["kms"]
UNSCOPED_FORM = SERVICES["sts"]
