"""Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, Connect/Disconnect/Update/
DeleteCustomKeyStore; KMS keys in an external key store (CreateKey with CustomKeyStoreId and
XksKeyId) and their cryptography through the store's XKS proxy (xks/client.py).

Only the EXTERNAL_KEY_STORE type exists: AWS_CLOUDHSM needs an AWS CloudHSM cluster, which a
self-hosted server does not have (UnsupportedOperationException). VPC_ENDPOINT_SERVICE
connectivity needs an Amazon VPC endpoint service: likewise refused; PUBLIC_ENDPOINT works.

A key in an external key store is double-encrypted as in AWS (crypto/xks_envelope.py): first
under its own trentd-held backing key, then by the external key through the proxy. Its key state
shows Unavailable while its store is not CONNECTED (the stored Enabled/Disabled state comes back
on reconnection). Proxy failures map to the errors AWS documents for each operation (the XKS
proxy API specification, "KMS Considerations" of Error codes): management operations get the
XksProxy*/CustomKeyStore* exceptions, cryptographic operations always KMSInvalidStateException
with a message that names the cause.

Decisions (docs/design.md, "External key stores"): ConnectCustomKeyStore checks the proxy
(GetHealthStatus) before it answers, so the store is CONNECTED or FAILED, never CONNECTING;
CreateCustomKeyStore and UpdateCustomKeyStore check the proxy with the new settings too, as AWS
does for public endpoints; DescribeKey does not call the proxy.
"""

from __future__ import annotations

import secrets
import threading

from ..crypto import specs, xks_envelope
from ..errors import AWSError, internal, invalid_ciphertext, invalid_state, validation
from ..store.errors import Duplicate
from ..store.keystores import KeyStoreRecord, XksBinding, secret_aad
from ..xks.client import Encrypted, Endpoint, ProxyError
from .paging import decode_marker, page
from .service import KEY_LOADERS, operation

XKS = "EXTERNAL_KEY_STORE"
ORIGIN = "EXTERNAL_KEY_STORE"
MAX_STORES = 10  # per account and Region (kms-api.md §5)
CONNECTED, DISCONNECTED, FAILED = "CONNECTED", "DISCONNECTED", "FAILED"

CLOUDHSM_UNSUPPORTED = ("Custom key stores of type AWS_CLOUDHSM are not supported by trentd: there is no AWS CloudHSM "
                        "cluster to connect to. Use CustomKeyStoreType EXTERNAL_KEY_STORE with an external key store "
                        "proxy.")
VPC_UNSUPPORTED = ("XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by trentd (it needs an Amazon VPC "
                   "endpoint service). Use PUBLIC_ENDPOINT.")

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


def _cause(err: ProxyError) -> str:
    return err.error_name if err.kind == "proxy" and err.error_name in PROXY_MESSAGES else (
        "invalid_response" if err.kind == "proxy" else err.kind)


def proxy_message(err: ProxyError) -> str:
    return PROXY_MESSAGES[_cause(err)]


# ConnectCustomKeyStore: the ConnectionErrorCode of a failed connection.
_CONNECTION_CODES = {
    "unreachable": "XKS_PROXY_NOT_REACHABLE", "unavailable": "XKS_PROXY_NOT_REACHABLE", "tls":
    "XKS_PROXY_INVALID_TLS_CONFIGURATION", "timeout": "XKS_PROXY_TIMED_OUT", "invalid_response":
    "XKS_PROXY_INVALID_RESPONSE", "AuthenticationFailedException": "INVALID_CREDENTIALS", "AccessDeniedException":
    "XKS_PROXY_ACCESS_DENIED", "InvalidUriPathException": "XKS_PROXY_INVALID_CONFIGURATION",
    "DependencyTimeoutException": "XKS_PROXY_TIMED_OUT", "ThrottlingException": "XKS_PROXY_TIMED_OUT",
    "InvalidStateException": "XKS_PROXY_NOT_REACHABLE",
}

# Create/UpdateCustomKeyStore: the exception for each failure of the health check.
_MANAGEMENT_ERRORS = {
    "unreachable": "XksProxyUriUnreachableException", "unavailable": "XksProxyUriUnreachableException",
    "tls": "XksProxyUriUnreachableException", "timeout": "XksProxyUriUnreachableException",
    "DependencyTimeoutException": "XksProxyUriUnreachableException",
    "ThrottlingException": "XksProxyUriUnreachableException", "InvalidStateException": "XksProxyUriUnreachableException",
    "AuthenticationFailedException": "XksProxyIncorrectAuthenticationCredentialException",
    "InvalidUriPathException": "XksProxyInvalidConfigurationException",
}

