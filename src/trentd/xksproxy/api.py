"""The four operations of the XKS Proxy API v1, as the specification words them: GetHealthStatus
(``<UriPath>/health``), GetKeyMetadata, Encrypt and Decrypt (``<UriPath>/keys/<externalKeyId>/
metadata|encrypt|decrypt``), JSON in and out.

Each request, in order: SigV4 (xksproxy/auth.py; 401), the URI path (a key store's path and one of
the four operations, else InvalidUriPathException, 404; a credential of another key store, 401),
the body (a JSON object with a requestMetadata carrying kmsRequestId and kmsOperation on every
call, and awsPrincipalArn, and kmsKeyArn for Encrypt and Decrypt; ValidationException), the
operation's members (standard base64; sizes beyond what trentd supports above the spec's minimums
are UnsupportedOperationException, 501), the external key (KeyNotFoundException), secondary
authorization (AccessDeniedException), the key's status (InvalidStateException) and usages
(InvalidKeyUsageException), then the cryptography (crypto/xks_gcm.py).

Reads go through per-process caches tagged with the store's change epoch (store/changes.py), so
the hot path reads no store and an admin change reaches every worker and node within a second.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field

from ..auth.credential_cache import CredentialCache
from ..crypto import xks_gcm
from ..store.records import XksProxyKey, XksProxyKeystore
from ..store.xksproxy import credential_aad, material_aad
from . import auth
from .errors import XksError

OPERATIONS = {"metadata": "GetKeyMetadata", "encrypt": "Encrypt", "decrypt": "Decrypt"}
_ROUTE = re.compile(r"(?P<base>/.*?)(?:/health|/keys/(?P<key>[A-Za-z0-9._-]{1,128})/(?P<op>metadata|encrypt|decrypt))")
MAX_PLAINTEXT = 4300  # the spec's minimum, and trentd's maximum (larger: UnsupportedOperationException)
MAX_AAD = 8192
MAX_BODY = 64 * 1024
HEALTH_TTL_SECONDS = 30.0  # the deep health check's result is reused this long (the spec: at most 60 s)
VENDOR = "trentd"
_NOT_AUTHENTIC = ("The ciphertext, initialization vector, additional authenticated data or authentication tag is "
                  "invalid.")


@dataclass
class Call:
    """What one request revealed, for its answer and its audit event (xksproxy/events.py)."""

    request_id: str
    path: str
    operation: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    keystore: XksProxyKeystore | None = None
    key_id: str | None = None
    metadata: dict | None = None
    parameters: dict = field(default_factory=dict)  # non-secret request facts (never plaintext)


def route(path: str) -> tuple[str, str, str | None] | None:
    """(base URI path, operation name, external key id) of a path naming one of the four APIs."""
    match = _ROUTE.fullmatch(path)
    if match is None:
        return None
    return match["base"], OPERATIONS[match["op"]] if match["op"] else "GetHealthStatus", match["key"]


def _b64(body: dict, name: str, *, required: bool = True) -> bytes:
    value = body.get(name)
    if value is None and not required:
        return b""
    if not isinstance(value, str):
        raise XksError("ValidationException", f"{name} is required and must be a Base64-encoded string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise XksError("ValidationException", f"{name} is not standard Base64") from None


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _metadata(body: dict, operation: str) -> dict:
    metadata = body.get("requestMetadata")
    if not isinstance(metadata, dict) or not metadata:
        raise XksError("ValidationException", "requestMetadata is required")
    required = ["kmsRequestId", "kmsOperation"]
    if operation != "GetHealthStatus":
        required.append("awsPrincipalArn")
    if operation in ("Encrypt", "Decrypt"):
        required.append("kmsKeyArn")
    for name in required:
        if not isinstance(metadata.get(name), str) or not metadata[name]:
            raise XksError("ValidationException", f"requestMetadata.{name} is required")
    for name, value in metadata.items():
        if value is not None and not isinstance(value, str):
            raise XksError("ValidationException", f"requestMetadata.{name} must be a string")
        if isinstance(value, str) and len(value) > 2048:  # ARNs up to 2048 characters (the spec)
            raise XksError("ValidationException", f"requestMetadata.{name} is longer than 2048 characters")
    return metadata


def _algorithm(body: dict) -> None:
    algorithm = body.get("encryptionAlgorithm")
    if not isinstance(algorithm, str):
        raise XksError("ValidationException", "encryptionAlgorithm is required")
    if algorithm != "AES_GCM":
        raise XksError("UnsupportedOperationException", "encryptionAlgorithm must be AES_GCM")


class XksProxy:
    """The proxy's operations over one store and root key; thread-safe (handlers run on a pool)."""

    def __init__(self, store, root_key, *, fleet_size: int = 1, max_skew_seconds: int = 300,
                 root_key_model: str = "trentd root key", version: str = "unknown"):
        self.store = store
        self.root_key = root_key
        self.fleet_size = max(1, fleet_size)
        self.max_skew_seconds = max_skew_seconds
        self.root_key_model = root_key_model
        self.version = version
        self._credentials = CredentialCache(store)
        self._keystores = CredentialCache(store)
        self._keys = CredentialCache(store)
        self._health: tuple[float, str] | None = None
        self._health_lock = threading.Lock()

    # --- cached reads ---------------------------------------------------------------------------
    def credential(self, access_key_id: str) -> auth.Credential | None:
        def load():
            with self.store.read() as tx:
                row = tx.get_xks_proxy_credential(access_key_id)
            if row is None:
                return None
            secret = self.root_key.unwrap(row.wrapped_secret, credential_aad(row.keystore, row.access_key_id))
            return auth.Credential(row.keystore, secret.decode("ascii"))

        return self._credentials.get(access_key_id, load)

    def keystore_at(self, uri_path: str) -> XksProxyKeystore | None:
        def load():
            with self.store.read() as tx:
                return tx.xks_proxy_keystore_at(uri_path)

        return self._keystores.get(uri_path, load)

    def key(self, keystore: str, key_id: str) -> tuple[XksProxyKey, bytes] | None:
        def load():
            with self.store.read() as tx:
                row = tx.get_xks_proxy_key(keystore, key_id)
            if row is None:
                return None
            return row, self.root_key.unwrap(row.wrapped, material_aad(keystore, key_id))

        return self._keys.get(f"{keystore}\0{key_id}", load)

    # --- one request ----------------------------------------------------------------------------
    def handle(self, call: Call, headers, body: bytes) -> dict:
        """The answer to a POST; raises XksError. Fills ``call`` as it learns."""
        cred = auth.parse_credential(headers, self.max_skew_seconds)
        call.access_key_id, call.region = cred.access_key_id, cred.region
        found = auth.verify(cred, self.credential(cred.access_key_id), path=call.path, headers=headers, body=body)
        routed = route(call.path)
        keystore = self.keystore_at(routed[0]) if routed else None
        if routed is None or keystore is None:
            raise XksError("InvalidUriPathException", "The URI path names no key store or operation of this proxy.")
        _, call.operation, call.key_id = routed
        auth.for_keystore(found, keystore.name)
        call.keystore = keystore
        if len(body) > MAX_BODY:
            raise XksError("UnsupportedOperationException", f"The request body is larger than {MAX_BODY} bytes.")
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            raise XksError("ValidationException", "The request body is not JSON.") from None
        if not isinstance(request, dict):
            raise XksError("ValidationException", "The request body is not a JSON object.")
        call.metadata = _metadata(request, call.operation)
        if call.operation == "GetHealthStatus":  # never subject to secondary authorization
            return self.health()
        return getattr(self, "_" + call.operation.lower())(call, request)

    # --- GetHealthStatus ------------------------------------------------------------------------
    def health(self) -> dict:
        return {"xksProxyFleetSize": self.fleet_size, "xksProxyVendor": VENDOR,
                "xksProxyModel": f"trentd XKS proxy {self.version}", "ekmVendor": VENDOR,
                "ekmFleetDetails": [{"id": "trentd-root-key", "model": self.root_key_model,
                                     "healthStatus": self._deep_health()}]}

    def _deep_health(self) -> str:
        """ACTIVE when the store answers and a test value round-trips through the root key and
        AES-GCM (no external key is used: the spec asks for test keys); UNAVAILABLE otherwise.
        Reused for HEALTH_TTL_SECONDS."""
        with self._health_lock:
            cached = self._health
            if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL_SECONDS:
                return cached[1]
            try:
                with self.store.read() as tx:
                    tx.list_xks_proxy_keystores()
                material, aad = os.urandom(32), b"trentd xks proxy health check"
                if self.root_key.unwrap(self.root_key.wrap(material, aad), aad) != material:
                    raise ValueError("root key round trip")
                iv, ciphertext, tag = xks_gcm.seal(material, b"health", aad)
                status = "ACTIVE" if xks_gcm.unseal(material, iv, ciphertext, tag, aad) == b"health" else "UNAVAILABLE"
            except Exception:  # noqa: BLE001 - any failure means the key manager cannot serve
                status = "UNAVAILABLE"
            self._health = (time.monotonic(), status)
            return status

    # --- the key operations ---------------------------------------------------------------------
    def _usable(self, call: Call, operation: str) -> tuple[XksProxyKey, bytes]:
        assert call.keystore is not None and call.key_id is not None and call.metadata is not None
        found = self.key(call.keystore.name, call.key_id)
        if found is None:
            raise XksError("KeyNotFoundException", f"The key store has no external key {call.key_id}.")
        auth.authorize(call.keystore.policy, operation, call.metadata, call.region or "", call.keystore.account,
                       call.key_id)
        return found

    def _getkeymetadata(self, call: Call, request: dict) -> dict:
        key, _ = self._usable(call, "GetKeyMetadata")
        return {"keySpec": "AES_256", "keyUsage": list(key.usages), "keyStatus": key.status}

    def _enabled_for(self, key: XksProxyKey, usage: str) -> None:
        if key.status != "ENABLED":
            raise XksError("InvalidStateException", f"The external key {key.key_id} is disabled.")
        if usage not in key.usages:
            raise XksError("InvalidKeyUsageException", f"The external key {key.key_id} does not allow {usage}.")

    def _encrypt(self, call: Call, request: dict) -> dict:
        plaintext = _b64(request, "plaintext")
        _algorithm(request)
        aad = _b64(request, "additionalAuthenticatedData", required=False)
        cdiv = request.get("ciphertextDataIntegrityValueAlgorithm")
        if cdiv is not None and not isinstance(cdiv, str):
            raise XksError("ValidationException", "ciphertextDataIntegrityValueAlgorithm must be a string")
        if cdiv is not None and cdiv != "SHA_256":
            raise XksError("UnsupportedOperationException", "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
        self._sizes(call, plaintext, aad, "plaintext")
        key, material = self._usable(call, "Encrypt")
        self._enabled_for(key, "ENCRYPT")
        if cdiv is not None and "DECRYPT" not in key.usages:
            # The integrity value promises that the ciphertext decrypts (the spec's Appendix C):
            # checked by decrypting, which a key without DECRYPT may not do.
            raise XksError("InvalidKeyUsageException", f"The external key {key.key_id} does not allow DECRYPT, which "
                                                       "the ciphertext data integrity value needs.")
        iv, ciphertext, tag = xks_gcm.seal(material, plaintext, aad)
        answer = {"ciphertext": _enc(ciphertext), "initializationVector": _enc(iv), "authenticationTag": _enc(tag)}
        if cdiv is not None:
            value = xks_gcm.integrity_value(aad, b"", iv, ciphertext, tag)  # before the check, as Appendix C asks
            try:
                if xks_gcm.unseal(material, iv, ciphertext, tag, aad) != plaintext:
                    raise xks_gcm.InvalidTag()
            except xks_gcm.InvalidTag:
                raise XksError("InternalException", "The ciphertext did not decrypt to the plaintext.") from None
            answer["ciphertextDataIntegrityValue"] = _enc(value)
        return answer

    def _decrypt(self, call: Call, request: dict) -> dict:
        ciphertext = _b64(request, "ciphertext")
        _algorithm(request)
        aad = _b64(request, "additionalAuthenticatedData", required=False)
        iv = _b64(request, "initializationVector")
        tag = _b64(request, "authenticationTag")
        metadata = _b64(request, "ciphertextMetadata", required=False)
        self._sizes(call, ciphertext, aad, "ciphertext")
        if len(metadata) > xks_gcm.MAX_METADATA:
            raise XksError("ValidationException", "ciphertextMetadata is longer than 20 bytes")
        key, material = self._usable(call, "Decrypt")
        self._enabled_for(key, "DECRYPT")
        if len(iv) not in xks_gcm.IV_SIZES or len(tag) != xks_gcm.TAG_BYTES:
            raise XksError("InvalidCiphertextException", "The initialization vector must be 12 or 16 bytes and the "
                                                         "authentication tag 16 bytes.")
        try:
            plaintext = xks_gcm.unseal(material, iv, ciphertext, tag, aad, metadata)
        except xks_gcm.InvalidTag:
            raise XksError("InvalidCiphertextException", _NOT_AUTHENTIC) from None
        return {"plaintext": _enc(plaintext)}

    @staticmethod
    def _sizes(call: Call, data: bytes, aad: bytes, name: str) -> None:
        call.parameters.update({f"{name}Bytes": len(data), "additionalAuthenticatedDataBytes": len(aad)})
        if len(data) > MAX_PLAINTEXT:
            raise XksError("UnsupportedOperationException", f"{name} is longer than {MAX_PLAINTEXT} bytes")
        if len(aad) > MAX_AAD:
            raise XksError("UnsupportedOperationException", f"additionalAuthenticatedData is longer than {MAX_AAD} "
                                                            "bytes")
