"""Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, Connect/Disconnect/Update/
DeleteCustomKeyStore. KMS keys in an external key store (CreateKey with CustomKeyStoreId and
XksKeyId) and their cryptography through the store's XKS proxy (xks/client.py) are key domain
rules: keydomain/external.py.

Only the EXTERNAL_KEY_STORE type exists: AWS_CLOUDHSM needs an AWS CloudHSM cluster, which a
self-hosted server does not have (UnsupportedOperationException). VPC_ENDPOINT_SERVICE
connectivity needs an Amazon VPC endpoint service: likewise refused; PUBLIC_ENDPOINT works.
Proxy failures map to the errors AWS documents for each operation (the XKS proxy API
specification, "KMS Considerations" of Error codes): management operations get the
XksProxy*/CustomKeyStore* exceptions.

Decisions (docs/design.md, "External key stores"): ConnectCustomKeyStore checks the proxy
(GetHealthStatus) before it answers, so the store is CONNECTED or FAILED, never CONNECTING;
CreateCustomKeyStore and UpdateCustomKeyStore check the proxy with the new settings too, as AWS
does for public endpoints; DescribeKey does not call the proxy.
"""

from __future__ import annotations

import secrets

from ..errors import AWSError, validation
from ..keydomain.external import (CLOUDHSM_UNSUPPORTED, CONNECTED, DISCONNECTED, FAILED, PROXY_MESSAGES, XKS,
                                  endpoint, load_binding, proxy_cause, store_invalid_state, store_not_found)
from ..store.errors import Duplicate
from ..store.keystores import KeyStoreRecord, secret_aad
from ..xks.client import Endpoint, ProxyError
from .paging import decode_marker, page
from .service import KEY_LOADERS, operation

MAX_STORES = 10  # per account and Region (kms-api.md §5)

VPC_UNSUPPORTED = ("XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by trentd (it needs an Amazon VPC "
                   "endpoint service). Use PUBLIC_ENDPOINT.")

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
    "ThrottlingException": "XksProxyUriUnreachableException",
    "InvalidStateException": "XksProxyUriUnreachableException",
    "AuthenticationFailedException": "XksProxyIncorrectAuthenticationCredentialException",
    "InvalidUriPathException": "XksProxyInvalidConfigurationException",
}

# --- credentials ----------------------------------------------------------------------------
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
        cause = proxy_cause(err)
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
                raise store_not_found(req["CustomKeyStoreId"])
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
        raise store_not_found(store_id)
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
        raise store_invalid_state(f"Custom key store {store_id} is in the FAILED connection state. Disconnect it "
                             "(DisconnectCustomKeyStore), correct the error, and connect it again.")
    try:
        _health(svc, caller, endpoint(svc, store))
        state, code = CONNECTED, None
    except ProxyError as err:
        state, code = FAILED, _CONNECTION_CODES.get(proxy_cause(err), "XKS_PROXY_INVALID_RESPONSE")
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
            raise store_invalid_state(f"Custom key store {store_id} is already disconnected.")
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
        raise store_invalid_state(f"Custom key store {store_id} must be disconnected to update "
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
            raise store_invalid_state(f"Custom key store {store_id} must be disconnected to update "
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
            raise store_invalid_state(f"Custom key store {store_id} must be disconnected before it can be deleted.")
        tx.delete_key_store(store)
    return {}


# KMS keys in external key stores (keydomain/external.py): a key read from the store shows its
# binding, and Unavailable while its store is not connected.
KEY_LOADERS.append(load_binding)
