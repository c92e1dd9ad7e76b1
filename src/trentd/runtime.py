"""Settings, and opening a data dir: migrations, the root key, first-start work.

First start means an empty *store*. Its work (schema, root key, canary, bootstrap administrator)
runs once, in the process that starts serving, before any worker accepts a request.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import audit, datadir, metrics
from .auth import key_usage, principals
from .clock import ServiceClock
from .kms import api as kms_api
from .kms.authorize import Authorizer
from .kms.service import Service
from .store import rootkey
from .store.errors import StoreConfigError
from .store.sqlite import SQLiteStore
from .sts import sessions as sts_sessions
from .xks.client import XksConnector

if TYPE_CHECKING:
    from .store.pkcs11 import Pkcs11Provider
    from .store.postgres import PostgresStore

log = logging.getLogger("trentd")
INITIALIZED_META = "initialized"
CANARY_META = "root_key_canary"

# Work the service clock makes due, run every second on every node and whenever the test clock
# moves: KMS's jobs (kms/api.py), STS's, and the flush of access keys' last uses.
BACKGROUND_JOBS = (
    *kms_api.BACKGROUND_JOBS,
    sts_sessions.sweep_expired,  # temporary credentials long expired (STS)
    key_usage.flush,  # access keys' last uses noted by this process (IAM GetAccessKeyLastUsed)
)


# Each job's label in trentd_background_job_runs_total: its module and function.
JOB_NAMES = {job: f"{job.__module__.rsplit('.', 1)[-1]}.{job.__name__}" for job in BACKGROUND_JOBS}


def run_background_jobs(svc) -> None:
    """Run every job; one failing (a store outage) does not keep the others from running."""
    failure = None
    for job in BACKGROUND_JOBS:
        failed = False
        try:
            job(svc)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other jobs had their turn
            failure, failed = failure or exc, True
        if metrics.ACTIVE is not None:
            metrics.ACTIVE.job(JOB_NAMES.get(job) or job.__name__, failed)
    if failure is not None:
        raise failure


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 4599
    data_dir: str = "./trentd-data"
    dev: bool = False
    account: str = "000000000000"
    region: str = "us-east-1"
    workers: int = 1
    test_clock: bool = False
    max_clock_skew: int = 300
    audit_fail_open: bool = False  # answer requests even when the audit log cannot be written
    audit_stdout: bool = False  # also write each audit event to stdout
    audit_max_bytes: int = 64 * 1024 * 1024  # size at which an audit file is rotated
    audit_central_max_lag: float | None = None  # refuse requests while the central trail lags more (seconds)
    audit_retention_days: int | None = None  # purge central trail events older than this; None: keep
    database: str | None = None  # a PostgreSQL DSN; None: SQLite under data_dir
    root_key_file: str | None = None  # supplied root key (required with database)
    database_pool_size: int = 10  # PostgreSQL: connections per process, at most
    pkcs11_module: str | None = None  # root key in an HSM: the PKCS#11 module (.so) ...
    pkcs11_token: str | None = None  # ... the token's label ...
    pkcs11_pin_env: str | None = None  # ... and the environment variable holding the user PIN
    pkcs11_label: str = "trentd-root"  # root-key objects are labelled <label>-v<N>
    tls_cert: str | None = None  # HTTPS: the server certificate chain (PEM) ...
    tls_key: str | None = None  # ... and its private key (PEM)
    tls_self_signed: bool = False  # HTTPS with a private CA made once under DATA_DIR/tls
    limit_concurrency: int | None = 1000  # per worker: connections/requests beyond it get a 503
    header_timeout: float = 10.0  # seconds a client has to send a request's line and headers
    body_timeout: float = 10.0  # seconds a client has to send a request's body
    keep_alive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    xks_resolve: dict | None = None  # TEST ONLY: XKS proxy host name -> "HOST:PORT" to connect to
    xks_ca_bundle: str | None = None  # TEST ONLY: also trust this CA (PEM) for XKS proxies
    xks_timeout: float = 1.0  # seconds per XKS proxy call (AWS: 0.25)
    xks_proxy_port: int | None = None  # trentd as an XKS proxy (http/xks.py): its HTTPS listener ...
    xks_proxy_host: str = "127.0.0.1"
    xks_proxy_tls_cert: str | None = None  # ... its certificate (resolved by serve: this, the API's or self-signed)
    xks_proxy_tls_key: str | None = None
    xks_proxy_client_ca: str | None = None  # mutual TLS: clients' certificates chain to this CA ...
    xks_proxy_client_cn: list[str] | None = None  # ... and name one of these subjects (CN)
    console: bool = True  # the web console under /console/ (--no-console turns it off; docs/console.md)
    log_format: str = "text"  # text, or json: one JSON object a line (trentd/logs.py)
    access_log: bool = False  # one line per API request (http/access.py)
    metrics_port: int | None = None  # Prometheus metrics listener (http/exporter.py); None: metrics off
    metrics_host: str = "127.0.0.1"

    @property
    def clock_movable(self) -> bool:
        return self.test_clock or self.dev

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Settings":
        return cls(**json.loads(text))


@dataclass
class Runtime:
    settings: Settings
    store: SQLiteStore | PostgresStore
    root_key: rootkey.RootKeyRing
    clock: ServiceClock
    service: Service
    audit_hmac_key: bytes | None = None  # key of the audit log's salted hashes (audit/__init__.py)
    migrations_applied: tuple[int, ...] = ()  # the schema versions this opening applied


def make_store(data_dir: Path, database: str | None = None, pool_size: int | None = None, *,
               create: bool = True) -> SQLiteStore | PostgresStore:
    """The store a node uses: PostgreSQL when a DSN is given, else SQLite under the data dir;
    reached once (``check``) so that a store that cannot be used fails here, in one line.
    ``create=False`` (admin commands): never make a data dir or a SQLite file."""
    store: SQLiteStore | PostgresStore
    if database:
        from .store.postgres import POOL_MAX, PostgresStore

        store = PostgresStore(database, max_size=pool_size or POOL_MAX)
    else:
        if create:
            _ensure_dir(data_dir)
        elif not (data_dir / "trentd.db").is_file():
            raise no_store(data_dir, None, "trentd.db does not exist")
        store = SQLiteStore(data_dir / "trentd.db")
    try:
        store.check()
    except BaseException:
        store.close()
        raise
    return store


def make_data_dir(data_dir: Path) -> None:
    """The data dir, made (0700) if missing, and everything in it private (datadir.py)."""
    _ensure_dir(data_dir)
    datadir.make_private(data_dir)


def _ensure_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=datadir.DIR_MODE)
    except FileExistsError:
        raise StoreConfigError(f"cannot use the data dir {data_dir}: it is not a directory") from None
    except OSError as exc:
        raise StoreConfigError(f"cannot use the data dir {data_dir}: {exc.strerror or exc}") from None


def no_store(data_dir: Path, database: str | None, why: str) -> StoreConfigError:
    """An admin command's refusal to work on a store that does not exist: it would make one."""
    if database:
        from .store.postgres import redact

        return StoreConfigError(f"no trentd store in {redact(database)} ({why}); "
                                f"`trentd serve --database DSN --root-key-file FILE` initialises it")
    return StoreConfigError(f"no trentd store in {data_dir} ({why}); `trentd serve --data-dir {data_dir}` creates one")


