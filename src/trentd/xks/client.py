"""A client for the XKS proxy API (aws/aws-kms-xksproxy-api-spec, v1): GetHealthStatus,
GetKeyMetadata, Encrypt and Decrypt, as JSON POSTs over HTTPS, signed with SigV4 (service
``kms-xks-proxy``, the Region of the KMS key, signed headers ``host;x-amz-date``).

Every failure becomes a :class:`ProxyError` whose ``kind`` says what went wrong — the network
(``unreachable``), TLS (``tls``), time (``timeout``), a response that breaks the spec
(``invalid_response``), an error the proxy named (``proxy``, with ``error_name``), or a health
report with no usable key manager (``unavailable``). keydomain/external.py maps kinds to the KMS
errors AWS answers for each operation (kms/keystores.py for the custom key store operations).

Test and development only: ``resolve`` maps an endpoint's host name to a local ``HOST:PORT``
(TLS still verifies the certificate against the endpoint's name), and ``ca_bundle`` trusts a
private CA besides the system's (``trentd serve --xks-resolve/--xks-ca-bundle``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..inline import offload_point

SERVICE = "kms-xks-proxy"
DEFAULT_TIMEOUT = 1.0  # seconds per call; AWS allows 250 ms (see docs/design.md)
MAX_RESPONSE = 64 * 1024
_HEALTH = ("ACTIVE", "DEGRADED", "UNAVAILABLE")


class ProxyError(Exception):
    def __init__(self, kind: str, detail: str = "", error_name: str | None = None):
        super().__init__(f"{kind}: {error_name or ''} {detail}".strip())
        self.kind = kind
        self.error_name = error_name
        self.detail = detail


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to call one external key store's proxy."""

    uri_endpoint: str  # https://host (no port, no path)
    uri_path: str  # [/prefix]/kms/xks/v1
    access_key_id: str
    secret: str
    region: str  # the KMS Region calling (part of the SigV4 scope)


@dataclass(frozen=True)
class Encrypted:
    ciphertext: bytes
    iv: bytes
    tag: bytes
    metadata: bytes


