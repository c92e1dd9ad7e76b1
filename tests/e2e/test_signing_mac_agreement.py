"""Sign/Verify, RSA encryption, GenerateMac/VerifyMac, DeriveSharedSecret and ML-KEM against a real
trentd, with every result checked independently: `cryptography` with GetPublicKey's SPKI,
pycryptodome for Ed25519ph and kyber-py for ML-KEM-512 (test oracles, never trentd's crypto code).
Expected messages are AWS's (kms-api.md §2 table, Traps 9-10) where recorded.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..helpers import error_of

pytestmark = pytest.mark.one_store  # cryptography checked against oracles: nothing here depends on the store

ACCOUNT = "314159265302"
ENC, SIGN, MAC, AGREE, KEM = ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT",
                              "ENCAPSULATE_DECAPSULATE")
HASH = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512(), "1": hashes.SHA1()}
CURVES = {"ECC_NIST_P256": ec.SECP256R1, "ECC_NIST_P384": ec.SECP384R1, "ECC_NIST_P521": ec.SECP521R1}
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
ML_DSA_SIG_BYTES = {"ML_DSA_44": 2420, "ML_DSA_65": 3309, "ML_DSA_87": 4627}
ML_KEM_CT_BYTES = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}
TOO_LONG = ("ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: "
            "Member must have length less than or equal to 4096")

SIGN_CASES = [
    *[(f"RSA_{n}", f"RSASSA_{p}_SHA_{h}", t) for n in (2048, 3072, 4096) for p in ("PSS", "PKCS1_V1_5")
      for h in (256, 384, 512) for t in ("RAW", "DIGEST")],
    *[(s, f"ECDSA_SHA_{h}", t) for s, h in (("ECC_NIST_P256", 256), ("ECC_NIST_P384", 384),
                                            ("ECC_NIST_P521", 512), ("ECC_SECG_P256K1", 256))
      for t in ("RAW", "DIGEST")],
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "RAW"),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "DIGEST"),
    *[(f"ML_DSA_{n}", "ML_DSA_SHAKE_256", t) for n in (44, 65, 87) for t in ("RAW", "EXTERNAL_MU")],
]


# --- fixtures and helpers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(trentd_server):
    return trentd_server.client(access_key=ACCOUNT, secret_key="unused-in-dev-mode")


@pytest.fixture(scope="module")
def keys(client):
    """(spec, usage) -> (KeyMetadata, GetPublicKey's SPKI or None), created on first use."""
    created: dict = {}

    def get(spec: str, usage: str):
        if (spec, usage) not in created:
            meta = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
            public = None if usage in (ENC, MAC) and spec.startswith(("SYM", "HMAC")) else \
                client.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
            created[spec, usage] = (meta, public)
        return created[spec, usage]

    return get


def flip(blob: bytes, at: int | None = None) -> bytes:
    at = len(blob) // 2 if at is None else at
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1:]


def incompatible(algorithm: str, spec: str) -> str:
    return f"Algorithm {algorithm} is incompatible with key spec {spec}."


def external_mu(public_raw: bytes, message: bytes) -> bytes:
    """FIPS 204 §6.2 μ for pure ML-DSA with an empty context."""
    tr = hashlib.shake_256(public_raw).digest(64)
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


def message_for(spec: str, algorithm: str, message_type: str, public_der: bytes, message: bytes) -> bytes:
    """What the caller sends as Message for `message` (RAW: itself; DIGEST: its hash; EXTERNAL_MU: μ)."""
    if message_type == "RAW":
        return message
    if message_type == "EXTERNAL_MU":
        return external_mu(serialization.load_der_public_key(public_der).public_bytes_raw(), message)
    return hashlib.new("sha" + algorithm.rsplit("_", 1)[1], message).digest()


