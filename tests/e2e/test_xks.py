"""External key stores over HTTP, against the test XKS proxy (trentd.testing.xks_proxy) on a
free port: the store lifecycle (create, describe, connect, disconnect, update, delete, limits and
errors), KMS keys backed by an external key (CreateKey with XksKeyId), Encrypt/Decrypt/
GenerateDataKey/ReEncrypt through the proxy, and what a disconnected store, a stopped proxy,
a slow proxy and wrong proxy credentials do.

The test proxy is kept here where a test needs a proxy that misbehaves on command (errors, delays,
crashes, unhealthy answers, keys of another spec), inspects the requests it received, or adds key
stores under one credential on the fly; the tests that need a proxy that behaves use a real one,
trentd's own XKS listener (``real_proxy``). More of it: tests/e2e/test_xks_proxy.py.

trentd reaches the proxies through the test-only flags ``--xks-resolve`` (the endpoint's name
to 127.0.0.1:PORT) and ``--xks-ca-bundle`` (the test CA), so the endpoints keep the form the
model requires (``https://`` and a host name, no port)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
import uuid

import pytest
from trentd.testing.server import TrentdServer, free_port
from trentd.testing.xks_proxy import TestCA, XksTestProxy, new_access_key_id, new_secret

from ..helpers import fails
from .xks_proxy_client import TrentdXksProxy

DAY = 86_400
XKS_TIMEOUT = 0.5
KEY_MEMBERS = {"AWSAccountId", "KeyId", "Arn", "CreationDate", "Enabled", "Description", "KeyUsage", "KeyState",
               "Origin", "KeyManager", "CustomerMasterKeySpec", "KeySpec", "MultiRegion", "EncryptionAlgorithms",
               "CustomKeyStoreId", "XksKeyConfiguration"}
UNREACHABLE = ("AWS KMS cannot communicate with the external key store proxy. This might be a transient network "
               "issue. If you see this error repeatedly, verify that your external key store proxy is active and is "
               "connected to the network, and that its endpoint URI is correct in your external keystore.")


# --- fixtures: one CA, two proxies and one trentd per test process and store ------------------------
@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("xks-ca"))


@pytest.fixture(scope="module")
def main_proxy(ca):
    with XksTestProxy(ca, "xks.trentd.test", prefix="/tenant-a") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def spare_proxy(ca):
    """A second proxy that tests stop and start (its port stays the same, so trentd's
    --xks-resolve still points at it)."""
    with XksTestProxy(ca, "spare.trentd.test", port=free_port()) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def real_proxy(ca, tmp_path_factory):
    """A real proxy, trentd's own XKS listener, for the tests that need one that behaves."""
    with TrentdXksProxy(tmp_path_factory.mktemp("real-proxy"), "real.trentd.test", ca.issue("real.trentd.test"),
                        ca.path) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def xks_server(store_kind, ca, main_proxy, spare_proxy, real_proxy):
    args = ("--xks-resolve", main_proxy.resolve_arg, "--xks-resolve", spare_proxy.resolve_arg,
            "--xks-resolve", real_proxy.resolve_arg,
            # a name that resolves to a port where nothing listens
            "--xks-resolve", f"dead.trentd.test=127.0.0.1:{free_port()}",
            # a name served by a proxy whose certificate names another host
            "--xks-resolve", f"mismatch.trentd.test=127.0.0.1:{main_proxy.port}",
            "--xks-ca-bundle", str(ca.path), "--xks-timeout", str(XKS_TIMEOUT))
    with TrentdServer(store=store_kind, extra_args=args) as server:
        yield server


def _reset(proxy: XksTestProxy, credentials: dict) -> None:
    proxy.delay, proxy.fail_with, proxy.health_status = 0.0, None, "ACTIVE"
    proxy.credentials = dict(credentials)
    if proxy._server is None:
        proxy.start()


@pytest.fixture
def proxy(main_proxy):
    """The main proxy; whatever a test changes on it is undone afterwards."""
    credentials = dict(main_proxy.credentials)
    yield main_proxy
    _reset(main_proxy, credentials)


