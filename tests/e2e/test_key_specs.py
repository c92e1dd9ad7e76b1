"""Every KeySpec of botocore's KMS model, end to end: CreateKey/DescribeKey shapes, spec×usage
rules, GetPublicKey and GenerateDataKeyPair(WithoutPlaintext).

Expectations come from kms-api.md §3.2 (written out below, not read from trentd), and every key
that comes back is checked with `cryptography` (kyber-py for ML-KEM-512, which `cryptography`
lacks), never with trentd's own crypto code. Keys are created once per module and per xdist worker.
"""

from __future__ import annotations

import hashlib

import botocore.loaders
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa

from trentd.crypto.specs import KEY_SPECS  # only to find the specs trentd declares unsupported

from ..helpers import error_of

pytestmark = pytest.mark.one_store  # key specs and their keys: nothing here depends on the store

ACCOUNT = "314159265301"
MODEL = botocore.loaders.Loader().load_service_model("kms", "service-2")
MODEL_KEY_SPECS = MODEL["shapes"]["KeySpec"]["enum"]
MODEL_PAIR_SPECS = MODEL["shapes"]["DataKeyPairSpec"]["enum"]
USAGES = MODEL["shapes"]["KeyUsageType"]["enum"]

ENC, SIGN, MAC, AGREE, KEM = ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT",
                              "ENCAPSULATE_DECAPSULATE")
ALGORITHM_FIELD = {ENC: "EncryptionAlgorithms", SIGN: "SigningAlgorithms", MAC: "MacAlgorithms",
                   AGREE: "KeyAgreementAlgorithms", KEM: "EncapsulationAlgorithms"}
RSA_ENC = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
RSA_SIGN = [f"RSASSA_{p}_SHA_{n}" for p in ("PSS", "PKCS1_V1_5") for n in (256, 384, 512)]

# kms-api.md §3.2: spec -> {usage: algorithm list}.
EXPECTED: dict[str, dict[str, list[str]]] = {
    "SYMMETRIC_DEFAULT": {ENC: ["SYMMETRIC_DEFAULT"]},
    **{f"HMAC_{n}": {MAC: [f"HMAC_SHA_{n}"]} for n in (224, 256, 384, 512)},
    **{f"RSA_{n}": {ENC: RSA_ENC, SIGN: RSA_SIGN} for n in (2048, 3072, 4096)},
    **{f"ECC_NIST_P{n}": {SIGN: [f"ECDSA_SHA_{h}"], AGREE: ["ECDH"]} for n, h in ((256, 256), (384, 384), (521, 512))},
    "ECC_SECG_P256K1": {SIGN: ["ECDSA_SHA_256"]},
    "ECC_NIST_EDWARDS25519": {SIGN: ["ED25519_SHA_512", "ED25519_PH_SHA_512"]},
    **{f"ML_DSA_{n}": {SIGN: ["ML_DSA_SHAKE_256"]} for n in (44, 65, 87)},
    **{f"ML_KEM_{n}": {KEM: ["ML_KEM"]} for n in (512, 768, 1024)},
    "SM2": {ENC: ["SM2PKE"], SIGN: ["SM2DSA"], AGREE: ["ECDH"]},
}
UNSUPPORTED = sorted(name for name, spec in KEY_SPECS.items() if not spec.supported)
VALID = [(s, u) for s, usages in EXPECTED.items() if s not in UNSUPPORTED for u in usages]
INVALID = [(s, u) for s in MODEL_KEY_SPECS for u in USAGES if u not in EXPECTED[s]]
ASYMMETRIC = [(s, u) for s, u in VALID if s != "SYMMETRIC_DEFAULT" and not s.startswith("HMAC_")]
PAIR_SPECS = [s for s in MODEL_PAIR_SPECS if s != "SM2"]
OID_ML_KEM_512 = bytes.fromhex("608648016503040401")  # 2.16.840.1.101.3.4.4.1


# --- helpers ----------------------------------------------------------------------------------

def der(data: bytes) -> tuple[int, bytes, bytes]:
    """(tag, content, rest) of the first DER TLV in data."""
    tag, n, i = data[0], data[1], 2
    if n & 0x80:
        i = 2 + (n & 0x7F)
        n = int.from_bytes(data[2:i], "big")
    return tag, data[i:i + n], data[i + n:]


