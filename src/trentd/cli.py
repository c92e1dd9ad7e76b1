"""The ``trentd`` command line: the parser (options shared by commands, ``serve``'s options, one
subcommand per command family) and the dispatch to what each command does, in admin/ (``serve``
and the admin commands, each of which prints JSON). The console script is ``trentd.cli:main``."""

from __future__ import annotations

import argparse
import functools
import logging
import sys

from . import logs, options
from .admin import audit, migrate, policies, principals, root_key, seed, sessions, transfer
from .admin.common import print_json
from .store.errors import StoreUnavailable
from .store.rootkey import RootKeyError


def _data_dir_arg(parser: argparse.ArgumentParser, root_key: bool = True, database: bool = True) -> None:
    """Where the state is: ``--data-dir`` (SQLite, root key, credentials, audit) and, for several
    nodes, ``--database`` (PostgreSQL) with the ``--root-key-file`` every node shares."""
    _config_arg(parser)
    options.add(parser, "--data-dir", default="./trentd-data", metavar="DIR",
                help="the store, root key, credentials and audit files")
    if database:
        options.add(parser, "--database", metavar="DSN", mask=_masked_dsn,
                    help="PostgreSQL DSN (postgresql://user@host:port/db); none: SQLite in the data dir")
    if root_key:
        options.add(parser, "--root-key-file", metavar="FILE",
                    help="the root key (32 bytes); required with --database, never generated then")
        _pkcs11_args(parser)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    options.add(parser, "--config", metavar="FILE",
                help="a TOML file of options (keys are the long flag names): flag > environment > file > default")


def _masked_dsn(dsn: str) -> str:
    from .store.postgres import redact

    return redact(dsn)


def _pkcs11_args(parser: argparse.ArgumentParser) -> None:
    """The root key in an HSM (docs/operations.md): the PIN comes from an environment variable,
    never from a flag, so it shows in no process list."""
    options.add(parser, "--pkcs11-module", metavar="SO",
                help="PKCS#11 module of the HSM that holds the root key (e.g. libsofthsm2.so)")
    options.add(parser, "--pkcs11-token", metavar="LABEL", help="label of the token that holds the root key")
    options.add(parser, "--pkcs11-pin-env", metavar="VAR",
                help="name of the environment variable holding the token's user PIN")
    options.add(parser, "--pkcs11-key-label", default="trentd-root", metavar="LABEL",
                help="root-key objects are labelled LABEL-v1, LABEL-v2…")


def _serve_args(parser: argparse.ArgumentParser) -> None:
    add = functools.partial(options.add, parser)
    add("--host", default="127.0.0.1", help="listen address")
    add("--port", type=int, default=4599, help="listen port")
    _data_dir_arg(parser)
    add("--dev", switch=True, help="accept ANY access key without checking signatures (never expose it)")
    add("--account", default="000000000000", help="the bootstrap administrator's account, and --dev's default")
    add("--region", default="us-east-1", help="default Region of admin commands and the console")
    add("--workers", type=int, default=1, help="worker processes")
    add("--test-clock", switch=True, help="allow POST /_trentd/clock to move the service clock (implied by --dev)")
    add("--max-clock-skew", type=int, default=300,
        help="seconds a request's signing time may differ from ours (AWS: 300)")
    add("--log-level", default="info", help="debug, info, warning or error")
    add("--log-format", default="text", type=logs.log_format, choices=logs.FORMATS,
        help="text, or json: every line one JSON object of at most 4 KiB (docs/operations.md)")
    add("--access-log", switch=True, negatable=True, shown_default="on with --log-format json, off with text",
        help="one line per API request: request id, operation, principal, source IP, status, error code, duration")
    add("--database-pool-size", type=int, default=10, metavar="N",
        help="with --database: at most N connections per process (each worker has its own pool)")
    add("--audit-fail-open", switch=True,
        help="answer requests even when the audit log cannot be written (otherwise: refuse, 500)")
    add("--audit-stdout", switch=True, help="also write every audit event to stdout, one JSON line each")
    add("--audit-max-bytes", type=int, default=64 * 1024 * 1024,
        help="rotate an audit file at this size; the hash chain continues in the next")
    add("--audit-central-max-lag", type=float, metavar="SECONDS",
        help="refuse requests (500) while the central audit trail is more than SECONDS behind (none: never)")
    add("--audit-retention-days", type=int, metavar="N",
        help="purge central audit trail events older than N days (none: keep forever; local files are kept)")
    tls = parser.add_mutually_exclusive_group()
    options.add(tls, "--tls-cert", metavar="PEM", help="serve HTTPS with this certificate chain (needs --tls-key)")
    options.add(tls, "--tls-self-signed", switch=True,
                help="serve HTTPS with a private CA made once in DATA_DIR/tls (clients trust tls/ca.pem)")
    add("--tls-key", metavar="PEM", help="private key of --tls-cert")
    add("--limit-concurrency", type=int, default=1000,
        help="per worker: connections or requests beyond this many get a 503 (0: no limit)")
    add("--header-timeout", type=float, default=10.0,
        help="seconds a client has to send a request line and headers (408 and close)")
    add("--body-timeout", type=float, default=10.0, help="seconds a client has to send a request body (408 and close)")
    add("--keep-alive-timeout", type=float, default=5.0, metavar="SECONDS",
        help="seconds an idle keep-alive connection stays open (then closed)")
    add("--trusted-proxies", default="", metavar="ADDRESSES",
        help="comma-separated addresses or networks of reverse proxies whose X-Forwarded-For and "
             "X-Forwarded-Proto are believed (none: the TCP peer is the source)")
    add("--xks-timeout", type=float, default=1.0, metavar="SECONDS",
        help="seconds each call to an external key store proxy may take (AWS: 0.25)")
    add("--no-console", switch=True, help="do not serve the web console under /console/ (docs/console.md)")
    add("--metrics-port", type=int, metavar="PORT",
        help="serve Prometheus metrics at GET /metrics on this port, a listener of its own (none: no metrics)")
    add("--metrics-host", default="127.0.0.1", metavar="HOST", help="listen address of --metrics-port")
    # Test and development only: reach XKS proxies that are not at their public name.
    add("--xks-resolve", repeat=True, default=[], metavar="FQDN=HOST:PORT",
        help="TEST ONLY: connect to HOST:PORT for the XKS proxy endpoint https://FQDN "
             "(TLS still checks the certificate against FQDN); repeatable")
    add("--xks-ca-bundle", metavar="PEM", help="TEST ONLY: also trust this CA for XKS proxy certificates")