@pytest.fixture
def spare(spare_proxy):
    credentials = dict(spare_proxy.credentials)
    yield spare_proxy
    _reset(spare_proxy, credentials)


@pytest.fixture
def kms(xks_server, account):
    return xks_server.client(access_key=account, secret_key="unused-in-dev-mode")


def new_external_key(proxy: XksTestProxy, **kwargs) -> str:
    key_id = f"ext-{uuid.uuid4().hex[:12]}"
    proxy.add_key(key_id, **kwargs)
    return key_id


def store_args(proxy: XksTestProxy, name: str | None = None, **overrides) -> dict:
    args = {"CustomKeyStoreName": name or f"store-{uuid.uuid4().hex[:8]}", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyUriEndpoint": proxy.uri_endpoint, "XksProxyUriPath": proxy.uri_path,
            "XksProxyConnectivity": "PUBLIC_ENDPOINT",
            "XksProxyAuthenticationCredential": {"AccessKeyId": proxy.access_key_id,
                                                 "RawSecretAccessKey": proxy.secret}}
    args.update(overrides)
    return args


def create_store(kms, proxy: XksTestProxy, **overrides) -> str:
    return kms.create_custom_key_store(**store_args(proxy, **overrides))["CustomKeyStoreId"]


def store(kms, store_id: str) -> dict:
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]


def connected_store(kms, proxy: XksTestProxy, **overrides) -> str:
    store_id = create_store(kms, proxy, **overrides)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store(kms, store_id)["ConnectionState"] == "CONNECTED"
    return store_id


def xks_key(kms, proxy: XksTestProxy, store_id: str) -> str:
    return kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE",
                          XksKeyId=new_external_key(proxy))["KeyMetadata"]["KeyId"]


# --- the store lifecycle ---------------------------------------------------------------------------
def test_store_lifecycle(kms, proxy):
    args = store_args(proxy, name="lifecycle")
    store_id = kms.create_custom_key_store(**args)["CustomKeyStoreId"]
    assert store_id.startswith("cks-") and len(store_id) == 21
    entry = store(kms, store_id)
    created = entry.pop("CreationDate")
    assert entry == {
        "CustomKeyStoreId": store_id, "CustomKeyStoreName": "lifecycle", "ConnectionState": "DISCONNECTED",
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConfiguration": {"Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": proxy.access_key_id,
                                  "UriEndpoint": proxy.uri_endpoint, "UriPath": proxy.uri_path},
    }
    assert created.timestamp() > 0
    assert "RawSecretAccessKey" not in json.dumps(kms.describe_custom_key_stores(), default=str)
    by_name = kms.describe_custom_key_stores(CustomKeyStoreName="lifecycle")["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in by_name] == [store_id]
    # AWS checked the proxy while creating (public endpoint) and checks it again to connect.
    assert [r["requestMetadata"]["kmsOperation"] for r in proxy.requests[-1:]] == ["CreateCustomKeyStore"]
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert proxy.requests[-1]["requestMetadata"]["kmsOperation"] == "ConnectCustomKeyStore"
    assert proxy.requests[-1]["path"] == proxy.uri_path + "/health"
    assert store(kms, store_id)["ConnectionState"] == "CONNECTED"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # connecting a connected store: nothing to do
    # While connected: the name, the credential and the path may change; the endpoint may not.
    kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="renamed")
    assert store(kms, store_id)["CustomKeyStoreName"] == "renamed"
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id,
                    XksProxyUriEndpoint="https://spare.trentd.test")
    assert code == "CustomKeyStoreInvalidStateException"
    code, _ = fails(kms.delete_custom_key_store, CustomKeyStoreId=store_id)
    assert code == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert store(kms, store_id)["ConnectionState"] == "DISCONNECTED"
    code, _ = fails(kms.disconnect_custom_key_store, CustomKeyStoreId=store_id)
    assert code == "CustomKeyStoreInvalidStateException"
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    code, message = fails(kms.describe_custom_key_stores, CustomKeyStoreId=store_id)
    assert (code, message) == ("CustomKeyStoreNotFoundException", f"Custom key store {store_id} does not exist.")
    for call in (kms.connect_custom_key_store, kms.disconnect_custom_key_store, kms.delete_custom_key_store,
                 kms.update_custom_key_store):
        code, _ = fails(call, CustomKeyStoreId=store_id)
        assert code == "CustomKeyStoreNotFoundException"


