"""``GET /readyz``: 200 only when the store answers within its deadline, the audit log can be
written and the root-key provider unwraps the store's canary; otherwise 503 naming what is not
ready. ``GET /healthz`` stays the liveness probe (200 throughout). Each fault is real:

- the store: a throwaway PostgreSQL cluster of the test's own, stopped (``pg_ctl stop -m
  immediate``) and started again — never the shared server;
- the audit log: its directory moved away and a plain file put in its place (tests run as root,
  which ignores permission bits: the same technique as the fail-closed tests in test_audit.py);
- the root key: the SoftHSM2 token's directory moved away while serving, then put back (as in
  test_pkcs11.py), so the HSM session is lost and must be re-established.

Readiness probes are not audited.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request

import pytest

from trentd.testing import softhsm
from trentd.testing.postgres import (
    ThrowawayCluster,
    ThrowawayDatabase,
    require_cluster_tools,
)
from trentd.testing.server import TrentdServer

from ..helpers import break_audit_dir

READY = {"status": "ready"}
STORE_DOWN = "the store did not answer within its deadline"
AUDIT_DOWN = "the audit log cannot be written"
ROOT_KEY_DOWN = "the root-key provider cannot unwrap the store's canary"


def probe(server: TrentdServer, path: str = "/readyz") -> tuple[int, str, dict]:
    """(status, content type, JSON body) of a GET of ``path``; /readyz's central-trail lag detail
    (a number of seconds, test_audit_trail.py tests it) is checked and left out of the body."""
    try:
        with urllib.request.urlopen(server.url + path, timeout=15, context=server.ssl_context()) as resp:
            status, content_type, body = resp.status, resp.headers["Content-Type"], json.loads(resp.read())
    except urllib.error.HTTPError as err:
        status, content_type, body = err.code, err.headers["Content-Type"], json.loads(err.read())
    if path == "/readyz":
        lag = body.pop("centralTrail")["lagSeconds"]
        assert isinstance(lag, (int, float)) and lag >= 0
    return status, content_type, body


def wait_for(server: TrentdServer, status: int, timeout: float) -> dict:
    """The body of the first /readyz answer with ``status`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got, content_type, body = probe(server)
        if got == status:
            assert content_type == "application/json"
            return body
        assert time.monotonic() < deadline, f"/readyz still answers {got} {body} after {timeout} s"
        time.sleep(0.1)


def not_ready(**failing: str) -> dict:
    return {"status": "not ready", "failing": failing}


def audit_lines(server: TrentdServer) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (server.data_dir / "audit").glob("*.jsonl"))


# --- healthy -------------------------------------------------------------------------------------
def test_ready_when_store_audit_and_root_key_answer(secure_server):
    assert probe(secure_server) == (200, "application/json", READY)
    assert probe(secure_server, "/healthz") == (200, "application/json", {"status": "ok"})


def test_readiness_probes_are_not_audited(secure_server):
    secure_server.client().list_keys()  # an audited call: its event is durable before the answer
    before = audit_lines(secure_server)
    for _ in range(3):
        assert probe(secure_server)[0] == 200
        time.sleep(0.4)  # past the one-second cache at least once: the checks really run
    assert audit_lines(secure_server) == before


# --- the store -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def own_cluster():
    require_cluster_tools()
    with ThrowawayCluster() as cluster:
        yield cluster


def test_store_stopped_is_not_ready_and_recovers(own_cluster):
    database = ThrowawayDatabase(own_cluster.dsn)
    server = TrentdServer(dev=False, database=database.dsn)
    try:
        server.start()
        assert probe(server) == (200, "application/json", READY)
        own_cluster.stop("immediate")
        try:
            assert wait_for(server, 503, timeout=3) == not_ready(store=STORE_DOWN)
            assert probe(server, "/healthz")[0] == 200  # alive, only not ready
            assert "readiness: store not ready" in server.logs()  # the details go to the log
        finally:
            own_cluster.start()
        assert wait_for(server, 200, timeout=20) == READY
    finally:
        server.cleanup()
        database.drop()


# --- the audit log -------------------------------------------------------------------------------
def test_audit_log_unwritable_is_not_ready_and_recovers():
    with TrentdServer(dev=False) as server:
        assert probe(server) == (200, "application/json", READY)
        break_audit_dir(server)
        assert wait_for(server, 503, timeout=3) == not_ready(audit=AUDIT_DOWN)
        assert probe(server, "/healthz")[0] == 200
        (server.data_dir / "audit").unlink()  # writable again
        assert wait_for(server, 200, timeout=3) == READY


# --- the root key in an HSM ----------------------------------------------------------------------
def test_hsm_lost_is_not_ready_and_recovers(tmp_path):
    softhsm.require_softhsm()
    token = softhsm.SoftHsmToken.create(tmp_path / "hsm")
    with TrentdServer(dev=False, pkcs11=token, data_dir=tmp_path / "data") as server:
        assert probe(server) == (200, "application/json", READY)
        away = token.directory / "tokens.away"
        shutil.move(token.tokendir, away)
        try:
            assert wait_for(server, 503, timeout=3) == not_ready(root_key=ROOT_KEY_DOWN)
            assert probe(server, "/healthz")[0] == 200
        finally:
            shutil.move(away, token.tokendir)
        assert wait_for(server, 200, timeout=10) == READY
        kms = server.client()  # and the API works again
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"])["Plaintext"] == b"x"
