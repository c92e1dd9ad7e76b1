"""``trentd serve``: from the parsed options to a running server.

In order: the options become ``Settings`` (a contradiction is refused, exit 2); what can fail
later is checked before the store is opened (the port, a certificate); the store is opened (the
first start makes it); metrics and the hardened edge (limits, TLS) are set up; then uvicorn
serves, in this process or in ``--workers`` spawned ones. Every refusal is one line (a JSON line
with ``--log-format json``) and an exit status: 2 for what must be changed, 1 for what may pass.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn

from .. import logs
from ..http import exporter, limits, tls, workers
from ..http.app import TrentApp
from ..http.startup import CannotServe, banner, check_port, preflight
from ..runtime import Runtime, Settings, open_runtime
from ..store.errors import StoreUnavailable
from ..store.rootkey import RootKeyError
from .common import root_key_settings, store_refusals

DEV_WARNING = """\
************************************************************************
* trentd is running in --dev mode: ANY access key is accepted and      *
* request signatures are NOT checked. Never expose this to a network.  *
************************************************************************"""

# Workers are spawned processes: they build the app from the environment by this import string.
APP_FACTORY = "trentd.http.factory:app_from_env"


def serve(args) -> int:
    # Before anything is printed: in json mode every line, from here on, is a JSON object.
    logs.setup(args.log_format, args.log_level)
    for text in getattr(args, "_warnings", ()):  # from reading the options (options.resolve)
        logs.notice(text, logging.WARNING, sys.stderr)
    try:
        settings, proxies = _settings(args)
        _preflight(settings)
        # SIGHUP reloads the TLS certificate once serving (http/tls.py). Until then it waits, blocked
        # (its default action would end the process); spawned workers inherit the block.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        _warn(settings)
        runtime = _open(settings)
        server_options = _prepare(runtime, settings, args.log_level, proxies)
    except CannotServe as exc:
        _fail(f"trentd: {exc}")
        return exc.exit_code
    _run(runtime, settings, args.log_level, server_options)
    return 0


def _settings(args) -> tuple[Settings, str | None]:
    """The settings of the options, and the trusted proxies in uvicorn's form; CannotServe (exit 2)
    for options that contradict each other."""
    settings = Settings(host=args.host, port=args.port, data_dir=args.data_dir, dev=args.dev, account=args.account,
                        region=args.region, workers=args.workers, test_clock=args.test_clock,
                        max_clock_skew=args.max_clock_skew, database=args.database,
                        database_pool_size=args.database_pool_size,
                        **root_key_settings(args))
    settings.audit_fail_open, settings.audit_stdout = args.audit_fail_open, args.audit_stdout
    settings.audit_max_bytes = args.audit_max_bytes
    if args.audit_central_max_lag is not None and not args.audit_central_max_lag > 0:
        raise CannotServe("--audit-central-max-lag must be a number of seconds above 0", 2)
    if args.audit_retention_days is not None and args.audit_retention_days < 1:
        raise CannotServe("--audit-retention-days must be at least 1", 2)
    settings.audit_central_max_lag = args.audit_central_max_lag
    settings.audit_retention_days = args.audit_retention_days
    settings.log_format = args.log_format
    # On by default with JSON (where a collector wants it); off with text, keeping its cost out of
    # the default configuration's hot path.
    settings.access_log = args.log_format == "json" if args.access_log is None else args.access_log
    if bool(args.tls_cert) != bool(args.tls_key):
        raise CannotServe("--tls-cert and --tls-key go together", 2)
    if args.tls_cert and args.tls_self_signed:  # argparse sees only flags; a variable or the file may set both
        raise CannotServe("choose one of --tls-cert and --tls-self-signed", 2)
    try:
        proxies = trusted_proxies(args.trusted_proxies)
    except ValueError as exc:
        raise CannotServe(f"--trusted-proxies: {exc}", 2) from None
    settings.tls_cert, settings.tls_key, settings.tls_self_signed = args.tls_cert, args.tls_key, args.tls_self_signed
    settings.limit_concurrency = args.limit_concurrency or None
    settings.header_timeout, settings.body_timeout = args.header_timeout, args.body_timeout
    if not args.keep_alive_timeout > 0:
        raise CannotServe("--keep-alive-timeout must be a positive number of seconds", 2)
    settings.keep_alive_timeout = args.keep_alive_timeout
    settings.xks_resolve = xks_resolve(args.xks_resolve) or None  # ValueError: exit 1, as any bad value
    settings.xks_ca_bundle, settings.xks_timeout = args.xks_ca_bundle, args.xks_timeout
    settings.console = not args.no_console
    settings.metrics_port, settings.metrics_host = args.metrics_port, args.metrics_host
    if settings.metrics_port is not None and not (0 < settings.metrics_port < 65536
                                                  and settings.metrics_port != settings.port):
        raise CannotServe("--metrics-port must be a port from 1 to 65535 other than --port", 2)
    return settings, proxies


def xks_resolve(values: list[str]) -> dict[str, str]:
    """--xks-resolve FQDN=HOST:PORT…, as {fqdn: "host:port"}; ValueError names a bad one."""
    out = {}
    for value in values:
        name, _, target = value.partition("=")
        host, _, port = target.rpartition(":")
        if not name or not host or not port.isdigit():
            raise ValueError(f"--xks-resolve wants FQDN=HOST:PORT, not {value!r}")
        out[name.lower()] = target
    return out


def trusted_proxies(value: str) -> str | None:
    """The --trusted-proxies list in the form uvicorn understands (it silently treats an entry it
    cannot parse, such as "10.0.0.1/8", as a name no peer ever has); ValueError names a bad one."""
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if entry:
            address = ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)
            entries.append(str(address))
    return ",".join(entries) or None


def _preflight(settings: Settings) -> None:
    """What can fail once the store is open, said before it is (http/startup.py)."""
    preflight(settings)
    if settings.metrics_port is not None:  # said first too; bound for good once the store is open
        check_port(settings.metrics_host, settings.metrics_port)


def _warn(settings: Settings) -> None:
    """How this server runs, when it is unsafe or limited: on stderr before the store is opened."""
    if settings.dev:
        logs.notice(DEV_WARNING, logging.WARNING, sys.stderr)
    if settings.xks_resolve or settings.xks_ca_bundle:
        logs.notice("trentd: --xks-resolve/--xks-ca-bundle are for tests and development only: XKS proxies are "
                    "reached at other addresses or trusted through a private CA", logging.WARNING, sys.stderr)
    warning = limits.raise_open_files_limit(settings.limit_concurrency)
    if warning:
        logs.notice(f"trentd: warning: {warning}", logging.WARNING, sys.stderr)


def _open(settings: Settings) -> Runtime:
    """The runtime over the store, made on first start."""
    try:
        with store_refusals():
            # The secret only on a terminal, and never in JSON, which is meant for a log collector.
            return open_runtime(settings, announce=logs.notice,
                                show_secret=sys.stdout.isatty() and not logs.json_mode())
    except RootKeyError as exc:
        raise CannotServe(f"refusing to start: {exc}", 2) from None
    except StoreUnavailable as exc:
        raise CannotServe(f"cannot open the store: {exc}", 1) from None


def _prepare(runtime: Runtime, settings: Settings, log_level: str, proxies: str | None) -> dict:
    """The metrics listener, and uvicorn's options; on a refusal the store is closed again."""
    problem = _start_metrics(settings)
    if problem:  # taken since the check above
        runtime.store.close()
        raise CannotServe(problem, 1)
    # X-Forwarded-For/-Proto only from the proxies named: uvicorn by default believes them from
    # 127.0.0.1, so any local process could choose the address that aws:SourceIp and the audit
    # trail see, and make aws:SecureTransport true over plain HTTP.
    server_options = dict(host=settings.host, port=settings.port, log_level=log_level, access_log=False,
                          server_header=False, timeout_keep_alive=settings.keep_alive_timeout, lifespan="on",
                          proxy_headers=proxies is not None, forwarded_allow_ips=proxies)
    try:
        server_options.update(_edge_options(settings))
    except (OSError, ValueError) as exc:
        runtime.store.close()
        raise CannotServe(f"cannot set up TLS: {exc}", 2) from None
    if logs.json_mode():  # uvicorn's own lines (start, supervisor, shutdown) as JSON too, in every process
        server_options["log_config"] = logs.logging_config(log_level)
    return server_options


