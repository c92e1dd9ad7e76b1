"""``trentd policies create|list|delete``: customer managed policies, usable as AssumeRole
``PolicyArns`` (session policies). A policy is validated with the policy engine when it is
created, as IAM does, and each command prints JSON like the other admin commands. (Role trust
policies: ``trentd principals put-trust-policy``, admin/principals.py.)
"""

from __future__ import annotations

import re
import time

from ..auth.policy import parse_policy
from ..auth.principals import PrincipalError
from ..errors import AWSError
from .common import open_admin_runtime, print_json

_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)


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


def run(args) -> int:
    rt = open_admin_runtime(args)
    with rt.store.write() as tx:
        result = _apply(tx, args)
    return print_json(result)  # once committed


def _apply(tx, args) -> dict:
    if args.action == "create":
        with open(args.policy_file, encoding="utf-8") as f:
            return create_policy(tx, args.account, args.name, f.read())
    if args.action == "list":
        return {"Policies": [{"Arn": arn, "Account": account} for arn, account in tx.list_managed_policies()]}
    if args.arn.startswith("arn:aws:iam::aws:"):
        raise PrincipalError(f"{args.arn} is an AWS managed policy: it cannot be deleted")
    if not tx.delete_managed_policy(args.arn):
        raise PrincipalError(f"no such policy: {args.arn}")
    return {"Deleted": args.arn}


def add_parser(commands, data_dir_arg) -> None:
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