def test_describe_custom_key_stores_filters_and_pages(kms, proxy):
    proxy.prefixes.update({"/page-1", "/page-2"})
    ids = sorted(create_store(kms, proxy, XksProxyUriPath=f"/page-{i}/kms/xks/v1") for i in (1, 2))
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == kms.describe_custom_key_stores(Limit=5)[
        "CustomKeyStores"]
    first = kms.describe_custom_key_stores(Limit=1)
    assert first["Truncated"] is True and [s["CustomKeyStoreId"] for s in first["CustomKeyStores"]] == ids[:1]
    second = kms.describe_custom_key_stores(Limit=1, Marker=first["NextMarker"])
    assert second["Truncated"] is False and [s["CustomKeyStoreId"] for s in second["CustomKeyStores"]] == ids[1:]
    code, _ = fails(kms.describe_custom_key_stores, Marker="!!!")
    assert code == "InvalidMarkerException"
    code, _ = fails(kms.describe_custom_key_stores, CustomKeyStoreId=ids[0], CustomKeyStoreName="x")
    assert code == "ValidationException"
    code, _ = fails(kms.describe_custom_key_stores, CustomKeyStoreName="no such store")
    assert code == "CustomKeyStoreNotFoundException"


def test_create_custom_key_store_refusals(kms, proxy):
    code, message = fails(kms.create_custom_key_store, CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-234567abcdefg",
                          TrustAnchorCertificate="cert", KeyStorePassword="password")
    assert code == "UnsupportedOperationException" and "AWS_CLOUDHSM" in message
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy, CustomKeyStoreType="AWS_CLOUDHSM"))
    assert code == "UnsupportedOperationException"
    code, message = fails(kms.create_custom_key_store,
                          **store_args(proxy, XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
                                       XksProxyVpcEndpointServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-1"))
    assert code == "UnsupportedOperationException" and "VPC_ENDPOINT_SERVICE" in message
    args = store_args(proxy)
    del args["XksProxyUriPath"]
    code, _ = fails(kms.create_custom_key_store, **args)
    assert code == "ValidationException"
    # The model's patterns: HTTPS, a host name, no port, no path.
    for endpoint in ("http://xks.trentd.test", "https://xks.trentd.test:8443", "https://xks.trentd.test/path"):
        code, message = fails(kms.create_custom_key_store, **store_args(proxy, XksProxyUriEndpoint=endpoint))
        assert code == "ValidationException" and "xksProxyUriEndpoint" in message
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy, XksProxyUriPath="/no/version/here"))
    assert code == "ValidationException"
    short = store_args(proxy)
    short["XksProxyAuthenticationCredential"] = {"AccessKeyId": "lowercase-is-not-allowed", "RawSecretAccessKey": "x" * 43}
    code, message = fails(kms.create_custom_key_store, **short)
    assert code == "ValidationException" and "lowercase" not in message  # sensitive values are never echoed
    create_store(kms, proxy, CustomKeyStoreName="taken")
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy, name="taken"))
    assert code == "CustomKeyStoreNameInUseException"
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy))  # same endpoint and path
    assert code == "XksProxyUriInUseException"


def test_at_most_ten_stores(kms, proxy):
    for i in range(10):
        proxy.prefixes.add(f"/limit-{i}")
        create_store(kms, proxy, XksProxyUriPath=f"/limit-{i}/kms/xks/v1")
    proxy.prefixes.add("/limit-10")
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy, XksProxyUriPath="/limit-10/kms/xks/v1"))
    assert code == "LimitExceededException"
    assert len(kms.describe_custom_key_stores()["CustomKeyStores"]) == 10