def ml_kem_512_ek(spki: bytes) -> bytes:
    """The 800-byte encapsulation key of an ML-KEM-512 SPKI (RFC 9935: OID, no parameters)."""
    tag, body, rest = der(spki)
    assert (tag, rest) == (0x30, b"")
    tag, alg, body = der(body)
    assert tag == 0x30 and der(alg) == (0x06, OID_ML_KEM_512, b"")
    tag, bits, rest = der(body)
    assert (tag, rest, bits[:1]) == (0x03, b"", b"\x00") and len(bits) == 801
    return bits[1:]


def check_public_key(spec: str, spki: bytes) -> None:
    """The SPKI loads with a standard tool and is a key of exactly this spec."""
    if spec == "ML_KEM_512":  # `cryptography` 50 has no ML-KEM-512 class
        ml_kem_512_ek(spki)
        return
    key = serialization.load_der_public_key(spki)
    family, _, size = spec.rpartition("_")
    if family == "RSA":
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == int(size)
        assert key.public_numbers().e == 65537
    elif spec.startswith("ECC_NIST_P") or spec == "ECC_SECG_P256K1":
        curve = {"ECC_NIST_P256": "secp256r1", "ECC_NIST_P384": "secp384r1", "ECC_NIST_P521": "secp521r1",
                 "ECC_SECG_P256K1": "secp256k1"}[spec]
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(key, ed25519.Ed25519PublicKey) and len(spki) == 44
    elif family == "ML_DSA":
        cls, raw = {"44": (mldsa.MLDSA44PublicKey, 1312), "65": (mldsa.MLDSA65PublicKey, 1952),
                    "87": (mldsa.MLDSA87PublicKey, 2592)}[size]
        assert isinstance(key, cls) and len(key.public_bytes_raw()) == raw
    elif family == "ML_KEM":
        cls, raw = {"768": (mlkem.MLKEM768PublicKey, 1184), "1024": (mlkem.MLKEM1024PublicKey, 1568)}[size]
        assert isinstance(key, cls) and len(key.public_bytes_raw()) == raw
    else:
        pytest.fail(f"no public-key check for {spec}")
    assert key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == spki


def check_ml_kem_512_private(pkcs8: bytes, spki: bytes) -> None:
    """PKCS#8 ML-KEM-512 (RFC 9935 CHOICE: seed [0], expandedKey or both) that pairs with spki,
    checked with kyber-py as an oracle: an encapsulation to the public key decapsulates."""
    kyber = pytest.importorskip("kyber_py.ml_kem", reason="kyber-py (ML-KEM-512 test oracle) not installed")
    ek = ml_kem_512_ek(spki)
    tag, body, rest = der(pkcs8)
    assert (tag, rest) == (0x30, b"")
    assert body.startswith(b"\x02\x01\x00")
    tag, alg, body = der(body[3:])
    assert tag == 0x30 and der(alg) == (0x06, OID_ML_KEM_512, b"")
    tag, inner, rest = der(body)
    assert (tag, rest) == (0x04, b"")
    tag, value, rest = der(inner)
    assert rest == b""
    if tag == 0x80:  # seed d‖z: the form AWS returns (86-byte PKCS#8)
        assert len(value) == 64 and len(pkcs8) == 86
        derived_ek, dk = kyber.ML_KEM_512.key_derive(value)
        assert derived_ek == ek
    else:  # expandedKey dk = dk_PKE ‖ ek ‖ H(ek) ‖ z (trentd's documented form; see pq.py)
        if tag == 0x30:
            _, _, value = der(value)
            tag, value, _ = der(value)
        assert tag == 0x04 and len(value) == 1632
        dk = value
        assert dk[768:1568] == ek and dk[1568:1600] == hashlib.sha3_256(ek).digest()
    secret, ciphertext = kyber.ML_KEM_512.encaps(ek)
    assert kyber.ML_KEM_512.decaps(dk, ciphertext) == secret


def check_private_key(spec: str, pkcs8: bytes, spki: bytes) -> None:
    if spec == "ML_KEM_512":
        check_ml_kem_512_private(pkcs8, spki)
        return
    private = serialization.load_der_private_key(pkcs8, password=None)
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    assert public == spki
    if spec.startswith("ML_KEM_"):
        assert len(pkcs8) == 86  # seed form, as AWS returns it (kms-api.md §3.2)


def algorithm_fields(obj: dict) -> dict:
    return {f: obj[f] for f in ALGORITHM_FIELD.values() if f in obj}


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(trentd_server):
    return trentd_server.client(access_key=ACCOUNT, secret_key="unused-in-dev-mode")


