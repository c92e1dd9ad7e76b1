"""A small External Key Store proxy for tests (aws/aws-kms-xksproxy-api-spec, v1).

trentd is itself a real XKS proxy (``trentd serve --xks-proxy-port``, xksproxy/, docs/xks.md), and
the end-to-end tests of a KMS key in an external key store run against it
(tests/e2e/test_xks_proxy.py: one trentd is another's external key store; tests/e2e/test_reset.py
through ``TrentdXksProxy`` in tests/e2e/xks_proxy_client.py). This one stays for the
tests that need a proxy that *misbehaves* on command — an error name on every call
(``fail_with``), slowness past the KMS side's timeout (``delay``), a crash and a restart on the same
port (``stop``/``start``), an unhealthy key manager (``health_status``), a certificate naming
another host — and for tests that inspect each request the KMS side sent (``requests``) or add
many key stores under one credential on the fly (``prefixes``, tests/clients/test_boto3_sweep.py),
which the real proxy refuses by design (a credential serves one key store).

Spec-compliant where trentd's tests look: HTTPS with a certificate from a test CA, SigV4
verification (service ``kms-xks-proxy``, ±5 minutes, several live credentials) through
trentd's own verifier (auth/sigv4.py), AES-256-GCM keys held in memory, the four POST
endpoints under ``[prefix]/kms/xks/v1`` (``/health``, ``/keys/{id}/metadata|encrypt|decrypt``),
405 on GET, error bodies ``{"errorName", "errorMessage"}`` with the spec's status codes, the
spec's AAD encoding (2-byte AAD length | AAD | 1-byte metadata length | ciphertextMetadata) and
its ciphertext data integrity value. Not for production: keys live in memory, there is no
secondary authorization, and TLS client authentication is not offered.

    ca = TestCA()
    with XksTestProxy(ca, "xks.trentd.test") as proxy:
        proxy.add_key("key-1")
        # trentd serve --xks-resolve xks.trentd.test=127.0.0.1:{proxy.port} --xks-ca-bundle {ca.path}

Test knobs: ``credentials`` (access key id -> secret), ``set_key_status``, ``health_status``,
``delay`` (seconds before answering), ``fail_with`` (an errorName every call answers), ``stop()``
and ``start()`` on the same port, and ``requests`` (path and requestMetadata of every call).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from ..auth import sigv4
from ..errors import AWSError
from .server import free_port

SERVICE = "kms-xks-proxy"
_STATUS = {
    "ValidationException": 400, "InvalidStateException": 400, "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400, "AuthenticationFailedException": 401, "AccessDeniedException": 403,
    "KeyNotFoundException": 404, "InvalidUriPathException": 404, "ThrottlingException": 429,
    "InternalException": 500, "UnsupportedOperationException": 501, "DependencyTimeoutException": 503,
}
_ROUTE = re.compile(r"/keys/([A-Za-z0-9._-]{1,128})/(metadata|encrypt|decrypt)")


def new_access_key_id() -> str:
    """20-30 characters from A-Z and 2-7, as the spec asks."""
    return base64.b32encode(secrets.token_bytes(15)).decode()[:24]


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


class TestCA:
    """A throwaway certificate authority; ``path`` is its PEM (for ``--xks-ca-bundle``)."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: str | os.PathLike | None = None):
        self.dir = Path(directory or tempfile.mkdtemp(prefix="trentd-xks-ca-"))
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trentd test XKS CA")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.path = self.dir / "ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, hostname: str) -> tuple[Path, Path]:
        """A server certificate for ``hostname``: (cert PEM path, key PEM path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
                .issuer_name(self.cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        stem = secrets.token_hex(4)
        cert_path, key_path = self.dir / f"{hostname}-{stem}.pem", self.dir / f"{hostname}-{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return cert_path, key_path


class _ProxyError(Exception):
    def __init__(self, name: str, message: str = ""):
        super().__init__(name)
        self.name, self.message = name, message


class _XksKey:
    def __init__(self, material: bytes, status: str, usage: list[str], spec: str):
        self.material, self.status, self.usage, self.spec = material, status, usage, spec


class XksTestProxy:
    __test__ = False

    def __init__(self, ca: TestCA, hostname: str = "xks.trentd.test", *, prefix: str = "",
                 port: int | None = None, credentials: dict[str, str] | None = None):
        self.ca = ca
        self.hostname = hostname
        self.base = prefix.rstrip("/") + "/kms/xks/v1"
        self.prefixes = {prefix.rstrip("/")}  # path prefixes served (tests may add more)
        self.port = port or free_port()
        self.credentials = dict(credentials) if credentials else {new_access_key_id(): new_secret()}
        self.keys: dict[str, _XksKey] = {}
        self.health_status = "ACTIVE"
        self.delay = 0.0
        self.fail_with: str | None = None
        self.requests: list[dict] = []
        self.metadata_version = b"v=1"  # returned as ciphertextMetadata by encrypt
        self._cert = ca.issue(hostname)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- configuration ----------------------------------------------------------------------
    @property
    def access_key_id(self) -> str:
        return next(iter(self.credentials))

    @property
    def secret(self) -> str:
        return self.credentials[self.access_key_id]

    @property
    def uri_endpoint(self) -> str:
        return f"https://{self.hostname}"

    @property
    def uri_path(self) -> str:
        return self.base

    @property
    def resolve_arg(self) -> str:
        """The ``--xks-resolve`` value that points trentd at this proxy."""
        return f"{self.hostname}=127.0.0.1:{self.port}"

    def add_key(self, key_id: str, *, status: str = "ENABLED", usage: tuple[str, ...] = ("ENCRYPT", "DECRYPT"),
                spec: str = "AES_256") -> None:
        self.keys[key_id] = _XksKey(secrets.token_bytes(32), status, list(usage), spec)

    def set_key_status(self, key_id: str, status: str) -> None:
        self.keys[key_id].status = status

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "XksTestProxy":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self._cert)
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = _Server(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.server_bind()
        server.server_activate()
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"xks-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection, as a crashed proxy would."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None

    def __enter__(self) -> "XksTestProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the API ----------------------------------------------------------------------------
    def authenticate(self, method: str, path: str, headers, body: bytes) -> None:
        try:
            cred = _parse_authorization(headers)
            secret = self.credentials.get(cred.access_key_id)
            if secret is None:
                raise _ProxyError("AuthenticationFailedException", "unknown access key id")
            sigv4.verify(cred, method=method, path=path, query=b"", headers=headers, body=body, secret=secret)
        except AWSError as err:
            raise _ProxyError("AuthenticationFailedException", err.message or err.code) from None

    def handle(self, path: str, body: dict) -> dict:
        if self.fail_with:
            raise _ProxyError(self.fail_with, "configured failure")
        metadata = body.get("requestMetadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("kmsRequestId"), str) \
                or not isinstance(metadata.get("kmsOperation"), str):
            raise _ProxyError("ValidationException", "requestMetadata is missing or incomplete")
        self.requests.append({"path": path, "requestMetadata": metadata})
        base = next((b for b in (p + "/kms/xks/v1" for p in self.prefixes) if path.startswith(b + "/")), None)
        if base is None:
            raise _ProxyError("InvalidUriPathException", "no such API")
        if path == base + "/health":
            return {"xksProxyFleetSize": 1, "xksProxyVendor": "trentd", "xksProxyModel": "trentd test proxy 1.0",
                    "ekmVendor": "trentd", "ekmFleetDetails": [
                        {"id": "ekm-1", "model": "in-memory AES-256-GCM", "healthStatus": self.health_status}]}
        match = _ROUTE.fullmatch(path[len(base):])
        if match is None:
            raise _ProxyError("InvalidUriPathException", "no such API")
        if not isinstance(metadata.get("awsPrincipalArn"), str):
            raise _ProxyError("ValidationException", "awsPrincipalArn is required")
        key = self.keys.get(match.group(1))
        if key is None:
            raise _ProxyError("KeyNotFoundException", "no such external key")
        operation = match.group(2)
        if operation == "metadata":
            return {"keySpec": key.spec, "keyUsage": key.usage, "keyStatus": key.status}
        if key.status != "ENABLED":
            raise _ProxyError("InvalidStateException", "the external key is disabled")
        if not isinstance(metadata.get("kmsKeyArn"), str):
            raise _ProxyError("ValidationException", "kmsKeyArn is required")
        if body.get("encryptionAlgorithm") != "AES_GCM":
            raise _ProxyError("ValidationException", "encryptionAlgorithm must be AES_GCM")
        aad = _b64(body, "additionalAuthenticatedData", optional=True)
        if len(aad) > 8192:
            raise _ProxyError("ValidationException", "additionalAuthenticatedData is too long")
        if operation == "encrypt":
            if "ENCRYPT" not in key.usage:
                raise _ProxyError("InvalidKeyUsageException", "the key cannot encrypt")
            plaintext = _b64(body, "plaintext")
            if len(plaintext) > 4300:
                raise _ProxyError("ValidationException", "plaintext is too long")
            md, iv = self.metadata_version, secrets.token_bytes(12)
            sealed = AESGCM(key.material).encrypt(iv, plaintext, _gcm_aad(aad, md))
            ciphertext, tag = sealed[:-16], sealed[-16:]
            out = {"ciphertext": _enc(ciphertext), "initializationVector": _enc(iv), "authenticationTag": _enc(tag)}
            if md:
                out["ciphertextMetadata"] = _enc(md)
            if body.get("ciphertextDataIntegrityValueAlgorithm") == "SHA_256":
                out["ciphertextDataIntegrityValue"] = _enc(hashlib.sha256(aad + md + iv + ciphertext + tag).digest())
            return out
        if "DECRYPT" not in key.usage:
            raise _ProxyError("InvalidKeyUsageException", "the key cannot decrypt")
        ciphertext, iv = _b64(body, "ciphertext"), _b64(body, "initializationVector")
        tag = _b64(body, "authenticationTag")
        md = _b64(body, "ciphertextMetadata", optional=True)
        if len(iv) not in (12, 16) or len(tag) != 16 or len(md) > 20:
            raise _ProxyError("ValidationException", "bad initializationVector, authenticationTag or metadata")
        try:
            plaintext = AESGCM(key.material).decrypt(iv, ciphertext + tag, _gcm_aad(aad, md)) if len(iv) == 12 \
                else _decrypt_iv16(key.material, iv, ciphertext, tag, _gcm_aad(aad, md))
        except InvalidTag:
            raise _ProxyError("InvalidCiphertextException", "the ciphertext does not authenticate") from None
        return {"plaintext": _enc(plaintext)}


def _decrypt_iv16(material: bytes, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(material), modes.GCM(iv, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def _gcm_aad(aad: bytes, metadata: bytes) -> bytes:
    """The spec's unambiguous AAD: 2-byte AAD length | AAD | 1-byte metadata length | metadata."""
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64(body: dict, name: str, optional: bool = False) -> bytes:
    value = body.get(name)
    if value is None and optional:
        return b""
    if not isinstance(value, str):
        raise _ProxyError("ValidationException", f"{name} is required")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _ProxyError("ValidationException", f"{name} is not base64") from None


