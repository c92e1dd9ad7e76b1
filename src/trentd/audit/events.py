"""One CloudTrail-shaped event per API request (KMS and STS), built from what the pipeline learned.

Field names and shapes follow the CloudTrail records the KMS developer guide shows (ct-encrypt,
ct-decrypt, ct-createkey…): ``requestParameters`` uses the lower-camel member names of the
request, ``keyId`` exactly as the caller gave it, the encryption context in clear, and
``encryptionAlgorithm`` always on Decrypt; ``responseElements`` is null except for the few
management operations whose answer names what was created or changed.

**Redaction is our own allow-list, not the model's ``sensitive`` flag**: every member of every
input shape is classified in exactly one of ``LOGGED``, ``HASHED`` and ``OMITTED`` (a member in
none of them is omitted: default deny). The lists, and the renderers compiled from them with the
same walk of the model as parsing and serialization, live in protocol/redaction.py; this module
asks for an operation's (``load_service(service).operation(op).audit``) and never reads the model.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import random
import re
import secrets
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..auth.identity import user_id  # the same id GetCallerIdentity answers
from ..auth.sigv4 import authorization_text
from ..protocol.model import load_service
from ..protocol.redaction import (  # noqa: F401 (LOGGED, OMITTED, OUTPUT_OMITTED: read as events.*)
    HASHED,
    LOGGED,
    OMITTED,
    OUTPUT_OMITTED,
    SKIP,
    Render,
    iso_time,
    lower_camel,
    render_members,
)
from . import redact

EVENT_VERSION = "1.08"
HASH_PREFIX = "hmac-sha256:"
MAX_TEXT = 1024  # caps on caller-controlled free text (userAgent, errorMessage, unknown names)

# --- redaction: the member lists and their rendering live in protocol/redaction.py ------------
# Answer members that are non-secret identifiers of key material (additionalEventData).
MATERIAL_IDS = ("KeyMaterialId", "SourceKeyMaterialId", "DestinationKeyMaterialId")
_READ_ONLY_PREFIXES = ("Describe", "Get", "List")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_VALUE_ECHO = re.compile(r"Value '.*?' at '", re.DOTALL)


_ids = random.Random(secrets.token_bytes(32))  # uniqueness, not secrecy: cheaper than uuid4()'s syscall
os.register_at_fork(after_in_child=lambda: _ids.seed(secrets.token_bytes(32)))


def event_id() -> str:
    """A random (version 4) UUID."""
    n = (_ids.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48)) | (0x4000 << 64 | 0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class AuditFacts:
    """What CloudTrail shows of an operation's calls: the audit column of the operation's row in
    the operation table (kms/operations.py), handed over on the Exchange."""

    read_only: bool  # readOnly: reads, and every cryptographic operation
    # Members of the answer shown in responseElements (with their nested members, but never
    # OUTPUT_OMITTED); none: responseElements is null, as for every answer carrying data or keys.
    response_members: tuple[str, ...] = ()
    # Request members CloudTrail always shows, with the default the service applied.
    request_defaults: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolRow:
    """A row of the operation tables of STS, IAM and CloudTrail, whose every operation reads the
    store on the thread pool (never tried on the event loop) and reads no cached state (so no
    retry with fresh reads): what the request pipeline reads of a row (pipeline/services.py
    ``Row``). KMS's rows decide more (kms/operations.py)."""

    service: str  # the action's prefix: sts, iam, cloudtrail
    name: str
    handler: Callable  # handler(svc, call, request) -> result
    audit: AuditFacts
    inline: bool = False
    cached: bool = False

    @property
    def action(self) -> str:
        return f"{self.service}:{self.name}"


def read_only(operation: str | None, facts: AuditFacts | None = None) -> bool:
    """The operation's fact when known; else (STS, an unknown name) a read is named like one."""
    if facts is not None:
        return facts.read_only
    return operation is not None and operation.startswith(_READ_ONLY_PREFIXES)


class Hasher:
    """Salted HMAC-SHA256 of sensitive strings (Vault's audit-hash idea)."""

    def __init__(self, key: bytes):
        self._key = key

    def __call__(self, value: str) -> str:
        return HASH_PREFIX + hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


# --- renderers: compiled by protocol once per operation (protocol/redaction.py) ----------------
@functools.cache
def _request_renderer(service: str, operation: str) -> Render | None:
    compiled = load_service(service).operation(operation)
    return compiled.audit.request if compiled is not None and compiled.audit is not None else None


