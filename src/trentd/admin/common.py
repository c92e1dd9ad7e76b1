"""What the admin commands share: the root-key options as settings, opening an existing store,
and printing a result as JSON."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .. import logs
from ..runtime import Runtime, Settings, open_runtime
from ..store.errors import StoreConfigError


def root_key_settings(args) -> dict:
    """The ``Settings`` fields of the root-key options (--root-key-file, --pkcs11-*)."""
    return dict(root_key_file=args.root_key_file, pkcs11_module=args.pkcs11_module, pkcs11_token=args.pkcs11_token,
                pkcs11_pin_env=args.pkcs11_pin_env, pkcs11_label=args.pkcs11_key_label)


@contextmanager
def store_refusals() -> Iterator[None]:
    """A store that cannot be used as configured (StoreConfigError): one line, exit 2."""
    try:
        yield
    except StoreConfigError as exc:
        logs.notice(f"trentd: {exc}", logging.ERROR, sys.stderr)
        raise SystemExit(2) from None


def open_admin_runtime(args) -> Runtime:
    """The runtime over the store of ``--data-dir``/``--database``, which must exist already."""
    settings = Settings(data_dir=args.data_dir, database=args.database, **root_key_settings(args))
    with store_refusals():  # never makes a store: a typo in --data-dir is refused
        return open_runtime(settings, announce=lambda text: print(text, file=sys.stderr),
                            show_secret=sys.stderr.isatty(), create=False)


def print_json(obj) -> int:
    """The command's result on stdout; exit status 0."""
    print(json.dumps(obj, indent=2))
    return 0
