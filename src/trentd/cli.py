"""The ``trentd`` command: ``serve`` and the admin commands (each prints JSON)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .runtime import Settings

DEV_WARNING = """\
************************************************************************
* trentd is running in --dev mode: ANY access key is accepted and      *
* request signatures are NOT checked. Never expose this to a network.  *
************************************************************************"""


def _env(name: str, default):
    return os.environ.get(f"TRENTD_{name}", default)


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=_env("DATA_DIR", "./trentd-data"))


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", 4599)))
    _data_dir_arg(parser)
    parser.add_argument("--dev", action="store_true", default=_env("DEV", "") == "1")
    parser.add_argument("--account", default=_env("ACCOUNT", "000000000000"))
    parser.add_argument("--region", default=_env("REGION", "us-east-1"))
    parser.add_argument("--workers", type=int, default=int(_env("WORKERS", 1)))
    parser.add_argument("--test-clock", action="store_true", default=_env("TEST_CLOCK", "") == "1",
                        help="allow POST /_trentd/clock to move the service clock (implied by --dev)")
    parser.add_argument("--max-clock-skew", type=int, default=int(_env("MAX_CLOCK_SKEW", 300)),
                        help="seconds a request's signing time may differ from ours (AWS: 300)")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))


def serve(args) -> int:
    import uvicorn

    from .http.app import TrentApp
    from .runtime import open_runtime
    from .store.rootkey import RootKeyError

    settings = Settings(host=args.host, port=args.port, data_dir=args.data_dir, dev=args.dev, account=args.account,
                        region=args.region, workers=args.workers, test_clock=args.test_clock,
                        max_clock_skew=args.max_clock_skew)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.dev:
        print(DEV_WARNING, file=sys.stderr, flush=True)
    try:
        runtime = open_runtime(settings, announce=lambda text: print(text, flush=True))
    except RootKeyError as exc:
        print(f"trentd: refusing to start: {exc}", file=sys.stderr)
        return 2
    options = dict(host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                   server_header=False, timeout_keep_alive=75, lifespan="on")
    if settings.workers > 1:
        # Workers are separate processes: each opens the (already initialised) data dir itself.
        os.environ["TRENTD_SETTINGS_JSON"] = settings.to_json()
        runtime.store.close()
        uvicorn.run("trentd.http.factory:app_from_env", factory=True, workers=settings.workers, **options)
    else:
        uvicorn.run(TrentApp(runtime), **options)
    return 0


def _admin_store(args):
    from .runtime import open_runtime

    settings = Settings(data_dir=args.data_dir)
    return open_runtime(settings, announce=lambda text: print(text, file=sys.stderr))


def _print(obj) -> int:
    print(json.dumps(obj, indent=2))
    return 0


def principals_cmd(args) -> int:
    from .auth import principals

    rt = _admin_store(args)
    with rt.store.write() as tx:
        if args.action == "create":
            record = principals.create_principal(tx, args.account, args.name, args.type)
            return _print({"Arn": record.arn})
        if args.action == "list":
            return _print({"Principals": [{"Arn": p.arn, "Type": p.kind} for p in tx.list_principals()]})
        if args.action == "delete":
            tx.delete_principal(args.principal)
            return _print({"Deleted": args.principal})
        document = Path(args.policy_file).read_text()
        json.loads(document)  # refuse a file that is not JSON
        tx.put_identity_policy(args.principal, args.policy_name, document)
        return _print({"Arn": args.principal, "PolicyName": args.policy_name})


def access_keys_cmd(args) -> int:
    from .auth import principals

    rt = _admin_store(args)
    with rt.store.write() as tx:
        if args.action == "create":
            access_key_id, secret = principals.create_access_key(tx, rt.root_key, args.principal)
            return _print({"AccessKeyId": access_key_id, "SecretAccessKey": secret, "Principal": args.principal})
        if args.action == "list":
            rows = tx.list_access_keys(args.principal)
            return _print({"AccessKeys": [{"AccessKeyId": a, "Principal": p} for a, p, _ in rows]})
        if not tx.delete_access_key(args.access_key_id):
            raise principals.PrincipalError(f"no such access key: {args.access_key_id}")
        return _print({"Deleted": args.access_key_id})


def migrate_cmd(args) -> int:
    from .runtime import open_store

    return _print({"Applied": open_store(Path(args.data_dir)).migrate() or []})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trentd", description="A self-hosted AWS KMS API server.")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_args(commands.add_parser("serve", help="serve the KMS API"))
    _data_dir_arg(commands.add_parser("migrate", help="apply pending schema migrations"))

    principals_parser = commands.add_parser("principals", help="IAM users and roles")
    actions = principals_parser.add_subparsers(dest="action", required=True)
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
    for sub in actions.choices.values():
        _data_dir_arg(sub)

    keys_parser = commands.add_parser("access-keys", help="access keys of principals")
    key_actions = keys_parser.add_subparsers(dest="action", required=True)
    key_actions.add_parser("create").add_argument("--principal", required=True)
    key_actions.add_parser("list").add_argument("--principal")
    key_actions.add_parser("delete").add_argument("--access-key-id", required=True)
    for sub in key_actions.choices.values():
        _data_dir_arg(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": serve, "migrate": migrate_cmd, "principals": principals_cmd, "access-keys": access_keys_cmd}
    try:
        return handlers[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"trentd: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
