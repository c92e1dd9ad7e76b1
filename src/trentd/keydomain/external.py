"""KMS keys in an external key store: their binding to the store and its external key, how they
show while the store is not connected, and their cryptography through the store's XKS proxy
(xks/client.py). The custom key store operations themselves are kms/keystores.py.

A key in an external key store is double-encrypted as in AWS (crypto/xks_envelope.py): first
under its own trentd-held backing key, then by the external key through the proxy. Its key state
shows Unavailable while its store is not CONNECTED (the stored Enabled/Disabled state comes back
on reconnection). Proxy failures map to the errors AWS documents for each operation (the XKS
proxy API specification, "KMS Considerations" of Error codes): cryptographic operations always get
KMSInvalidStateException with a message that names the cause.
"""

from __future__ import annotations

import threading

from ..crypto import specs, xks_envelope
from ..errors import AWSError, internal, invalid_ciphertext, invalid_state, validation
from ..store.keystores import KeyStoreRecord, XksBinding, secret_aad
from ..xks.client import Encrypted, Endpoint, ProxyError

XKS = "EXTERNAL_KEY_STORE"  # the custom key store type
ORIGIN = "EXTERNAL_KEY_STORE"  # the Origin of a KMS key in one
CONNECTED, DISCONNECTED, FAILED = "CONNECTED", "DISCONNECTED", "FAILED"

CLOUDHSM_UNSUPPORTED = ("Custom key stores of type AWS_CLOUDHSM are not supported by trentd: there is no AWS CloudHSM "
                        "cluster to connect to. Use CustomKeyStoreType EXTERNAL_KEY_STORE with an external key store "
                        "proxy.")

# The message AWS KMS gives for each proxy failure, whatever exception carries it (XKS proxy API
# specification, "Error codes").
_INTERPRET = ("AWS KMS cannot interpret the response from the external key store proxy. If you see this error "
              "repeatedly, report it to your external key store proxy administrator.")
PROXY_MESSAGES = {
    "ValidationException": _INTERPRET,
    "InvalidStateException": "The external key associated with this KMS key in an external key store is not enabled "
                             "in the external key manager. Enable the external key in the external key manager and "
                             "retry the request.",
    "InvalidCiphertextException": "The external key store proxy rejected the request because the specified ciphertext "
                                  "or encryption context is corrupted, missing, or otherwise invalid.",
    "InvalidKeyUsageException": "The external key associated with this KMS key in an external key store does not "
                                "support the requested operation. Enable the operation on the key in your external "
                                "key manager, and try the request again.",
    "AuthenticationFailedException": "The external key store proxy rejected the request because it could not "
                                     "authenticate AWS KMS. Verify the XKS proxy authentication credentials for your "
                                     "external key store and update if necessary.",
    "AccessDeniedException": "The external key store proxy denied access to the operation. Verify that the user and "
                             "the external key are both authorized for this operation, and try the request again.",
    "KeyNotFoundException": "The external key associated with this KMS key in an external key store was not found in "
                            "its external key manager. If the external key ID associated with this KMS key is "
                            "incorrect, create a new KMS key with the correct external key ID.",
    "InvalidUriPathException": "The external key store proxy rejected the request because of an invalid URI path. "
                               "Verify the URI path for your external key store and update if necessary.",
    "UnsupportedOperationException": "The external key store proxy rejected the request because it does not support "
                                     "the requested operation. If you see this error repeatedly, report it to your "
                                     "external key store proxy administrator.",
    "DependencyTimeoutException": "The external key store proxy did not respond to the request in the time allotted. "
                                  "Retry the request. If you see this error repeatedly, report it to your external key "
                                  "store proxy administrator.",
    "ThrottlingException": "The external key store proxy rejected the request due to a very high request rate. Reduce "
                           "the frequency of your calls using KMS keys in this external key store.",
    "InternalException": "The external key store proxy rejected the request because it cannot communicate with the "
                         "external key manager. Verify that the external key store proxy configuration is correct "
                         "and that the external key manager is available.",
    "unreachable": "AWS KMS cannot communicate with the external key store proxy. This might be a transient network "
                   "issue. If you see this error repeatedly, verify that your external key store proxy is active and "
                   "is connected to the network, and that its endpoint URI is correct in your external keystore.",
    "tls": "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, "
           "including its certificate.",
    "timeout": "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the "
               "request. If you see this error repeatedly, report it to your external key store proxy administrator.",
    "invalid_response": _INTERPRET,
    "unavailable": "The external key store proxy reports that none of its external key managers is available. Verify "
                   "that the external key manager is available.",
}
BAD_PLAINTEXT = ("The ciphertext that the external key store proxy submitted for decryption, or the encryption "
                 "context, is corrupted, missing, or otherwise invalid.")


