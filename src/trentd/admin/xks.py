"""``trentd xks``: trentd as an External Key Store proxy for AWS KMS (docs/xks.md).

    trentd xks keystores create --name NAME [--uri-prefix PREFIX] [--account ID]
    trentd xks keystores list | delete --keystore NAME | put-policy --keystore NAME --policy-file FILE
    trentd xks credentials rotate --keystore NAME | retire --keystore NAME --access-key-id ID
    trentd xks keys create --keystore NAME [--usage ENCRYPT,DECRYPT,…] [--key-id ID] | list --keystore NAME
    trentd xks keys enable|disable|delete --keystore NAME --key-id ID

Each command is one store transaction over the same ``--data-dir``/``--database`` as the server
(which may be running: its workers and nodes see the change within a second, store/changes.py),
prints JSON, and writes an audit event of its own (eventSource ``kms-xks-proxy``) before it
commits: if the event cannot be written, nothing changes.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..audit import admin_events, audit_dir
from ..xksproxy import keys, keystores
from ..xksproxy.events import SOURCE
from ..xksproxy.keystores import KeystoreError
from .common import open_admin_runtime, print_json

# Each change's eventName in the audit trail.
EVENT_NAMES = {("keystores", "create"): "CreateKeyStore", ("keystores", "delete"): "DeleteKeyStore",
               ("keystores", "put-policy"): "PutKeyStorePolicy", ("credentials", "rotate"): "CreateCredential",
               ("credentials", "retire"): "RetireCredential", ("keys", "create"): "CreateKey",
               ("keys", "enable"): "EnableKey", ("keys", "disable"): "DisableKey", ("keys", "delete"): "DeleteKey"}
# The request members an audit event may show (never a secret).
_SHOWN = ("name", "keystore", "uri_prefix", "account", "access_key_id", "key_id", "usage")


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("xks", help="trentd as an External Key Store proxy for AWS KMS (docs/xks.md)")
    families = parser.add_subparsers(dest="family", required=True)

    stores = families.add_parser("keystores", help="logical key stores (one per AWS KMS external key store)")
    actions = stores.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a key store, its URI path and first credential")
    create.add_argument("--name", required=True)
    create.add_argument("--uri-prefix", help="the URI path is PREFIX/kms/xks/v1 (default: /keystores/<uuid>)")
    create.add_argument("--account", default="000000000000", help="the AWS account it serves (audit)")
    actions.add_parser("list")
    actions.add_parser("delete").add_argument("--keystore", required=True)
    put = actions.add_parser("put-policy", help="secondary authorization: an IAM resource policy")
    put.add_argument("--keystore", required=True)
    put.add_argument("--policy-file", required=True, help="the policy (JSON); 'none' removes it")

    credentials = families.add_parser("credentials", help="SigV4 credentials of a key store")
    actions = credentials.add_subparsers(dest="action", required=True)
    actions.add_parser("rotate", help="add a second live credential").add_argument("--keystore", required=True)
    retire = actions.add_parser("retire", help="remove a credential")
    retire.add_argument("--keystore", required=True)
    retire.add_argument("--access-key-id", required=True)

    key_parser = families.add_parser("keys", help="external keys (AES-256, wrapped under the root key)")
    actions = key_parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create")
    create.add_argument("--keystore", required=True)
    create.add_argument("--usage", help=f"comma-separated, of {','.join(keys.USAGES)} (default: ENCRYPT,DECRYPT)")
    create.add_argument("--key-id", help="the key's id (default: a new UUID); 1-128 of A-Z a-z 0-9 . _ -")
    actions.add_parser("list").add_argument("--keystore", required=True)
    for name in ("enable", "disable", "delete"):
        sub = actions.add_parser(name)
        sub.add_argument("--keystore", required=True)
        sub.add_argument("--key-id", required=True)

    for family in families.choices.values():
        for sub in next(a for a in family._actions if a.dest == "action").choices.values():
            data_dir_arg(sub)


def run(args) -> int:
    """``trentd xks FAMILY ACTION``; a refusal is one line on stderr, exit 1."""
    document = None
    if getattr(args, "policy_file", None) and args.policy_file != "none":
        document = Path(args.policy_file).read_text()
    runtime = open_admin_runtime(args)
    try:
        with runtime.store.write() as tx:
            result = _act(tx, runtime.root_key, args, document)
            if not (args.action == "list"):
                _audit(runtime, tx, args, result)
    except KeystoreError as exc:
        raise ValueError(str(exc)) from None
    finally:
        runtime.store.close()
    return print_json(result)


def _act(tx, ring, args, document: str | None) -> dict:
    now = time.time()
    family, action = args.family, args.action
    if family == "keystores":
        if action == "create":
            return keystores.create(tx, ring, args.name, args.uri_prefix, args.account, now)
        if action == "list":
            return {"KeyStores": [keystores.describe(tx, k) for k in tx.list_xks_proxy_keystores()]}
        if action == "delete":
            return keystores.delete(tx, args.keystore)
        return keystores.put_policy(tx, args.keystore, document)
    if family == "credentials":
        if action == "rotate":
            return keystores.rotate(tx, ring, args.keystore, now)
        return keystores.retire(tx, args.keystore, args.access_key_id)
    if action == "create":
        return keys.create(tx, ring, args.keystore, keys.parse_usages(args.usage), now, args.key_id)
    if action == "list":
        keystores.existing(tx, args.keystore)
        return {"Keys": [keys.describe(k) for k in tx.list_xks_proxy_keys(args.keystore)]}
    if action == "delete":
        return keys.delete(tx, args.keystore, args.key_id)
    return keys.set_status(tx, args.keystore, args.key_id, "ENABLED" if action == "enable" else "DISABLED")


def _audit(runtime, tx, args, result: dict) -> None:
    """The change's event, written before the transaction commits (fail-closed)."""
    name = getattr(args, "keystore", None) or getattr(args, "name", None)
    keystore = tx.get_xks_proxy_keystore(name) if name else None
    request = {k: getattr(args, k) for k in _SHOWN if getattr(args, k, None) is not None}
    if getattr(args, "policy_file", None):
        request["policy"] = "removed" if args.policy_file == "none" else "set"
    shown = {k: v for k, v in result.items() if k in ("UriPath", "AccessKeyId", "KeyId", "Retired", "Deleted")}
    event = admin_events.admin_event(source=SOURCE, name=EVENT_NAMES[args.family, args.action],
                                     account=keystore.account if keystore else getattr(args, "account", "") or "",
                                     request=request, extra={"command": f"trentd xks {args.family} {args.action}",
                                                             **shown})
    admin_events.record(audit_dir(runtime.settings.data_dir), event)