def _b64(value, name: str) -> bytes:
    if not isinstance(value, str):
        raise ProxyError("invalid_response", f"{name} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProxyError("invalid_response", f"{name} is not base64") from None


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class XksConnector:
    """Signs and sends proxy calls over pooled keep-alive connections (one pool per endpoint)."""

    def __init__(self, resolve: dict[str, str] | None = None, ca_bundle: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.resolve = {k.lower(): v for k, v in (resolve or {}).items()}
        self.timeout = timeout
        ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_bundle:
            ctx.load_verify_locations(cafile=ca_bundle)
        self._context = ctx
        self._pools: dict[tuple[str, str, int], urllib3.HTTPSConnectionPool] = {}
        self._lock = threading.Lock()

    # --- transport ----------------------------------------------------------------------------
    def _pool(self, host: str) -> urllib3.HTTPSConnectionPool:
        target = self.resolve.get(host.lower())
        if target:
            connect_host, _, port = target.rpartition(":")
            connect_port = int(port)
        else:
            connect_host, connect_port = host, 443
        key = (host.lower(), connect_host, connect_port)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = urllib3.HTTPSConnectionPool(
                    connect_host, connect_port, maxsize=8, block=False, retries=False,
                    timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
                    ssl_context=self._context, server_hostname=host)
            return pool

    def call(self, ep: Endpoint, suffix: str, body: dict) -> dict:
        """POST ``body`` to ``{endpoint}{path}{suffix}``; the proxy's JSON answer, or ProxyError."""
        offload_point()  # a network call: never on the event loop (trentd/inline.py)
        host = urlsplit(ep.uri_endpoint).hostname or ""
        path = ep.uri_path + suffix
        payload = json.dumps(body, separators=(",", ":")).encode()
        request = AWSRequest(method="POST", url=f"https://{host}{path}", data=payload)
        SigV4Auth(Credentials(ep.access_key_id, ep.secret), SERVICE, ep.region).add_auth(request)
        headers = {"Host": host, "X-Amz-Date": request.headers["X-Amz-Date"],
                   "Authorization": request.headers["Authorization"], "Content-Type": "application/json"}
        try:
            response = self._pool(host).urlopen("POST", path, body=payload, headers=headers, redirect=False,
                                                preload_content=False, assert_same_host=False)
            try:
                raw = response.read(MAX_RESPONSE + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass: first
            raise ProxyError("unreachable", str(exc)) from None
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError):
            raise ProxyError("timeout", "the proxy did not answer in time") from None
        except urllib3.exceptions.SSLError as exc:
            raise ProxyError("tls", str(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ProxyError("unreachable", str(exc)) from None
        if len(raw) > MAX_RESPONSE:
            raise ProxyError("invalid_response", "response too large")
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if response.status != 200:
            name = data.get("errorName") if isinstance(data, dict) else None
            if not isinstance(name, str):
                raise ProxyError("invalid_response", f"HTTP {response.status} without an errorName")
            raise ProxyError("proxy", f"HTTP {response.status}", error_name=name)
        if not isinstance(data, dict):
            raise ProxyError("invalid_response", "the answer is not a JSON object")
        return data

    # --- the four operations --------------------------------------------------------------------
    def health(self, ep: Endpoint, metadata: dict) -> dict:
        data = self.call(ep, "/health", {"requestMetadata": metadata})
        fleet = data.get("ekmFleetDetails")
        size = data.get("xksProxyFleetSize")
        if (type(size) is not int or size < 1 or not isinstance(fleet, list) or not 1 <= len(fleet) <= 10
                or not all(isinstance(data.get(k), str) for k in ("xksProxyVendor", "xksProxyModel", "ekmVendor"))
                or not all(isinstance(e, dict) and e.get("healthStatus") in _HEALTH for e in fleet)):
            raise ProxyError("invalid_response", "malformed GetHealthStatus answer")
        if all(e["healthStatus"] == "UNAVAILABLE" for e in fleet):
            raise ProxyError("unavailable", "every external key manager is unavailable")
        return data

    def key_metadata(self, ep: Endpoint, xks_key_id: str, metadata: dict) -> dict:
        data = self.call(ep, f"/keys/{xks_key_id}/metadata", {"requestMetadata": metadata})
        usage = data.get("keyUsage")
        if (not isinstance(data.get("keySpec"), str) or not isinstance(data.get("keyStatus"), str)
                or not isinstance(usage, list) or not all(isinstance(u, str) for u in usage)):
            raise ProxyError("invalid_response", "malformed GetKeyMetadata answer")
        return data

    def encrypt(self, ep: Endpoint, xks_key_id: str, metadata: dict, plaintext: bytes, aad: bytes) -> Encrypted:
        data = self.call(ep, f"/keys/{xks_key_id}/encrypt", {
            "requestMetadata": metadata, "plaintext": _enc(plaintext), "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": _enc(aad), "ciphertextDataIntegrityValueAlgorithm": "SHA_256"})
        ciphertext = _b64(data.get("ciphertext"), "ciphertext")
        iv = _b64(data.get("initializationVector"), "initializationVector")
        tag = _b64(data.get("authenticationTag"), "authenticationTag")
        md = _b64(data["ciphertextMetadata"], "ciphertextMetadata") if "ciphertextMetadata" in data else b""
        cdiv = _b64(data.get("ciphertextDataIntegrityValue"), "ciphertextDataIntegrityValue")
        if len(ciphertext) != len(plaintext) or len(iv) not in (12, 16) or len(tag) != 16 or len(md) > 20:
            raise ProxyError("invalid_response", "encrypt output out of range")
        # The integrity value proves the proxy returned what it computed (spec, Appendix C).
        if hashlib.sha256(aad + md + iv + ciphertext + tag).digest() != cdiv:
            raise ProxyError("invalid_response", "ciphertextDataIntegrityValue does not match")
        return Encrypted(ciphertext, iv, tag, md)

    def decrypt(self, ep: Endpoint, xks_key_id: str, metadata: dict, sealed: Encrypted, aad: bytes) -> bytes:
        body = {"requestMetadata": metadata, "ciphertext": _enc(sealed.ciphertext), "encryptionAlgorithm": "AES_GCM",
                "additionalAuthenticatedData": _enc(aad), "initializationVector": _enc(sealed.iv),
                "authenticationTag": _enc(sealed.tag)}
        if sealed.metadata:
            body["ciphertextMetadata"] = _enc(sealed.metadata)
        plaintext = _b64(self.call(ep, f"/keys/{xks_key_id}/decrypt", body).get("plaintext"), "plaintext")
        if len(plaintext) != len(sealed.ciphertext):
            raise ProxyError("invalid_response", "decrypt output has the wrong length")
        return plaintext