def test_create_custom_key_store_checks_the_proxy(kms, proxy, spare):
    wrong = store_args(proxy)
    wrong["XksProxyAuthenticationCredential"] = {"AccessKeyId": proxy.access_key_id, "RawSecretAccessKey": new_secret()}
    code, _ = fails(kms.create_custom_key_store, **wrong)
    assert code == "XksProxyIncorrectAuthenticationCredentialException"
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy, XksProxyUriPath="/other-tenant/kms/xks/v1"))
    assert code == "XksProxyInvalidConfigurationException"
    code, message = fails(kms.create_custom_key_store, **store_args(proxy, XksProxyUriEndpoint="https://dead.trentd.test"))
    assert (code, message) == ("XksProxyUriUnreachableException", UNREACHABLE)
    # The proxy behind this name has a certificate for another name: TLS fails.
    code, message = fails(kms.create_custom_key_store,
                          **store_args(proxy, XksProxyUriEndpoint="https://mismatch.trentd.test"))
    assert code == "XksProxyUriUnreachableException" and "TLS" in message
    proxy.health_status = "UNAVAILABLE"
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy))
    assert code == "XksProxyUriUnreachableException"
    proxy.health_status = "ACTIVE"
    proxy.fail_with = "InternalException"
    code, _ = fails(kms.create_custom_key_store, **store_args(proxy))
    assert code == "XksProxyInvalidResponseException"
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_connection_failures_give_connection_error_codes(kms, proxy, spare):
    store_id = create_store(kms, proxy)
    # The proxy rotates its credential away from the one the store has.
    old = dict(proxy.credentials)
    proxy.credentials = {new_access_key_id(): new_secret()}
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = store(kms, store_id)
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == ("FAILED", "INVALID_CREDENTIALS")
    code, _ = fails(kms.connect_custom_key_store, CustomKeyStoreId=store_id)  # FAILED: disconnect first
    assert code == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert "ConnectionErrorCode" not in store(kms, store_id)
    # Tell trentd the new credential (the proxy keeps both during the rotation).
    proxy.credentials.update(old)
    new_id = next(k for k in proxy.credentials if k not in old)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyAuthenticationCredential={
        "AccessKeyId": new_id, "RawSecretAccessKey": proxy.credentials[new_id]})
    proxy.credentials = {new_id: proxy.credentials[new_id]}
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store(kms, store_id)["ConnectionState"] == "CONNECTED"
    assert store(kms, store_id)["XksProxyConfiguration"]["AccessKeyId"] == new_id

    spare_id = create_store(kms, spare)
    spare.stop()
    kms.connect_custom_key_store(CustomKeyStoreId=spare_id)
    assert store(kms, spare_id)["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
    kms.disconnect_custom_key_store(CustomKeyStoreId=spare_id)
    spare.start()
    spare.delay = XKS_TIMEOUT * 3
    kms.connect_custom_key_store(CustomKeyStoreId=spare_id)
    assert store(kms, spare_id)["ConnectionErrorCode"] == "XKS_PROXY_TIMED_OUT"
    kms.disconnect_custom_key_store(CustomKeyStoreId=spare_id)
    spare.delay = 0
    spare.fail_with = "InvalidUriPathException"
    kms.connect_custom_key_store(CustomKeyStoreId=spare_id)
    assert store(kms, spare_id)["ConnectionErrorCode"] == "XKS_PROXY_INVALID_CONFIGURATION"


def test_update_custom_key_store(kms, proxy):
    proxy.prefixes.add("/moved")
    store_id = create_store(kms, proxy, CustomKeyStoreName="to-update")
    create_store(kms, proxy, CustomKeyStoreName="other", XksProxyUriPath="/moved/kms/xks/v1")
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id, NewCustomKeyStoreName="other")
    assert code == "CustomKeyStoreNameInUseException"
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id, XksProxyUriPath="/moved/kms/xks/v1")
    assert code == "XksProxyUriInUseException"
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id, XksProxyUriPath="/gone/kms/xks/v1")
    assert code == "XksProxyInvalidConfigurationException"  # the proxy is checked with the new path
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id, KeyStorePassword="password")
    assert code == "ValidationException"
    code, _ = fails(kms.update_custom_key_store, CustomKeyStoreId=store_id, XksProxyConnectivity="VPC_ENDPOINT_SERVICE")
    assert code == "UnsupportedOperationException"
    kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyConnectivity="PUBLIC_ENDPOINT")
    assert store(kms, store_id)["CustomKeyStoreName"] == "to-update"
    assert store(kms, store_id)["XksProxyConfiguration"]["UriPath"] == proxy.uri_path


