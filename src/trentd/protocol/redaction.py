"""What an audit event may show of a request and an answer, compiled from the model's shapes.

The audit (trentd/audit/events.py) renders ``requestParameters`` and ``responseElements`` as
CloudTrail shows them: lower-camel member names (``lower_camel``), timestamps as ISO 8601
(``iso_time``), blobs never, bearer secrets as a keyed hash. The rendering is compiled here, by
one more walker over the same shapes as parsing and serialization (walk.py), once per operation
when ``model.Service`` is built; the audit asks for ``load_service(name).operation(op).audit``.

**Redaction is our own allow-list, not the model's ``sensitive`` flag** (only PlaintextType is
marked sensitive in KMS; GrantToken, ImportToken, Signature, Mac, EncryptedKeyMaterial… are not).
Every member of every KMS input shape is classified in exactly one of ``LOGGED``, ``HASHED`` and
``OMITTED``; a member in none of them (a new model member) is omitted: default deny.
tests/unit/test_audit_chain.py checks the classification covers the whole bundled model. STS's
requests show only ``STS_LOGGED``, CloudTrail's ``CLOUDTRAIL_LOGGED`` (``CLOUDTRAIL_OMITTED`` lists
the rest of what its implemented operation takes); a service without rules in ``RULES`` gets no
renderer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from trentd.protocol.walk import ShapeWalker

# Members logged as sent (structures and lists recursively, through these same lists).
LOGGED = frozenset({
    "AliasName", "BypassPolicyLockoutSafetyCheck", "CloudHsmClusterId", "Constraints", "CustomKeyStoreId",
    "CustomKeyStoreName", "CustomKeyStoreType", "CustomerMasterKeySpec", "Description",
    "DestinationEncryptionAlgorithm", "DestinationEncryptionContext", "DestinationKeyId", "DryRun",
    "DryRunModifiers", "EncapsulationAlgorithm", "EncryptionAlgorithm", "EncryptionContext",
    "EncryptionContextEquals", "EncryptionContextSubset", "ExpirationModel", "GrantId", "GranteePrincipal",
    "GranteeServicePrincipal", "ImportType", "IncludeKeyMaterial", "KeyAgreementAlgorithm", "KeyId",
    "KeyMaterialDescription", "KeyMaterialId", "KeyPairSpec", "KeySpec", "KeyUsage", "Limit", "MacAlgorithm",
    "Marker", "MessageType", "MultiRegion", "Name", "NewCustomKeyStoreName", "NumberOfBytes", "Operations",
    "Origin", "PendingWindowInDays", "Policy", "PolicyName", "PrimaryRegion", "ReplicaRegion", "ResourceOwners",
    "RetiringPrincipal", "RetiringServicePrincipal", "RotationPeriodInDays", "SigningAlgorithm",
    "SourceArn", "SourceEncryptionAlgorithm", "SourceEncryptionContext", "SourceKeyId", "TagKey", "TagKeys", "TagValue",
    "Tags", "TargetKeyId", "TrustAnchorCertificate", "ValidTo", "WrappingAlgorithm", "WrappingKeySpec",
    "XksKeyId", "XksProxyConnectivity", "XksProxyUriEndpoint", "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName", "XksProxyVpcEndpointServiceOwner",
})
# Bearer secrets worth correlating: logged as a keyed hash, ``hmac-sha256:<hex>`` (salted with a
# per-deployment key kept wrapped in the store, so low-entropy values cannot be brute-forced from
# the log alone); ``trentd audit hash`` computes the same hash for a search.
HASHED = frozenset({"GrantToken", "GrantTokens"})
# Never logged in any form: data, key material, proofs and credentials.
OMITTED = frozenset({
    "Plaintext",  # Encrypt
    "CiphertextBlob",  # Decrypt, ReEncrypt
    "Message",  # Sign/Verify/GenerateMac/VerifyMac input: caller data, often a secret
    "Signature", "Mac",  # Verify/VerifyMac: a valid proof is a credential-like artefact
    "ImportToken", "EncryptedKeyMaterial",  # ImportKeyMaterial: wrapped key material and its token
    "PublicKey",  # DeriveSharedSecret peer key: not secret, but a blob (CloudTrail omits it)
    "SharedSecretCiphertextBlob",  # Decapsulate
    "Recipient",  # Nitro attestation document
    "KeyStorePassword",  # CloudHSM key store crypto-user password
    "XksProxyAuthenticationCredential",  # XKS proxy access key id + raw secret
})
# Output members never logged, even inside a logged response structure.
OUTPUT_OMITTED = frozenset({
    "Plaintext", "CiphertextBlob", "CiphertextForRecipient", "PrivateKeyPlaintext", "PrivateKeyCiphertextBlob",
    "PublicKey", "Signature", "Mac", "ImportToken", "SharedSecret",
})


@dataclass(frozen=True)
class Rules:
    """One service's classification of members for its audit events."""

    logged: frozenset[str]  # request members logged as sent (recursively, through these same rules)
    hashed: frozenset[str]  # request members (and top-level answer members) logged as a keyed hash
    output_omitted: frozenset[str]  # answer members never logged, even inside a logged structure


