"""``trentd principals`` and ``trentd access-keys``: IAM users and roles, their identity and trust
policies, and their access keys. Policies are checked as IAM checks them when they are set."""

from __future__ import annotations

import json
from pathlib import Path

from ..auth import principals
from ..auth.policy import parse_policy
from ..auth.principals import PrincipalError
from ..errors import AWSError
from ..sts import trust
from .common import open_admin_runtime, print_json


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("principals", help="IAM users and roles")
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create")
    create.add_argument("--account", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--type", choices=("user", "role"), default="user")
    actions.add_parser("list")
    actions.add_parser("delete").add_argument("--principal", required=True)
    put = actions.add_parser("put-policy")
    put.add_argument("--principal", required=True)
    put.add_argument("--policy-file", required=True)
    put.add_argument("--policy-name", default="default")
    trusting = actions.add_parser("put-trust-policy", help="who may assume a role (sts:AssumeRole)")
    trusting.add_argument("--principal", required=True)
    trusting.add_argument("--policy-file", required=True)
    for sub in actions.choices.values():
        data_dir_arg(sub)


def add_access_keys_parser(commands, data_dir_arg) -> None:
    keys_parser = commands.add_parser("access-keys", help="access keys of principals")
    key_actions = keys_parser.add_subparsers(dest="action", required=True)
    key_actions.add_parser("create").add_argument("--principal", required=True)
    key_actions.add_parser("list").add_argument("--principal")
    key_actions.add_parser("delete").add_argument("--access-key-id", required=True)
    for sub in key_actions.choices.values():
        data_dir_arg(sub)


def run(args) -> int:
    """``trentd principals ACTION``."""
    rt = open_admin_runtime(args)
    with rt.store.write() as tx:
        if args.action == "create":
            record = principals.create_principal(tx, args.account, args.name, args.type)
            return print_json({"Arn": record.arn})
        if args.action == "list":
            return print_json({"Principals": [{"Arn": p.arn, "Type": p.kind} for p in tx.list_principals()]})
        if args.action == "delete":
            tx.delete_principal(args.principal)
            return print_json({"Deleted": args.principal})
        document = Path(args.policy_file).read_text()
        if args.action == "put-trust-policy":
            return print_json(put_trust_policy(tx, args.principal, document))
        return print_json(put_identity_policy(tx, args.principal, args.policy_name, document))


def run_access_keys(args) -> int:
    """``trentd access-keys ACTION``."""
    rt = open_admin_runtime(args)
    with rt.store.write() as tx:
        if args.action == "create":
            access_key_id, secret = principals.create_access_key(tx, rt.root_key, args.principal)
            return print_json({"AccessKeyId": access_key_id, "SecretAccessKey": secret, "Principal": args.principal})
        if args.action == "list":
            rows = tx.list_access_keys(args.principal)
            return print_json({"AccessKeys": [{"AccessKeyId": a, "Principal": p} for a, p, _ in rows]})
        if not tx.delete_access_key(args.access_key_id):
            raise PrincipalError(f"no such access key: {args.access_key_id}")
        return print_json({"Deleted": args.access_key_id})


def put_identity_policy(tx, principal_arn: str, name: str, document: str) -> dict:
    if tx.get_principal(principal_arn) is None:
        raise PrincipalError(f"no such principal: {principal_arn}")
    try:  # IAM's grammar, as PutUserPolicy checks it: a malformed policy would fail every request
        parse_policy(document, resource_policy=False)
    except AWSError as exc:
        raise PrincipalError(f"{exc.code}: {exc.message}") from None
    tx.put_identity_policy(principal_arn, name, document)
    return {"Arn": principal_arn, "PolicyName": name}


def _principal_exists(tx):
    def exists(arn: str) -> bool:
        found = tx.get_principal(arn)  # a group is no principal (as the IAM API's trust policies)
        return arn.endswith(":root") or found is not None and found.kind != "group"

    return exists


def put_trust_policy(tx, role_arn: str, document: str) -> dict:
    """Who may assume the role, validated with the policy engine as IAM's UpdateAssumeRolePolicy."""
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
