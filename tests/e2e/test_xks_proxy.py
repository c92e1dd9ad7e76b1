"""trentd as an External Key Store proxy (issue #26, docs/xks.md): the XKS Proxy API v1 over
HTTPS with SigV4, through a running trentd on each store.

The proxy server runs in ``--dev`` mode on purpose: --dev never relaxes XKS authentication, so
every refusal below is also that proof. Last, the two-trentd test: trentd A's external key store
(custom key store of type EXTERNAL_KEY_STORE) is trentd B's XKS listener. Mutual TLS and
``--workers``: tests/e2e/test_xks_proxy_mtls.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import sys
import warnings

import pytest
import trustme
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer, free_port

from .xks_proxy_client import (XksClient, admin, b64, error, eventually, metadata, server_cert, unb64,
                               write_ca)

ROLE = "arn:aws:iam::111122223333:role/payments-app"


@pytest.fixture(scope="module")
def tls_ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def proxy_server(store_kind, tls_ca, tmp_path_factory):
    directory = tmp_path_factory.mktemp("xks-proxy-tls")
    cert, key = server_cert(tls_ca, directory)
    port = free_port()
    args = ("--xks-proxy-port", str(port), "--xks-proxy-tls-cert", str(cert), "--xks-proxy-tls-key", str(key))
    with TrentdServer(store=store_kind, extra_args=args) as server:
        server.xks_port = port
        server.xks_ca = write_ca(tls_ca, directory)
        yield server


@pytest.fixture(scope="module")
def keystore(proxy_server):
    return admin(proxy_server, "keystores", "create", "--name", "main", "--account", "111122223333")


@pytest.fixture(scope="module")
def xks(proxy_server, keystore):
    return XksClient(proxy_server.xks_port, proxy_server.xks_ca, keystore["UriPath"], keystore["AccessKeyId"],
                     keystore["SecretAccessKey"])


@pytest.fixture(scope="module")
def key_id(proxy_server, keystore):
    return admin(proxy_server, "keys", "create", "--keystore", "main")["KeyId"]


# --- every operation -------------------------------------------------------------------------------
def test_keystore_credentials_have_the_form_aws_kms_accepts(keystore):
    assert keystore["UriPath"].startswith("/keystores/") and keystore["UriPath"].endswith("/kms/xks/v1")
    assert len(keystore["UriPath"]) <= 128
    access_key_id = keystore["AccessKeyId"]
    assert 20 <= len(access_key_id) <= 30 and set(access_key_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert len(unb64(keystore["SecretAccessKey"])) == 32


def test_get_health_status(xks):
    status, body = xks.health()
    assert status == 200
    assert body == {"xksProxyFleetSize": 1, "xksProxyVendor": "trentd", "xksProxyModel": body["xksProxyModel"],
                    "ekmVendor": "trentd", "ekmFleetDetails": [
                        {"id": "trentd-root-key", "model": "trentd root key (file provider)",
                         "healthStatus": "ACTIVE"}]}
    assert body["xksProxyModel"].startswith("trentd XKS proxy")


def test_get_key_metadata(xks, key_id):
    assert xks.key_metadata(key_id) == (200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"],
                                              "keyStatus": "ENABLED"})
    # kmsKeyArn is optional here (absent when called for CreateKey); any kmsOperation is accepted
    assert xks.key_metadata(key_id, metadata("CreateKey", kmsKeyArn=None))[0] == 200
    assert xks.key_metadata(key_id, metadata("BulkDescribeKey"))[0] == 200


def test_encrypt_and_decrypt(xks, key_id):
    aad = b"project=nile,department=marketing"
    status, sealed = xks.encrypt(key_id, b"Hello World!", aad, ciphertextDataIntegrityValueAlgorithm="SHA_256")
    assert status == 200
    assert set(sealed) == {"ciphertext", "initializationVector", "authenticationTag", "ciphertextDataIntegrityValue"}
    iv, ciphertext, tag = (unb64(sealed[k]) for k in ("initializationVector", "ciphertext", "authenticationTag"))
    assert (len(iv), len(ciphertext), len(tag)) == (12, 12, 16)
    # the spec's Appendix C: SHA-256 over AAD | metadata (none) | IV | ciphertext | tag
    assert unb64(sealed["ciphertextDataIntegrityValue"]) == hashlib.sha256(aad + iv + ciphertext + tag).digest()
    assert xks.decrypt(key_id, sealed, aad) == (200, {"plaintext": b64(b"Hello World!")})
    # without the integrity value; without AAD
    status, plain = xks.encrypt(key_id, b"x" * 4300)
    assert status == 200 and set(plain) == {"ciphertext", "initializationVector", "authenticationTag"}
    assert xks.decrypt(key_id, plain) == (200, {"plaintext": b64(b"x" * 4300)})


def test_decrypt_refuses_what_does_not_authenticate(xks, key_id):
    _, sealed = xks.encrypt(key_id, b"secret", b"ab")
    assert error(xks.decrypt(key_id, sealed, b"ac")) == (400, "InvalidCiphertextException")
    assert error(xks.decrypt(key_id, sealed)) == (400, "InvalidCiphertextException")
    # the AAD encodes both lengths: AAD "a" with metadata "b" is not AAD "ab"
    assert error(xks.decrypt(key_id, sealed, b"a", ciphertextMetadata=b64(b"b"))) == (400, "InvalidCiphertextException")
    assert error(xks.decrypt(key_id, sealed, b"ab", ciphertextMetadata=b64(b"v"))) == \
        (400, "InvalidCiphertextException")
    tampered = dict(sealed, authenticationTag=b64(bytes(16)))
    assert error(xks.decrypt(key_id, tampered, b"ab")) == (400, "InvalidCiphertextException")
    short_iv = dict(sealed, initializationVector=b64(bytes(11)))
    assert error(xks.decrypt(key_id, short_iv, b"ab")) == (400, "InvalidCiphertextException")
    assert error(xks.decrypt(key_id, dict(sealed, authenticationTag=b64(bytes(12))), b"ab")) == \
        (400, "InvalidCiphertextException")
    assert xks.decrypt(key_id, sealed, b"ab")[0] == 200  # nothing above changed the key


# --- request validation ----------------------------------------------------------------------------
def test_request_metadata_is_required_on_every_call(xks, key_id):
    assert error(xks.post("/health", {})) == (400, "ValidationException")
    assert error(xks.health({})) == (400, "ValidationException")
    assert error(xks.health({"kmsOperation": "KmsHealthCheck"})) == (400, "ValidationException")
    assert error(xks.key_metadata(key_id, metadata("DescribeKey", awsPrincipalArn=None))) == \
        (400, "ValidationException")
    assert error(xks.encrypt(key_id, b"p", md=metadata(kmsKeyArn=None))) == (400, "ValidationException")
    assert error(xks.decrypt(key_id, {"ciphertext": "", "initializationVector": "", "authenticationTag": ""},
                             md=metadata("Decrypt", kmsRequestId=None))) == (400, "ValidationException")
    assert error(xks.key_metadata(key_id, metadata("DescribeKey", kmsViaService=7))) == (400, "ValidationException")


def test_malformed_members(xks, key_id):
    assert error(xks.post(f"/keys/{key_id}/encrypt", b"not json")) == (400, "ValidationException")
    assert error(xks.post(f"/keys/{key_id}/encrypt", b"[1]")) == (400, "ValidationException")
    not_base64 = {"requestMetadata": metadata(), "plaintext": "***", "encryptionAlgorithm": "AES_GCM"}
    assert error(xks.post(f"/keys/{key_id}/encrypt", not_base64)) == (400, "ValidationException")
    assert error(xks.post(f"/keys/{key_id}/encrypt", {"requestMetadata": metadata(), "plaintext": "cA=="})) == \
        (400, "ValidationException")
    assert error(xks.encrypt(key_id, b"p", encryptionAlgorithm="AES_CBC")) == (501, "UnsupportedOperationException")
    assert error(xks.encrypt(key_id, b"p", ciphertextDataIntegrityValueAlgorithm="MD5")) == \
        (501, "UnsupportedOperationException")
    _, sealed = xks.encrypt(key_id, b"p")
    assert error(xks.decrypt(key_id, sealed, ciphertextMetadata=b64(bytes(21)))) == (400, "ValidationException")


def test_size_limits(xks, key_id):
    assert xks.encrypt(key_id, bytes(4300), bytes(8192))[0] == 200
    assert error(xks.encrypt(key_id, bytes(4301))) == (501, "UnsupportedOperationException")
    assert error(xks.encrypt(key_id, b"p", bytes(8193))) == (501, "UnsupportedOperationException")
    long_arn = "arn:aws:iam::111122223333:user/" + "a" * 2048
    assert error(xks.key_metadata(key_id, metadata(principal=long_arn))) == (400, "ValidationException")
    assert error(xks.post(f"/keys/{key_id}/encrypt", b" " * (70 * 1024))) == (501, "UnsupportedOperationException")


def test_curl_as_the_spec_uses_it(proxy_server, xks, key_id, tmp_path):
    """The spec's Appendix D: curl --aws-sigv4 (it signs content-type;host;x-amz-date)."""
    assert shutil.which("curl"), "curl (7.75 or later, for --aws-sigv4) is needed"
    body = tmp_path / "encrypt.json"
    body.write_text(json.dumps({"requestMetadata": metadata("GenerateDataKey"), "plaintext": b64(b"Hello World!"),
                                "encryptionAlgorithm": "AES_GCM"}))
    done = subprocess.run(
        ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy", "--user",
         f"{xks.access_key_id}:{xks.secret}", "-X", "POST", "-H", "Content-Type:application/json",
         "--cacert", str(proxy_server.xks_ca), "--resolve", f"xks.trentd.test:{proxy_server.xks_port}:127.0.0.1",
         "--data", f"@{body}", "-w", "\n%{http_code}",
         f"https://xks.trentd.test:{proxy_server.xks_port}{xks.uri_path}/keys/{key_id}/encrypt"],
        capture_output=True, text=True, timeout=30)
    answer, _, status = done.stdout.rpartition("\n")
    assert (done.returncode, status) == (0, "200"), (done.stdout, done.stderr)
    sealed = json.loads(answer)
    assert xks.decrypt(key_id, sealed) == (200, {"plaintext": b64(b"Hello World!")})