# --- KMS keys in an external key store -----------------------------------------------------------
def test_xks_key_round_trips_through_the_proxy(kms, proxy, account):
    store_id = connected_store(kms, proxy)
    external = new_external_key(proxy)
    meta = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=external,
                          Description="held outside")["KeyMetadata"]
    assert set(meta) == KEY_MEMBERS
    assert (meta["Origin"], meta["CustomKeyStoreId"], meta["XksKeyConfiguration"]) == (
        "EXTERNAL_KEY_STORE", store_id, {"Id": external})
    assert (meta["KeyState"], meta["Enabled"], meta["MultiRegion"]) == ("Enabled", True, False)
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"] == meta
    created = proxy.requests[-1]
    assert created["path"] == f"{proxy.uri_path}/keys/{external}/metadata"
    assert created["requestMetadata"]["kmsOperation"] == "CreateKey"
    assert created["requestMetadata"]["awsPrincipalArn"] == f"arn:aws:iam::{account}:user/admin"

    key_id, context = meta["KeyId"], {"tenant": "a"}
    out = kms.encrypt(KeyId=key_id, Plaintext=b"p" * 4096, EncryptionContext=context)
    blob = out["CiphertextBlob"]
    assert blob[0] == 2 and len(blob) < 6144 and out["KeyId"] == meta["Arn"]
    call = proxy.requests[-1]
    assert call["path"].endswith(f"/keys/{external}/encrypt")
    assert call["requestMetadata"]["kmsKeyArn"] == meta["Arn"]
    assert call["requestMetadata"]["kmsOperation"] == "Encrypt"
    assert call["requestMetadata"]["kmsRequestId"] == out["ResponseMetadata"]["RequestId"]
    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
    assert decrypted["Plaintext"] == b"p" * 4096 and decrypted["KeyId"] == meta["Arn"]
    assert "KeyMaterialId" not in decrypted
    assert proxy.requests[-1]["requestMetadata"]["kmsOperation"] == "Decrypt"

    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == \
        data_key["Plaintext"]
    without = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=64)
    assert len(kms.decrypt(CiphertextBlob=without["CiphertextBlob"], KeyId=key_id)["Plaintext"]) == 64
    # ReEncrypt out of the external key store and back in.
    regional = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext=context, DestinationKeyId=regional)
    assert moved["SourceKeyId"] == meta["Arn"]
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key_id)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=back)["Plaintext"] == b"p" * 4096


def test_xks_ciphertext_is_bound_to_context_and_key(kms, real_proxy):
    store_id = connected_store(kms, real_proxy)
    key_id = xks_key(kms, real_proxy, store_id)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionContext={"a": "b"})["CiphertextBlob"]
    # A wrong context is refused by the external key manager (it is part of the proxy's AAD).
    code, message = fails(kms.decrypt, CiphertextBlob=blob, EncryptionContext={"a": "c"})
    assert code == "KMSInvalidStateException" and "ciphertext or encryption context" in message
    # Garbage and bit flips in the clear header are InvalidCiphertextException with no message.
    code, message = fails(kms.decrypt, CiphertextBlob=b"\x02" + b"0" * 100)
    assert (code, message) == ("InvalidCiphertextException", "")
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    code, _ = fails(kms.decrypt, CiphertextBlob=bytes(flipped), EncryptionContext={"a": "b"})
    assert code == "KMSInvalidStateException"
    # Naming another key is IncorrectKeyException, as for any symmetric ciphertext.
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    code, _ = fails(kms.decrypt, CiphertextBlob=blob, KeyId=other, EncryptionContext={"a": "b"})
    assert code == "IncorrectKeyException"


