"""Admin commands for STS: role trust policies and customer managed policies.

``trentd principals put-trust-policy --principal ROLE_ARN --policy-file FILE`` sets who may assume a
role; ``trentd policies create|list|delete`` keeps managed policies, usable as AssumeRole
``PolicyArns`` (session policies). Both validate with the policy engine, as IAM does when a
policy is set, and print JSON like the other admin commands.
"""

from __future__ import annotations

import json
import re
import time

from ..auth.policy import parse_policy
from ..auth.principals import PrincipalError
from ..errors import AWSError
from . import trust

_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)


def _principal_exists(tx):
    def exists(arn: str) -> bool:
        return arn.endswith(":root") or tx.get_principal(arn) is not None

    return exists


def put_trust_policy(tx, role_arn: str, document: str) -> dict:
    principal = tx.get_principal(role_arn)
    if principal is None:
        raise PrincipalError(f"no such principal: {role_arn}")
    if principal.kind != "role":
        raise PrincipalError(f"{role_arn} is not a role: only roles have trust policies")
    try:
        trust.validate(document, _principal_exists(tx))
    except AWSError as exc:
        raise PrincipalError(f"MalformedPolicyDocument: {exc.message}") from None
    tx.put_trust_policy(role_arn, document)
    return {"Arn": role_arn, "AssumeRolePolicyDocument": json.loads(document)}


def create_policy(tx, account: str, name: str, document: str) -> dict:
    if not re.fullmatch(r"\d{12}", account):
        raise PrincipalError(f"account must be 12 digits, not {account!r}")
    if not _NAME.fullmatch(name):
        raise PrincipalError(f"invalid policy name {name!r}")
    try:  # a session policy has the identity-policy grammar
        parse_policy(document, resource_policy=False)
    except AWSError as exc:
        raise PrincipalError(f"MalformedPolicyDocument: {exc.message}") from None
    arn = f"arn:aws:iam::{account}:policy/{name}"
    if tx.get_managed_policy(arn) is not None:
        raise PrincipalError(f"policy {arn} already exists")
    tx.insert_managed_policy(arn, account, name, document, time.time())
    return {"Arn": arn}


def policies_cmd(args, open_runtime) -> dict:
    rt = open_runtime(args)
    with rt.store.write() as tx:
        if args.action == "create":
            with open(args.policy_file, encoding="utf-8") as f:
                return create_policy(tx, args.account, args.name, f.read())
        if args.action == "list":
            return {"Policies": [{"Arn": arn, "Account": account} for arn, account in tx.list_managed_policies()]}
        if not tx.delete_managed_policy(args.arn):
            raise PrincipalError(f"no such policy: {args.arn}")
        return {"Deleted": args.arn}


def add_policies_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("policies", help="customer managed policies (AssumeRole PolicyArns)")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create")
    create.add_argument("--account", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--policy-file", required=True)
    actions.add_parser("list")
    actions.add_parser("delete").add_argument("--arn", required=True)
    for sub in actions.choices.values():
        data_dir_arg(sub)