# STS: who assumed what, for how long; MFA codes, session policies and tags stay out (the answer's
# credentials are never rendered: the audit shows no responseElements for STS).
STS_LOGGED = frozenset({"RoleArn", "RoleSessionName", "DurationSeconds", "ExternalId", "PolicyArns", "arn",
                        "SourceIdentity"})

# IAM: names, paths, ARNs, documents (policies are no secrets; CloudTrail logs them), never the
# answer (CreateAccessKey's SecretAccessKey): IAM's rows show no responseElements.
IAM_LOGGED = frozenset({
    "UserName", "NewUserName", "RoleName", "GroupName", "NewGroupName", "Path", "NewPath", "PathPrefix",
    "PolicyName", "PolicyArn", "PolicyDocument", "AssumeRolePolicyDocument", "Description", "MaxSessionDuration",
    "AccessKeyId", "Status", "VersionId", "SetAsDefault", "Tags", "Key", "Value", "TagKeys", "Marker",
    "MaxItems", "Scope", "OnlyAttached", "PolicyUsageFilter", "EntityFilter", "PolicySourceArn", "ActionNames",
    "ResourceArns", "PermissionsBoundary",
})

# CloudTrail (LookupEvents): what was looked up is shown; the NextToken is an opaque cursor, left
# out as nothing to read; the answer (other events, in full) is never rendered.
CLOUDTRAIL_LOGGED = frozenset({"LookupAttributes", "AttributeKey", "AttributeValue", "StartTime", "EndTime",
                               "EventCategory", "MaxResults"})
CLOUDTRAIL_OMITTED = frozenset({"NextToken"})

RULES = {
    "kms": Rules(LOGGED, HASHED, OUTPUT_OMITTED),
    "sts": Rules(STS_LOGGED, frozenset(), frozenset({"Credentials"})),
    "iam": Rules(IAM_LOGGED, frozenset(), frozenset({"AccessKey", "SecretAccessKey"})),
    "cloudtrail": Rules(CLOUDTRAIL_LOGGED, frozenset(), frozenset({"Events", "NextToken"})),
}


def lower_camel(name: str) -> str:
    """Member names as CloudTrail spells them; an all-caps prefix stays (AWSAccountId)."""
    return name if name.startswith("AWS") else name[:1].lower() + name[1:]


