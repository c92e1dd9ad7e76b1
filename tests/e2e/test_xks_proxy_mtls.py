"""The XKS proxy listener's options. Mutual TLS, with several workers (``--workers 2``) and
``--metrics-port``, on each store: a client certificate chained to ``--xks-proxy-client-ca`` and
naming a subject of ``--xks-proxy-client-cn`` is served; no certificate, a certificate of another
CA, or another subject is refused before any request is read (without mTLS:
tests/e2e/test_xks_proxy.py); calls are counted in the metrics. External keys wrapped under a
root key in an HSM (SoftHSM2). The errors of an overloaded or failing proxy: a database outage
(DependencyTimeoutException), too many requests (ThrottlingException), an unwritable audit log
(InternalException). The refusals of ``trentd serve`` for contradictory options."""

from __future__ import annotations

import re
import socket
import sqlite3
import ssl
import subprocess
import sys
import time

import pytest
import trustme
import urllib3

from trentd.store.rootkey import FORMAT_PKCS11
from trentd.testing import softhsm
from trentd.testing.postgres import ThrowawayCluster, ThrowawayDatabase, require_cluster_tools
from trentd.testing.server import TrentdServer, free_port

from ..helpers import break_audit_dir
from .xks_proxy_client import AWS_CLIENT_CN, XksClient, admin, b64, error, eventually, server_cert, write_ca


@pytest.fixture(scope="module")
def cas():
    return {"server": trustme.CA(), "clients": trustme.CA(), "stranger": trustme.CA()}


@pytest.fixture(scope="module")
def mtls_server(store_kind, cas, tmp_path_factory):
    directory = tmp_path_factory.mktemp("xks-mtls")
    cert, key = server_cert(cas["server"], directory)
    client_ca = directory / "clients.pem"
    cas["clients"].cert_pem.write_to_path(str(client_ca))
    port, metrics_port = free_port(), free_port()
    args = ("--metrics-port", str(metrics_port),
            "--xks-proxy-port", str(port), "--xks-proxy-tls-cert", str(cert), "--xks-proxy-tls-key", str(key),
            "--xks-proxy-client-ca", str(client_ca), "--xks-proxy-client-cn", AWS_CLIENT_CN,
            "--xks-proxy-client-cn", "cks.kms.eu-west-1.amazonaws.com")
    with TrentdServer(store=store_kind, workers=2, extra_args=args) as server:
        server.xks_port, server.xks_ca, server.metrics_port = port, write_ca(cas["server"], directory), metrics_port
        server.keystore = admin(server, "keystores", "create", "--name", "mtls")
        yield server


def client(server, cert=None) -> XksClient:
    ks = server.keystore
    return XksClient(server.xks_port, server.xks_ca, ks["UriPath"], ks["AccessKeyId"], ks["SecretAccessKey"],
                     client_cert=cert)


def refused(server, cert=None) -> None:
    """The connection fails: a failed handshake, or a close before any answer."""
    with pytest.raises((urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError, ssl.SSLError,
                        ConnectionError)):
        client(server, cert).health()