# CreateKey: the exception for each failure of GetKeyMetadata.
_CREATE_KEY_ERRORS = {
    "KeyNotFoundException": "XksKeyNotFoundException",
    "InvalidStateException": "XksKeyInvalidConfigurationException",
    "InvalidKeyUsageException": "XksKeyInvalidConfigurationException",
    "AccessDeniedException": "KMSInvalidStateException",
}


def _not_found(store_id: str) -> AWSError:
    return AWSError("CustomKeyStoreNotFoundException", f"Custom key store {store_id} does not exist.")


def _invalid_state(message: str) -> AWSError:
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


def _wrap_secret(svc, account: str, region: str, store_id: str, credential: dict) -> bytes:
    return svc.root_key.wrap(credential["RawSecretAccessKey"].encode(),
                             secret_aad(account, region, store_id, credential["AccessKeyId"]))


def _health(svc, caller, ep: Endpoint) -> None:
    svc.xks.health(ep, {"kmsRequestId": caller.request_id, "kmsOperation": caller.operation})


def _check_proxy(svc, caller, ep: Endpoint) -> None:
    """Create/UpdateCustomKeyStore: the proxy must answer GetHealthStatus with these settings."""
    try:
        _health(svc, caller, ep)
    except ProxyError as err:
        cause = _cause(err)
        raise AWSError(_MANAGEMENT_ERRORS.get(cause, "XksProxyInvalidResponseException"), PROXY_MESSAGES[cause]) \
            from None


# --- DescribeCustomKeyStores entries ---------------------------------------------------------
def store_entry(s: KeyStoreRecord) -> dict:
    entry = {
        "CustomKeyStoreId": s.store_id, "CustomKeyStoreName": s.name, "ConnectionState": s.connection_state,
        "CreationDate": s.created, "CustomKeyStoreType": s.store_type,
        "XksProxyConfiguration": {"Connectivity": s.connectivity, "AccessKeyId": s.access_key_id,
                                  "UriEndpoint": s.uri_endpoint, "UriPath": s.uri_path},
    }
    if s.connection_state == FAILED and s.connection_error:
        entry["ConnectionErrorCode"] = s.connection_error
    return entry


def _new_store_id() -> str:
    return "cks-" + secrets.token_hex(9)[:17]  # AWS's form: cks-1234567890abcdef0


def _check_uri_free(tx, account: str, region: str, uri_endpoint: str, uri_path: str, store_id: str | None) -> None:
    for other in tx.list_key_stores(account, region):
        if other.store_id != store_id and (other.uri_endpoint, other.uri_path) == (uri_endpoint, uri_path):
            raise AWSError("XksProxyUriInUseException",
                           f"The external key store proxy API address {uri_endpoint}{uri_path} is already associated "
                           f"with custom key store {other.store_id} in this account and Region.")


def _check_name_free(tx, account: str, region: str, name: str, store_id: str | None) -> None:
    other = tx.get_key_store_by_name(account, region, name)
    if other is not None and other.store_id != store_id:
        raise AWSError("CustomKeyStoreNameInUseException",
                       f"A custom key store named {name} already exists in this account and Region.")


def _check_connectivity(req: dict) -> None:
    if req.get("XksProxyConnectivity") == "VPC_ENDPOINT_SERVICE":
        raise AWSError("UnsupportedOperationException", VPC_UNSUPPORTED)
    for member in ("XksProxyVpcEndpointServiceName", "XksProxyVpcEndpointServiceOwner"):
        if req.get(member):
            raise validation(f"{member} is valid only for external key stores with XksProxyConnectivity "
                             "VPC_ENDPOINT_SERVICE.")


