"""Console sign-in, over both stores: the form's CSRF token before any session exists (login CSRF),
and the throttle on failed sign-ins, counted in the store by access key id and by source address
as resolved through ``--trusted-proxies`` (docs/console.md, "Signing in").

Each test signs in from source addresses of its own (X-Forwarded-For through the trusted proxy
127.0.0.1), so the tests of one module do not throttle each other.
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from trentd.testing.server import TrentdServer

from ..e2e.authz_world import World, policy
from .client import ConsoleClient, alerts, audit_events

BAD_CREDENTIALS = "The access key ID or secret access key is not correct."
FORM_EXPIRED = "This sign-in form has expired or did not come from this console. Sign in again."
THROTTLED = "Too many failed sign-in attempts; try again in a minute."
PROXY = ("--trusted-proxies", "127.0.0.1")
KMS_ALL = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))  # TEST-NET-2, one per use


@pytest.fixture(scope="module")
def server(store_kind):
    with TrentdServer(dev=False, store=store_kind, account="111122223333", extra_args=PROXY) as server:
        yield server


@pytest.fixture(scope="module")
def world(server) -> World:
    return World(server)


def browser(server: TrentdServer, source: str | None = None) -> ConsoleClient:
    """A console client whose requests the trusted proxy forwards from ``source``."""
    client = ConsoleClient(server)
    if source:
        client.http.headers["X-Forwarded-For"] = source
    return client


def attempt(server: TrentdServer, source: str | None, access_key_id: str, secret: str):
    """One sign-in as a browser makes it: the form, then its POST."""
    client = browser(server, source)
    client.get("/console/signin")
    return client.post("/console/signin", {"access_key_id": access_key_id, "secret_access_key": secret,
                                           "region": "us-east-1"})


def unknown_key_id() -> str:
    return "AKIA" + uuid.uuid4().hex[:16].upper()


def cookies_set(response) -> dict[str, str]:
    """name -> the whole Set-Cookie value, for each cookie the response sets."""
    return {value.split("=", 1)[0]: value for value in response.raw.headers.getlist("Set-Cookie")}


def assert_throttled(response) -> None:
    assert response.status_code == 429, (response.status_code, alerts(response))
    assert alerts(response) == [THROTTLED]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "trentd_console" not in cookies_set(response)


def sign_in_events(server: TrentdServer, source: str) -> list[dict]:
    return [e for e in audit_events(server) if e["eventName"] == "ConsoleLogin" and e["sourceIPAddress"] == source]


# --- the form's CSRF token -----------------------------------------------------------------------
def test_the_sign_in_form_carries_a_token_bound_to_a_cookie(server):
    client = browser(server)
    page = client.get("/console/signin")
    assert page.status_code == 200 and len(client.csrf) >= 43
    cookie = cookies_set(page)["trentd_signin"]
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    assert set(attributes) == {"Path=/console/", "HttpOnly", "SameSite=Strict"}
    assert client.csrf not in cookie  # the field is derived from the cookie, not a copy of it
    again = client.get("/console/signin")
    assert "trentd_signin" not in cookies_set(again) and client.csrf  # one cookie per browser, kept


@pytest.mark.parametrize("forgery", ["no token", "no cookie", "another browser's token", "the cookie itself"])
def test_a_sign_in_without_the_forms_token_is_refused(server, forgery):
    access_key, secret = server.admin_credentials()
    victim, other = browser(server), browser(server)
    victim.get("/console/signin")
    other.get("/console/signin")
    token = {"no token": "", "no cookie": victim.csrf, "another browser's token": other.csrf,
             "the cookie itself": victim.http.cookies.get("trentd_signin")}[forgery]
    if forgery == "no cookie":
        victim.http.cookies.clear()
    form = {"access_key_id": access_key, "secret_access_key": secret, "region": "us-east-1"}
    refused = victim.post("/console/signin", form, csrf=token)
    assert refused.status_code == 403
    assert alerts(refused) == [FORM_EXPIRED]
    assert "trentd_console" not in cookies_set(refused)
    assert secret not in refused.text
    assert victim.get("/console/keys").headers["location"] == "/console/signin"  # not signed in
    # The refusal is the form again with a good token: the person can simply sign in.
    assert victim.post("/console/signin", form).status_code == 303
    assert victim.get("/console/keys").status_code == 200


# --- throttling ----------------------------------------------------------------------------------
def test_ten_failures_from_one_address_refuse_the_eleventh_even_with_good_credentials(server):
    source, elsewhere = next(_addresses), next(_addresses)
    access_key, secret = server.admin_credentials()
    for _ in range(10):
        failed = attempt(server, source, unknown_key_id(), secret)
        assert failed.status_code == 400 and alerts(failed) == [BAD_CREDENTIALS]
    assert_throttled(attempt(server, source, access_key, secret))
    assert_throttled(attempt(server, source, unknown_key_id(), "x"))
    assert attempt(server, elsewhere, access_key, secret).status_code == 303  # another address: unaffected

    api = server.client()  # the API from the same address: never throttled by this
    api.meta.events.register("before-sign.kms.*", lambda request, **_: request.headers.add_header(
        "X-Forwarded-For", source))
    api.list_keys()
    events = sign_in_events(server, source)
    assert len(events) == 12
    assert [e["responseElements"] for e in events] == [{"ConsoleLogin": "Failure"}] * 12
    assert [e["errorMessage"] for e in events] == ["Failed authentication"] * 10 + [THROTTLED] * 2
    assert events[10]["userIdentity"]["accessKeyId"] == access_key
    api_events = [e for e in audit_events(server) if e["eventName"] == "ListKeys" and e["sourceIPAddress"] == source]
    assert len(api_events) == 1 and "errorCode" not in api_events[0]


def test_ten_failures_for_one_access_key_refuse_it_from_every_address(server, world):
    user = next(iter(world.make_users([(server.account, f"sprayed-{uuid.uuid4().hex[:8]}", KMS_ALL)]).values()))
    for _ in range(10):
        assert attempt(server, next(_addresses), user.access_key, user.secret + "x").status_code == 400
    fresh = next(_addresses)
    assert_throttled(attempt(server, fresh, user.access_key, user.secret))
    assert attempt(server, fresh, *server.admin_credentials()).status_code == 303  # another key: unaffected
    user.kms.list_keys()  # the API takes the access key as ever


def test_failures_are_counted_in_the_store_that_every_node_shares(server):
    """A second node over the same store (the SQLite data dir, or the PostgreSQL database and root
    key) sees the first node's failures: five on each, and both refuse the eleventh."""
    source = next(_addresses)
    with TrentdServer(dev=False, data_dir=None if server.database else server.data_dir, database=server.database,
                      root_key_file=server.root_key_file, account=server.account, extra_args=PROXY) as other:
        for node in (server, other) * 5:
            assert attempt(node, source, unknown_key_id(), "wrong").status_code == 400
        for node in (server, other):
            assert_throttled(attempt(node, source, *server.admin_credentials()))


def test_without_trusted_proxies_the_peer_address_counts(store_kind):
    """X-Forwarded-For from an untrusted peer is ignored: changing it does not escape the throttle."""
    with TrentdServer(dev=False, store=store_kind) as plain:
        for _ in range(10):
            assert attempt(plain, next(_addresses), unknown_key_id(), "wrong").status_code == 400
        assert_throttled(attempt(plain, next(_addresses), *plain.admin_credentials()))
        assert len(sign_in_events(plain, "127.0.0.1")) == 11
        plain.client().list_keys()
