"""The store's declared interface (store/interface.py) and where engine differences live.

mypy checks the engines against the protocols (each engine's ``_transaction`` yields its
transaction as a ``Transaction``; ``ChangeFeed`` takes the store as a ``Store``); these tests
check the same at run time, and that no code outside the engine modules asks for an engine by name.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import trentd
from trentd.store import interface
from trentd.store.postgres import PostgresStore, PostgresTx
from trentd.store.sql import SQLTransaction
from trentd.store.sqlite import SQLiteStore, SQLiteTx

SRC = Path(trentd.__file__).parent
ENGINE_MODULES = {SRC / "store" / "sqlite.py", SRC / "store" / "postgres.py"}


def _members(protocol: type) -> list[str]:
    return sorted(name for name in vars(protocol) if not name.startswith("_"))


def _parameters(function) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("tx_class", [SQLiteTx, PostgresTx])
def test_engine_transactions_have_every_declared_method(tx_class):
    for name in _members(interface.Transaction):
        declared = getattr(interface.Transaction, name)
        if not callable(declared):
            continue
        assert callable(getattr(tx_class, name, None)), name
        assert _parameters(getattr(tx_class, name)) == _parameters(declared), name
    assert not inspect.isabstract(tx_class)


@pytest.mark.parametrize("store_class", [SQLiteStore, PostgresStore])
def test_engine_stores_have_every_declared_method(store_class):
    for name in _members(interface.Store):
        declared = getattr(interface.Store, name)
        if isinstance(declared, property) or not callable(declared):
            continue
        assert _parameters(getattr(store_class, name)) == _parameters(declared), name


def test_declared_attributes_are_set(tmp_path):
    store = SQLiteStore(tmp_path / "trentd.db")
    try:
        for name in ("kind", "where", "deadline_seconds", "changes"):
            assert getattr(store, name) is not None, name
        with store.read() as tx:
            assert isinstance(tx, SQLTransaction)
            assert tx.writing is False and tx.changes_cached_state is False
    finally:
        store.close()


def test_no_engine_name_comparisons_outside_the_engine_modules():
    """Engine differences are attributes and methods of each engine's transaction class
    (store/sql.py lists them), never ``engine == "postgres"`` branches in shared code."""
    pattern = re.compile(r"""(engine|kind)\s*[!=]=\s*["'](postgres|sqlite)["']|\.engine\b""")
    found = [f"{path.relative_to(SRC)}:{number}: {line.strip()}"
             for path in sorted(SRC.rglob("*.py")) if path not in ENGINE_MODULES
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