def test_the_allowed_client_is_served_by_every_worker(mtls_server, cas):
    allowed = cas["clients"].issue_cert(AWS_CLIENT_CN, common_name=AWS_CLIENT_CN)
    other_region = cas["clients"].issue_cert("cks.kms.eu-west-1.amazonaws.com",
                                             common_name="cks.kms.eu-west-1.amazonaws.com")
    for _ in range(12):  # fresh connections, accepted by either worker
        assert client(mtls_server, allowed).health()[0] == 200
    assert client(mtls_server, other_region).health()[0] == 200
    # mTLS is on top of SigV4, never instead of it
    assert error(client(mtls_server, allowed).post("/health", {"requestMetadata": {
        "kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}, secret="d3Jvbmc=")) == \
        (401, "AuthenticationFailedException")


def test_other_clients_are_refused_before_any_request(mtls_server, cas):
    refused(mtls_server)  # no certificate
    refused(mtls_server, cas["stranger"].issue_cert(AWS_CLIENT_CN, common_name=AWS_CLIENT_CN))  # another CA
    wrong_name = cas["clients"].issue_cert("cks.kms.evil.example", common_name="cks.kms.evil.example")
    refused(mtls_server, wrong_name)
    assert "refused a client certificate naming ['cks.kms.evil.example']" in mtls_server.logs()
    # nothing of those three connections reached the API: no audit event but the allowed ones
    events = "".join(p.read_text() for p in (mtls_server.data_dir / "audit").glob("*.jsonl"))
    assert "evil" not in events


def test_healthz_needs_the_client_certificate_too(mtls_server, cas):
    allowed = cas["clients"].issue_cert(AWS_CLIENT_CN, common_name=AWS_CLIENT_CN)
    assert client(mtls_server, allowed).raw("/healthz", b"", method="GET").status == 200
    with pytest.raises((urllib3.exceptions.SSLError, urllib3.exceptions.ProtocolError, ConnectionError)):
        client(mtls_server).raw("/healthz", b"", method="GET")


@pytest.mark.one_store
@pytest.mark.parametrize("flags, message", [
    (["--xks-proxy-client-ca", "ca.pem", "--xks-proxy-port", "1"],
     "--xks-proxy-client-ca and --xks-proxy-client-cn go together"),
    (["--xks-proxy-tls-cert", "c.pem"], "--xks-proxy-tls-cert needs --xks-proxy-port"),
    (["--xks-proxy-port", "4599"], "--xks-proxy-port must be a port from 1 to 65535 other than --port"),
    (["--xks-proxy-port", "1", "--xks-proxy-tls-cert", "c.pem"],
     "--xks-proxy-tls-cert and --xks-proxy-tls-key go together"),
])
def test_serve_refuses_contradictory_options(tmp_path, flags, message):
    done = subprocess.run([sys.executable, "-m", "trentd", "serve", "--data-dir", str(tmp_path / "d"),
                           "--port", "4599", *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "d").exists()  # refused before any store was made


def test_calls_are_counted_in_the_metrics(mtls_server, cas):
    allowed = cas["clients"].issue_cert(AWS_CLIENT_CN, common_name=AWS_CLIENT_CN)
    xks = client(mtls_server, allowed)
    assert xks.health()[0] == 200
    assert error(xks.health({})) == (400, "ValidationException")

    def counted():
        text = urllib3.request("GET", f"http://127.0.0.1:{mtls_server.metrics_port}/metrics").data.decode()
        ok = re.search(r'trentd_requests_total\{operation="GetHealthStatus",outcome="ok",service="kms-xks-proxy"\} '
                       r'([0-9.]+)', text)
        refused = re.search(r'trentd_requests_total\{operation="GetHealthStatus",outcome="ValidationException",'
                            r'service="kms-xks-proxy"\} ([0-9.]+)', text)
        assert ok and float(ok[1]) >= 1 and refused and float(refused[1]) >= 1, text[-2000:]

    eventually(counted)


def test_external_keys_under_a_root_key_in_an_hsm(tmp_path):
    softhsm.require_softhsm()
    token = softhsm.SoftHsmToken.create(tmp_path / "hsm")
    port = free_port()
    with TrentdServer(pkcs11=token, data_dir=tmp_path / "data", extra_args=("--xks-proxy-port", str(port))) as server:
        ks = admin(server, "keystores", "create", "--name", "hsm")
        key = admin(server, "keys", "create", "--keystore", "hsm")["KeyId"]
        xks = XksClient(port, server.data_dir / "xks-tls" / "ca.pem", ks["UriPath"], ks["AccessKeyId"],
                        ks["SecretAccessKey"], server_name="localhost")
        status, health = xks.health()
        assert status == 200 and health["ekmFleetDetails"][0]["model"] == "trentd root key (pkcs11 provider)"
        status, sealed = xks.encrypt(key, b"in the HSM's care", b"aad")
        assert status == 200
        assert xks.decrypt(key, sealed, b"aad") == (200, {"plaintext": b64(b"in the HSM's care")})
        with sqlite3.connect(server.data_dir / "trentd.db") as db:
            wrapped = {bytes(row[0])[0] for row in db.execute("SELECT wrapped FROM xks_proxy_keys")}
            secrets = {bytes(row[0])[0] for row in db.execute("SELECT wrapped_secret FROM xks_proxy_credentials")}
        assert wrapped == secrets == {FORMAT_PKCS11}  # wrapped by the HSM's key, never in clear


def test_a_database_outage_is_a_dependency_timeout(tmp_path):
    """The store stopped: once the caches stop trusting themselves (0.75 s), calls that need it are
    DependencyTimeoutException (503, retryable), fast; after the restart the same process recovers."""
    require_cluster_tools()
    cluster = ThrowawayCluster()
    try:
        cluster.start()
        database = ThrowawayDatabase(cluster.dsn)
        port = free_port()
        with TrentdServer(database=database.dsn, extra_args=("--xks-proxy-port", str(port))) as server:
            ks = admin(server, "keystores", "create", "--name", "outage")
            key = admin(server, "keys", "create", "--keystore", "outage")["KeyId"]
            xks = XksClient(port, server.data_dir / "xks-tls" / "ca.pem", ks["UriPath"], ks["AccessKeyId"],
                            ks["SecretAccessKey"], server_name="localhost")
            eventually(lambda: _assert_ok(xks.key_metadata(key)))
            cluster.stop()
            try:
                time.sleep(1.0)  # past the caches' trust window
                started = time.monotonic()
                assert error(xks.key_metadata(key)) == (503, "DependencyTimeoutException")
                assert time.monotonic() - started < 10
            finally:
                cluster.start()
            eventually(lambda: _assert_ok(xks.key_metadata(key)), timeout=15)
    finally:
        cluster.cleanup()


def _assert_ok(answer) -> None:
    assert answer[0] == 200, answer


def test_too_many_requests_in_progress_is_throttling(tmp_path):
    """--limit-concurrency 3: three requests whose bodies never come hold the three places (until
    the body deadline); a fourth is the spec's ThrottlingException (429); once they go, it is served."""
    port = free_port()
    with TrentdServer(data_dir=tmp_path / "data",
                      extra_args=("--xks-proxy-port", str(port), "--limit-concurrency", "3")) as server:
        ks = admin(server, "keystores", "create", "--name", "busy")
        ca = server.data_dir / "xks-tls" / "ca.pem"
        xks = XksClient(port, ca, ks["UriPath"], ks["AccessKeyId"], ks["SecretAccessKey"], server_name="localhost")
        eventually(lambda: _assert_ok(xks.health()))
        context = ssl.create_default_context(cafile=str(ca))
        stalled = []
        for _ in range(3):
            conn = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
            conn.sendall(f"POST {ks['UriPath']}/health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n"
                         .encode())
            stalled.append(conn)
        time.sleep(0.3)  # the three requests have begun
        try:
            assert error(xks.health()) == (429, "ThrottlingException")
        finally:
            for conn in stalled:
                conn.close()
        eventually(lambda: _assert_ok(xks.health()))


def test_an_unwritable_audit_log_refuses_calls(tmp_path):
    """Fail-closed, as the KMS API: a call that cannot be audited is not answered (InternalException,
    500); once the log is writable again, calls are answered."""
    port = free_port()
    with TrentdServer(data_dir=tmp_path / "data", extra_args=("--xks-proxy-port", str(port))) as server:
        ks = admin(server, "keystores", "create", "--name", "audited")
        key = admin(server, "keys", "create", "--keystore", "audited")["KeyId"]
        xks = XksClient(port, server.data_dir / "xks-tls" / "ca.pem", ks["UriPath"], ks["AccessKeyId"],
                        ks["SecretAccessKey"], server_name="localhost")
        eventually(lambda: _assert_ok(xks.key_metadata(key)))
        break_audit_dir(server)
        status, body = xks.encrypt(key, b"not audited, not answered")
        assert (status, body) == (500, {"errorName": "InternalException",
                                        "errorMessage": "The request could not be audited."})
        (server.data_dir / "audit").unlink()
        eventually(lambda: _assert_ok(xks.encrypt(key, b"audited")))
