"""``trentd sessions revoke``: deny a principal's temporary credentials issued before a time.

AWS cannot take back temporary credentials it has handed out; it denies them instead. Its
"revoke active sessions" attaches to the role an inline policy named ``AWSRevokeOlderSessions``
that denies everything to credentials whose ``aws:TokenIssueTime`` is earlier than a moment.
trentd does the same, for roles and users: the deny is an identity policy, so every service a
session calls (KMS, and STS's AssumeRole) refuses it with an explicit deny, while sessions issued
later and long-term access keys (which have no token issue time, so ``DateLessThan`` does not
match them) keep working. Revoking again replaces the policy, as IAM's PutRolePolicy does.

Sessions are stamped with the service clock (sts/sessions.py), so the default moment, now, is
read from it too: the wall clock, unless a test clock has moved it.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import datetime, timezone

from ..audit import AuditUnavailable, admin_events, audit_dir
from ..auth.principals import PrincipalError
from ..clock import ServiceClock
from .common import open_admin_runtime, print_json

POLICY_NAME = "AWSRevokeOlderSessions"
COMMAND = "trentd sessions revoke"


def parse_time(text: str) -> float:
    """``--issued-before``: an ISO 8601 time with a time zone, as POSIX seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-06-27T14:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z for UTC, or an offset such as +02:00")
    return moment.timestamp()


def iso_time(moment: float) -> str:
    """UTC with a Z, to the millisecond, rounded up: a session issued at ``moment`` is covered."""
    millis = math.ceil(moment * 1000)
    seconds, fraction = divmod(millis, 1000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction:03d}Z" if fraction else "Z")


def revoke_policy(issued_before: str) -> str:
    """AWS's AWSRevokeOlderSessions document."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": issued_before}}}]})


def revoke(runtime, principal_arn: str, moment: float | None) -> dict:
    """Attach the deny to the user or role and record the change in the audit log, in one
    transaction (an audit log that cannot be written rolls the change back)."""
    if moment is None:
        moment = ServiceClock(runtime.store, movable=True).now()
    issued_before = iso_time(moment)
    document = revoke_policy(issued_before)
    with runtime.store.write() as tx:
        principal = tx.get_principal(principal_arn)
        if principal is None:
            raise PrincipalError(f"no such principal: {principal_arn}")
        tx.put_identity_policy(principal_arn, POLICY_NAME, document)
        admin_events.record(audit_dir(runtime.settings.data_dir), _event(principal, document, issued_before), tx=tx)
    return {"Principal": principal_arn, "IssuedBefore": issued_before}


def _event(principal, document: str, issued_before: str) -> dict:
    """IAM's PutUserPolicy / PutRolePolicy, as CloudTrail records AWS's own revocation."""
    kind = "Role" if principal.kind == "role" else "User"
    request = {f"{kind.lower()}Name": principal.name, "policyName": POLICY_NAME, "policyDocument": document}
    return admin_events.admin_event(source="iam.amazonaws.com", name=f"Put{kind}Policy", account=principal.account,
                                   request=request, extra={"command": COMMAND, "issuedBefore": issued_before})


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("sessions", help="temporary credentials (STS sessions)")
    actions = parser.add_subparsers(dest="action", required=True)
    revoking = actions.add_parser("revoke", help="deny a user's or role's sessions issued before a time "
                                                 "(AWS's AWSRevokeOlderSessions inline policy)")
    revoking.add_argument("--principal", required=True, metavar="ARN", help="the user or role")
    revoking.add_argument("--issued-before", metavar="TIME",
                          help="ISO 8601 time with a time zone, e.g. 2026-06-27T14:00:00Z (default: now)")
    data_dir_arg(revoking)


def run(args) -> int:
    moment = None
    if args.issued_before is not None:
        try:
            moment = parse_time(args.issued_before)
        except ValueError as exc:
            print(f"trentd: --issued-before: {exc}", file=sys.stderr)
            return 2
    try:
        return print_json(revoke(open_admin_runtime(args), args.principal, moment))
    except AuditUnavailable as exc:
        print(f"trentd: nothing was changed: the audit log cannot be written ({exc})", file=sys.stderr)
        return 1