@pytest.mark.one_store  # TLS, not the store
@pytest.mark.parametrize("version, ciphers", [
    (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"),
    (ssl.TLSVersion.TLSv1_3, None)])
def test_tls_as_the_spec_asks(proxy_server, version, ciphers):
    """TLS 1.2 with the spec's suites, and 1.3; a TLS 1.1 client is refused by the server."""
    context = ssl.create_default_context(cafile=str(proxy_server.xks_ca))
    context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", proxy_server.xks_port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="xks.trentd.test") as tls:
            name, protocol, _ = tls.cipher()
    assert protocol == ("TLSv1.2" if version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    assert name in {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "TLS_AES_256_GCM_SHA384",
                    "TLS_CHACHA20_POLY1305_SHA256"}
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(proxy_server.xks_ca))
    old.options &= ~ssl.OP_NO_TLSv1_1
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():  # deprecated, which is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", proxy_server.xks_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            old.wrap_socket(raw, server_hostname="xks.trentd.test")


# --- URIs and methods ------------------------------------------------------------------------------
def test_uri_paths_and_methods(xks, key_id):
    assert error(xks.post("", {}, path="/keystores/nope/kms/xks/v1/health")) == (404, "InvalidUriPathException")
    assert error(xks.post(f"/keys/{key_id}/sign", {"requestMetadata": metadata()})) == (404, "InvalidUriPathException")
    assert error(xks.post("/status", {"requestMetadata": metadata()})) == (404, "InvalidUriPathException")
    for suffix in ("/health", f"/keys/{key_id}/metadata", f"/keys/{key_id}/encrypt", f"/keys/{key_id}/decrypt"):
        response = xks.raw(xks.uri_path + suffix, b"", method="GET")
        assert (response.status, response.headers.get("allow")) == (405, "POST")
    response = xks.raw("/healthz", b"", method="GET")  # for load balancers: no signature
    assert (response.status, json.loads(response.data)) == (200, {"status": "ok"})
    assert error(xks.key_metadata("no-such-key")) == (404, "KeyNotFoundException")


# --- authentication --------------------------------------------------------------------------------
def test_good_wrong_and_expired_credentials(xks, key_id, keystore):
    md = {"requestMetadata": metadata("DescribeKey")}
    suffix = f"/keys/{key_id}/metadata"
    assert xks.post(suffix, md)[0] == 200
    # curl signs content-type too: any SignedHeaders set with host and x-amz-date is accepted
    assert xks.post(suffix, md, signed=("content-type", "host", "x-amz-date"))[0] == 200
    refusals = [
        xks.post(suffix, md, secret=b64(bytes(32))),  # wrong secret
        xks.post(suffix, md, access_key_id="A" * 24),  # unknown access key id: not a format error
        xks.post(suffix, md, when=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=6)),  # expired
        xks.post(suffix, md, when=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=6)),  # not yet valid
        xks.post(suffix, md, service="kms"),  # another service's scope
        xks.post(suffix, md, signed=("host",)),  # x-amz-date not signed
    ]
    assert [error(r) for r in refusals] == [(401, "AuthenticationFailedException")] * len(refusals)
    assert refusals[2][1]["errorMessage"].startswith("Signature expired: ")
    for answer in refusals:  # no message echoes a signature or the secret
        message = answer[1]["errorMessage"]
        assert "Signature=" not in message and keystore["SecretAccessKey"] not in message
    unsigned = xks.raw(xks.uri_path + suffix, json.dumps(md).encode(), {"host": "xks.trentd.test"})
    assert unsigned.status == 401 and json.loads(unsigned.data)["errorName"] == "AuthenticationFailedException"


