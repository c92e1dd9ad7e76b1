"""HTTPS (security.md B7, acceptance bar 20): ``--tls-self-signed`` and ``--tls-cert/--tls-key``.

- boto3 (``verify=ca.pem``) and the AWS CLI (``--ca-bundle`` / ``AWS_CA_BUNDLE``) work over HTTPS
  with the server's private CA, and fail without it;
- TLS 1.0/1.1 are refused with a protocol-version alert (the client is set to
  ``DEFAULT:@SECLEVEL=0`` so that it can speak 1.1 at all; the same client code succeeds against a
  permissive server and at TLS 1.2 against trentd — traps.md); TLS 1.2 offers only ECDHE with
  AES-GCM or ChaCha20; plain HTTP on the TLS port fails;
- the private CA is made once and reused; ``aws:SecureTransport`` is true over HTTPS only;
- with ``--workers 2`` every worker enforces the same settings.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
import urllib.request
import warnings
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, SSLError
from cryptography import x509

from trentd.testing.server import TrentdServer


@pytest.fixture(scope="module")
def tls_server():
    with TrentdServer(dev=False, tls="self-signed") as server:
        yield server


def _client_context(version: ssl.TLSVersion, ciphers: str = "DEFAULT:@SECLEVEL=0") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers(ciphers)
    return ctx


def _handshake(address: tuple[str, int], ctx: ssl.SSLContext) -> tuple[str, tuple]:
    """(protocol version, cipher) of a completed handshake, or the ssl.SSLError raised."""
    with socket.create_connection(address, timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.version(), tls.cipher(), tls.compression()


def _address(server: TrentdServer) -> tuple[str, int]:
    return ("127.0.0.1", server.port)


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment without this machine's AWS_* settings (AWS_CA_BUNDLE among them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("SSL_CERT_FILE",
                                                                                          "REQUESTS_CA_BUNDLE")}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / "none"), AWS_SHARED_CREDENTIALS_FILE=str(home / "none"))
    env.update(extra)
    return env


# --- clients over HTTPS ------------------------------------------------------------------------
def test_boto3_over_https_with_the_private_ca(tls_server):
    assert tls_server.url.startswith("https://")
    kms = tls_server.client()
    key_id = kms.create_key(Description="over tls")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"tls", EncryptionContext={"a": "b"})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"tls"


def test_an_oversized_body_sent_in_full_over_tls_still_reads_the_413(tls_server):
    """TLS cannot half-close: the lingering close (http/limits.py) still drops the rest of the
    body, so the client's writes succeed and it reads the whole 413."""
    body_size = 2 * 1024 * 1024
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: %d\r\n\r\n" % body_size)
    with socket.create_connection(_address(tls_server), timeout=10) as raw:
        with _client_context(ssl.TLSVersion.TLSv1_3).wrap_socket(raw) as tls:
            tls.sendall(head + b"{" + b" " * (body_size - 1))
            response = b""
            while b"\r\n\r\n" not in response or not response.endswith(b"}"):
                chunk = tls.recv(65536)
                assert chunk, f"closed before the whole answer arrived: {response[:300]!r}"
                response += chunk
    assert response.startswith(b"HTTP/1.1 413 ") and b'"RequestEntityTooLargeException"' in response