def proxy_cause(err: ProxyError) -> str:
    """The PROXY_MESSAGES entry of a proxy failure."""
    return err.error_name if err.kind == "proxy" and err.error_name in PROXY_MESSAGES else (
        "invalid_response" if err.kind == "proxy" else err.kind)


def proxy_message(err: ProxyError) -> str:
    return PROXY_MESSAGES[proxy_cause(err)]


# CreateKey: the exception for each failure of GetKeyMetadata.
_CREATE_KEY_ERRORS = {
    "KeyNotFoundException": "XksKeyNotFoundException",
    "InvalidStateException": "XksKeyInvalidConfigurationException",
    "InvalidKeyUsageException": "XksKeyInvalidConfigurationException",
    "AccessDeniedException": "KMSInvalidStateException",
}


def store_not_found(store_id: str) -> AWSError:
    return AWSError("CustomKeyStoreNotFoundException", f"Custom key store {store_id} does not exist.")


def store_invalid_state(message: str) -> AWSError:
    return AWSError("CustomKeyStoreInvalidStateException", message)


# --- credentials ----------------------------------------------------------------------------
_SECRETS: dict[bytes, str] = {}  # wrapped secret -> secret: one unwrap per credential, not per call
_SECRETS_LOCK = threading.Lock()


def endpoint(svc, store: KeyStoreRecord) -> Endpoint:
    secret = _SECRETS.get(store.wrapped_secret)
    if secret is None:
        secret = svc.root_key.unwrap(store.wrapped_secret, secret_aad(store.account, store.region, store.store_id,
                                                                      store.access_key_id)).decode()
        with _SECRETS_LOCK:
            if len(_SECRETS) > 1000:
                _SECRETS.clear()
            _SECRETS[store.wrapped_secret] = secret
    return Endpoint(store.uri_endpoint, store.uri_path, store.access_key_id, secret, store.region)


def check_generate_random(svc, caller, store_id: str) -> None:
    """GenerateRandom with a CustomKeyStoreId: an external key store's ID is not valid there
    (UnsupportedOperationException, as the API reference says), and trentd has no other kind."""
    with svc.store.read() as tx:
        if tx.get_key_store(caller.account, caller.region, store_id) is None:
            raise store_not_found(store_id)
    raise AWSError("UnsupportedOperationException",
                   f"{store_id} is an external key store. GenerateRandom accepts only the ID of an AWS CloudHSM key "
                   "store in CustomKeyStoreId.")


# --- KMS keys in external key stores -----------------------------------------------------------
def load_binding(svc, tx, key) -> None:
    """A key loader (kms/service.py KEY_LOADERS): attach a key's external key store, and show the key Unavailable while
    the store is not connected (its own Enabled/Disabled state is kept for reconnection)."""
    if key.origin != ORIGIN:
        return
    key.xks = tx.get_xks_binding(key.account, key.region, key.key_id)
    store = key.xks.store if key.xks else None
    if key.key_state in ("Enabled", "Disabled") and (store is None or store.connection_state != CONNECTED):
        key.key_state = "Unavailable"



def metadata_fields(key) -> dict:
    if key.xks is None:
        return {}
    return {"CustomKeyStoreId": key.xks.store_id, "XksKeyConfiguration": {"Id": key.xks.xks_key_id}}


def check_create_key(svc, caller, req: dict, spec_name: str, usage: str, origin: str) -> tuple[str, str] | None:
    """CreateKey: validate a key in an external key store and check its external key through the
    proxy (before the write transaction). Returns (store id, external key id), or None when the
    request is not for a custom key store."""
    store_id, xks_key_id = req.get("CustomKeyStoreId"), req.get("XksKeyId")
    if origin == "AWS_CLOUDHSM":
        raise AWSError("UnsupportedOperationException", CLOUDHSM_UNSUPPORTED)
    if origin != ORIGIN:
        if xks_key_id is not None:
            raise validation("XksKeyId is valid only for KMS keys with Origin EXTERNAL_KEY_STORE.")
        if store_id is not None:
            raise validation("To create a KMS key in an external key store, set Origin to EXTERNAL_KEY_STORE.")
        return None
    if store_id is None:
        raise validation("CustomKeyStoreId is required for KMS keys with Origin EXTERNAL_KEY_STORE.")
    if xks_key_id is None:
        raise validation("XksKeyId is required for KMS keys with Origin EXTERNAL_KEY_STORE.")
    if req.get("MultiRegion"):
        raise AWSError("UnsupportedOperationException", "Multi-Region keys cannot be created in a custom key store.")
    if spec_name != "SYMMETRIC_DEFAULT" or usage != specs.ENCRYPT_DECRYPT:
        raise AWSError("UnsupportedOperationException",
                       f"KeySpec {spec_name} with KeyUsage {usage} is not valid in a custom key store: only symmetric "
                       "encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) can be created there.")
    with svc.store.read() as tx:
        store = usable_store(tx, caller, store_id)
        check_unused(tx, caller, store_id, xks_key_id)
    metadata = {"awsPrincipalArn": caller.principal_arn, "kmsOperation": caller.operation,
                "kmsRequestId": caller.request_id}
    try:
        found = svc.xks.key_metadata(endpoint(svc, store), xks_key_id, metadata)
    except ProxyError as err:
        cause = proxy_cause(err)
        raise AWSError(_CREATE_KEY_ERRORS.get(cause, "CustomKeyStoreInvalidStateException"),
                       PROXY_MESSAGES[cause]) from None
    problems = []
    if found["keySpec"] != "AES_256":
        problems.append(f"its key spec is {found['keySpec']}, not AES_256")
    if not {"ENCRYPT", "DECRYPT"} <= set(found["keyUsage"]):
        problems.append("it does not allow both ENCRYPT and DECRYPT")
    if found["keyStatus"] != "ENABLED":
        problems.append(f"its status is {found['keyStatus']}, not ENABLED")
    if problems:
        raise AWSError("XksKeyInvalidConfigurationException",
                       f"The external key {xks_key_id} cannot back a KMS key: {'; '.join(problems)}. It must be an "
                       "enabled AES-256 key that performs encryption and decryption.")
    return store_id, xks_key_id


