"""Settings, and opening a data dir: migrations, the root key, first-start work.

First start means an empty *store*. Its work (schema, root key, canary, bootstrap administrator)
runs once, in the process that starts serving, before any worker accepts a request.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from .auth import principals
from .clock import ServiceClock
from .kms.authorize import Authorizer
from .kms.service import Service
from .store import rootkey
from .store.sqlite import SQLiteStore

log = logging.getLogger("trentd")
INITIALIZED_META = "initialized"
CANARY_META = "root_key_canary"


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
    store: SQLiteStore
    root_key: rootkey.FileRootKey
    clock: ServiceClock
    service: Service


def open_store(data_dir: Path) -> SQLiteStore:
    store = SQLiteStore(data_dir / "trentd.db")
    store.migrate()
    return store


def open_runtime(settings: Settings, *, announce=print) -> Runtime:
    """Open (and on first start, initialise) the data dir. ``announce`` shows the one-time
    administrator credentials to the person starting the server; they never reach a log."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(data_dir)
    with store.read() as tx:
        first_start = tx.get_meta(INITIALIZED_META) is None
    root_key = rootkey.FileRootKey.load_or_create(data_dir / "root.key", create=first_start)
    if first_start:
        _first_start(settings, store, root_key, data_dir, announce)
    else:
        with store.read() as tx:
            canary = tx.get_meta(CANARY_META)
        rootkey.check_canary(root_key, base64.b64decode(canary))
    clock = ServiceClock(store, settings.clock_movable)
    service = Service(store, root_key, clock, Authorizer(store, dev=settings.dev))
    return Runtime(settings, store, root_key, clock, service)


def _first_start(settings: Settings, store, root_key, data_dir: Path, announce) -> None:
    with store.write() as tx:
        if tx.get_meta(INITIALIZED_META) is not None:  # another process won the race
            return
        tx.set_meta(CANARY_META, base64.b64encode(rootkey.make_canary(root_key)).decode())
        arn, access_key_id, secret = principals.bootstrap_admin(tx, root_key, settings.account)
        tx.set_meta(INITIALIZED_META, "1")
    path = data_dir / "admin-credentials"
    principals.write_credentials_file(path, access_key_id, secret)
    announce(
        f"trentd: first start. Administrator {arn}\n"
        f"  aws_access_key_id = {access_key_id}\n  aws_secret_access_key = {secret}\n"
        f"  (saved to {path}, mode 0600; this is the only time it is printed)"
    )