# --- operations on stores ----------------------------------------------------------------------
@operation("CreateCustomKeyStore")
def create_custom_key_store(svc, caller, req):
    if req.get("CustomKeyStoreType", "AWS_CLOUDHSM") != XKS:  # the model's default type is AWS_CLOUDHSM
        raise AWSError("UnsupportedOperationException", CLOUDHSM_UNSUPPORTED)
    for member in ("CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"):
        if member in req:
            raise validation(f"{member} is valid only for custom key stores of type AWS_CLOUDHSM.")
    for member in ("XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential",
                   "XksProxyConnectivity"):
        if member not in req:
            raise validation(f"{member} is required for a custom key store of type EXTERNAL_KEY_STORE.")
    _check_connectivity(req)
    svc.authorize_account(caller)
    name, credential = req["CustomKeyStoreName"], req["XksProxyAuthenticationCredential"]
    uri_endpoint, uri_path = req["XksProxyUriEndpoint"], req["XksProxyUriPath"]

    def check_free(tx):
        if tx.count_key_stores(caller.account, caller.region) >= MAX_STORES:
            raise AWSError("LimitExceededException",
                           f"The request would exceed the limit of {MAX_STORES} custom key stores in this account "
                           "and Region.")
        _check_name_free(tx, caller.account, caller.region, name, None)
        _check_uri_free(tx, caller.account, caller.region, uri_endpoint, uri_path, None)

    with svc.store.read() as tx:
        check_free(tx)
    # KMS connects to a public-endpoint proxy while creating the store (UriEndpoint docs).
    _check_proxy(svc, caller, Endpoint(uri_endpoint, uri_path, credential["AccessKeyId"],
                                       credential["RawSecretAccessKey"], caller.region))
    store_id = _new_store_id()
    try:
        with svc.store.write() as tx:
            check_free(tx)
            tx.insert_key_store(KeyStoreRecord(
                account=caller.account, region=caller.region, store_id=store_id, name=name, store_type=XKS,
                uri_endpoint=uri_endpoint, uri_path=uri_path, connectivity=req["XksProxyConnectivity"],
                access_key_id=credential["AccessKeyId"],
                wrapped_secret=_wrap_secret(svc, caller.account, caller.region, store_id, credential),
                connection_state=DISCONNECTED, connection_error=None, created=svc.clock.now()))
    except Duplicate:  # a concurrent create won the name or the address
        with svc.store.read() as tx:
            check_free(tx)
        raise
    return {"CustomKeyStoreId": store_id}


@operation("DescribeCustomKeyStores")
def describe_custom_key_stores(svc, caller, req):
    if "CustomKeyStoreId" in req and "CustomKeyStoreName" in req:
        raise validation("Specify either CustomKeyStoreId or CustomKeyStoreName, but not both.")
    svc.authorize_account(caller)
    limit = req.get("Limit", 100)
    after = decode_marker(req.get("Marker"))
    with svc.store.read() as tx:
        if "CustomKeyStoreId" in req:
            store = tx.get_key_store(caller.account, caller.region, req["CustomKeyStoreId"])
            if store is None:
                raise _not_found(req["CustomKeyStoreId"])
            rows = [store]
        elif "CustomKeyStoreName" in req:
            store = tx.get_key_store_by_name(caller.account, caller.region, req["CustomKeyStoreName"])
            if store is None:
                raise AWSError("CustomKeyStoreNotFoundException",
                               f"Custom key store with name {req['CustomKeyStoreName']} does not exist.")
            rows = [store]
        else:
            rows = tx.list_key_stores(caller.account, caller.region, after, limit + 1)
    rows, more = page(rows, limit, lambda s: s.store_id)
    return {"CustomKeyStores": [store_entry(s) for s in rows], **more}


def _store(svc, tx, caller, store_id: str) -> KeyStoreRecord:
    store = tx.get_key_store(caller.account, caller.region, store_id)
    if store is None:
        raise _not_found(store_id)
    return store


@operation("ConnectCustomKeyStore")
def connect_custom_key_store(svc, caller, req):
    store_id = req["CustomKeyStoreId"]
    svc.authorize_account(caller)
    with svc.store.read() as tx:
        store = _store(svc, tx, caller, store_id)
    if store.connection_state == CONNECTED:
        return {}
    if store.connection_state == FAILED:
        raise _invalid_state(f"Custom key store {store_id} is in the FAILED connection state. Disconnect it "
                             "(DisconnectCustomKeyStore), correct the error, and connect it again.")
    try:
        _health(svc, caller, endpoint(svc, store))
        state, code = CONNECTED, None
    except ProxyError as err:
        state, code = FAILED, _CONNECTION_CODES.get(_cause(err), "XKS_PROXY_INVALID_RESPONSE")
    with svc.store.write() as tx:
        store = _store(svc, tx, caller, store_id)
        if store.connection_state == DISCONNECTED:  # not disconnected or updated meanwhile by another call
            tx.update_key_store(store, connection_state=state, connection_error=code)
    return {}


@operation("DisconnectCustomKeyStore")
def disconnect_custom_key_store(svc, caller, req):
    store_id = req["CustomKeyStoreId"]
    svc.authorize_account(caller)
    with svc.store.write() as tx:
        store = _store(svc, tx, caller, store_id)
        if store.connection_state == DISCONNECTED:
            raise _invalid_state(f"Custom key store {store_id} is already disconnected.")
        tx.update_key_store(store, connection_state=DISCONNECTED, connection_error=None)
    return {}