def usable_store(tx, caller, store_id: str) -> KeyStoreRecord:
    store = tx.get_key_store(caller.account, caller.region, store_id)
    if store is None:
        raise store_not_found(store_id)
    if store.connection_state != CONNECTED:
        raise store_invalid_state(f"Custom key store {store_id} is not connected. Connect it (ConnectCustomKeyStore) "
                             "and try the request again.")
    return store


def check_unused(tx, caller, store_id: str, xks_key_id: str) -> None:
    if tx.xks_key_in_use(caller.account, caller.region, store_id, xks_key_id):
        raise AWSError("XksKeyAlreadyInUseException",
                       f"The external key {xks_key_id} is already associated with another KMS key in custom key "
                       f"store {store_id}.")


def bind_key(tx, caller, key, external: tuple[str, str]) -> None:
    """Inside CreateKey's write transaction: the store must still be connected and the external
    key still free; record the binding."""
    store_id, xks_key_id = external
    store = usable_store(tx, caller, store_id)
    check_unused(tx, caller, store_id, xks_key_id)
    tx.insert_xks_key(key.account, key.region, key.key_id, store_id, xks_key_id)
    key.xks = XksBinding(store_id, xks_key_id, store)


def _request_metadata(caller, key) -> dict:
    return {"awsPrincipalArn": caller.principal_arn if caller else "AWS Internal", "kmsKeyArn": key.arn,
            "kmsOperation": (caller.operation if caller else "") or "Encrypt",
            "kmsRequestId": caller.request_id if caller else ""}


def _binding(key) -> tuple[str, KeyStoreRecord]:
    """The external key id of ``key`` and the store that holds it."""
    if key.xks is None or key.xks.store is None:
        raise internal(f"The external key store of {key.arn} is missing.")
    return key.xks.xks_key_id, key.xks.store


def seal(svc, tx, caller, key, plaintext: bytes, context) -> bytes:
    """Encrypt under a key in an external key store: a v2 blob (crypto/xks_envelope.py)."""
    xks_key_id, store = _binding(key)
    material = svc.current_material(tx, key)
    header = xks_envelope.header_bytes(xks_envelope.XksHeader(
        key.account, key.key_id, bytes.fromhex(key.current_material), xks_key_id))
    inner = xks_envelope.inner_seal(header, material, plaintext, context)
    try:
        out = svc.xks.encrypt(endpoint(svc, store), xks_key_id, _request_metadata(caller, key), inner,
                              xks_envelope.proxy_aad(header, context))
    except ProxyError as err:
        raise invalid_state(proxy_message(err)) from None
    return xks_envelope.assemble(header, out.iv, out.metadata, out.tag, out.ciphertext)


def open_sealed(svc, tx, caller, key, blob: xks_envelope.XksBlob, context) -> bytes:
    """Decrypt a v2 blob of ``key`` (already found, authorized and checked usable)."""
    xks_key_id, store = _binding(key)
    if blob.header.xks_key_id != xks_key_id:
        raise invalid_ciphertext()
    material = svc.material(tx, key.account, key.key_id, blob.header.material_id.hex())
    if material is None:
        raise invalid_ciphertext()
    try:
        inner = svc.xks.decrypt(endpoint(svc, store), xks_key_id, _request_metadata(caller, key),
                                Encrypted(blob.ciphertext, blob.iv, blob.tag, blob.metadata),
                                xks_envelope.proxy_aad(blob.header_bytes, context))
    except ProxyError as err:
        raise invalid_state(proxy_message(err)) from None
    try:
        return xks_envelope.inner_open(blob.header_bytes, material, inner, context)
    except xks_envelope.MalformedCiphertext:
        raise invalid_state(BAD_PLAINTEXT) from None