def test_a_credential_serves_only_its_own_key_store(proxy_server, xks, key_id):
    other = admin(proxy_server, "keystores", "create", "--name", "other", "--uri-prefix", "/tenant-b")
    assert other["UriPath"] == "/tenant-b/kms/xks/v1"
    assert error(xks.post(f"/keys/{key_id}/metadata", {"requestMetadata": metadata()}, path=None,
                          access_key_id=other["AccessKeyId"], secret=other["SecretAccessKey"])) == \
        (401, "AuthenticationFailedException")
    mine = XksClient(proxy_server.xks_port, proxy_server.xks_ca, other["UriPath"], other["AccessKeyId"],
                     other["SecretAccessKey"])
    assert mine.health()[0] == 200
    assert error(mine.key_metadata(key_id)) == (404, "KeyNotFoundException")  # keys belong to their store
    assert admin(proxy_server, "keystores", "delete", "--keystore", "other") == {"Deleted": "other"}
    eventually(lambda: _assert_status(mine.health(), 401))
    assert error(mine.health()) == (401, "AuthenticationFailedException")


def test_rotated_credentials(proxy_server, keystore, key_id):
    fresh = admin(proxy_server, "keystores", "create", "--name", "rotating")
    first = XksClient(proxy_server.xks_port, proxy_server.xks_ca, fresh["UriPath"], fresh["AccessKeyId"],
                      fresh["SecretAccessKey"])
    second_keys = admin(proxy_server, "credentials", "rotate", "--keystore", "rotating")
    assert second_keys["AccessKeyId"] != fresh["AccessKeyId"]
    second = XksClient(proxy_server.xks_port, proxy_server.xks_ca, fresh["UriPath"], second_keys["AccessKeyId"],
                       second_keys["SecretAccessKey"])
    eventually(lambda: _assert_status(second.health(), 200))
    assert first.health()[0] == 200  # both live at once
    code, text = admin(proxy_server, "credentials", "rotate", "--keystore", "rotating", ok=False)
    assert code == 1 and "2 live credentials already" in text
    assert admin(proxy_server, "credentials", "retire", "--keystore", "rotating", "--access-key-id",
                 fresh["AccessKeyId"]) == {"Name": "rotating", "Retired": fresh["AccessKeyId"]}
    eventually(lambda: _assert_status(first.health(), 401))
    assert second.health()[0] == 200
    code, text = admin(proxy_server, "credentials", "retire", "--keystore", "rotating", "--access-key-id",
                       second_keys["AccessKeyId"], ok=False)
    assert code == 1 and "only credential" in text
    listed = {k["Name"]: k for k in admin(proxy_server, "keystores", "list")["KeyStores"]}
    assert listed["rotating"]["AccessKeyIds"] == [second_keys["AccessKeyId"]]
    assert "SecretAccessKey" not in json.dumps(listed)