def serve(args) -> int:
    from .admin.serve import serve as run  # uvicorn and the HTTP stack: only for serve

    return run(args)


def config_cmd(args) -> int:
    """``trentd config show``: serve's effective configuration and where each value comes from.
    Opens no store and needs no data dir."""
    serve_args = ["serve"] + (["--config", args.config] if args.config else [])
    try:
        resolved = options.resolve(build_parser().parse_args(serve_args))
    except options.ConfigError as exc:
        print(f"trentd: {exc}", file=sys.stderr)
        return 2
    return print_json(options.shown(resolved))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trentd", description="A self-hosted AWS KMS API server.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_args(commands.add_parser("serve", help="serve the KMS API"))
    migrate.add_parser(commands, _data_dir_arg)
    config_parser = commands.add_parser("config", help="the configuration trentd serve would use")
    config_actions = config_parser.add_subparsers(dest="action", required=True)
    config_show = config_actions.add_parser("show", help="every option's value and its source (flag, environment, "
                                                         "file, default); opens no store")
    config_show.add_argument("--config", metavar="FILE", help="a TOML file of options (default: TRENTD_CONFIG)")
    principals.add_parser(commands, _data_dir_arg)
    policies.add_parser(commands, _data_dir_arg)
    sessions.add_parser(commands, _data_dir_arg)
    principals.add_access_keys_parser(commands, _data_dir_arg)
    audit.add_parser(commands, _data_dir_arg)
    seed.add_parser(commands, _data_dir_arg)
    transfer.add_parser(commands, _data_dir_arg)
    root_key.add_parser(commands, _data_dir_arg)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, then the environment for what it leaves unset. A flag the command does
    not know is reported with that command's usage (``trentd serve --prot 1`` shows serve's)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    warnings: list[str] = []
    try:
        args = options.resolve(args, warn=warnings.append)
    except options.ConfigError as exc:  # before the log format is known: plain lines
        for text in warnings:
            print(text, file=sys.stderr, flush=True)
        print(f"trentd: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "serve":  # serve prints them once it knows the format (--log-format)
        args._warnings = warnings
    else:
        for text in warnings:
            print(text, file=sys.stderr, flush=True)
    return args


def _command_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost parser of the command given (``principals create`` → its own parser)."""
    for name in ("command", "action"):
        subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, name, None)
        if subcommands is None or chosen not in subcommands.choices:
            break
        parser = subcommands.choices[chosen]
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trentd")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


HANDLERS = {"serve": serve, "migrate": migrate.run, "principals": principals.run,
            "access-keys": principals.run_access_keys, "policies": policies.run, "sessions": sessions.run,
            "config": config_cmd, "audit": audit.run, "root-key": root_key.run, "seed": seed.run,
            "keys": transfer.run}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return HANDLERS[args.command](args)
    except (ValueError, OSError, RootKeyError, StoreUnavailable) as exc:
        logs.notice(f"trentd: {exc}", logging.ERROR, sys.stderr)  # as printed, but in JSON from serve --log-format json
        return 1


if __name__ == "__main__":
    sys.exit(main())
