"""Who may call the XKS proxy, and for what.

**Authentication** is SigV4 with service ``kms-xks-proxy`` (the spec's Appendix A), checked by
trentd's own verifier (auth/sigv4.py): any SignedHeaders set that includes ``host`` and
``x-amz-date`` (AWS KMS signs those two; curl adds ``content-type``), a request time within the
skew window either way, the secret found by access key id. Every failure, an unknown access key id
included, is AuthenticationFailedException (401): nothing tells a caller which part was wrong,
and no message echoes the signature. A credential is good only for its own key store's URI path.
``--dev`` relaxes none of this.

**Secondary authorization** (the spec's "Authorization") is an optional resource policy per key
store in IAM's policy language, evaluated by trentd's engine (auth/policy.py): the principal is
``awsPrincipalArn`` (a role session counts as its role, as in IAM), the action
``kms-xks-proxy:Encrypt|Decrypt|GetKeyMetadata``, the resource
``arn:aws:kms-xks-proxy:<region>:<key store account>:key/<externalKeyId>``, and the condition keys
``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``kms:ViaService``, ``xks:KmsOperation``,
``xks:KmsKeyArn``, ``aws:SourceVpc`` and ``aws:SourceVpce`` from the requestMetadata. An explicit
Deny, or no Allow, is AccessDeniedException (403). GetHealthStatus is never subject to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..auth import sigv4
from ..auth.policy import Request, compile_cached
from ..errors import AWSError
from .errors import XksError

SERVICE = "kms-xks-proxy"
_ASSUMED_ROLE = re.compile(r"arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+")
_ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):.+")
_REFUSED = "The request signature could not be verified with the credentials of this key store."


@dataclass(frozen=True)
class Credential:
    keystore: str
    secret: str


def parse_credential(headers, max_skew_seconds: int) -> sigv4.Credential:
    """The claimed credential (no secret needed yet); AuthenticationFailedException if malformed,
    of another service, or outside the skew window."""
    try:
        return sigv4.parse(headers, max_skew_seconds=max_skew_seconds, operation_header=False, services=(SERVICE,))
    except AWSError as err:
        message = err.message or ""
        # The time errors name only timestamps; the others may echo the Authorization header.
        if not message.startswith(("Signature expired", "Signature not yet current")):
            message = f"The request is not signed with AWS Signature Version 4 for {SERVICE}, or its " \
                      "Authorization header is malformed."
        raise XksError("AuthenticationFailedException", message) from None


def verify(cred: sigv4.Credential, found: Credential | None, *, path: str, headers, body: bytes) -> Credential:
    """The signature, with the secret of the access key id it names (``found``, None when unknown)."""
    if found is None:
        raise XksError("AuthenticationFailedException", _REFUSED)
    try:
        sigv4.verify(cred, method="POST", path=path, headers=headers, body=body, secret=found.secret)
    except AWSError:
        raise XksError("AuthenticationFailedException", _REFUSED) from None
    return found


def for_keystore(found: Credential, keystore: str) -> None:
    """A credential is good only on its own key store's URI path."""
    if found.keystore != keystore:
        raise XksError("AuthenticationFailedException", _REFUSED)


def principal_of(arn: str) -> tuple[str, str]:
    """(principal ARN as policies see it, its account): a role session is its role."""
    session = _ASSUMED_ROLE.fullmatch(arn)
    if session:
        return f"arn:{session[1]}:iam::{session[2]}:role/{session[3]}", session[2]
    account = _ARN_ACCOUNT.fullmatch(arn)
    return arn, account[1] if account else ""


def authorize(policy: str | None, operation: str, metadata: dict, region: str, account: str, key_id: str) -> None:
    """Secondary authorization of GetKeyMetadata, Encrypt or Decrypt; AccessDeniedException."""
    if policy is None:
        return
    principal, principal_account = principal_of(metadata["awsPrincipalArn"])
    context: dict[str, object] = {"aws:principalarn": principal, "xks:kmsoperation": metadata["kmsOperation"]}
    if principal_account:
        context["aws:principalaccount"] = principal_account
    for member, name in (("kmsKeyArn", "xks:kmskeyarn"), ("kmsViaService", "kms:viaservice"),
                         ("awsSourceVpc", "aws:sourcevpc"), ("awsSourceVpce", "aws:sourcevpce")):
        if isinstance(metadata.get(member), str):
            context[name] = metadata[member]
    action = f"{SERVICE}:{operation}"
    resource = f"arn:aws:{SERVICE}:{region}:{account}:key/{key_id}"
    result = compile_cached(policy, resource_policy=True).evaluate(
        Request(principal, principal_account, action, resource, context), resource_policy=True)
    if result.denied or not (result.allowed or result.allowed_account):
        why = "an explicit deny in" if result.denied else "no allow in"
        raise XksError("AccessDeniedException", f"{metadata['awsPrincipalArn']} is not authorized to perform "
                                                 f"{action} on {key_id}: {why} the key store's policy")