def _assert_status(answer: tuple[int, dict], status: int) -> None:
    assert answer[0] == status, answer


# --- keys: status, usages, deletion ------------------------------------------------------------------
def test_key_status_and_usage(proxy_server, xks):
    key = admin(proxy_server, "keys", "create", "--keystore", "main")["KeyId"]
    _, sealed = xks.encrypt(key, b"kept")
    assert admin(proxy_server, "keys", "disable", "--keystore", "main", "--key-id", key) == \
        {"KeyId": key, "KeyStatus": "DISABLED"}
    eventually(lambda: _assert_status(xks.encrypt(key, b"p"), 400))
    assert error(xks.encrypt(key, b"p")) == (400, "InvalidStateException")
    assert error(xks.decrypt(key, sealed)) == (400, "InvalidStateException")
    assert xks.key_metadata(key)[1]["keyStatus"] == "DISABLED"
    code, text = admin(proxy_server, "keys", "delete", "--keystore", "main", "--key-id", "nope", ok=False)
    assert code == 1 and "no key 'nope'" in text
    admin(proxy_server, "keys", "enable", "--keystore", "main", "--key-id", key)
    eventually(lambda: _assert_status(xks.decrypt(key, sealed), 200))
    code, text = admin(proxy_server, "keys", "delete", "--keystore", "main", "--key-id", key, ok=False)
    assert code == 1 and "disable it first" in text

    encrypt_only = admin(proxy_server, "keys", "create", "--keystore", "main", "--usage", "ENCRYPT")["KeyId"]
    eventually(lambda: _assert_status(xks.encrypt(encrypt_only, b"p"), 200))
    _, sealed = xks.encrypt(encrypt_only, b"p")
    assert error(xks.decrypt(encrypt_only, sealed)) == (400, "InvalidKeyUsageException")
    # the integrity value is checked by decrypting: a key that may not decrypt cannot give it
    assert error(xks.encrypt(encrypt_only, b"p", ciphertextDataIntegrityValueAlgorithm="SHA_256")) == \
        (400, "InvalidKeyUsageException")
    assert xks.key_metadata(encrypt_only)[1]["keyUsage"] == ["ENCRYPT"]
    decrypt_only = admin(proxy_server, "keys", "create", "--keystore", "main", "--usage", "decrypt,sign")["KeyId"]
    eventually(lambda: _assert_status(xks.key_metadata(decrypt_only), 200))
    assert error(xks.encrypt(decrypt_only, b"p")) == (400, "InvalidKeyUsageException")
    assert xks.key_metadata(decrypt_only)[1]["keyUsage"] == ["DECRYPT", "SIGN"]
    code, text = admin(proxy_server, "keys", "create", "--keystore", "main", "--usage", "FLY", ok=False)
    assert code == 1 and "--usage" in text

    # crypto-shredding: disabled, then deleted, the key is gone for good
    admin(proxy_server, "keys", "disable", "--keystore", "main", "--key-id", key)
    assert admin(proxy_server, "keys", "delete", "--keystore", "main", "--key-id", key) == \
        {"Deleted": key, "KeyStore": "main"}
    eventually(lambda: _assert_status(xks.key_metadata(key), 404))
    assert error(xks.decrypt(key, sealed)) == (404, "KeyNotFoundException")
    listed = admin(proxy_server, "keys", "list", "--keystore", "main")["Keys"]
    assert key not in [k["KeyId"] for k in listed] and encrypt_only in [k["KeyId"] for k in listed]
    code, text = admin(proxy_server, "keystores", "delete", "--keystore", "main", ok=False)
    assert code == 1 and "still holds" in text


