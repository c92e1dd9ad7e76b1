"""The ``trentd`` command: ``serve`` and the admin commands (each prints JSON)."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import json
import logging
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

from . import logs, options
from .runtime import Settings

DEV_WARNING = """\
************************************************************************
* trentd is running in --dev mode: ANY access key is accepted and      *
* request signatures are NOT checked. Never expose this to a network.  *
************************************************************************"""


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


def _root_key_settings(args) -> dict:
    return dict(root_key_file=args.root_key_file, pkcs11_module=args.pkcs11_module, pkcs11_token=args.pkcs11_token,
                pkcs11_pin_env=args.pkcs11_pin_env, pkcs11_label=args.pkcs11_key_label)


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
    add("--max-clock-skew", type=int, default=300, help="seconds a request's signing time may differ from ours (AWS: 300)")
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


def _xks_resolve(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, _, target = value.partition("=")
        host, _, port = target.rpartition(":")
        if not name or not host or not port.isdigit():
            raise ValueError(f"--xks-resolve wants FQDN=HOST:PORT, not {value!r}")
        out[name.lower()] = target
    return out


def _trusted_proxies(value: str) -> str | None:
    """The --trusted-proxies list in the form uvicorn understands (it silently treats an entry it
    cannot parse, such as "10.0.0.1/8", as a name no peer ever has); ValueError names a bad one."""
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if entry:
            entries.append(str(ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)))
    return ",".join(entries) or None


def serve(args) -> int:
    import uvicorn

    from .http import limits, workers
    from .http.app import TrentApp
    from .http.startup import CannotServe, banner, check_port, preflight
    from .runtime import open_runtime
    from .store.errors import StoreUnavailable
    from .store.rootkey import RootKeyError

    # Before anything is printed: in json mode every line, from here on, is a JSON object.
    logs.setup(args.log_format, args.log_level)
    for text in getattr(args, "_warnings", ()):  # from reading the options (options.resolve)
        logs.notice(text, logging.WARNING, sys.stderr)
    settings = Settings(host=args.host, port=args.port, data_dir=args.data_dir, dev=args.dev, account=args.account,
                        region=args.region, workers=args.workers, test_clock=args.test_clock,
                        max_clock_skew=args.max_clock_skew, database=args.database,
                        database_pool_size=args.database_pool_size,
                        **_root_key_settings(args))
    settings.audit_fail_open, settings.audit_stdout = args.audit_fail_open, args.audit_stdout
    settings.audit_max_bytes = args.audit_max_bytes
    settings.log_format = args.log_format
    # On by default with JSON (where a collector wants it); off with text, keeping its cost out of
    # the default configuration's hot path.
    settings.access_log = args.log_format == "json" if args.access_log is None else args.access_log
    if bool(args.tls_cert) != bool(args.tls_key):
        _fail("trentd: --tls-cert and --tls-key go together")
        return 2
    if args.tls_cert and args.tls_self_signed:  # argparse sees only flags; a variable or the file may set both
        _fail("trentd: choose one of --tls-cert and --tls-self-signed")
        return 2
    try:
        proxies = _trusted_proxies(args.trusted_proxies)
    except ValueError as exc:
        _fail(f"trentd: --trusted-proxies: {exc}")
        return 2
    settings.tls_cert, settings.tls_key, settings.tls_self_signed = args.tls_cert, args.tls_key, args.tls_self_signed
    settings.limit_concurrency = args.limit_concurrency or None
    settings.header_timeout, settings.body_timeout = args.header_timeout, args.body_timeout
    if not args.keep_alive_timeout > 0:
        _fail("trentd: --keep-alive-timeout must be a positive number of seconds")
        return 2
    settings.keep_alive_timeout = args.keep_alive_timeout
    settings.xks_resolve = _xks_resolve(args.xks_resolve) or None
    settings.xks_ca_bundle, settings.xks_timeout = args.xks_ca_bundle, args.xks_timeout
    settings.console = not args.no_console
    settings.metrics_port, settings.metrics_host = args.metrics_port, args.metrics_host
    if settings.metrics_port is not None and not (0 < settings.metrics_port < 65536
                                                  and settings.metrics_port != settings.port):
        _fail("trentd: --metrics-port must be a port from 1 to 65535 other than --port")
        return 2
    try:
        preflight(settings)
        if settings.metrics_port is not None:  # said first too; bound for good once the store is open
            check_port(settings.metrics_host, settings.metrics_port)
    except CannotServe as exc:
        _fail(f"trentd: {exc}")
        return exc.exit_code
    # SIGHUP reloads the TLS certificate once serving (http/tls.py). Until then it waits, blocked
    # (its default action would end the process); spawned workers inherit the block.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    if settings.dev:
        logs.notice(DEV_WARNING, logging.WARNING, sys.stderr)
    if settings.xks_resolve or settings.xks_ca_bundle:
        logs.notice("trentd: --xks-resolve/--xks-ca-bundle are for tests and development only: XKS proxies are "
                    "reached at other addresses or trusted through a private CA", logging.WARNING, sys.stderr)
    warning = limits.raise_open_files_limit(settings.limit_concurrency)
    if warning:
        logs.notice(f"trentd: warning: {warning}", logging.WARNING, sys.stderr)
    try:
        with _store_refusals():
            # The secret only on a terminal, and never in JSON, which is meant for a log collector.
            runtime = open_runtime(settings, announce=logs.notice,
                                   show_secret=sys.stdout.isatty() and not logs.json_mode())
    except RootKeyError as exc:
        _fail(f"trentd: refusing to start: {exc}")
        return 2
    except StoreUnavailable as exc:
        _fail(f"trentd: cannot open the store: {exc}")
        return 1
    problem = _start_metrics(settings)
    if problem:  # taken since the check above
        runtime.store.close()
        _fail(f"trentd: {problem}")
        return 1
    # X-Forwarded-For/-Proto only from the proxies named: uvicorn by default believes them from
    # 127.0.0.1, so any local process could choose the address that aws:SourceIp and the audit
    # trail see, and make aws:SecureTransport true over plain HTTP.
    server_options = dict(host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                          server_header=False, timeout_keep_alive=settings.keep_alive_timeout, lifespan="on",
                          proxy_headers=proxies is not None, forwarded_allow_ips=proxies)
    try:
        server_options.update(_edge_options(settings))
    except (OSError, ValueError) as exc:
        runtime.store.close()
        _fail(f"trentd: cannot set up TLS: {exc}")
        return 2
    if logs.json_mode():  # uvicorn's own lines (start, supervisor, shutdown) as JSON too, in every process
        server_options["log_config"] = logs.logging_config(args.log_level)
    if settings.workers > 1:
        # Workers are separate processes: each opens the (already initialised) data dir itself.
        os.environ["TRENTD_SETTINGS_JSON"] = settings.to_json()
        os.environ["TRENTD_LOG_LEVEL"] = args.log_level
        runtime.store.close()
        runtime.root_key.close()  # each worker opens its own (an HSM session is per process)
        logs.notice(banner(settings))
        workers.run("trentd.http.factory:app_from_env", workers=settings.workers, **server_options)
    else:
        app = TrentApp(runtime)
        logs.notice(banner(settings))
        uvicorn.run(app, **server_options)
    return 0


def _fail(text: str) -> None:
    """Why ``serve`` stops (or a warning about how it runs): stderr, or a JSON line."""
    logs.notice(text, logging.ERROR, sys.stderr)


def _start_metrics(settings: Settings) -> str | None:
    """--metrics-port: the listener, in this (the parent) process, over a freshly emptied
    DATA_DIR/metrics that the workers write to (http/exporter.py). A problem, or None."""
    if settings.metrics_port is None:
        return None  # and prometheus_client is never imported
    from .http import exporter

    try:
        exporter.start(settings.metrics_host, settings.metrics_port, exporter.prepare(settings.data_dir))
    except OSError as exc:
        return f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: {exc}"
    logs.notice(f"trentd: Prometheus metrics at http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    return None


def _edge_options(settings: Settings) -> dict:
    """uvicorn options of the hardened edge: the guarded HTTP protocol (header limits and
    deadline, http/limits.py), concurrency limit, and TLS (http/tls.py). Workers are spawned
    processes: everything here is an import string, a plain value or the environment."""
    from .http import limits, tls

    limits.export(limits.Limits(header_timeout=settings.header_timeout, body_timeout=settings.body_timeout))
    # A stop waits this long for requests in flight; idle keep-alive connections close at once
    # (limits.GuardedHttpToolsProtocol.shutdown), so a SIGTERM stops within a second.
    options = dict(http=limits.PROTOCOL, limit_concurrency=settings.limit_concurrency,
                   timeout_graceful_shutdown=tls.GRACEFUL_SHUTDOWN_SECONDS)
    cert, key = settings.tls_cert, settings.tls_key
    if settings.tls_self_signed:
        paths = tls.ensure_self_signed(Path(settings.data_dir) / "tls", settings.host)
        cert, key = str(paths.cert), str(paths.key)
        logs.notice(f"trentd: HTTPS with a private CA; clients trust it with AWS_CA_BUNDLE={paths.ca}")
    if cert:
        tls.server_context_for(cert, key)  # fail here, with a clear message, rather than in each worker
        # The stdlib event loop, whose SSL transport can be made to send handshake alerts (http/tls.py).
        options.update(ssl_certfile=cert, ssl_keyfile=key, ssl_context_factory=tls.server_context, loop="asyncio")
    return options


@contextmanager
def _store_refusals():
    """A store that cannot be used as configured (StoreConfigError): one line, exit 2."""
    from .store.errors import StoreConfigError

    try:
        yield
    except StoreConfigError as exc:
        logs.notice(f"trentd: {exc}", logging.ERROR, sys.stderr)
        raise SystemExit(2) from None


def _admin_store(args):
    from .runtime import open_runtime

    settings = Settings(data_dir=args.data_dir, database=args.database, **_root_key_settings(args))
    with _store_refusals():  # never makes a store: a typo in --data-dir is refused
        return open_runtime(settings, announce=lambda text: print(text, file=sys.stderr),
                            show_secret=sys.stderr.isatty(), create=False)


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
        if args.action == "put-trust-policy":
            from .sts.admin import put_trust_policy

            return _print(put_trust_policy(tx, args.principal, Path(args.policy_file).read_text()))
        from .auth.policy import parse_policy
        from .errors import AWSError

        document = Path(args.policy_file).read_text()
        if tx.get_principal(args.principal) is None:
            raise principals.PrincipalError(f"no such principal: {args.principal}")
        try:  # IAM's grammar, as PutUserPolicy checks it: a malformed policy would fail every request
            parse_policy(document, resource_policy=False)
        except AWSError as exc:
            raise principals.PrincipalError(f"{exc.code}: {exc.message}") from None
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


def policies_cmd(args) -> int:
    from .sts.admin import policies_cmd as run

    return _print(run(args, _admin_store))


def sessions_cmd(args) -> int:
    from .audit import AuditUnavailable
    from .sts import revoke

    moment = None
    if args.issued_before is not None:
        try:
            moment = revoke.parse_time(args.issued_before)
        except ValueError as exc:
            print(f"trentd: --issued-before: {exc}", file=sys.stderr)
            return 2
    try:
        return _print(revoke.revoke(_admin_store(args), args.principal, moment))
    except AuditUnavailable as exc:
        print(f"trentd: nothing was changed: the audit log cannot be written ({exc})", file=sys.stderr)
        return 1


def audit_cmd(args) -> int:
    from .audit import commands as audit_commands

    return audit_commands.run(args, _admin_store)


def seed_cmd(args) -> int:
    from . import seed

    return seed.run(args, _admin_store)


def keys_cmd(args) -> int:
    from . import transfer

    return transfer.run(args, _admin_store)


def root_key_cmd(args) -> int:
    from .rotation import rotate

    settings = Settings(data_dir=args.data_dir, database=args.database, **_root_key_settings(args))
    progress = lambda text: print(f"trentd: {text}", file=sys.stderr, flush=True)  # noqa: E731
    with _store_refusals():
        return _print(rotate(settings, grace=args.grace, keep_old=args.keep_old, progress=progress))


def migrate_cmd(args) -> int:
    """Prepare the store before servers start (a migration job before a rollout): the schema, and
    on an empty store the first start, when the root key is at hand (SQLite's own, or one
    supplied). A shared database without a root key gets the schema alone."""
    from .runtime import make_store, open_runtime

    root_key_given = args.root_key_file or args.pkcs11_module or args.pkcs11_token
    if args.database and not root_key_given:
        with _store_refusals():
            store = make_store(Path(args.data_dir), args.database)
        try:
            return _print({"Applied": store.migrate(), "Store": store.kind, "Initialised": _initialised(store)})
        finally:
            store.close()
    settings = Settings(data_dir=args.data_dir, database=args.database, account=args.account,
                        **_root_key_settings(args))
    with _store_refusals():
        runtime = open_runtime(settings, announce=lambda text: print(text, file=sys.stderr),
                               show_secret=sys.stderr.isatty())
    try:
        return _print({"Applied": list(runtime.migrations_applied), "Store": runtime.store.kind, "Initialised": True})
    finally:
        runtime.store.close()
        runtime.root_key.close()


def _initialised(store) -> bool:
    from .runtime import INITIALIZED_META, store_state

    return store_state(store)[INITIALIZED_META] is not None


def config_cmd(args) -> int:
    """``trentd config show``: serve's effective configuration and where each value comes from.
    Opens no store and needs no data dir."""
    serve_args = ["serve"] + (["--config", args.config] if args.config else [])
    try:
        resolved = options.resolve(build_parser().parse_args(serve_args))
    except options.ConfigError as exc:
        print(f"trentd: {exc}", file=sys.stderr)
        return 2
    return _print(options.shown(resolved))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trentd", description="A self-hosted AWS KMS API server.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_args(commands.add_parser("serve", help="serve the KMS API"))
    migrate = commands.add_parser("migrate", help="prepare the store: the schema, and with the root key at hand "
                                                  "the first start (before servers start)")
    _data_dir_arg(migrate)
    options.add(migrate, "--account", default="000000000000",
                help="the bootstrap administrator's account, made by the first start (as serve's --account)")
    config_parser = commands.add_parser("config", help="the configuration trentd serve would use")
    config_actions = config_parser.add_subparsers(dest="action", required=True)
    config_show = config_actions.add_parser("show", help="every option's value and its source (flag, environment, "
                                                         "file, default); opens no store")
    config_show.add_argument("--config", metavar="FILE", help="a TOML file of options (default: TRENTD_CONFIG)")

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
    trust = actions.add_parser("put-trust-policy", help="who may assume a role (sts:AssumeRole)")
    trust.add_argument("--principal", required=True)
    trust.add_argument("--policy-file", required=True)
    for sub in actions.choices.values():
        _data_dir_arg(sub)

    from .sts.admin import add_policies_parser

    add_policies_parser(commands, _data_dir_arg)

    from .sts import revoke

    revoke.add_parser(commands, _data_dir_arg)

    keys_parser = commands.add_parser("access-keys", help="access keys of principals")
    key_actions = keys_parser.add_subparsers(dest="action", required=True)
    key_actions.add_parser("create").add_argument("--principal", required=True)
    key_actions.add_parser("list").add_argument("--principal")
    key_actions.add_parser("delete").add_argument("--access-key-id", required=True)
    for sub in key_actions.choices.values():
        _data_dir_arg(sub)

    from .audit import commands as audit_commands

    audit_commands.add_parser(commands, _data_dir_arg)

    from . import seed, transfer

    seed.add_parser(commands, _data_dir_arg)
    transfer.add_parser(commands, _data_dir_arg)

    from .rotation import DEFAULT_GRACE_SECONDS

    root_key_parser = commands.add_parser("root-key", help="the root key that wraps everything stored")
    root_key_actions = root_key_parser.add_subparsers(dest="action", required=True)
    rotate = root_key_actions.add_parser(
        "rotate", help="make a new root key and rewrap every stored secret under it (nodes keep serving)")
    rotate.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS,
                        help=f"seconds to let running nodes switch to the new key before rewrapping "
                             f"(default {DEFAULT_GRACE_SECONDS:g}; 0 when no node is running)")
    rotate.add_argument("--keep-old", action="store_true", help="keep the previous root key in the file or token")
    _data_dir_arg(rotate)
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


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    handlers = {"serve": serve, "migrate": migrate_cmd, "principals": principals_cmd, "access-keys": access_keys_cmd,
                "policies": policies_cmd, "sessions": sessions_cmd, "config": config_cmd,
                "audit": audit_cmd, "root-key": root_key_cmd, "seed": seed_cmd, "keys": keys_cmd}
    from .store.errors import StoreUnavailable
    from .store.rootkey import RootKeyError

    try:
        return handlers[args.command](args)
    except (ValueError, OSError, RootKeyError, StoreUnavailable) as exc:
        logs.notice(f"trentd: {exc}", logging.ERROR, sys.stderr)  # as printed, but in JSON from serve --log-format json
        return 1


if __name__ == "__main__":
    sys.exit(main())