# UpdateCustomKeyStore: what may change while the store is connected (API reference of the
# operation: the name, the proxy credential and the URI path).
_WHILE_CONNECTED = {"NewCustomKeyStoreName", "XksProxyAuthenticationCredential", "XksProxyUriPath"}


@operation("UpdateCustomKeyStore")
def update_custom_key_store(svc, caller, req):
    store_id = req["CustomKeyStoreId"]
    for member in ("CloudHsmClusterId", "KeyStorePassword"):
        if member in req:
            raise validation(f"{member} is valid only for custom key stores of type AWS_CLOUDHSM.")
    _check_connectivity(req)
    svc.authorize_account(caller)
    changes = {k for k in req if k != "CustomKeyStoreId"}
    with svc.store.read() as tx:
        store = _store(svc, tx, caller, store_id)
        if "NewCustomKeyStoreName" in req:
            _check_name_free(tx, caller.account, caller.region, req["NewCustomKeyStoreName"], store_id)
        uri_endpoint = req.get("XksProxyUriEndpoint", store.uri_endpoint)
        uri_path = req.get("XksProxyUriPath", store.uri_path)
        _check_uri_free(tx, caller.account, caller.region, uri_endpoint, uri_path, store_id)
    needs_disconnect = sorted(changes - _WHILE_CONNECTED)
    if needs_disconnect and store.connection_state != DISCONNECTED:
        raise _invalid_state(f"Custom key store {store_id} must be disconnected to update "
                             f"{', '.join(needs_disconnect)}. Only the name, the proxy authentication credential and "
                             "the URI path can change while it is connected.")
    credential = req.get("XksProxyAuthenticationCredential")
    if {"XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential"} & changes:
        current = endpoint(svc, store)
        _check_proxy(svc, caller, Endpoint(
            uri_endpoint, uri_path, credential["AccessKeyId"] if credential else current.access_key_id,
            credential["RawSecretAccessKey"] if credential else current.secret, caller.region))
    update = {}
    if "NewCustomKeyStoreName" in req:
        update["name"] = req["NewCustomKeyStoreName"]
    if "XksProxyUriEndpoint" in req:
        update["uri_endpoint"] = uri_endpoint
    if "XksProxyUriPath" in req:
        update["uri_path"] = uri_path
    if "XksProxyConnectivity" in req:
        update["connectivity"] = req["XksProxyConnectivity"]
    if credential:
        update["access_key_id"] = credential["AccessKeyId"]
        update["wrapped_secret"] = _wrap_secret(svc, caller.account, caller.region, store_id, credential)
    if not update:
        return {}
    with svc.store.write() as tx:
        store = _store(svc, tx, caller, store_id)
        if "name" in update:
            _check_name_free(tx, caller.account, caller.region, update["name"], store_id)
        _check_uri_free(tx, caller.account, caller.region, uri_endpoint, uri_path, store_id)
        if needs_disconnect and store.connection_state != DISCONNECTED:
            raise _invalid_state(f"Custom key store {store_id} must be disconnected to update "
                                 f"{', '.join(needs_disconnect)}.")
        tx.update_key_store(store, **update)
    return {}


@operation("DeleteCustomKeyStore")
def delete_custom_key_store(svc, caller, req):
    store_id = req["CustomKeyStoreId"]
    svc.authorize_account(caller)
    with svc.store.write() as tx:
        store = _store(svc, tx, caller, store_id)
        if tx.count_store_keys(caller.account, caller.region, store_id):
            raise AWSError("CustomKeyStoreHasCMKsException",
                           f"Custom key store {store_id} contains KMS keys. Delete them (ScheduleKeyDeletion) and "
                           "wait until they are deleted before deleting the custom key store.")
        if store.connection_state != DISCONNECTED:
            raise _invalid_state(f"Custom key store {store_id} must be disconnected before it can be deleted.")
        tx.delete_key_store(store)
    return {}


def check_generate_random(svc, caller, store_id: str) -> None:
    """GenerateRandom with a CustomKeyStoreId: an external key store's ID is not valid there
    (UnsupportedOperationException, as the API reference says), and trentd has no other kind."""
    with svc.store.read() as tx:
        if tx.get_key_store(caller.account, caller.region, store_id) is None:
            raise _not_found(store_id)
    raise AWSError("UnsupportedOperationException",
                   f"{store_id} is an external key store. GenerateRandom accepts only the ID of an AWS CloudHSM key "
                   "store in CustomKeyStoreId.")