def test_keys_named_by_the_administrator(proxy_server, xks):
    created = admin(proxy_server, "keys", "create", "--keystore", "main", "--key-id", "inventory.key_1-a")
    assert created == {"KeyId": "inventory.key_1-a", "KeyStore": "main", "KeyUsage": ["ENCRYPT", "DECRYPT"]}
    eventually(lambda: _assert_status(xks.key_metadata("inventory.key_1-a"), 200))
    for bad, why in (("inventory.key_1-a", "has a key 'inventory.key_1-a' already"), ("has space", "--key-id"),
                     ("k" * 129, "--key-id")):
        code, text = admin(proxy_server, "keys", "create", "--keystore", "main", "--key-id", bad, ok=False)
        assert code == 1 and why in text


# --- secondary authorization -----------------------------------------------------------------------
def test_secondary_authorization(proxy_server, xks, key_id, tmp_path):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": ["kms-xks-proxy:Encrypt", "kms-xks-proxy:GetKeyMetadata"], "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "kms-xks-proxy:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"xks:KmsOperation": "Decrypt"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "kms-xks-proxy:*", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}}]}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    _, sealed = xks.encrypt(key_id, b"for the role")
    assert admin(proxy_server, "keystores", "put-policy", "--keystore", "main", "--policy-file", str(path)) == \
        {"Name": "main", "HasPolicy": True}
    session = "arn:aws:sts::111122223333:assumed-role/payments-app/session-1"
    alice = "arn:aws:iam::111122223333:user/alice"
    eventually(lambda: _assert_status(xks.decrypt(key_id, sealed, md=metadata("Decrypt", alice)), 403))
    assert error(xks.decrypt(key_id, sealed, md=metadata("Decrypt", alice))) == (403, "AccessDeniedException")
    assert xks.decrypt(key_id, sealed, md=metadata("Decrypt", session)) == (200, {"plaintext": b64(b"for the role")})
    assert error(xks.decrypt(key_id, sealed, md=metadata("ReEncrypt", session))) == (403, "AccessDeniedException")
    assert xks.encrypt(key_id, b"p", md=metadata("Encrypt", alice))[0] == 200
    assert error(xks.encrypt(key_id, b"p", md=metadata("Encrypt", "arn:aws:iam::999999999999:user/eve"))) == \
        (403, "AccessDeniedException")
    via_ec2 = metadata("Encrypt", alice, kmsViaService="ec2.us-east-1.amazonaws.com")
    assert error(xks.encrypt(key_id, b"p", md=via_ec2)) == (403, "AccessDeniedException")
    assert xks.health()[0] == 200  # never subject to secondary authorization
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}')
    code, text = admin(proxy_server, "keystores", "put-policy", "--keystore", "main", "--policy-file", str(bad),
                       ok=False)
    assert code == 1 and "no principal" in text
    admin(proxy_server, "keystores", "put-policy", "--keystore", "main", "--policy-file", "none")
    eventually(lambda: _assert_status(xks.decrypt(key_id, sealed, md=metadata("Decrypt", alice)), 200))


