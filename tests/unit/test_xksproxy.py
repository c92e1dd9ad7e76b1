"""trentd as an XKS proxy, without a server: the spec's AES-GCM rules and integrity value
(crypto/xks_gcm.py), URI paths and credentials (xksproxy/keystores.py), routes, principals and
error messages. End to end: tests/e2e/test_xks_proxy.py."""

from __future__ import annotations

import base64
import json
import os
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trentd.crypto import xks_gcm
from trentd.xksproxy import auth, keys, keystores
from trentd.xksproxy.api import route
from trentd.xksproxy.errors import STATUS, XksError


def test_integrity_value_of_the_spec_example():
    """Appendix C: 33 bytes of AAD, 13 of metadata, 12 of IV, 12 of ciphertext, a 16-byte tag."""
    aad = b"project=nile,department=marketing"
    metadata = b"key_version=1"
    iv = bytes.fromhex("1ccae5470f39700254779031")
    ciphertext = bytes.fromhex("821c642b5b71783367deaf18")
    tag = bytes.fromhex("bc1c4dda7707d6812447c5955e99b261")
    value = xks_gcm.integrity_value(aad, metadata, iv, ciphertext, tag)
    assert value.hex() == "a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7"
    assert base64.b64encode(value).decode() == "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="


def test_gcm_aad_is_the_specs_length_prefixed_encoding():
    assert xks_gcm.gcm_aad(b"ab", b"v1") == b"\x00\x02ab\x02v1"
    assert xks_gcm.gcm_aad(b"", b"") == b"\x00\x00\x00"
    assert xks_gcm.gcm_aad(b"a", b"b") != xks_gcm.gcm_aad(b"ab", b"")


def test_seal_is_aes_gcm_under_that_aad():
    material = os.urandom(32)
    iv, ciphertext, tag = xks_gcm.seal(material, b"plaintext", b"aad", b"md")
    assert (len(iv), len(ciphertext), len(tag)) == (12, 9, 16)
    # an independent decryption with the spec's AAD
    assert AESGCM(material).decrypt(iv, ciphertext + tag, b"\x00\x03aad\x02md") == b"plaintext"
    assert xks_gcm.unseal(material, iv, ciphertext, tag, b"aad", b"md") == b"plaintext"
    with pytest.raises(xks_gcm.InvalidTag):
        xks_gcm.unseal(material, iv, ciphertext, tag, b"aadm", b"d")


def test_sixteen_byte_ivs_decrypt():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    material, iv = os.urandom(32), os.urandom(16)
    encryptor = Cipher(algorithms.AES(material), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(xks_gcm.gcm_aad(b"a", b""))
    ciphertext = encryptor.update(b"sixteen") + encryptor.finalize()
    assert xks_gcm.unseal(material, iv, ciphertext, encryptor.tag, b"a") == b"sixteen"


@pytest.mark.parametrize("prefix, path", [(None, None), ("", "/kms/xks/v1"), ("/", "/kms/xks/v1"),
                                          ("/tenant-a", "/tenant-a/kms/xks/v1"), ("team_b/x", "/team_b/x/kms/xks/v1")])
def test_uri_paths(prefix, path):
    made = keystores.uri_path_for(prefix)
    if path is None:
        assert re.fullmatch(r"/keystores/[0-9a-f-]{36}/kms/xks/v1", made)
    else:
        assert made == path


@pytest.mark.parametrize("prefix", ["/has space", "/dots.not/allowed", "/" + "a" * 120])
def test_uri_paths_aws_kms_refuses_are_refused(prefix):
    with pytest.raises(keystores.KeystoreError, match="which AWS KMS refuses"):
        keystores.uri_path_for(prefix)


def test_credentials_have_the_form_aws_kms_accepts():
    for _ in range(20):
        key_id, secret = keystores.new_access_key_id(), keystores.new_secret()
        assert re.fullmatch(r"[A-Z2-7]{20,30}", key_id)
        assert re.fullmatch(r"[A-Za-z0-9+/=]{43,64}", secret) and len(base64.b64decode(secret)) == 32


def test_routes():
    assert route("/p/kms/xks/v1/health") == ("/p/kms/xks/v1", "GetHealthStatus", None)
    assert route("/kms/xks/v1/keys/a.b_c-1/encrypt") == ("/kms/xks/v1", "Encrypt", "a.b_c-1")
    assert route("/kms/xks/v1/keys/k/metadata") == ("/kms/xks/v1", "GetKeyMetadata", "k")
    for path in ("/kms/xks/v1/keys/k/sign", "/kms/xks/v1/keys/k%20/decrypt", "/kms/xks/v1/keys//decrypt",
                 "/kms/xks/v1/keys/" + "k" * 129 + "/decrypt", "/kms/xks/v1", "health"):
        assert route(path) is None, path


def test_principals_as_policies_see_them():
    assert auth.principal_of("arn:aws:sts::111122223333:assumed-role/app/s-1") == (
        "arn:aws:iam::111122223333:role/app", "111122223333")
    assert auth.principal_of("arn:aws:iam::111122223333:user/alice") == (
        "arn:aws:iam::111122223333:user/alice", "111122223333")
    assert auth.principal_of("ec2.amazonaws.com") == ("ec2.amazonaws.com", "")
    assert auth.principal_of("AWS Internal") == ("AWS Internal", "")


def test_usages():
    assert keys.parse_usages(None) == ("ENCRYPT", "DECRYPT")
    assert keys.parse_usages("decrypt, wrap,decrypt") == ("DECRYPT", "WRAP")
    for bad in ("", "ENCRYPT,FLY"):
        with pytest.raises(keystores.KeystoreError):
            keys.parse_usages(bad)


def test_errors_follow_the_spec_table():
    assert STATUS["AuthenticationFailedException"] == 401 and STATUS["InvalidUriPathException"] == 404
    assert STATUS["UnsupportedOperationException"] == 501 and STATUS["DependencyTimeoutException"] == 503
    err = XksError("ValidationException", "caf\u00e9 \n" + "x" * 600)
    assert len(err.message) == 511 and err.message.startswith("caf? ?")
    assert all(" " <= ch <= "~" for ch in err.message)
    with pytest.raises(ValueError):
        XksError("NoSuchError", "m")
    assert json.loads(XksError("KeyNotFoundException", "no key").body()) == {
        "errorName": "KeyNotFoundException", "errorMessage": "no key"}