@functools.cache
def _response_renderer(service: str, operation: str, names: tuple[str, ...]) -> tuple | None:
    compiled = load_service(service).operation(operation)
    if not names or compiled is None or compiled.audit is None:
        return None
    members = compiled.audit.response
    return tuple((name, lower_camel(name), members[name]) for name in names if name in members)


def request_parameters(operation: str, request: dict | None, hasher: Hasher | None,
                       defaults: Mapping[str, object] | None = None, service: str = "kms") -> dict | None:
    """``defaults``: the members CloudTrail always shows (AuditFacts.request_defaults)."""
    if request is None:
        return None
    render = _request_renderer(service, operation)
    if render is None:
        return None
    out = render({**defaults, **request} if defaults else request, hasher)
    return out or None


def response_elements(operation: str, result: dict | None, hasher: Hasher | None, resources: list[str],
                      members: tuple[str, ...] = (), service: str = "kms") -> dict | None:
    """``members``: the answer's members shown (AuditFacts.response_members)."""
    fields = _response_renderer(service, operation, members)
    if not fields or not result:
        return None
    out = render_members(fields, result, hasher)
    if operation == "CreateGrant" and resources:
        out["keyId"] = resources[0]  # CloudTrail adds the key ARN though the answer has none
    return out or None


# --- the event ---------------------------------------------------------------------------------
@dataclass
class Exchange:
    """What the request pipeline learned about one request; filled as the request progresses, by
    the pipeline only (trentd/pipeline/core.py), read by the audit event, the metrics
    (http/observe.py) and the access log (http/access.py)."""

    request_id: str
    received: float | datetime  # when the request arrived (wall clock, POSIX seconds or aware datetime)
    scope: dict
    headers: dict
    service: str = "kms"  # 'kms', 'sts', 'cloudtrail', or 'trentd' (trentd's own controls: the test clock)
    default_region: str = "us-east-1"
    body: bytes | None = None
    cred: Any = None  # sigv4.Credential once the Authorization header parsed
    caller: Any = None  # auth.identity.Caller once authenticated
    audit: AuditFacts | None = None  # the operation's audit facts, from its row
    invocation: Any = None  # auth.invocation.Invocation once the operation and request are known
    operation: str | None = None  # set once the operation is known to exist
    request: dict | None = None  # the validated request
    result: dict | None = None  # the handler's answer (before serialization)
    error: Any = None  # errors.AWSError the caller was answered with
    error_code: str | None = None  # the code as the caller saw it (STS words some differently)
    extra: dict = field(default_factory=dict)


def _clip(text: str | None, limit: int = MAX_TEXT) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def scrub_message(message: str | None) -> str | None:
    """Validation messages echo non-sensitive values (a list of grant tokens, say): drop every
    echoed value, keep paths and constraints."""
    if not message:
        return message
    if "Value '" in message:
        message = _VALUE_ECHO.sub("Value at '", message)
    return _clip(message)


def user_identity(caller, cred, dev: bool = False) -> dict:
    """The caller as CloudTrail shows it; only what is known when it was not authenticated (an
    access key id that is not well formed may be a secret: redact.py)."""
    ident: dict[str, Any]
    if caller is not None:
        ident = dict(_known_identity(getattr(caller, "shown_arn", caller.principal_arn), caller.account,
                                     caller.access_key_id, getattr(caller, "principal_id", "")))
        session = getattr(caller, "session", None)
        if session is not None:  # temporary credentials: when they were issued (CloudTrail sessionContext)
            attributes = {"creationDate": iso_time(session.created),
                          "mfaAuthenticated": "false"}
            ident["sessionContext"] = {**ident.get("sessionContext", {}), "attributes": attributes}
        return ident
    ident = {"type": "Unknown"}
    if cred is not None:
        ident["accessKeyId"] = redact.access_key_id(_clip(cred.access_key_id, 128) or "", dev)
    return ident


@functools.lru_cache(maxsize=4096)
def _known_identity(arn: str, account: str, access_key_id: str, principal_id: str = "") -> dict:
    """``principal_id``: the user's or role's stored unique id (GetUser's UserId, GetRole's RoleId)."""
    parts = arn.split(":", 5)
    resource = parts[5] if len(parts) == 6 else ""
    kind, _, rest = resource.partition("/")
    ident: dict[str, Any] = {"type": "IAMUser", "principalId": "", "arn": arn, "accountId": account,
                             "accessKeyId": access_key_id}
    if resource == "root":
        ident.update(type="Root", principalId=account)
    elif kind == "user":
        ident.update(principalId=principal_id or user_id(arn), userName=rest.rsplit("/", 1)[-1])
    elif kind in ("role", "assumed-role"):
        role_name, _, session = rest.partition("/") if kind == "assumed-role" else (rest.rsplit("/", 1)[-1], "", "")
        role_arn = arn if kind == "role" else f"arn:{parts[1]}:iam::{account}:role/{role_name}"
        role_id = principal_id or user_id(role_arn)
        ident.update(type="AssumedRole", principalId=f"{role_id}:{session}" if session else role_id)
        ident["sessionContext"] = {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": role_arn,
                                                     "accountId": account, "userName": role_name}}
    else:
        ident.update(type="Unknown", principalId=user_id(arn))
    return ident