# --- audit -----------------------------------------------------------------------------------------
def test_every_call_is_audited_without_plaintext(proxy_server, xks, key_id):
    secret_text = b"audit-must-not-see-this-plaintext"
    md = metadata("GenerateDataKey", kmsRequestId="kms-request-4112f4d6")
    status, sealed = xks.encrypt(key_id, secret_text, b"aad-bytes", md=md)
    assert status == 200
    xks.post("/health", {})  # a refused call is audited too

    def events():
        found = []
        for path in (proxy_server.data_dir / "audit").glob("*.jsonl"):
            text = path.read_text()
            assert b64(secret_text) not in text and sealed["ciphertext"] not in text
            found += [json.loads(line) for line in text.splitlines() if '"kms-xks-proxy"' in line]
        return found

    def mine():
        by_request = [e for e in events() if e.get("additionalEventData", {}).get("kmsRequestId") == md["kmsRequestId"]]
        assert len(by_request) == 1
        return by_request[0]

    event = eventually(mine)
    assert (event["eventSource"], event["eventName"], event["awsRegion"]) == ("kms-xks-proxy", "Encrypt", "us-east-1")
    assert event["userIdentity"] == {"type": "XksProxyCredential", "accessKeyId": xks.access_key_id, "keyStore": "main"}
    assert event["additionalEventData"]["kmsOperation"] == "GenerateDataKey"
    assert event["additionalEventData"]["awsPrincipalArn"] == md["awsPrincipalArn"]
    assert event["requestParameters"]["externalKeyId"] == key_id
    assert event["requestParameters"]["plaintextBytes"] == len(secret_text)
    assert event["recipientAccountId"] == "111122223333" and "errorCode" not in event
    refused = [e for e in events() if e["eventName"] == "GetHealthStatus" and e.get("errorCode")]
    assert refused and refused[-1]["errorCode"] == "ValidationException"
    admin_events = [e for e in events() if e["eventName"] == "CreateKeyStore"]
    assert admin_events and all("SecretAccessKey" not in json.dumps(e) for e in admin_events)
    # the proxy's events are links of the same hash chains as every other event
    files = sorted(str(p) for p in (proxy_server.data_dir / "audit").glob("*.jsonl"))
    verified = subprocess.run([sys.executable, "-m", "trentd", "audit", "verify", *files], capture_output=True,
                              text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# --- two trentds: A's external key store is B's XKS listener ------------------------------------------
ENABLE_EXTERNAL_KEY = ("The external key associated with this KMS key in an external key store is not enabled in "
                       "the external key manager. Enable the external key in the external key manager and retry the "
                       "request.")


@pytest.fixture(scope="module")
def kms_server(store_kind, proxy_server):
    """trentd A, whose external key store proxy is trentd B (``proxy_server``), reached by name
    through the test-only --xks-resolve and trusting B's test CA."""
    args = ("--xks-resolve", f"xks.trentd.test=127.0.0.1:{proxy_server.xks_port}",
            "--xks-ca-bundle", str(proxy_server.xks_ca))
    with TrentdServer(store=store_kind, extra_args=args) as server:
        yield server


def test_one_trentd_is_another_ones_external_key_store(proxy_server, kms_server):
    account = "444455556666"
    ks = admin(proxy_server, "keystores", "create", "--name", "for-trentd-a", "--account", account)
    external = admin(proxy_server, "keys", "create", "--keystore", "for-trentd-a")["KeyId"]
    kms = kms_server.client(access_key=account, secret_key="unused-in-dev-mode")
    store_id = kms.create_custom_key_store(
        CustomKeyStoreName="trentd-b", CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint="https://xks.trentd.test", XksProxyUriPath=ks["UriPath"],
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential={"AccessKeyId": ks["AccessKeyId"],
                                          "RawSecretAccessKey": ks["SecretAccessKey"]})["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    described = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    assert described["ConnectionState"] == "CONNECTED"
    meta = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=external)["KeyMetadata"]
    assert (meta["Origin"], meta["XksKeyConfiguration"], meta["KeyState"]) == (
        "EXTERNAL_KEY_STORE", {"Id": external}, "Enabled")
    context = {"tenant": "a"}
    out = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"held at B", EncryptionContext=context)
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == b"held at B"
    data_key = kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]

    # B audited A's call, with A's request id
    def audited():
        lines = [json.loads(line) for path in (proxy_server.data_dir / "audit").glob("*.jsonl")
                 for line in path.read_text().splitlines() if out["ResponseMetadata"]["RequestId"] in line]
        assert [(e["eventSource"], e["eventName"]) for e in lines] == [("kms-xks-proxy", "Encrypt")]
        assert lines[0]["additionalEventData"]["kmsKeyArn"] == meta["Arn"]

    eventually(audited)

    # the external key disabled on B: A's cryptographic calls fail as AWS documents
    admin(proxy_server, "keys", "disable", "--keystore", "for-trentd-a", "--key-id", external)

    def refused(call, **kwargs):
        try:
            call(**kwargs)
        except ClientError as exc:
            assert (exc.response["Error"]["Code"], exc.response["Error"]["Message"]) == (
                "KMSInvalidStateException", ENABLE_EXTERNAL_KEY)
        else:
            raise AssertionError(f"{call} succeeded")

    eventually(lambda: refused(kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"more"))
    refused(kms.decrypt, CiphertextBlob=out["CiphertextBlob"], EncryptionContext=context)
    refused(kms.generate_data_key, KeyId=meta["KeyId"], KeySpec="AES_256")
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"  # A's own state is A's
    admin(proxy_server, "keys", "enable", "--keystore", "for-trentd-a", "--key-id", external)
    eventually(lambda: _assert_plaintext(kms, out["CiphertextBlob"], context, b"held at B"))


