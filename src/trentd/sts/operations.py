"""The STS operations trentd answers: GetCallerIdentity, GetSessionToken and AssumeRole.

Each is ``handler(svc, call, request) -> result`` like a KMS operation, with a row in
``OPERATIONS`` of the same shape as the KMS table's (kms/operations.py): the request pipeline
(trentd/pipeline) finds the operation from the form's ``Action``, parses and validates the
request from botocore's STS model, runs the handler on the thread pool (AssumeRole and
GetSessionToken write to the store) and serializes the answer (protocol/query.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import MappingProxyType

from ..audit.events import AuditFacts, PoolRow
from ..auth import policy as policy_language
from ..errors import AWSError
from ..auth.identity import base_context, stored_user_id
from . import sessions, trust

ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}", re.ASCII)
POLICY_ARN = re.compile(r"arn:aws:iam::(\d{12}|aws):policy/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,128}", re.ASCII)
MAX_POLICY_CHARS = 2048  # inline and managed session policies together, as AWS counts them
CHAINED_MAX_SECONDS = 3600
CHAINED_TOO_LONG = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
SESSION_CREDENTIALS = "Cannot call GetSessionToken with session credentials"
BEYOND_MAX_SESSION = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def get_caller_identity(svc, caller, request: dict) -> dict:
    """Needs no permission (AWS: the same answer is in every AccessDenied message)."""
    return {"UserId": caller.unique_id, "Account": caller.account, "Arn": caller.shown_arn}


def get_session_token(svc, caller, request: dict) -> dict:
    """Credentials that act as the user who asked; needs no permission (AWS: only MFA matters)."""
    if caller.session is not None:
        raise AWSError("AccessDenied", SESSION_CREDENTIALS, 403)
    duration = request.get("DurationSeconds", 43200)
    with svc.store.write() as tx:
        credentials = sessions.issue(tx, svc.root_key, now=svc.clock.now(), duration=duration,
                                     kind=sessions.SESSION_TOKEN, account=caller.account,
                                     principal_arn=caller.principal_arn, session_arn=caller.principal_arn)
    return {"Credentials": credentials}


def assume_role(svc, caller, request: dict) -> dict:
    role_arn, session_name = request["RoleArn"], request["RoleSessionName"]
    if caller.principal_arn.endswith(":root"):
        raise AWSError("AccessDenied", trust.ROOT_REFUSED, 403)
    duration = _role_duration(caller, request)
    tags = {t["Key"]: t["Value"] for t in request.get("Tags", ())}
    inline = request.get("Policy")
    with svc.store.write() as tx:
        if not svc.authorizer.dev:  # --dev has no registry of roles and trusts every caller
            _check_trust(svc, tx, caller, role_arn, request, tags)
            _check_max_session(tx, role_arn, duration)
        elif not ROLE_ARN.fullmatch(role_arn):
            raise trust.refusal(caller, "sts:AssumeRole", role_arn)
        documents = _session_policies(tx, role_arn, inline, request.get("PolicyArns", ()))
        role_id = stored_user_id(tx, role_arn)  # the id GetRole shows
        assumed_arn = sessions.assumed_role_arn(role_arn, session_name)
        credentials = sessions.issue(tx, svc.root_key, now=svc.clock.now(), duration=duration,
                                     kind=sessions.ASSUMED_ROLE, account=role_arn.split(":")[4],
                                     principal_arn=role_arn, session_arn=assumed_arn, session_name=session_name,
                                     policies=documents, tags=tags)
    return {
        "Credentials": credentials,
        "AssumedRoleUser": {"AssumedRoleId": f"{role_id}:{session_name}", "Arn": assumed_arn},
        "PackedPolicySize": _packed_percent(documents, tags) if documents or tags else None,
    }


def _role_duration(caller, request: dict) -> int:
    """AWS: role chaining (AssumeRole with a role session's credentials) is capped at an hour."""
    duration = request.get("DurationSeconds", 3600)
    chained = caller.session is not None and caller.session.is_role
    if chained and duration > CHAINED_MAX_SECONDS:
        raise AWSError("ValidationError", CHAINED_TOO_LONG)
    return duration


def _check_max_session(tx, role_arn: str, duration: int) -> None:
    """The role's MaxSessionDuration (IAM CreateRole/UpdateRole, 3600 by default) caps the session."""
    role = tx.iam_entity(role_arn)
    if role is not None and duration > role.max_session_duration:
        raise AWSError("ValidationError", BEYOND_MAX_SESSION)


def _check_trust(svc, tx, caller, role_arn: str, request: dict, tags: dict) -> None:
    role = tx.get_principal(role_arn) if ROLE_ARN.fullmatch(role_arn) else None
    trust_text = tx.get_trust_policy(role_arn) if role is not None and role.kind == "role" else None
    context = base_context(caller, None, _request_keys(request, tags))
    trust.check(svc.authorizer, tx, caller, role_arn, trust_text, "sts:AssumeRole", context)
    if tags or request.get("TransitiveTagKeys"):  # passing session tags needs sts:TagSession too
        trust.check(svc.authorizer, tx, caller, role_arn, trust_text, "sts:TagSession", context)


def _request_keys(request: dict, tags: dict) -> dict:
    """Condition keys of an AssumeRole request (IAM, "sts" and "aws" condition keys)."""
    values = {"sts:rolesessionname": request["RoleSessionName"], "sts:externalid": request.get("ExternalId"),
              "sts:sourceidentity": request.get("SourceIdentity"),
              "sts:durationseconds": request.get("DurationSeconds")}
    values.update({f"aws:requesttag/{k.lower()}": v for k, v in tags.items()})
    if tags:
        values["aws:tagkeys"] = list(tags)
    if request.get("TransitiveTagKeys"):
        values["sts:transitivetagkeys"] = list(request["TransitiveTagKeys"])
    return values


def _session_policies(tx, role_arn: str, inline: str | None, policy_arns) -> list[str]:
    """The session policy documents: the inline one and the managed ones named, which must exist
    in the role's account (or be AWS managed policies). Each is checked with the identity-policy grammar."""
    documents = []
    if inline is not None:
        documents.append(policy_language.checked_identity_policy(inline))
    for entry in policy_arns:
        arn = entry.get("arn", "")
        match = POLICY_ARN.fullmatch(arn)
        owner = match[1] if match else None
        document = tx.get_managed_policy(arn) if owner in (role_arn.split(":")[4], "aws") else None
        if document is None:
            raise AWSError("MalformedPolicyDocument", f"Policy {arn} does not exist or is not attachable.")
        documents.append(document)
    if sum(len(d) for d in documents) > MAX_POLICY_CHARS:
        raise AWSError("PackedPolicyTooLarge", "Session policy documents exceed the 2048-character limit of "
                                               "inline and managed session policies together.")
    return documents


def _packed_percent(documents: list[str], tags: dict) -> int:
    """How close the session's policies and tags come to the size limit, in percent."""
    size = sum(len(d) for d in documents) + sum(len(k) + len(v) for k, v in tags.items())
    return min(100, -(-100 * size // MAX_POLICY_CHARS))


def _row(name: str, handler: Callable, read_only: bool) -> PoolRow:
    """What its audit event shows: requestParameters, the members protocol/redaction.py lets it
    show; responseElements: null."""
    return PoolRow("sts", name, handler, AuditFacts(read_only=read_only, request_defaults=MappingProxyType({})))


# readOnly as trentd's events have always shown it: the Get… calls.
OPERATIONS: dict[str, PoolRow] = {
    "GetCallerIdentity": _row("GetCallerIdentity", get_caller_identity, read_only=True),
    "GetSessionToken": _row("GetSessionToken", get_session_token, read_only=True),
    "AssumeRole": _row("AssumeRole", assume_role, read_only=False),
}
