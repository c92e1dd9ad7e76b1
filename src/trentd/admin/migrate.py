"""``trentd migrate``: prepare the store before servers start (a migration job before a rollout):
the schema, and on an empty store the first start, when the root key is at hand (SQLite's own, or
one supplied). A shared database without a root key gets the schema alone."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import options
from ..runtime import INITIALIZED_META, Settings, make_store, open_runtime, store_state
from .common import print_json, root_key_settings, store_refusals


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("migrate", help="prepare the store: the schema, and with the root key at hand "
                                                 "the first start (before servers start)")
    data_dir_arg(parser)
    options.add(parser, "--account", default="000000000000",
                help="the bootstrap administrator's account, made by the first start (as serve's --account)")


def run(args) -> int:
    root_key_given = args.root_key_file or args.pkcs11_module or args.pkcs11_token
    if args.database and not root_key_given:
        with store_refusals():
            store = make_store(Path(args.data_dir), args.database)
        try:
            return print_json({"Applied": store.migrate(), "Store": store.kind, "Initialised": _initialised(store)})
        finally:
            store.close()
    settings = Settings(data_dir=args.data_dir, database=args.database, account=args.account,
                        **root_key_settings(args))
    with store_refusals():
        runtime = open_runtime(settings, announce=lambda text: print(text, file=sys.stderr),
                               show_secret=sys.stderr.isatty())
    try:
        return print_json({"Applied": list(runtime.migrations_applied), "Store": runtime.store.kind,
                           "Initialised": True})
    finally:
        runtime.store.close()
        runtime.root_key.close()


def _initialised(store) -> bool:
    return store_state(store)[INITIALIZED_META] is not None
