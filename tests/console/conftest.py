"""Fixtures for the web console's tests: real trentd servers (not --dev: sign-in checks secrets),
over both stores, and principals made with the admin CLI (tests/e2e/authz_world.py).

- ``console_server``: one server per store and test module.
- ``world``: that server's principals (``world.admin``; ``world.make_users`` for more).
- ``console``: a signed-out ConsoleClient for it; ``admin_console`` one signed in as the admin.
"""

from __future__ import annotations

import pytest

from trentd.testing.server import TrentdServer

from ..e2e.authz_world import World
from .client import ConsoleClient

@pytest.fixture(scope="module")
def console_server(store_kind):
    with TrentdServer(dev=False, store=store_kind, account="111122223333") as server:
        yield server


@pytest.fixture(scope="module")
def world(console_server) -> World:
    return World(console_server)


@pytest.fixture
def console(console_server) -> ConsoleClient:
    return ConsoleClient(console_server)


@pytest.fixture
def admin_console(console_server) -> ConsoleClient:
    client = ConsoleClient(console_server)
    client.sign_in_as_admin()
    return client