def _assert_plaintext(kms, blob: bytes, context: dict, expected: bytes) -> None:
    try:
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == expected
    except ClientError as exc:
        raise AssertionError(exc) from None


# --- root-key rotation rewraps the proxy's secrets and keys ------------------------------------------
def test_root_key_rotation_rewraps_credentials_and_keys(store_kind, tmp_path):
    port = free_port()
    (tmp_path / "data").mkdir()
    server = TrentdServer(store=store_kind, data_dir=tmp_path / "data", extra_args=("--xks-proxy-port", str(port)))
    try:
        server.start()
        ks = admin(server, "keystores", "create", "--name", "rotated")
        key = admin(server, "keys", "create", "--keystore", "rotated")["KeyId"]
        ca = server.data_dir / "xks-tls" / "ca.pem"  # no certificate given: the listener's private CA
        xks = XksClient(port, ca, ks["UriPath"], ks["AccessKeyId"], ks["SecretAccessKey"], server_name="localhost")
        status, sealed = xks.encrypt(key, b"before rotation", b"ctx")
        assert status == 200
        server.stop()
        command = [sys.executable, "-m", "trentd", "root-key", "rotate", "--data-dir", str(server.data_dir),
                   "--grace", "0"]
        if server.database:
            command += ["--database", server.database, "--root-key-file", str(server.root_key_file)]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, env=server.process_env())
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["Rewrapped"]["xks_proxy_credentials"] == 1 and result["Rewrapped"]["xks_proxy_keys"] == 1
        server.start()
        xks = XksClient(port, ca, ks["UriPath"], ks["AccessKeyId"], ks["SecretAccessKey"], server_name="localhost")
        assert xks.decrypt(key, sealed, b"ctx") == (200, {"plaintext": b64(b"before rotation")})
    finally:
        server.cleanup()