@pytest.fixture(scope="module")
def keys(client):
    """(spec, usage) -> CreateKey's KeyMetadata, each key created on first use."""
    created: dict[tuple[str, str], dict] = {}

    def get(spec: str, usage: str) -> dict:
        if (spec, usage) not in created:
            created[spec, usage] = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        return created[spec, usage]

    return get


@pytest.fixture(scope="module")
def wrapping_key(keys) -> dict:
    return keys("SYMMETRIC_DEFAULT", ENC)


# --- the spec table ---------------------------------------------------------------------------

def test_table_covers_the_model():
    assert sorted(EXPECTED) == sorted(MODEL_KEY_SPECS)
    assert sorted(USAGES) == sorted(ALGORITHM_FIELD)


def test_only_sm2_is_unsupported():
    """kms-api.md §6: everything but SM2 (China only) is implementable here."""
    assert UNSUPPORTED == ["SM2"]


@pytest.mark.parametrize("spec,usage", VALID)
def test_create_and_describe_key(client, keys, spec, usage):
    created = keys(spec, usage)
    described = client.describe_key(KeyId=created["Arn"])["KeyMetadata"]
    for meta in (created, described):
        assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == spec
        assert meta["KeyUsage"] == usage
        assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True and meta["Origin"] == "AWS_KMS"
        fields = algorithm_fields(meta)
        assert list(fields) == [ALGORITHM_FIELD[usage]]
        assert sorted(fields[ALGORITHM_FIELD[usage]]) == sorted(EXPECTED[spec][usage])
        assert len(set(fields[ALGORITHM_FIELD[usage]])) == len(EXPECTED[spec][usage])
        if spec == "SYMMETRIC_DEFAULT":
            assert len(meta["CurrentKeyMaterialId"]) == 64
        else:
            assert "CurrentKeyMaterialId" not in meta
    assert described["Arn"] == created["Arn"]


def test_key_usage_defaults_only_for_symmetric(client):
    meta = client.create_key()["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"], meta["EncryptionAlgorithms"]) == (
        "SYMMETRIC_DEFAULT", ENC, ["SYMMETRIC_DEFAULT"])
    assert client.create_key(KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyUsage"] == ENC


def test_legacy_customer_master_key_spec(client):
    meta = client.create_key(CustomerMasterKeySpec="ECC_NIST_P384", KeyUsage=SIGN)["KeyMetadata"]
    assert meta["KeySpec"] == meta["CustomerMasterKeySpec"] == "ECC_NIST_P384"
    assert meta["SigningAlgorithms"] == ["ECDSA_SHA_384"]


@pytest.mark.parametrize("spec,usage", INVALID)
def test_incompatible_spec_and_usage(client, spec, usage):
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.create_key(KeySpec=spec, KeyUsage=usage)
    # ValidationException [doc]; the wording is emulator consensus (kms-api.md §3.2).
    assert error_of(excinfo) == ("ValidationException", f"KeyUsage {usage} is not compatible with KeySpec {spec}")


@pytest.mark.parametrize("spec", [s for s in MODEL_KEY_SPECS if s != "SYMMETRIC_DEFAULT"])
def test_key_usage_required(client, spec):
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.create_key(KeySpec=spec)
    assert error_of(excinfo) == ("ValidationException", "You must specify a KeyUsage value for all KMS keys "
                                                        "except for symmetric encryption keys.")


@pytest.mark.parametrize("spec,usage", [(s, u) for s in UNSUPPORTED for u in EXPECTED[s]])
def test_unsupported_spec(client, spec, usage):
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.create_key(KeySpec=spec, KeyUsage=usage)
    code, message = error_of(excinfo)
    assert code == "UnsupportedOperationException" and spec in message


# --- GetPublicKey -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec,usage", ASYMMETRIC)
def test_get_public_key(client, keys, spec, usage):
    meta = keys(spec, usage)
    out = client.get_public_key(KeyId=meta["KeyId"])
    assert out["KeyId"] == meta["Arn"]
    assert out["KeySpec"] == out["CustomerMasterKeySpec"] == spec
    assert out["KeyUsage"] == usage
    fields = algorithm_fields(out)
    assert list(fields) == [ALGORITHM_FIELD[usage]]
    assert sorted(fields[ALGORITHM_FIELD[usage]]) == sorted(EXPECTED[spec][usage])
    check_public_key(spec, out["PublicKey"])
    assert client.get_public_key(KeyId=meta["Arn"])["PublicKey"] == out["PublicKey"]


@pytest.mark.parametrize("spec,usage", [("SYMMETRIC_DEFAULT", ENC), ("HMAC_256", MAC)])
def test_get_public_key_refused_without_key_pair(client, keys, spec, usage):
    meta = keys(spec, usage)
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.get_public_key(KeyId=meta["KeyId"])
    code, message = error_of(excinfo)
    assert code == "UnsupportedOperationException"  # AWS's message text not recorded
    assert meta["Arn"] in message


# --- GenerateDataKeyPair ----------------------------------------------------------------------

CONTEXT = {"purpose": "e2e", "Spec": "every key spec"}


def test_pair_specs_cover_the_model():
    assert sorted(PAIR_SPECS + ["SM2"]) == sorted(MODEL_PAIR_SPECS)


@pytest.mark.parametrize("with_context", [False, True], ids=["no-context", "context"])
@pytest.mark.parametrize("operation", ["generate_data_key_pair", "generate_data_key_pair_without_plaintext"])
@pytest.mark.parametrize("pair_spec", PAIR_SPECS)
def test_generate_data_key_pair(client, wrapping_key, pair_spec, operation, with_context):
    context = {"EncryptionContext": CONTEXT} if with_context else {}
    out = getattr(client, operation)(KeyId=wrapping_key["KeyId"], KeyPairSpec=pair_spec, **context)
    assert out["KeyId"] == wrapping_key["Arn"]
    assert out["KeyPairSpec"] == pair_spec
    assert out.get("KeyMaterialId", wrapping_key["CurrentKeyMaterialId"]) == wrapping_key["CurrentKeyMaterialId"]
    check_public_key(pair_spec, out["PublicKey"])

    decrypted = client.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], **context)
    assert decrypted["KeyId"] == wrapping_key["Arn"]
    if operation == "generate_data_key_pair":
        assert decrypted["Plaintext"] == out["PrivateKeyPlaintext"]
    else:
        assert "PrivateKeyPlaintext" not in out
    check_private_key(pair_spec, decrypted["Plaintext"], out["PublicKey"])

    if with_context:
        for wrong in ({}, {"EncryptionContext": {**CONTEXT, "purpose": "E2E"}}):
            with pytest.raises(client.exceptions.InvalidCiphertextException) as excinfo:
                client.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], **wrong)
            assert error_of(excinfo) == ("InvalidCiphertextException", "")