def event_name(ex: Exchange) -> str:
    if ex.operation:
        return ex.operation
    if ex.service in ("sts", "iam"):  # Query services: the form's Action
        try:
            from urllib.parse import parse_qs

            action = parse_qs((ex.body or b"").decode("utf-8", "replace")).get("Action", [""])[-1]
        except ValueError:
            action = ""
    else:
        action = ex.headers.get("x-amz-target", "").rpartition(".")[2]
    return action if _NAME.fullmatch(action or "") else "Unknown"


EVENT_SOURCES = {"kms": "kms.amazonaws.com", "sts": "sts.amazonaws.com", "iam": "iam.amazonaws.com",
                 "cloudtrail": "cloudtrail.amazonaws.com", "trentd": "trentd"}


def error_message(ex: Exchange, dev: bool) -> str | None:
    """The caller's error message without the signature or secret it may echo (redact.py)."""
    message = ex.error.message
    if message:
        message = redact.error_message(message, authorization_text(ex.headers), dev)
    return scrub_message(message)


def build_event(ex: Exchange, hasher: Hasher | None, dev: bool = False) -> dict:
    """``dev``: the server runs --dev, where any access key id is accepted and so is recorded."""
    caller = ex.caller
    name = event_name(ex)
    resources = list(dict.fromkeys(ex.invocation.resources if ex.invocation is not None else ()))
    if ex.result:
        created = (ex.result.get("KeyMetadata") or {}).get("Arn")
        if created and created not in resources:
            resources.append(created)
    region = ex.cred.region if ex.cred is not None else ex.default_region
    modelled = ex.service != "trentd"  # trentd's own controls: their small request as built
    event: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(caller, ex.cred, dev),
        "eventTime": iso_time(ex.received),
        "eventSource": EVENT_SOURCES[ex.service],
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": (ex.scope.get("client") or (None,))[0],
        "userAgent": _clip(ex.headers.get("user-agent")),
    }
    if ex.error is not None:
        event["errorCode"] = ex.error_code or ex.error.code
        message = error_message(ex, dev)
        if message:
            event["errorMessage"] = message
    facts = ex.audit
    defaults = facts.request_defaults if facts is not None else None
    event["requestParameters"] = (request_parameters(name, ex.request, hasher, defaults, ex.service) if modelled
                                  else ex.request or None)
    event["responseElements"] = _response(ex, name, hasher, resources)
    material = {lower_camel(k): ex.result[k] for k in MATERIAL_IDS if ex.result and isinstance(ex.result.get(k), str)}
    if material or ex.extra:
        event["additionalEventData"] = {**material, **ex.extra}
    event["requestID"] = ex.request_id
    event["eventID"] = event_id()
    event["readOnly"] = read_only(name, facts)
    account = caller.account if caller is not None else None
    event["resources"] = [{"accountId": arn.split(":")[4], "type": "AWS::KMS::Key", "ARN": arn} for arn in resources]
    event["eventType"] = "AwsApiCall"
    event["managementEvent"] = True
    if account:
        event["recipientAccountId"] = account
    event["eventCategory"] = "Management"
    if ex.scope.get("scheme") == "https":
        tls = (ex.scope.get("extensions") or {}).get("tls") or {}
        details = {"clientProvidedHostHeader": _clip(ex.headers.get("host"), 256)}
        if tls.get("tls_version") is not None:
            details["tlsVersion"] = str(tls["tls_version"])
        if tls.get("cipher_suite") is not None:
            details["cipherSuite"] = str(tls["cipher_suite"])
        event["tlsDetails"] = details
    return event


def _response(ex: Exchange, name: str, hasher: Hasher | None, resources: list[str]) -> dict | None:
    """The members the operation's row selects (none for STS); trentd's own controls: their small
    answer as built (the clock's offset); failures: null."""
    if ex.error is not None:
        return None
    if ex.service == "trentd":
        return ex.result or None
    members = ex.audit.response_members if ex.audit is not None else ()
    return response_elements(name, ex.result, hasher, resources, members, ex.service)
