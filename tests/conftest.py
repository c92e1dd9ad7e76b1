"""Fixtures shared by every test package.

- ``store_kind``: ``sqlite`` or ``postgres``. Servers that take it are parametrized over it, so
  every test that uses them runs against both stores (``test_x[sqlite]``, ``test_x[postgres]``).
  PostgreSQL is ``TRENTD_TEST_POSTGRES`` (default 127.0.0.1:5432, database ``test``): unreachable
  → skipped, or failed when ``CI`` is set.
"""

from __future__ import annotations

import pytest

from trentd.testing.postgres import require_postgres

STORES = ("sqlite", "postgres")


@pytest.fixture(scope="session", params=STORES)
def store_kind(request) -> str:
    if request.param == "postgres":
        require_postgres()
    return request.param