def test_boto3_without_the_ca_refuses_the_certificate(tls_server, tmp_path):
    import boto3
    from botocore.config import Config

    access_key, secret = tls_server.admin_credentials()
    kms = boto3.client("kms", endpoint_url=tls_server.url, region_name="us-east-1", aws_access_key_id=access_key,
                       aws_secret_access_key=secret, verify=True, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(SSLError):
        kms.list_keys()


def test_aws_cli_over_https_with_ca_bundle_flag_and_env(tls_server, tmp_path):
    aws = Path(sys.executable).with_name("aws")
    assert aws.exists(), "awscli is a test dependency"
    access_key, secret = tls_server.admin_credentials()
    base = dict(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")
    ca = str(tls_server.ca_bundle)
    cmd = [str(aws), "--endpoint-url", tls_server.url, "kms", "create-key", "--description", "cli", "--output", "json"]

    with_flag = subprocess.run([*cmd, "--ca-bundle", ca], env=_clean_env(tmp_path, **base),
                               capture_output=True, text=True, timeout=120)
    assert with_flag.returncode == 0, with_flag.stderr
    key_id = json.loads(with_flag.stdout)["KeyMetadata"]["KeyId"]

    listed = subprocess.run([str(aws), "--endpoint-url", tls_server.url, "kms", "describe-key", "--key-id", key_id,
                             "--output", "json"], env=_clean_env(tmp_path, AWS_CA_BUNDLE=ca, **base),
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["KeyMetadata"]["Description"] == "cli"

    untrusted = subprocess.run(cmd, env=_clean_env(tmp_path, **base), capture_output=True, text=True, timeout=120)
    assert untrusted.returncode != 0
    assert "SSL" in untrusted.stderr or "certificate" in untrusted.stderr.lower()


# --- protocol versions, suites, plain HTTP -------------------------------------------------------
def test_tls11_is_refused_with_a_protocol_version_alert(tls_server):
    # Positive control 1: this client code really speaks TLS 1.1 (against a permissive server).
    permissive = _PermissiveServer()
    try:
        version, _, _ = _handshake(permissive.address, _client_context(ssl.TLSVersion.TLSv1_1))
        assert version == "TLSv1.1"
    finally:
        permissive.close()
    # trentd refuses it, with the protocol-version alert (not a cipher mismatch).
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(_address(tls_server), _client_context(ssl.TLSVersion.TLSv1_1))
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"), refused.value
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value
    with pytest.raises(ssl.SSLError) as refused10:
        _handshake(_address(tls_server), _client_context(ssl.TLSVersion.TLSv1))
    assert refused10.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused10.value
    # Positive control 2: the same client code at TLS 1.2 gets through.
    version, cipher, compression = _handshake(_address(tls_server), _client_context(ssl.TLSVersion.TLSv1_2))
    assert version == "TLSv1.2" and cipher[0].startswith("ECDHE-") and compression is None


def test_tls12_offers_only_forward_secret_aead_suites(tls_server):
    address = _address(tls_server)
    for weak in ("AES128-GCM-SHA256", "AES256-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                 "DHE-RSA-AES128-GCM-SHA256"):
        with pytest.raises(ssl.SSLError):
            _handshake(address, _client_context(ssl.TLSVersion.TLSv1_2, weak + ":@SECLEVEL=0"))
    for strong in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        version, cipher, _ = _handshake(address, _client_context(ssl.TLSVersion.TLSv1_2, strong))
        assert (version, cipher[0]) == ("TLSv1.2", strong)
    version, _, _ = _handshake(address, _client_context(ssl.TLSVersion.TLSv1_3, "DEFAULT"))
    assert version == "TLSv1.3"


def test_plain_http_to_the_tls_port_fails(tls_server):
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(OSError):  # the server closes the connection: no HTTP answer comes back
        with urllib.request.urlopen(plain + "/healthz", timeout=10) as resp:
            resp.read()
    with urllib.request.urlopen(tls_server.url + "/healthz", timeout=10, context=tls_server.ssl_context()) as resp:
        assert resp.status == 200  # and the server is still up


# --- certificates --------------------------------------------------------------------------------
def test_self_signed_ca_is_made_once_and_reused(tmp_path):
    server = TrentdServer(dev=True, tls="self-signed", data_dir=tmp_path / "data")
    try:
        server.start()
        tls_dir = server.data_dir / "tls"
        first = {name: (tls_dir / name).read_bytes() for name in ("ca.pem", "server.pem", "server-key.pem")}
        assert stat.S_IMODE((tls_dir / "server-key.pem").stat().st_mode) == 0o600
        assert "AWS_CA_BUNDLE=" + str(tls_dir / "ca.pem") in server.logs()
        cert = x509.load_pem_x509_certificate(first["server.pem"])
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)
        assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
        assert not list(tls_dir.glob("*ca-key*")), "the CA's private key is not kept"
        server.restart()
        assert {name: (tls_dir / name).read_bytes() for name in first} == first
        assert server.client().list_keys()["Keys"] == []
    finally:
        server.cleanup()


def test_tls_cert_and_key_files_from_a_test_ca(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = tmp_path / "server.pem", tmp_path / "server-key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    with TrentdServer(dev=True, tls=(cert_path, key_path), ca_bundle=ca_path) as server:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]
        with pytest.raises(ssl.SSLError) as refused:
            _handshake(_address(server), _client_context(ssl.TLSVersion.TLSv1_1))
        assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert not (server.data_dir / "tls").exists()


def test_tls_cert_without_key_is_refused(tmp_path):
    out = subprocess.run([sys.executable, "-m", "trentd", "serve", "--port", "1", "--data-dir", str(tmp_path),
                          "--tls-cert", str(tmp_path / "x.pem")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "--tls-key" in out.stderr


# --- aws:SecureTransport -------------------------------------------------------------------------
def test_secure_transport_is_true_over_https_only(tmp_path):
    server = TrentdServer(dev=False, tls="self-signed", data_dir=tmp_path / "data")
    try:
        server.start()
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        policy = {"Version": "2012-10-17", "Statement": [
            {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "tls-only", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ]}
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
        assert kms.encrypt(KeyId=key_id, Plaintext=b"over tls")["KeyId"].endswith(key_id)
        server.stop()
        server.tls = None  # the same data dir, served over plain HTTP
        server.start()
        with pytest.raises(ClientError) as denied:
            server.client().encrypt(KeyId=key_id, Plaintext=b"in the clear")
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    finally:
        server.cleanup()


# --- several workers -----------------------------------------------------------------------------
def test_every_worker_serves_the_same_tls_settings(tmp_path):
    with TrentdServer(dev=True, tls="self-signed", workers=2) as server:
        kms = server.client()
        for _ in range(6):  # connections land on either worker
            kms.create_key()
            with pytest.raises(ssl.SSLError) as refused:
                _handshake(_address(server), _client_context(ssl.TLSVersion.TLSv1_1))
            assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"
            version, _, _ = _handshake(_address(server), _client_context(ssl.TLSVersion.TLSv1_2))
            assert version == "TLSv1.2"


class _PermissiveServer:
    """A TLS server that accepts TLS 1.0 and up at security level 0: the positive control."""

    def __init__(self):
        trustme = pytest.importorskip("trustme")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        trustme.CA().issue_cert("127.0.0.1").configure_cert(ctx)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.address = self._sock.getsockname()
        self._thread = threading.Thread(target=self._serve, args=(ctx,), daemon=True)
        self._thread.start()

    def _serve(self, ctx):
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except OSError:
            pass

    def close(self):
        self._sock.close()
        self._thread.join(5)