def test_data_key_pairs_are_fresh(client, wrapping_key):
    first, second = (client.generate_data_key_pair(KeyId=wrapping_key["KeyId"], KeyPairSpec="ECC_NIST_P256")
                     for _ in range(2))
    assert first["PublicKey"] != second["PublicKey"]
    assert first["PrivateKeyCiphertextBlob"] != second["PrivateKeyCiphertextBlob"]


def test_generate_data_key_pair_sm2_unsupported(client, wrapping_key):
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.generate_data_key_pair(KeyId=wrapping_key["KeyId"], KeyPairSpec="SM2")
    code, message = error_of(excinfo)
    assert code == "UnsupportedOperationException" and "SM2" in message


@pytest.mark.parametrize("operation,name", [("generate_data_key_pair", "GenerateDataKeyPair"),
                                            ("generate_data_key_pair_without_plaintext",
                                             "GenerateDataKeyPairWithoutPlaintext")])
@pytest.mark.parametrize("spec,usage", [("RSA_2048", SIGN), ("ECC_NIST_P256", SIGN), ("ECC_NIST_P384", AGREE),
                                        ("HMAC_256", MAC), ("ML_KEM_768", KEM), ("ECC_NIST_EDWARDS25519", SIGN)])
def test_data_key_pair_needs_an_encryption_key(client, keys, spec, usage, operation, name):
    """A key of another usage: the usage message, as for Encrypt with a SIGN_VERIFY key [aws]."""
    meta = keys(spec, usage)
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:
        getattr(client, operation)(KeyId=meta["KeyId"], KeyPairSpec="ECC_NIST_P256")
    assert error_of(excinfo) == (
        "InvalidKeyUsageException", f"{meta['Arn']} key usage is {usage} which is not valid for {name}.")


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_4096"])
def test_data_key_pair_needs_a_symmetric_key(client, keys, spec):
    """An asymmetric ENCRYPT_DECRYPT key has the right usage but the wrong spec."""
    meta = keys(spec, ENC)
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:
        client.generate_data_key_pair(KeyId=meta["KeyId"], KeyPairSpec="RSA_2048")
    code, message = error_of(excinfo)
    # AWS's exact text is not recorded (local-kms: "<arn> key KeySpec is RSA_2048 which is not valid for …").
    assert message.startswith(meta["Arn"] + " ") and spec in message and "GenerateDataKeyPair" in message