def verify_locally(algorithm: str, public_der: bytes, message: bytes, sent: bytes, signature: bytes) -> None:
    """Raises unless `signature` is a standard signature of `message` (sent to KMS as `sent`)."""
    if algorithm == "ED25519_PH_SHA_512":
        eddsa = pytest.importorskip("Crypto.Signature.eddsa", reason="pycryptodome (Ed25519ph oracle) missing")
        from Crypto.Hash import SHA512
        from Crypto.PublicKey import ECC
        verifier = eddsa.new(ECC.import_key(public_der), "rfc8032")
        # KMS hashes the 64-byte digest once more: RFC 8032 Ed25519ph of the message D = SHA-512(M).
        verifier.verify(SHA512.new(sent), signature)
        with pytest.raises(ValueError):
            verifier.verify(SHA512.new(message), signature)  # not Ed25519ph of M itself
        return
    public = serialization.load_der_public_key(public_der)
    if algorithm == "ED25519_SHA_512":
        assert isinstance(public, ed25519.Ed25519PublicKey) and len(signature) == 64
        public.verify(signature, message)
    elif algorithm == "ML_DSA_SHAKE_256":
        public.verify(signature, message)  # pure ML-DSA, empty context, whichever way KMS got M
        public.verify_mu(signature, external_mu(public.public_bytes_raw(), message))
    elif algorithm.startswith("ECDSA_"):
        decode_dss_signature(signature)  # DER, not r‖s
        public.verify(signature, message, ec.ECDSA(HASH[algorithm[-3:]]))
    else:
        assert isinstance(public, rsa.RSAPublicKey) and len(signature) == public.key_size // 8
        h = HASH[algorithm[-3:]]
        pad = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size) if "_PSS_" in algorithm \
            else padding.PKCS1v15()
        public.verify(signature, message, pad, h)


# --- Sign and Verify --------------------------------------------------------------------------