def _parse_authorization(headers) -> sigv4.Credential:
    """The SigV4 Authorization header of a proxy call (trentd's parser knows only its own
    services, so the scope is read here and the signature checked by sigv4.verify)."""
    auth = headers.get("authorization", "")
    algorithm, _, rest = auth.partition(" ")
    if algorithm != sigv4.ALGORITHM:
        raise AWSError("IncompleteSignatureException", "not a SigV4 Authorization header")
    params = dict(item.strip().partition("=")[::2] for item in rest.split(","))
    try:
        key_id, date, region, service, term = params["Credential"].split("/")
        signed = tuple(params["SignedHeaders"].split(";"))
        signature = params["Signature"]
    except (KeyError, ValueError):
        raise AWSError("IncompleteSignatureException", "malformed Authorization header") from None
    stamp = headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise AWSError("IncompleteSignatureException", "X-Amz-Date is missing or malformed") from None
    if service != SERVICE or term != "aws4_request" or date != stamp[:8]:
        raise AWSError("InvalidSignatureException", "wrong credential scope")
    if not {"host", "x-amz-date"} <= set(signed):
        raise AWSError("InvalidSignatureException", "host and x-amz-date must be signed")
    if abs(when.timestamp() - time.time()) > 300:
        raise AWSError("InvalidSignatureException", "signature expired")
    return sigv4.Credential(key_id, date, region, service, signed, signature.lower(), when, None, stamp)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive handlers would otherwise hold stop() forever
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connections: set = set()
        self._lock = threading.Lock()

    def get_request(self):
        conn, address = super().get_request()
        with self._lock:
            self._connections.add(conn)
        return conn, address

    def shutdown_request(self, request):
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # failed TLS handshakes and dropped connections are what some tests are about

    def close_connections(self) -> None:
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    owner: XksTestProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet: plaintexts never, and nothing else either
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, name: str, message: str) -> None:
        self._answer(_STATUS.get(name, 500), {"errorName": name, "errorMessage": message[:500]})

    def do_GET(self):  # noqa: N802
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # noqa: N802
        proxy = self.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if 0 < length <= 64 * 1024 else b""
        if proxy.delay:
            time.sleep(proxy.delay)
        headers = sigv4.normalize_headers([(k, v) for k, v in self.headers.items()])
        try:
            proxy.authenticate("POST", self.path, headers, raw)
            try:
                body = json.loads(raw)
            except ValueError:
                raise _ProxyError("ValidationException", "the body is not JSON") from None
            if not isinstance(body, dict):
                raise _ProxyError("ValidationException", "the body is not a JSON object")
            self._answer(200, proxy.handle(self.path, body))
        except _ProxyError as err:
            self._error(err.name, err.message)