def _run(runtime: Runtime, settings: Settings, log_level: str, server_options: dict) -> None:
    """Serve until stopped: in this process, or in ``--workers`` spawned ones."""
    if settings.workers > 1:
        # Workers are separate processes: each opens the (already initialised) data dir itself.
        os.environ["TRENTD_SETTINGS_JSON"] = settings.to_json()
        os.environ["TRENTD_LOG_LEVEL"] = log_level
        runtime.store.close()
        runtime.root_key.close()  # each worker opens its own (an HSM session is per process)
        logs.notice(banner(settings))
        workers.run(APP_FACTORY, workers=settings.workers, **server_options)
    else:
        app = TrentApp(runtime)
        logs.notice(banner(settings))
        uvicorn.run(app, **server_options)


def _fail(text: str) -> None:
    """Why ``serve`` stops: stderr, or a JSON line."""
    logs.notice(text, logging.ERROR, sys.stderr)


def _start_metrics(settings: Settings) -> str | None:
    """--metrics-port: the listener, in this (the parent) process, over a freshly emptied
    DATA_DIR/metrics that the workers write to (http/exporter.py). A problem, or None."""
    if settings.metrics_port is None:
        return None  # and prometheus_client is never imported (http/exporter.py imports it when used)
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
    limits.export(limits.Limits(header_timeout=settings.header_timeout, body_timeout=settings.body_timeout))
    # A stop waits this long for requests in flight; idle keep-alive connections close at once
    # (limits.GuardedHttpToolsProtocol.shutdown), so a SIGTERM stops within a second.
    options: dict[str, Any] = dict(http=limits.PROTOCOL, limit_concurrency=settings.limit_concurrency,
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
