"""Fixtures shared by every test package.

- ``store_kind``: ``sqlite`` or ``postgres``. Every test that uses it (directly, or through a
  server fixture such as ``trentd_server``) runs against both stores (``test_x[sqlite]``,
  ``test_x[postgres]``): ``pytest_generate_tests`` below parametrizes it, with session scope, so
  each store's session servers start once. PostgreSQL is ``TRENTD_TEST_POSTGRES`` (default
  127.0.0.1:5432, database ``test``): unreachable → skipped, or failed when ``CI`` is set.
- ``@pytest.mark.one_store`` (on a module: ``pytestmark = pytest.mark.one_store``; or on one test):
  run on the default store (SQLite) only, still as ``test_x[sqlite]``. For tests whose subject
  does not reach the store: the wire protocol, key specs, cryptography. Tests of durability,
  caching, concurrency, scale-out, grants, rotation, deletion, import, multi-Region, sessions or
  reset keep both stores.

Helper functions (``fails``, ``error_of``, …) live in tests/helpers.py, fixtures in conftest files.
"""

from __future__ import annotations

import pytest

from trentd.testing.postgres import require_postgres

STORES = ("sqlite", "postgres")
DEFAULT_STORE = "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"one_store: run on the default store ({DEFAULT_STORE}) only, not on each store")


@pytest.hookimpl(tryfirst=True)  # before the fixtures' own parameters, so ids read test_x[postgres-…] as before
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        one_store = metafunc.definition.get_closest_marker("one_store") is not None
        metafunc.parametrize("store_kind", (DEFAULT_STORE,) if one_store else STORES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def store_kind(request: pytest.FixtureRequest) -> str:
    """The store of this test's servers (parametrized by ``pytest_generate_tests``)."""
    if request.param == "postgres":
        require_postgres()
    return request.param