def test_create_key_in_a_store_refusals(kms, proxy, xks_server, account):
    store_id = create_store(kms, proxy)
    external = new_external_key(proxy)
    code, _ = fails(kms.create_key, CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=external)
    assert code == "CustomKeyStoreInvalidStateException"  # not connected yet
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    cases = [
        ({"CustomKeyStoreId": "cks-00000000000000000", "XksKeyId": external}, "CustomKeyStoreNotFoundException"),
        ({"CustomKeyStoreId": store_id, "XksKeyId": "no-such-key"}, "XksKeyNotFoundException"),
        ({"CustomKeyStoreId": store_id, "XksKeyId": new_external_key(proxy, status="DISABLED")},
         "XksKeyInvalidConfigurationException"),
        ({"CustomKeyStoreId": store_id, "XksKeyId": new_external_key(proxy, usage=("ENCRYPT",))},
         "XksKeyInvalidConfigurationException"),
        ({"CustomKeyStoreId": store_id, "XksKeyId": new_external_key(proxy, spec="AES_128")},
         "XksKeyInvalidConfigurationException"),
        ({"CustomKeyStoreId": store_id}, "ValidationException"),
        ({"XksKeyId": external}, "ValidationException"),
        ({"CustomKeyStoreId": store_id, "XksKeyId": external, "KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
         "UnsupportedOperationException"),
    ]
    for args, expected in cases:
        code, _ = fails(kms.create_key, Origin="EXTERNAL_KEY_STORE", **args)
        assert code == expected, args
    code, _ = fails(kms.create_key, XksKeyId=external)  # Origin AWS_KMS
    assert code == "ValidationException"
    code, _ = fails(kms.create_key, Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)
    assert code == "UnsupportedOperationException"
    kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=external)
    code, _ = fails(kms.create_key, CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=external)
    assert code == "XksKeyAlreadyInUseException"
    assert len(kms.list_keys()["Keys"]) == 1


def test_disconnected_store_makes_its_keys_unavailable(kms, real_proxy, account):
    store_id = connected_store(kms, real_proxy)
    key_id = xks_key(kms, real_proxy, store_id)
    arn = f"arn:aws:kms:us-east-1:{account}:key/{key_id}"
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Unavailable", False)
    for call, args in ((kms.encrypt, {"KeyId": key_id, "Plaintext": b"x"}), (kms.decrypt, {"CiphertextBlob": blob}),
                       (kms.generate_data_key, {"KeyId": key_id, "KeySpec": "AES_256"})):
        code, message = fails(call, **args)
        assert (code, message) == ("KMSInvalidStateException", f"{arn} is unavailable.")
    # Keys can be managed while unavailable; the state they get applies once the store is back.
    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    code, _ = fails(kms.create_key, CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE",
                    XksKeyId=new_external_key(real_proxy))
    assert code == "CustomKeyStoreInvalidStateException"


