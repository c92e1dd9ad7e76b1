"""Test helpers for trentd's XKS proxy listener (tests/e2e/test_xks_proxy*.py): test CAs and
certificates (trustme), the ``trentd xks`` admin commands run as processes, and a small XKS client
with an independent SigV4 signer (so a test can sign with a wrong secret, an old date, another
service or other signed headers)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import trustme
import urllib3

from trentd.testing.server import TrentdServer

HOST = "xks.trentd.test"
REGION = "us-east-1"
AWS_CLIENT_CN = "cks.kms.us-east-1.amazonaws.com"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def write_ca(ca: trustme.CA, directory: Path) -> Path:
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    issued = ca.issue_cert(HOST, "localhost", "127.0.0.1")
    cert, key = directory / "xks-cert.pem", directory / "xks-key.pem"
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return cert, key


def admin(server: TrentdServer, *args: str, ok: bool = True):
    """``trentd xks ARGS`` over the server's store: its JSON output, or (exit status, stderr)."""
    command = [sys.executable, "-m", "trentd", "xks", *args, "--data-dir", str(server.data_dir)]
    if server.database:
        command += ["--database", server.database]
    if server.root_key_file:
        command += ["--root-key-file", str(server.root_key_file)]
    if server.pkcs11 is not None:
        command += server.pkcs11.args()
    done = subprocess.run(command, capture_output=True, text=True, env=server.process_env(), timeout=60)
    if ok:
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    assert done.returncode != 0, done.stdout
    return done.returncode, done.stderr.strip()


def sign(path: str, body: bytes, access_key_id: str, secret: str, *, when: dt.datetime | None = None,
         region: str = REGION, service: str = "kms-xks-proxy", signed: tuple[str, ...] = ("host", "x-amz-date"),
         extra: dict | None = None) -> dict:
    """SigV4 headers of a POST, computed here (not by trentd or botocore)."""
    when = when or dt.datetime.now(dt.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": HOST, "x-amz-date": stamp, "content-type": "application/json", **(extra or {})}
    canonical = "\n".join(["POST", path, "", *(f"{n}:{headers[n]}" for n in signed), "", ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={signature}")
    return headers


def metadata(operation: str = "Encrypt", principal: str = "arn:aws:iam::111122223333:user/alice", **more) -> dict:
    out = {"kmsRequestId": f"req-{time.monotonic_ns()}", "kmsOperation": operation, "awsPrincipalArn": principal,
           "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}
    out.update(more)
    return {k: v for k, v in out.items() if v is not None}


class XksClient:
    """HTTPS to one XKS listener as one key store's credential."""

    def __init__(self, port: int, ca_path: Path, uri_path: str, access_key_id: str, secret: str,
                 client_cert: trustme.LeafCert | None = None, server_name: str = HOST):
        context = ssl.create_default_context(cafile=str(ca_path))
        if client_cert is not None:
            client_cert.configure_cert(context)
        self.pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, ssl_context=context, server_hostname=server_name,
                                                retries=False, timeout=10, maxsize=4)
        self.uri_path, self.access_key_id, self.secret = uri_path, access_key_id, secret

    def raw(self, path: str, body: bytes, headers: dict | None = None, method: str = "POST"):
        return self.pool.urlopen(method, path, body=body if method == "POST" else None, headers=headers or {},
                                 assert_same_host=False)

    def post(self, suffix: str, request, *, secret: str | None = None, access_key_id: str | None = None,
             path: str | None = None, **signing) -> tuple[int, dict]:
        path = path or self.uri_path + suffix
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        headers = sign(path, body, access_key_id or self.access_key_id, secret or self.secret, **signing)
        response = self.raw(path, body, headers)
        return response.status, json.loads(response.data) if response.data else {}

    # --- the four operations, answering (status, body) ---------------------------------------
    def health(self, md: dict | None = None) -> tuple[int, dict]:
        return self.post("/health", {"requestMetadata": md if md is not None else
                                     {"kmsRequestId": "h-1", "kmsOperation": "KmsHealthCheck"}})

    def key_metadata(self, key_id: str, md: dict | None = None) -> tuple[int, dict]:
        return self.post(f"/keys/{key_id}/metadata", {"requestMetadata": md or metadata("DescribeKey")})

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes | None = None, md: dict | None = None,
                **members) -> tuple[int, dict]:
        request = {"requestMetadata": md or metadata("Encrypt"), "plaintext": b64(plaintext),
                   "encryptionAlgorithm": "AES_GCM", **members}
        if aad is not None:
            request["additionalAuthenticatedData"] = b64(aad)
        return self.post(f"/keys/{key_id}/encrypt", request)

    def decrypt(self, key_id: str, sealed: dict, aad: bytes | None = None, md: dict | None = None,
                **members) -> tuple[int, dict]:
        request = {"requestMetadata": md or metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM",
                   **{k: sealed[k] for k in ("ciphertext", "initializationVector", "authenticationTag")}, **members}
        if aad is not None:
            request["additionalAuthenticatedData"] = b64(aad)
        return self.post(f"/keys/{key_id}/decrypt", request)


def error(answer: tuple[int, dict]) -> tuple[int, str]:
    status, body = answer
    assert set(body) == {"errorName", "errorMessage"}, body
    message = body["errorMessage"]
    assert len(message) < 512 and all(" " <= ch <= "~" for ch in message), message
    return status, body["errorName"]


def eventually(check, timeout: float = 5.0):
    """``check()`` until it returns without AssertionError (admin changes reach workers within ~1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class TrentdXksProxy:
    """A real XKS proxy — a trentd serving ``--xks-proxy-port`` with a test CA's certificate for
    ``xks.trentd.test`` — with the attributes of trentd.testing.xks_proxy.XksTestProxy that the
    KMS-side helpers of tests/e2e/test_xks.py read (``uri_endpoint``, ``uri_path``,
    ``access_key_id``, ``secret``, ``resolve_arg``, ``ca.path``, ``add_key``), for tests that need a
    proxy that behaves. Use as a context manager."""

    def __init__(self, directory: Path, host: str = HOST, cert: tuple[Path, Path] | None = None,
                 ca_path: Path | None = None):
        """``cert`` and ``ca_path``: the listener's certificate for ``host`` and its CA (default: a
        trustme CA's)."""
        self.directory, self.host = directory, host
        if cert is None or ca_path is None:
            ca = trustme.CA()
            cert, ca_path = server_cert(ca, directory), write_ca(ca, directory)
        self.port = _free_port()
        self.server = TrentdServer(data_dir=directory / "data",
                                   extra_args=("--xks-proxy-port", str(self.port), "--xks-proxy-tls-cert", str(cert[0]),
                                               "--xks-proxy-tls-key", str(cert[1])))
        self.ca = _Ca(ca_path)
        self.uri_endpoint = f"https://{host}"

    def __enter__(self) -> "TrentdXksProxy":
        self.server.__enter__()
        keystore = admin(self.server, "keystores", "create", "--name", "tests")
        self.uri_path, self.access_key_id, self.secret = (keystore["UriPath"], keystore["AccessKeyId"],
                                                          keystore["SecretAccessKey"])
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    @property
    def resolve_arg(self) -> str:
        return f"{self.host}=127.0.0.1:{self.port}"

    def add_key(self, key_id: str, **_unused) -> None:
        admin(self.server, "keys", "create", "--keystore", "tests", "--key-id", key_id)


class _Ca:
    def __init__(self, path: Path):
        self.path = path


def _free_port() -> int:
    from trentd.testing.server import free_port

    return free_port()