# --- KMS keys in external key stores -----------------------------------------------------------
def load_binding(svc, tx, key) -> None:
    """KEY_LOADERS entry: attach a key's external key store, and show the key Unavailable while
    the store is not connected (its own Enabled/Disabled state is kept for reconnection)."""
    if key.origin != ORIGIN:
        return
    key.xks = tx.get_xks_binding(key.account, key.region, key.key_id)
    store = key.xks.store if key.xks else None
    if key.key_state in ("Enabled", "Disabled") and (store is None or store.connection_state != CONNECTED):
        key.key_state = "Unavailable"


KEY_LOADERS.append(load_binding)


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
        store = _usable_store(tx, caller, store_id)
        _check_unused(tx, caller, store_id, xks_key_id)
    metadata = {"awsPrincipalArn": caller.principal_arn, "kmsOperation": caller.operation,
                "kmsRequestId": caller.request_id}
    try:
        found = svc.xks.key_metadata(endpoint(svc, store), xks_key_id, metadata)
    except ProxyError as err:
        cause = _cause(err)
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


def _usable_store(tx, caller, store_id: str) -> KeyStoreRecord:
    store = tx.get_key_store(caller.account, caller.region, store_id)
    if store is None:
        raise _not_found(store_id)
    if store.connection_state != CONNECTED:
        raise _invalid_state(f"Custom key store {store_id} is not connected. Connect it (ConnectCustomKeyStore) "
                             "and try the request again.")
    return store


def _check_unused(tx, caller, store_id: str, xks_key_id: str) -> None:
    if tx.xks_key_in_use(caller.account, caller.region, store_id, xks_key_id):
        raise AWSError("XksKeyAlreadyInUseException",
                       f"The external key {xks_key_id} is already associated with another KMS key in custom key "
                       f"store {store_id}.")


def bind_key(tx, caller, key, external: tuple[str, str]) -> None:
    """Inside CreateKey's write transaction: the store must still be connected and the external
    key still free; record the binding."""
    store_id, xks_key_id = external
    store = _usable_store(tx, caller, store_id)
    _check_unused(tx, caller, store_id, xks_key_id)
    tx.insert_xks_key(key.account, key.region, key.key_id, store_id, xks_key_id)
    key.xks = XksBinding(store_id, xks_key_id, store)


def _request_metadata(caller, key) -> dict:
    return {"awsPrincipalArn": caller.principal_arn if caller else "AWS Internal", "kmsKeyArn": key.arn,
            "kmsOperation": (caller.operation if caller else "") or "Encrypt",
            "kmsRequestId": caller.request_id if caller else ""}


def _binding(key) -> XksBinding:
    if key.xks is None or key.xks.store is None:
        raise internal(f"The external key store of {key.arn} is missing.")
    return key.xks


def seal(svc, tx, caller, key, plaintext: bytes, context) -> bytes:
    """Encrypt under a key in an external key store: a v2 blob (crypto/xks_envelope.py)."""
    binding = _binding(key)
    material = svc.current_material(tx, key)
    header = xks_envelope.header_bytes(xks_envelope.XksHeader(
        key.account, key.key_id, bytes.fromhex(key.current_material), binding.xks_key_id))
    inner = xks_envelope.inner_seal(header, material, plaintext, context)
    try:
        out = svc.xks.encrypt(endpoint(svc, binding.store), binding.xks_key_id, _request_metadata(caller, key), inner,
                              xks_envelope.proxy_aad(header, context))
    except ProxyError as err:
        raise invalid_state(proxy_message(err)) from None
    return xks_envelope.assemble(header, out.iv, out.metadata, out.tag, out.ciphertext)


def open_sealed(svc, tx, caller, key, blob: xks_envelope.XksBlob, context) -> bytes:
    """Decrypt a v2 blob of ``key`` (already found, authorized and checked usable)."""
    binding = _binding(key)
    if blob.header.xks_key_id != binding.xks_key_id:
        raise invalid_ciphertext()
    material = svc.material(tx, key.account, key.key_id, blob.header.material_id.hex())
    if material is None:
        raise invalid_ciphertext()
    try:
        inner = svc.xks.decrypt(endpoint(svc, binding.store), binding.xks_key_id, _request_metadata(caller, key),
                                Encrypted(blob.ciphertext, blob.iv, blob.tag, blob.metadata),
                                xks_envelope.proxy_aad(blob.header_bytes, context))
    except ProxyError as err:
        raise invalid_state(proxy_message(err)) from None
    try:
        return xks_envelope.inner_open(blob.header_bytes, material, inner, context)
    except xks_envelope.MalformedCiphertext:
        raise invalid_state(BAD_PLAINTEXT) from None