def uninitialised(settings: Settings) -> StoreConfigError:
    why = "the database is not initialised" if settings.database else "trentd.db is not initialised"
    return no_store(Path(settings.data_dir), settings.database, why)


def store_state(store) -> dict[str, str | None]:
    """The meta values a start decides on, read without migrating (an empty store has no meta
    table yet): whether the store is initialised, and its root-key canary."""
    with store.read() as tx:
        if not tx.has_table("meta"):
            return {INITIALIZED_META: None, CANARY_META: None}
        return {name: tx.get_meta(name) for name in (INITIALIZED_META, CANARY_META)}


def check_root_key(root_key: rootkey.RootKeyRing, canary: str | None, where: str) -> None:
    """Refuse a root key that cannot unwrap the store's canary: it is not the store's root key."""
    if canary is None:  # written with the initialisation mark: a damaged store
        raise rootkey.RootKeyError(f"the store ({where}) is initialised but has no root-key canary")
    try:
        rootkey.check_canary(root_key, base64.b64decode(canary))
    except rootkey.RootKeyUnavailable:
        raise
    except rootkey.RootKeyError:
        raise rootkey.RootKeyError(f"this root key does not match the store ({where}): "
                                   "it cannot unwrap the store's canary") from None


def migrated(store):
    """``store`` with its pending migrations applied; closed again if that fails."""
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def _root_key_file(settings: Settings) -> Path | None:
    """The root key file this node reads; None with an HSM (and with --database but no file: refused later)."""
    if settings.pkcs11_module or settings.pkcs11_token:
        return None
    if settings.root_key_file:
        return Path(settings.root_key_file)
    if settings.database:
        return None  # it must be supplied (load_root_key says so)
    return Path(settings.data_dir) / "root.key"