def iso_time(ts: float | datetime) -> str:
    if isinstance(ts, datetime):
        ts = ts.timestamp()
    return _iso_second(int(ts // 1))


@functools.lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


SKIP = object()  # "leave this member out"
Hash = Callable[[str], str]
Render = Callable[[Any, "Hash | None"], Any]


def hashed(value, hasher: Hash | None):
    if hasher is None:
        return SKIP
    if isinstance(value, list):
        return [hasher(v) for v in value if isinstance(v, str)]
    return hasher(value) if isinstance(value, str) else SKIP


def render_members(members: tuple, value: dict, hasher: Hash | None) -> dict:
    """The members ``(name, shown name, render)`` of a structure that are present and shown."""
    out = {}
    for member, shown, render in members:
        v = value.get(member)
        if v is not None:
            r = render(v, hasher)
            if r is not SKIP:
                out[shown] = r
    return out


def _never(value, hasher) -> Any:
    return SKIP  # never a blob, whatever list it is on


def _as_sent(value, hasher) -> Any:
    return value


def _timestamp(value, hasher) -> Any:
    return iso_time(value) if isinstance(value, (int, float, datetime)) else SKIP


class AuditRender(ShapeWalker[Render]):
    """Compiles, once per shape, ``render(value, hasher)``: a validated value as CloudTrail shows
    it, or ``SKIP``. ``request=True``: structure members pass the request lists (logged, hashed;
    anything else is left out); ``request=False`` (answers): every member but output_omitted."""

    def __init__(self, shapes: dict, rules: Rules, request: bool):
        super().__init__(shapes)
        self.rules = rules
        self.request = request

    def compile_structure(self, name: str, shape: dict) -> Render:
        rules = self.rules
        fields: list[tuple[str, str, Render]] = []
        for member, spec in shape["members"].items():
            if self.request and member in rules.hashed:
                fields.append((member, lower_camel(member), hashed))
            elif (member in rules.logged) if self.request else (member not in rules.output_omitted):
                fields.append((member, lower_camel(member), self.shape(spec["shape"])))
        members = tuple(fields)

        def structure(value, hasher):
            return render_members(members, value, hasher) if type(value) is dict else SKIP

        return structure

    def compile_list(self, name: str, shape: dict) -> Render:
        element = self.shape(shape["member"]["shape"])
        return lambda value, hasher: [r for r in (element(v, hasher) for v in value) if r is not SKIP]

    def compile_map(self, name: str, shape: dict) -> Render:
        if self.kind(shape["value"]["shape"]) == "string":
            return lambda value, hasher: dict(value)  # an encryption context: in clear
        element = self.shape(shape["value"]["shape"])
        return lambda value, hasher: {k: element(v, hasher) for k, v in value.items()}

    def compile_leaf(self, name: str, shape: dict) -> Render:
        kind = shape["type"]
        if kind == "blob":
            return _never
        if kind == "timestamp":
            return _timestamp
        return _as_sent


class AuditView:
    """What one operation's audit event may show: ``request`` renders its whole input (None
    without an input shape); ``response[member]`` renders one top-level member of its answer
    (the operation's row picks which: ``AuditFacts.response_members``, kms/operations.py)."""

    __slots__ = ("request", "response")

    def __init__(self, request: Render | None, response: dict[str, Render]):
        self.request = request
        self.response = response

    def parameters(self, request: dict, hasher: Hash | None = None) -> dict:
        """The request as its audit event shows it ({} when nothing of it is shown)."""
        return self.request(request, hasher) if self.request is not None else {}


class AuditCompiler:
    """The two walkers of one service (requests, answers) sharing their compiled shapes."""

    def __init__(self, shapes: dict, rules: Rules):
        self.shapes = shapes
        self.rules = rules
        self._requests = AuditRender(shapes, rules, request=True)
        self._answers = AuditRender(shapes, rules, request=False)

    def operation(self, input_shape: str | None, output_shape: str | None) -> AuditView:
        request = self._requests.shape(input_shape) if input_shape else None
        response: dict[str, Render] = {}
        if output_shape:
            for member, spec in self.shapes[output_shape]["members"].items():
                response[member] = hashed if member in self.rules.hashed else self._answers.shape(spec["shape"])
        return AuditView(request, response)