def test_proxy_failures_during_cryptographic_operations(kms, spare):
    store_id = connected_store(kms, spare)
    external = new_external_key(spare)
    key_id = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE",
                            XksKeyId=external)["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    spare.stop()
    for call, args in ((kms.encrypt, {"KeyId": key_id, "Plaintext": b"x"}), (kms.decrypt, {"CiphertextBlob": blob})):
        assert fails(call, **args) == ("KMSInvalidStateException", UNREACHABLE)
    assert store(kms, store_id)["ConnectionState"] == "CONNECTED"  # AWS keeps the state; calls fail
    spare.start()
    spare.delay = XKS_TIMEOUT * 3
    code, message = fails(kms.encrypt, KeyId=key_id, Plaintext=b"x")
    assert code == "KMSInvalidStateException" and "did not respond in time" in message
    spare.delay = 0
    spare.set_key_status(external, "DISABLED")
    code, message = fails(kms.decrypt, CiphertextBlob=blob)
    assert code == "KMSInvalidStateException" and "is not enabled in the external key manager" in message
    spare.set_key_status(external, "ENABLED")
    spare.fail_with = "ThrottlingException"
    code, message = fails(kms.generate_data_key, KeyId=key_id, KeySpec="AES_256")
    assert code == "KMSInvalidStateException" and "very high request rate" in message
    spare.fail_with = None
    wrong = dict(spare.credentials)
    spare.credentials = {new_access_key_id(): new_secret()}
    code, message = fails(kms.decrypt, CiphertextBlob=blob)
    assert code == "KMSInvalidStateException" and "could not authenticate AWS KMS" in message
    spare.credentials = wrong
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_keys_block_store_deletion_until_deleted(kms, real_proxy, xks_server):
    store_id = connected_store(kms, real_proxy)
    key_id = xks_key(kms, real_proxy, store_id)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    code, _ = fails(kms.delete_custom_key_store, CustomKeyStoreId=store_id)
    assert code == "CustomKeyStoreHasCMKsException"
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)  # allowed while Unavailable
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    xks_server.move_clock(advance_seconds=8 * DAY)
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_generate_random_with_a_custom_key_store(kms, real_proxy):
    store_id = create_store(kms, real_proxy)
    code, _ = fails(kms.generate_random, NumberOfBytes=8, CustomKeyStoreId=store_id)
    assert code == "UnsupportedOperationException"
    code, _ = fails(kms.generate_random, NumberOfBytes=8, CustomKeyStoreId="cks-00000000000000000")
    assert code == "CustomKeyStoreNotFoundException"


# --- the test proxy itself ----------------------------------------------------------------------
def test_test_proxy_speaks_the_spec(ca, proxy):
    context = ssl.create_default_context(cafile=str(ca.path))
    context.check_hostname = False  # we connect by address; trentd checks the name (--xks-resolve)
    url = f"https://127.0.0.1:{proxy.port}{proxy.uri_path}/health"
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(url, context=context, timeout=5)
    assert excinfo.value.code == 405
    request = urllib.request.Request(url, data=b'{"requestMetadata": {}}', method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert excinfo.value.code == 401
    assert json.loads(excinfo.value.read())["errorName"] == "AuthenticationFailedException"


def test_xks_flags_do_not_relax_the_model(xks_server, account):
    raw = xks_server.client(access_key=account, secret_key="x", parameter_validation=False)
    code, message = fails(raw.create_custom_key_store, CustomKeyStoreName="n", CustomKeyStoreType="EXTERNAL_KEY_STORE",
                          XksProxyUriEndpoint="https://127.0.0.1:4443", XksProxyUriPath="/kms/xks/v1",
                          XksProxyConnectivity="PUBLIC_ENDPOINT",
                          XksProxyAuthenticationCredential={"AccessKeyId": new_access_key_id(),
                                                            "RawSecretAccessKey": base64.b64encode(b"k" * 32).decode()})
    assert code == "ValidationException" and "xksProxyUriEndpoint" in message


def test_root_key_rotation_rewraps_the_proxy_secret(tmp_path, ca, main_proxy, proxy):
    """The store's proxy secret is wrapped under the root key like every other secret: `trentd
    root-key rotate` rewraps it, and the store still connects and decrypts with the old key retired."""
    import subprocess
    import sys

    args = ("--xks-resolve", main_proxy.resolve_arg, "--xks-ca-bundle", str(ca.path))
    server = TrentdServer(data_dir=tmp_path / "data", extra_args=args)
    try:
        server.start()
        kms = server.client(access_key="111122223333", secret_key="x")
        proxy.prefixes.add("/rotation")
        store_id = connected_store(kms, proxy, XksProxyUriPath="/rotation/kms/xks/v1")
        key_id = xks_key(kms, proxy, store_id)
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"before rotation")["CiphertextBlob"]
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        server.stop()
        out = subprocess.run([sys.executable, "-m", "trentd", "root-key", "rotate", "--data-dir",
                              str(server.data_dir), "--grace", "0"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["Rewrapped"]["custom_key_stores"] == 1 and result["Retired"]
        server.start()
        kms = server.client(access_key="111122223333", secret_key="x")
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        assert store(kms, store_id)["ConnectionState"] == "CONNECTED"
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before rotation"
    finally:
        server.cleanup()