def load_root_key(settings: Settings, first_start: bool, store=None) -> rootkey.RootKeyRing:
    """The root-key ring of this node. PKCS#11: keys in the HSM (the first generated there at
    first start). A supplied root key file is only ever read. Without either, SQLite keeps
    DATA_DIR/root.key (generated at first start); a shared database needs the key supplied, never
    generated by one node, so every node unwraps with the same key. With a store, the ring
    follows the root key the store names as current (root-key rotation, docs/operations.md)."""
    current = (lambda: store.read_meta(rootkey.ROOT_KEY_META)) if store is not None else None
    provider: Pkcs11Provider | rootkey.FileProvider
    if settings.pkcs11_module or settings.pkcs11_token:
        from .store.pkcs11 import Pkcs11Provider

        if not (settings.pkcs11_module and settings.pkcs11_token and settings.pkcs11_pin_env):
            raise rootkey.RootKeyError("the pkcs11 root key needs --pkcs11-module SO, --pkcs11-token LABEL "
                                       "and --pkcs11-pin-env VAR")
        if settings.root_key_file:
            raise rootkey.RootKeyError("choose one root key: --root-key-file or --pkcs11-module")
        pin = os.environ.get(settings.pkcs11_pin_env)
        if not pin:
            raise rootkey.RootKeyError(f"the PKCS#11 PIN variable {settings.pkcs11_pin_env} is not set")
        provider = Pkcs11Provider(settings.pkcs11_module, settings.pkcs11_token, pin,
                                  label=settings.pkcs11_label, create=first_start)
    elif settings.root_key_file:
        provider = rootkey.FileProvider(Path(settings.root_key_file))
    elif settings.database:
        raise rootkey.RootKeyError("with --database the root key must be supplied: --root-key-file FILE "
                                   "(32 random bytes, mode 0600, the same file on every node) or --pkcs11-module")
    else:
        provider = rootkey.FileProvider(Path(settings.data_dir) / "root.key", create=first_start)
    try:
        return rootkey.RootKeyRing(provider, current)
    except BaseException:
        provider.close()
        raise


def open_runtime(settings: Settings, *, announce=print, show_secret: bool = False, create: bool = True) -> Runtime:
    """Open (and on first start, initialise) the data dir. ``announce`` tells the person starting
    the server where the administrator's credentials are; the secret itself only with
    ``show_secret`` (a terminal: under systemd or in a container the output is a kept log).
    Everything that can refuse the start (the store unreachable, no root key or the wrong one)
    is checked before the store is migrated, so a refused start leaves it as it found it.
    ``create=False`` (admin commands): refuse a store that is not initialised, never make one."""
    data_dir = Path(settings.data_dir)
    key_file = _root_key_file(settings)
    if key_file is not None and key_file.exists():  # before the data dir is tightened: refused, not fixed
        rootkey.check_file_mode(key_file)
    if create or data_dir.is_dir():
        make_data_dir(data_dir)
    store = make_store(data_dir, settings.database, settings.database_pool_size, create=create)
    try:
        state = store_state(store)
        first_start = state[INITIALIZED_META] is None
        if first_start and not create:
            raise uninitialised(settings)
        root_key = load_root_key(settings, first_start, store)
        try:
            if not first_start:
                check_root_key(root_key, state[CANARY_META], store.where)
            applied = store.migrate()
            if first_start:
                _first_start(settings, store, root_key, data_dir, announce, show_secret)
                # Also after our own first start: another node may have won that race with another key.
                check_root_key(root_key, store_state(store)[CANARY_META], store.where)
            root_key.current()  # the key new values are wrapped under must be at hand too
        except BaseException:
            root_key.close()
            raise
    except BaseException:
        store.close()
        raise
    clock = ServiceClock(store, settings.clock_movable)
    service = Service(store, root_key, clock, Authorizer(store, dev=settings.dev))
    service.xks = XksConnector(resolve=settings.xks_resolve, ca_bundle=settings.xks_ca_bundle,
                               timeout=settings.xks_timeout)
    return Runtime(settings, store, root_key, clock, service, audit.load_hmac_key(store, root_key), tuple(applied))


def _first_start(settings: Settings, store, root_key, data_dir: Path, announce, show_secret: bool) -> None:
    with store.write() as tx:
        tx.exclusive("first-start")  # several nodes may start at once over one database
        if tx.get_meta(INITIALIZED_META) is not None:  # another process won the race
            return
        tx.set_meta(CANARY_META, base64.b64encode(rootkey.make_canary(root_key)).decode())
        tx.set_meta(rootkey.ROOT_KEY_META, rootkey.describe(root_key.name, root_key.current_id()))
        arn, access_key_id, secret = principals.bootstrap_admin(tx, root_key, settings.account)
        tx.set_meta(INITIALIZED_META, "1")
    path = data_dir / "admin-credentials"
    principals.write_credentials_file(path, access_key_id, secret)
    if not show_secret:
        announce(f"trentd: first start. Administrator {arn}; its access key is in {path} (mode 0600). "
                 "The secret is not printed: the output is not a terminal.")
        return
    announce(
        f"trentd: first start. Administrator {arn}\n"
        f"  aws_access_key_id = {access_key_id}\n  aws_secret_access_key = {secret}\n"
        f"  (saved to {path}, mode 0600; this is the only time it is printed)"
    )