def test_ed25519ph_oracle_matches_rfc8032():
    """RFC 8032 §7.3 vector, so the Ed25519ph oracle itself is trustworthy."""
    eddsa = pytest.importorskip("Crypto.Signature.eddsa", reason="pycryptodome not installed")
    from Crypto.Hash import SHA512
    key = eddsa.import_private_key(bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"))
    assert eddsa.new(key, "rfc8032").sign(SHA512.new(b"abc")).hex() == (
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406")


@pytest.mark.parametrize("spec,algorithm,message_type", SIGN_CASES)
def test_sign_verifies_with_standard_tools(client, keys, spec, algorithm, message_type):
    meta, public_der = keys(spec, SIGN)
    message = os.urandom(300)
    sent = message_for(spec, algorithm, message_type, public_der, message)
    out = client.sign(KeyId=meta["KeyId"], Message=sent, MessageType=message_type, SigningAlgorithm=algorithm)
    assert (out["KeyId"], out["SigningAlgorithm"]) == (meta["Arn"], algorithm)
    signature = out["Signature"]
    if spec in ML_DSA_SIG_BYTES:
        assert len(signature) == ML_DSA_SIG_BYTES[spec]
    verify_locally(algorithm, public_der, message, sent, signature)

    # trentd's Verify: the same request, the other message form of the same M, and tampering.
    accepted = [(sent, message_type)]
    if message_type in ("RAW", "DIGEST") and spec.startswith(("RSA", "ECC_NIST_P", "ECC_SECG")):
        other = "DIGEST" if message_type == "RAW" else "RAW"
        accepted.append((message_for(spec, algorithm, other, public_der, message), other))
    if spec in ML_DSA_SIG_BYTES:
        other = "RAW" if message_type == "EXTERNAL_MU" else "EXTERNAL_MU"
        accepted.append((message_for(spec, algorithm, other, public_der, message), other))
    for msg, mtype in accepted:
        ok = client.verify(KeyId=meta["Arn"], Message=msg, MessageType=mtype, Signature=signature,
                           SigningAlgorithm=algorithm)
        assert (ok["KeyId"], ok["SignatureValid"], ok["SigningAlgorithm"]) == (meta["Arn"], True, algorithm)
    for msg, sig in ((sent, flip(signature)), (sent, flip(signature, 0)), (flip(sent), signature)):
        with pytest.raises(client.exceptions.KMSInvalidSignatureException) as excinfo:
            client.verify(KeyId=meta["KeyId"], Message=msg, MessageType=message_type, Signature=sig,
                          SigningAlgorithm=algorithm)
        assert error_of(excinfo) == ("KMSInvalidSignatureException", "")


@pytest.mark.parametrize("spec,algorithm", [("RSA_2048", "RSASSA_PSS_SHA_256"), ("ECC_NIST_P256", "ECDSA_SHA_256"),
                                            ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
                                            ("ML_DSA_44", "ML_DSA_SHAKE_256")])
def test_message_length_limit(client, keys, spec, algorithm):
    meta, public_der = keys(spec, SIGN)
    message = os.urandom(4096)
    signature = client.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm=algorithm)["Signature"]
    verify_locally(algorithm, public_der, message, message, signature)
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.sign(KeyId=meta["KeyId"], Message=message + b"x", SigningAlgorithm=algorithm)
    assert error_of(excinfo) == TOO_LONG
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.verify(KeyId=meta["KeyId"], Message=message + b"x", Signature=signature, SigningAlgorithm=algorithm)
    assert error_of(excinfo) == TOO_LONG


# operation -> (API name, a request that is valid but for the key)
REQUEST = {
    "sign": ("Sign", {"Message": b"m", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
    "verify": ("Verify", {"Message": b"m", "Signature": b"s", "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
    "generate_mac": ("GenerateMac", {"Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}),
    "verify_mac": ("VerifyMac", {"Message": b"m", "Mac": b"x" * 32, "MacAlgorithm": "HMAC_SHA_256"}),
    "derive_shared_secret": ("DeriveSharedSecret", {"KeyAgreementAlgorithm": "ECDH", "PublicKey": b"k"}),
    "encapsulate": ("Encapsulate", {"EncapsulationAlgorithm": "ML_KEM"}),
    "decapsulate": ("Decapsulate", {"EncapsulationAlgorithm": "ML_KEM", "SharedSecretCiphertextBlob": b"c"}),
    "encrypt": ("Encrypt", {"Plaintext": b"p", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
}
ALGORITHM_MEMBER = {"sign": "SigningAlgorithm", "verify": "SigningAlgorithm", "encrypt": "EncryptionAlgorithm"}


@pytest.mark.parametrize("spec,usage,operation", [
    ("RSA_2048", ENC, "sign"), ("RSA_2048", ENC, "verify"), ("SYMMETRIC_DEFAULT", ENC, "sign"),
    ("ECC_NIST_P256", AGREE, "sign"), ("RSA_2048", SIGN, "generate_mac"), ("SYMMETRIC_DEFAULT", ENC, "verify_mac"),
    ("ECC_NIST_P256", SIGN, "derive_shared_secret"), ("RSA_2048", ENC, "encapsulate"),
    ("ECC_NIST_P256", SIGN, "decapsulate"), ("ML_KEM_768", KEM, "encrypt"),
])
def test_wrong_key_usage(client, keys, spec, usage, operation):
    meta, _ = keys(spec, usage)
    name, request = REQUEST[operation]
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:
        getattr(client, operation)(KeyId=meta["KeyId"], **request)
    message = f"{meta['Arn']} key usage is {usage} which is not valid for {name}."
    assert error_of(excinfo) == ("InvalidKeyUsageException", message)


@pytest.mark.parametrize("spec,usage,operation,algorithm", [
    ("ECC_NIST_P256", SIGN, "sign", "ECDSA_SHA_384"), ("ECC_NIST_P256", SIGN, "verify", "ECDSA_SHA_384"),
    ("ECC_SECG_P256K1", SIGN, "sign", "ECDSA_SHA_512"), ("ECC_NIST_P256", SIGN, "sign", "RSASSA_PSS_SHA_256"),
    ("RSA_2048", SIGN, "sign", "ECDSA_SHA_256"), ("ML_DSA_44", SIGN, "sign", "ED25519_SHA_512"),
    ("ECC_NIST_EDWARDS25519", SIGN, "sign", "ML_DSA_SHAKE_256"), ("RSA_2048", SIGN, "verify", "SM2DSA"),
    ("RSA_2048", ENC, "encrypt", "SYMMETRIC_DEFAULT"), ("SYMMETRIC_DEFAULT", ENC, "encrypt", "RSAES_OAEP_SHA_1"),
])
def test_algorithm_incompatible_with_spec(client, keys, spec, usage, operation, algorithm):
    meta, _ = keys(spec, usage)
    request = {**REQUEST[operation][1], ALGORITHM_MEMBER[operation]: algorithm}
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:
        getattr(client, operation)(KeyId=meta["KeyId"], **request)
    assert error_of(excinfo) == ("InvalidKeyUsageException", incompatible(algorithm, spec))


@pytest.mark.parametrize("operation", ["sign", "verify"])
@pytest.mark.parametrize("spec,algorithm,length", [
    ("ECC_NIST_P256", "ECDSA_SHA_256", 48), ("ECC_NIST_P521", "ECDSA_SHA_512", 63),
    ("RSA_2048", "RSASSA_PSS_SHA_384", 32), ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", 33),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", 32),
])
def test_digest_of_wrong_length(client, keys, spec, algorithm, length, operation):
    meta, _ = keys(spec, SIGN)
    request = {**REQUEST[operation][1], "Message": b"d" * length, "MessageType": "DIGEST",
               "SigningAlgorithm": algorithm}
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        getattr(client, operation)(KeyId=meta["KeyId"], **request)
    assert error_of(excinfo) == ("ValidationException", f"Digest is invalid length for algorithm {algorithm}.")


@pytest.mark.parametrize("spec,algorithm,message_type,length", [
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "DIGEST", 64),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "RAW", 64),
    ("ML_DSA_65", "ML_DSA_SHAKE_256", "DIGEST", 64), ("ML_DSA_65", "ML_DSA_SHAKE_256", "EXTERNAL_MU", 63),
    ("ML_DSA_65", "ML_DSA_SHAKE_256", "EXTERNAL_MU", 65), ("RSA_2048", "RSASSA_PSS_SHA_512", "EXTERNAL_MU", 64),
    ("ECC_NIST_P384", "ECDSA_SHA_384", "EXTERNAL_MU", 64),
])
def test_message_type_not_allowed(client, keys, spec, algorithm, message_type, length):
    """Ed25519 RAW-only / Ed25519ph DIGEST-only, EXTERNAL_MU exactly 64 bytes and only for ML-DSA (Trap 9).
    AWS's wording for these is not recorded: only the error code is checked."""
    meta, _ = keys(spec, SIGN)
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.sign(KeyId=meta["KeyId"], Message=b"\x07" * length, MessageType=message_type,
                    SigningAlgorithm=algorithm)
    assert error_of(excinfo)[0] == "ValidationException"


# --- RSA encryption ---------------------------------------------------------------------------

# Largest OAEP plaintexts, as AWS documents them (kms-api.md §3.2).
RSA_LIMITS = [(f"RSA_{n}", f"RSAES_OAEP_SHA_{h}", limit) for n, h, limit in (
    (2048, 1, 214), (2048, 256, 190), (3072, 1, 342), (3072, 256, 318), (4096, 1, 470), (4096, 256, 446))]


@pytest.mark.parametrize("spec,algorithm,limit", RSA_LIMITS)
def test_rsa_oaep(client, keys, spec, algorithm, limit):
    meta, public_der = keys(spec, ENC)
    public = serialization.load_der_public_key(public_der)
    h = HASH[algorithm.rsplit("_", 1)[1]]
    for size in (1, limit):
        plaintext = os.urandom(size)
        local = public.encrypt(plaintext, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
        out = client.decrypt(KeyId=meta["KeyId"], CiphertextBlob=local, EncryptionAlgorithm=algorithm)
        assert (out["Plaintext"], out["KeyId"], out["EncryptionAlgorithm"]) == (plaintext, meta["Arn"], algorithm)
        assert "KeyMaterialId" not in out

        enc = client.encrypt(KeyId=meta["KeyId"], Plaintext=plaintext, EncryptionAlgorithm=algorithm)
        assert (enc["KeyId"], enc["EncryptionAlgorithm"]) == (meta["Arn"], algorithm)
        assert len(enc["CiphertextBlob"]) == public.key_size // 8
        again = client.decrypt(KeyId=meta["Arn"], CiphertextBlob=enc["CiphertextBlob"], EncryptionAlgorithm=algorithm)
        assert again["Plaintext"] == plaintext

    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.encrypt(KeyId=meta["KeyId"], Plaintext=os.urandom(limit + 1), EncryptionAlgorithm=algorithm)
    assert error_of(excinfo) == ("ValidationException",
                 f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {limit} bytes.")

    other = "RSAES_OAEP_SHA_1" if algorithm.endswith("256") else "RSAES_OAEP_SHA_256"
    for bad in ({"EncryptionAlgorithm": other}, {"EncryptionAlgorithm": algorithm, "CiphertextBlob": flip(local)}):
        with pytest.raises(client.exceptions.InvalidCiphertextException) as excinfo:
            client.decrypt(**{"KeyId": meta["KeyId"], "CiphertextBlob": local, **bad})
        assert error_of(excinfo) == ("InvalidCiphertextException", "")
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:  # no EncryptionAlgorithm
        client.decrypt(KeyId=meta["KeyId"], CiphertextBlob=local)
    assert error_of(excinfo) == ("InvalidKeyUsageException", incompatible("SYMMETRIC_DEFAULT", spec))
    with pytest.raises(client.exceptions.InvalidCiphertextException):  # no KeyId: the blob names no key
        client.decrypt(CiphertextBlob=local, EncryptionAlgorithm=algorithm)


# --- HMAC -------------------------------------------------------------------------------------

HMACS = [(f"HMAC_{n}", f"HMAC_SHA_{n}", n // 8) for n in (224, 256, 384, 512)]


@pytest.mark.parametrize("spec,algorithm,length", HMACS)
def test_generate_and_verify_mac(client, keys, spec, algorithm, length):
    meta, _ = keys(spec, MAC)
    message = os.urandom(4096)
    out = client.generate_mac(KeyId=meta["KeyId"], Message=message, MacAlgorithm=algorithm)
    assert (out["KeyId"], out["MacAlgorithm"], len(out["Mac"])) == (meta["Arn"], algorithm, length)
    assert client.generate_mac(KeyId=meta["Arn"], Message=message, MacAlgorithm=algorithm)["Mac"] == out["Mac"]
    assert client.generate_mac(KeyId=meta["Arn"], Message=b"other", MacAlgorithm=algorithm)["Mac"] != out["Mac"]
    ok = client.verify_mac(KeyId=meta["KeyId"], Message=message, MacAlgorithm=algorithm, Mac=out["Mac"])
    assert (ok["KeyId"], ok["MacValid"], ok["MacAlgorithm"]) == (meta["Arn"], True, algorithm)
    for msg, mac in ((message, flip(out["Mac"])), (message, out["Mac"][:-1]), (message, out["Mac"] + b"\0"),
                     (flip(message), out["Mac"])):
        with pytest.raises(client.exceptions.KMSInvalidMacException) as excinfo:
            client.verify_mac(KeyId=meta["KeyId"], Message=msg, MacAlgorithm=algorithm, Mac=mac)
        assert error_of(excinfo) == ("KMSInvalidMacException", "")
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.generate_mac(KeyId=meta["KeyId"], Message=message + b"x", MacAlgorithm=algorithm)
    assert error_of(excinfo) == TOO_LONG


@pytest.mark.parametrize("operation", ["generate_mac", "verify_mac"])
@pytest.mark.parametrize("spec,algorithm", [(s, a) for s, own, _ in HMACS for _, a, _ in HMACS if a != own])
def test_mac_algorithm_must_match_spec(client, keys, spec, algorithm, operation):
    meta, _ = keys(spec, MAC)
    extra = {"Mac": b"\0" * 32} if operation == "verify_mac" else {}
    with pytest.raises(client.exceptions.InvalidKeyUsageException) as excinfo:
        getattr(client, operation)(KeyId=meta["KeyId"], Message=b"m", MacAlgorithm=algorithm, **extra)
    assert error_of(excinfo) == ("InvalidKeyUsageException", incompatible(algorithm, spec))


# --- ECDH ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,secret_bytes", [("ECC_NIST_P256", 32), ("ECC_NIST_P384", 48), ("ECC_NIST_P521", 66)])
def test_derive_shared_secret(client, keys, spec, secret_bytes):
    meta, public_der = keys(spec, AGREE)
    kms_public = serialization.load_der_public_key(public_der)
    assert isinstance(kms_public, ec.EllipticCurvePublicKey) and isinstance(kms_public.curve, CURVES[spec])
    for _ in range(2):
        peer = ec.generate_private_key(CURVES[spec]())
        out = client.derive_shared_secret(KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH",
                                          PublicKey=peer.public_key().public_bytes(*SPKI))
        assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_public)
        assert len(out["SharedSecret"]) == secret_bytes
        assert (out["KeyId"], out["KeyAgreementAlgorithm"], out["KeyOrigin"]) == (meta["Arn"], "ECDH", "AWS_KMS")


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P521"])
def test_derive_shared_secret_rejects_bad_public_keys(client, keys, spec):
    meta, _ = keys(spec, AGREE)
    other = "ECC_NIST_P384" if spec == "ECC_NIST_P256" else "ECC_NIST_P256"
    point = ec.generate_private_key(CURVES[spec]()).public_key()
    spki = point.public_bytes(*SPKI)
    for name, public in {
        "garbage": b"not a public key",
        "raw-point": point.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
        "off-curve": spki[:-1] + bytes([spki[-1] ^ 0x01]),
        "other-curve": ec.generate_private_key(CURVES[other]()).public_key().public_bytes(*SPKI),
        "secp256k1": ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(*SPKI),
        "ed25519": ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*SPKI),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(*SPKI),
    }.items():
        with pytest.raises(client.exceptions.ClientError) as excinfo:
            client.derive_shared_secret(KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=public)
        code, message = error_of(excinfo)
        assert code == "ValidationException", name
        if name in ("garbage", "raw-point", "off-curve"):  # no valid SPKI: AWS gives no message
            assert message == "", name


# --- ML-KEM -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", list(ML_KEM_CT_BYTES))
def test_ml_kem(client, keys, spec):
    meta, public_der = keys(spec, KEM)
    ct_bytes = ML_KEM_CT_BYTES[spec]
    out = client.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert (out["KeyId"], out["EncapsulationAlgorithm"]) == (meta["Arn"], "ML_KEM")
    assert (len(out["SharedSecret"]), len(out["SharedSecretCiphertextBlob"])) == (32, ct_bytes)
    back = client.decapsulate(KeyId=meta["Arn"], EncapsulationAlgorithm="ML_KEM",
                              SharedSecretCiphertextBlob=out["SharedSecretCiphertextBlob"])
    assert (back["SharedSecret"], back["KeyId"], back["EncapsulationAlgorithm"]) == (
        out["SharedSecret"], meta["Arn"], "ML_KEM")
    second = client.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert second["SharedSecretCiphertextBlob"] != out["SharedSecretCiphertextBlob"]

    # Implicit rejection (Trap 10): a wrong ciphertext of the right length is a 32-byte pseudo-random secret.
    wrong = flip(out["SharedSecretCiphertextBlob"])
    rejected = [client.decapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM",
                                   SharedSecretCiphertextBlob=wrong)["SharedSecret"] for _ in range(2)]
    assert rejected[0] == rejected[1] and len(rejected[0]) == 32 and rejected[0] != out["SharedSecret"]
    for length in (ct_bytes - 1, ct_bytes + 1, 1):
        with pytest.raises(client.exceptions.InvalidCiphertextException) as excinfo:
            client.decapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM",
                               SharedSecretCiphertextBlob=(out["SharedSecretCiphertextBlob"] * 2)[:length])
        assert error_of(excinfo) == ("InvalidCiphertextException", "")


@pytest.mark.parametrize("spec", list(ML_KEM_CT_BYTES))
def test_ml_kem_interoperates(client, keys, spec):
    """Encapsulate with a standard implementation to GetPublicKey's key; trentd decapsulates it."""
    meta, public_der = keys(spec, KEM)
    if spec == "ML_KEM_512":  # not in `cryptography` 50: kyber-py as the oracle
        kyber = pytest.importorskip("kyber_py.ml_kem", reason="kyber-py (ML-KEM-512 test oracle) not installed")
        # SPKI: SEQUENCE { SEQUENCE { OID 2.16.840.1.101.3.4.4.1 }, BIT STRING { 0x00, ek (800 B) } }
        assert public_der[:22] == bytes.fromhex("30820332300b06096086480165030404010382032100")
        secret, ciphertext = kyber.ML_KEM_512.encaps(public_der[22:])
    else:
        secret, ciphertext = serialization.load_der_public_key(public_der).encapsulate()
    assert len(ciphertext) == ML_KEM_CT_BYTES[spec]
    out = client.decapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM",
                             SharedSecretCiphertextBlob=ciphertext)
    assert out["SharedSecret"] == secret


@pytest.mark.parametrize("operation", ["generate_mac", "verify_mac"])
def test_unknown_mac_algorithm_lists_the_set_as_aws_does(raw_kms, operation):
    key = raw_kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    args = {"KeyId": key, "Message": b"m", "MacAlgorithm": "HMAC_SHA_1"}
    if operation == "verify_mac":
        args["Mac"] = b"x" * 32
    with pytest.raises(raw_kms.exceptions.ClientError) as excinfo:
        getattr(raw_kms, operation)(**args)
    assert error_of(excinfo) == ("ValidationException", "1 validation error detected: Value 'HMAC_SHA_1' at "
                                 "'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: "
                                 "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]")
