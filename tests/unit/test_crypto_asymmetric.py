"""trentd.crypto.asymmetric against independent implementations.

Every signature made here is checked with `cryptography` (or pycryptodome for Ed25519ph) from
nothing but the SPKI that `public_key_der` returns, and every signature made independently is
checked here. ML-KEM-512 (pqcrypto) is checked against kyber-py, a pure-Python FIPS 203 used here as
a test oracle only; ML-KEM-768 seeds are checked against it too.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os

import botocore.loaders
import pytest
from Crypto.Hash import SHA512 as PySHA512
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from kyber_py.ml_kem import ML_KEM_512 as ORACLE_512
from kyber_py.ml_kem import ML_KEM_768 as ORACLE_768

from trentd.crypto import asymmetric, rsa_ecc
from trentd.crypto.specs import KEY_SPECS
from trentd.errors import AWSError

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PKCS8 = serialization.PrivateFormat.PKCS8

ASYMMETRIC = [n for n, ks in KEY_SPECS.items() if ks.family not in ("symmetric", "hmac") and ks.supported]
HMACS = [n for n, ks in KEY_SPECS.items() if ks.family == "hmac"]
HASHES = {"SHA_256": hashes.SHA256(), "SHA_384": hashes.SHA384(), "SHA_512": hashes.SHA512()}
MESSAGE = b"The quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def pairs():
    """One key pair per asymmetric spec, generated once (RSA-4096 costs ~0.4 s)."""
    generated = {spec: asymmetric.generate_key_pair(spec) for spec in ASYMMETRIC}
    asymmetric.clear_key_cache()  # the tests below parse the material as any later request does
    return generated


def material(pairs, spec):
    return pairs[spec][0]


def public(pairs, spec):
    return serialization.load_der_public_key(asymmetric.public_key_der(spec, pairs[spec][0]))


def private(pairs, spec):
    return _load_private(pairs[spec][0])


@functools.cache
def _load_private(der):  # OpenSSL validates RSA keys on load: 0.25 s for RSA-4096
    return serialization.load_der_private_key(der, password=None)


def raises(code, message, fn, *args):
    with pytest.raises(AWSError) as err:
        fn(*args)
    assert (err.value.code, err.value.message) == (code, message)


def algorithm_hash(algorithm):
    return HASHES[algorithm[-7:]]


def mu(public_key, message):
    """External μ of FIPS 204 §6.2 for pure ML-DSA with an empty context, computed with hashlib."""
    tr = hashlib.shake_256(public_key.public_bytes_raw()).digest(64)
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


# --- a minimal, independent DER reader for the ML-KEM-512 encodings --------------------------

def der_items(data):
    items, i = [], 0
    while i < len(data):
        tag, n = data[i], data[i + 1]
        i += 2
        if n & 0x80:
            size = n & 0x7F
            n = int.from_bytes(data[i:i + size], "big")
            i += size
        items.append((tag, data[i:i + n]))
        i += n
    assert i == len(data)
    return items


def oid(content):
    first, arcs, value = content[0], [], 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(a) for a in [first // 40, first % 40, *arcs])


def spki_parts(der):
    [(tag, body)] = der_items(der)
    (alg_tag, alg), (key_tag, key) = der_items(body)
    [(oid_tag, oid_bytes)] = der_items(alg)  # no parameters
    assert (tag, alg_tag, oid_tag, key_tag, key[0]) == (0x30, 0x30, 0x06, 0x03, 0)
    return oid(oid_bytes), key[1:]


# --- signatures -------------------------------------------------------------------------------

def sign_cases():
    for spec in ASYMMETRIC:
        for algorithm in KEY_SPECS[spec].algorithms.get("SIGN_VERIFY", ()):
            if algorithm == "ED25519_SHA_512":
                types = ["RAW"]
            elif algorithm == "ED25519_PH_SHA_512":
                types = ["DIGEST"]
            elif algorithm == "ML_DSA_SHAKE_256":
                types = ["RAW", "EXTERNAL_MU"]
            else:
                types = ["RAW", "DIGEST"]
            for message_type in types:
                yield pytest.param(spec, algorithm, message_type, id=f"{spec}-{algorithm}-{message_type}")


SIGN_CASES = list(sign_cases())


def request_message(pairs, spec, algorithm, message_type):
    """What a caller sends for MESSAGE: the message, its digest, or its μ."""
    if message_type == "RAW":
        return MESSAGE
    if message_type == "EXTERNAL_MU":
        return mu(public(pairs, spec), MESSAGE)
    digest = hashes.Hash(algorithm_hash(algorithm))
    digest.update(MESSAGE)
    return digest.finalize()


def independent_verify(pairs, spec, algorithm, message_type, message, signature):
    """Verify with `cryptography` (pycryptodome for Ed25519ph) from the SPKI alone. RSA, ECDSA and
    ML-DSA signatures of a digest or μ must verify against the original MESSAGE."""
    key = public(pairs, spec)
    if algorithm == "ED25519_PH_SHA_512":
        verifier = eddsa.new(eddsa.import_public_key(key.public_bytes_raw()), "rfc8032")
        verifier.verify(PySHA512.new(message), signature)  # raises ValueError if not authentic
        return
    if algorithm in ("ED25519_SHA_512", "ML_DSA_SHAKE_256"):
        key.verify(signature, MESSAGE)
        return
    hash_ = algorithm_hash(algorithm)
    if algorithm.startswith("ECDSA"):
        decode_dss_signature(signature)  # DER, not r‖s
        key.verify(signature, MESSAGE, ec.ECDSA(hash_))
    elif algorithm.startswith("RSASSA_PSS"):
        key.verify(signature, MESSAGE, padding.PSS(padding.MGF1(hash_), hash_.digest_size), hash_)
    else:
        key.verify(signature, MESSAGE, padding.PKCS1v15(), hash_)


def independent_sign(pairs, spec, algorithm, message_type, message):
    key = private(pairs, spec)
    if algorithm == "ED25519_PH_SHA_512":
        signer = eddsa.new(eddsa.import_private_key(key.private_bytes_raw()), "rfc8032")
        return signer.sign(PySHA512.new(message))
    if algorithm == "ED25519_SHA_512":
        return key.sign(message)
    if algorithm == "ML_DSA_SHAKE_256":
        return key.sign(MESSAGE)  # pure ML-DSA; EXTERNAL_MU verifies it through μ(MESSAGE)
    hash_ = algorithm_hash(algorithm)
    chosen = Prehashed(hash_) if message_type == "DIGEST" else hash_
    if algorithm.startswith("ECDSA"):
        return key.sign(message, ec.ECDSA(chosen))
    if algorithm.startswith("RSASSA_PSS"):
        return key.sign(message, padding.PSS(padding.MGF1(hash_), hash_.digest_size), chosen)
    return key.sign(message, padding.PKCS1v15(), chosen)


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), SIGN_CASES)
def test_signed_here_verifies_independently(pairs, spec, algorithm, message_type):
    message = request_message(pairs, spec, algorithm, message_type)
    signature = asymmetric.sign(spec, material(pairs, spec), algorithm, message_type, message)
    independent_verify(pairs, spec, algorithm, message_type, message, signature)
    assert asymmetric.verify(spec, material(pairs, spec), algorithm, message_type, message, signature)


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), SIGN_CASES)
def test_signed_independently_verifies_here(pairs, spec, algorithm, message_type):
    message = request_message(pairs, spec, algorithm, message_type)
    signature = independent_sign(pairs, spec, algorithm, message_type, message)
    assert asymmetric.verify(spec, material(pairs, spec), algorithm, message_type, message, signature)


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), SIGN_CASES)
def test_bad_signatures_are_false_never_errors(pairs, spec, algorithm, message_type):
    key = material(pairs, spec)
    message = request_message(pairs, spec, algorithm, message_type)
    signature = asymmetric.sign(spec, key, algorithm, message_type, message)
    tampered = bytearray(signature)
    tampered[len(tampered) // 2] ^= 0x01
    other = bytearray(message)
    other[0] ^= 0x01
    assert not asymmetric.verify(spec, key, algorithm, message_type, message, bytes(tampered))
    assert not asymmetric.verify(spec, key, algorithm, message_type, bytes(other), signature)
    for junk in (b"", b"\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", os.urandom(len(signature)),
                 signature + b"\x00", b"\xff" * 6000):
        assert not asymmetric.verify(spec, key, algorithm, message_type, message, junk)


@pytest.mark.parametrize(("spec", "algorithm", "message_type"),
                         [c for c in SIGN_CASES if c.values[2] == "DIGEST"])
def test_digest_of_wrong_length_is_rejected(pairs, spec, algorithm, message_type):
    size = algorithm_hash(algorithm).digest_size
    expected = f"Digest is invalid length for algorithm {algorithm}."
    for wrong in (size - 1, size + 1, 20, 1):
        raises("ValidationException", expected,
               asymmetric.sign, spec, material(pairs, spec), algorithm, "DIGEST", b"\x01" * wrong)
        raises("ValidationException", expected,
               asymmetric.verify, spec, material(pairs, spec), algorithm, "DIGEST", b"\x01" * wrong, b"sig")


def test_digest_message_is_signed_as_that_digest(pairs):
    """ECDSA over DIGEST(sha256(M)) is a valid signature of M — the digest is not hashed again."""
    spec, algorithm = "ECC_NIST_P256", "ECDSA_SHA_256"
    digest = hashlib.sha256(MESSAGE).digest()
    signature = asymmetric.sign(spec, material(pairs, spec), algorithm, "DIGEST", digest)
    assert asymmetric.verify(spec, material(pairs, spec), algorithm, "RAW", MESSAGE, signature)
    assert not asymmetric.verify(spec, material(pairs, spec), algorithm, "RAW", digest, signature)


def test_rsa_pss_salt_is_the_digest_length(pairs):
    """A PSS signature with the maximum salt (moto's choice) does not verify; AWS uses hLen."""
    spec, algorithm = "RSA_2048", "RSASSA_PSS_SHA_256"
    hash_ = hashes.SHA256()
    max_salt = private(pairs, spec).sign(MESSAGE, padding.PSS(padding.MGF1(hash_), padding.PSS.MAX_LENGTH), hash_)
    assert not asymmetric.verify(spec, material(pairs, spec), algorithm, "RAW", MESSAGE, max_salt)
    ours = asymmetric.sign(spec, material(pairs, spec), algorithm, "RAW", MESSAGE)
    public(pairs, spec).verify(ours, MESSAGE, padding.PSS(padding.MGF1(hash_), 32), hash_)
    with pytest.raises(InvalidSignature):
        public(pairs, spec).verify(ours, MESSAGE, padding.PSS(padding.MGF1(hash_), 33), hash_)


@pytest.mark.parametrize(("spec", "algorithm", "message_type", "message"), [
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "DIGEST",
     "Message type DIGEST is incompatible with algorithm ED25519_SHA_512."),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "EXTERNAL_MU",
     "Message type EXTERNAL_MU is incompatible with algorithm ED25519_SHA_512."),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "RAW",
     "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512."),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "EXTERNAL_MU",
     "Message type EXTERNAL_MU is incompatible with algorithm ED25519_PH_SHA_512."),
    ("ML_DSA_44", "ML_DSA_SHAKE_256", "DIGEST", "Message type DIGEST is incompatible with key spec ML_DSA_44."),
    ("ML_DSA_87", "ML_DSA_SHAKE_256", "DIGEST", "Message type DIGEST is incompatible with key spec ML_DSA_87."),
    ("RSA_2048", "RSASSA_PSS_SHA_256", "EXTERNAL_MU",
     "Message type EXTERNAL_MU is incompatible with key spec RSA_2048."),
    ("ECC_NIST_P256", "ECDSA_SHA_256", "EXTERNAL_MU",
     "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_P256."),
])
def test_message_type_not_allowed(pairs, spec, algorithm, message_type, message):
    for call in (lambda: asymmetric.sign(spec, material(pairs, spec), algorithm, message_type, b"\x07" * 64),
                 lambda: asymmetric.verify(spec, material(pairs, spec), algorithm, message_type, b"\x07" * 64,
                                           b"s")):
        raises("ValidationException", message, call)


@pytest.mark.parametrize("size", [0, 32, 63, 65, 128])
def test_external_mu_must_be_64_bytes(pairs, size):
    raises("ValidationException",
           "Message of type EXTERNAL_MU must be exactly 64 bytes for algorithm ML_DSA_SHAKE_256.",
           asymmetric.sign, "ML_DSA_65", material(pairs, "ML_DSA_65"), "ML_DSA_SHAKE_256", "EXTERNAL_MU",
           b"\x01" * size)


@pytest.mark.parametrize(("spec", "algorithm"), [
    ("ECC_NIST_P256", "ECDSA_SHA_384"), ("ECC_NIST_P521", "ECDSA_SHA_256"), ("ECC_SECG_P256K1", "ECDSA_SHA_512"),
    ("RSA_2048", "ECDSA_SHA_256"), ("ECC_NIST_EDWARDS25519", "ECDSA_SHA_512"), ("ML_DSA_44", "ED25519_SHA_512"),
])
def test_algorithm_of_another_spec_is_refused(pairs, spec, algorithm):
    raises("InvalidKeyUsageException", f"Algorithm {algorithm} is incompatible with key spec {spec}.",
           asymmetric.sign, spec, material(pairs, spec), algorithm, "RAW", MESSAGE)


# --- Ed25519 and Ed25519ph ----------------------------------------------------------------------

def ed25519_material(seed_hex):
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return key.private_bytes(DER, PKCS8, serialization.NoEncryption())


def test_ed25519_rfc8032_vector():
    """RFC 8032 §7.1 TEST 1 (pure Ed25519, empty message) through the facade."""
    key = ed25519_material("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    spec = "ECC_NIST_EDWARDS25519"
    assert asymmetric.public_key_der(spec, key)[-32:].hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert asymmetric.sign(spec, key, "ED25519_SHA_512", "RAW", b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595"
        "bbe24655141438e7a100b")


def test_ed25519ph_rfc8032_vector():
    """RFC 8032 §7.3 (Ed25519ph, message "abc"): the primitive behind ED25519_PH_SHA_512."""
    spec = "ECC_NIST_EDWARDS25519"
    key = ed25519_material("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    assert asymmetric.public_key_der(spec, key)[-32:].hex() == (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
    expected = ("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa1"
                "0b8c61e636062aaad11c2a26083406")
    assert rsa_ecc.ed25519ph_sign(rsa_ecc.load(KEY_SPECS[spec], key), b"abc").hex() == expected
    # ED25519_PH_SHA_512 with MessageType DIGEST is exactly that primitive over the 64-byte Message.
    digest = hashlib.sha512(b"abc").digest()
    assert asymmetric.sign(spec, key, "ED25519_PH_SHA_512", "DIGEST", digest) == (
        rsa_ecc.ed25519ph_sign(rsa_ecc.load(KEY_SPECS[spec], key), digest))


def test_ed25519ph_hashes_the_digest_again(pairs):
    """AWS: "the input is hashed twice: once by you and once by KMS". For D = SHA-512(M) the
    signature is Ed25519ph over the message D (PH = SHA-512(D)), not Ed25519ph over M."""
    spec = "ECC_NIST_EDWARDS25519"
    digest = hashlib.sha512(MESSAGE).digest()
    signature = asymmetric.sign(spec, material(pairs, spec), "ED25519_PH_SHA_512", "DIGEST", digest)
    raw_public = public(pairs, spec).public_bytes_raw()
    verifier = eddsa.new(eddsa.import_public_key(raw_public), "rfc8032")
    verifier.verify(PySHA512.new(digest), signature)
    with pytest.raises(ValueError):
        verifier.verify(PySHA512.new(MESSAGE), signature)  # the PH(M) = D reading
    with pytest.raises(InvalidSignature):
        public(pairs, spec).verify(signature, digest)  # nor pure Ed25519 over D


# --- RSA-OAEP -------------------------------------------------------------------------------------

RSA_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
OAEP = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
OAEP_LIMITS = {("RSA_2048", "RSAES_OAEP_SHA_1"): 214, ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
               ("RSA_3072", "RSAES_OAEP_SHA_1"): 342, ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
               ("RSA_4096", "RSAES_OAEP_SHA_1"): 470, ("RSA_4096", "RSAES_OAEP_SHA_256"): 446}


def oaep(algorithm):
    hash_ = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(hash_), algorithm=hash_, label=None)


@pytest.mark.parametrize("spec", RSA_SPECS)
@pytest.mark.parametrize("algorithm", OAEP)
def test_oaep_round_trips_both_ways(pairs, spec, algorithm):
    key = material(pairs, spec)
    local = public(pairs, spec).encrypt(b"secret payload", oaep(algorithm))
    assert asymmetric.decrypt(spec, key, algorithm, local) == b"secret payload"
    ours = asymmetric.encrypt(spec, key, algorithm, b"secret payload")
    assert len(ours) == KEY_SPECS[spec].details["bits"] // 8
    assert private(pairs, spec).decrypt(ours, oaep(algorithm)) == b"secret payload"


@pytest.mark.parametrize("spec", RSA_SPECS)
@pytest.mark.parametrize("algorithm", OAEP)
def test_oaep_size_limits_are_exact(pairs, spec, algorithm):
    key, limit = material(pairs, spec), OAEP_LIMITS[spec, algorithm]
    plaintext = os.urandom(limit)
    assert private(pairs, spec).decrypt(asymmetric.encrypt(spec, key, algorithm, plaintext), oaep(algorithm)) == plaintext
    raises("ValidationException",
           f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {limit} bytes.",
           asymmetric.encrypt, spec, key, algorithm, plaintext + b"x")


def test_oaep_message_for_rsa_2048_sha_256(pairs):
    raises("ValidationException",
           "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.",
           asymmetric.encrypt, "RSA_2048", material(pairs, "RSA_2048"), "RSAES_OAEP_SHA_256", b"\x00" * 191)


def test_failed_rsa_decryption_is_invalid_ciphertext(pairs):
    spec, key = "RSA_2048", material(pairs, "RSA_2048")
    good = asymmetric.encrypt(spec, key, "RSAES_OAEP_SHA_256", b"payload")
    tampered = bytearray(good)
    tampered[5] ^= 1
    other_key = public(pairs, "RSA_3072").encrypt(b"payload", oaep("RSAES_OAEP_SHA_256"))
    for bad, algorithm in [(bytes(tampered), "RSAES_OAEP_SHA_256"), (good, "RSAES_OAEP_SHA_1"),
                           (good[:-1], "RSAES_OAEP_SHA_256"), (b"", "RSAES_OAEP_SHA_256"),
                           (b"\x00" + good, "RSAES_OAEP_SHA_256"), (other_key, "RSAES_OAEP_SHA_256")]:
        raises("InvalidCiphertextException", None, asymmetric.decrypt, spec, key, algorithm, bad)


# --- ECDH ---------------------------------------------------------------------------------------

ECDH_SPECS = {"ECC_NIST_P256": (ec.SECP256R1(), 32), "ECC_NIST_P384": (ec.SECP384R1(), 48),
              "ECC_NIST_P521": (ec.SECP521R1(), 66)}


@pytest.mark.parametrize("spec", ECDH_SPECS)
def test_ecdh_secret_matches_the_peer(pairs, spec):
    curve, size = ECDH_SPECS[spec]
    peer = ec.generate_private_key(curve)
    secret = asymmetric.derive_shared_secret(spec, material(pairs, spec),
                                             peer.public_key().public_bytes(DER, SPKI))
    assert len(secret) == size
    assert secret == peer.exchange(ec.ECDH(), public(pairs, spec))


@pytest.mark.parametrize("spec", ECDH_SPECS)
def test_ecdh_refuses_bad_peer_keys(pairs, spec):
    curve, _ = ECDH_SPECS[spec]
    other_curve = ec.SECP384R1() if spec != "ECC_NIST_P384" else ec.SECP256R1()
    peer = ec.generate_private_key(curve)
    peer_spki = peer.public_key().public_bytes(DER, SPKI)
    off_curve = bytearray(peer_spki)
    off_curve[-1] ^= 0x01  # y no longer matches x
    not_spki = ""  # AWS answers a PublicKey that is no valid SPKI without a message
    wrong_curve = (f"PublicKey must be an elliptic curve public key on curve {curve.name}, "
                   f"the curve of key spec {spec}.")
    cases = [
        (b"", not_spki), (b"junk", not_spki), (peer_spki[:-1], not_spki), (peer_spki + b"\x00", not_spki),
        (bytes(off_curve), not_spki),
        (peer.private_bytes(DER, PKCS8, serialization.NoEncryption()), not_spki),
        (peer.public_key().public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint), not_spki),
        (ec.generate_private_key(other_curve).public_key().public_bytes(DER, SPKI), wrong_curve),
        (ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(DER, SPKI), wrong_curve),
        (public(pairs, "RSA_2048").public_bytes(DER, SPKI), wrong_curve),
        (ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(DER, SPKI), wrong_curve),
    ]
    for peer_der, message in cases:
        raises("ValidationException", message, asymmetric.derive_shared_secret, spec, material(pairs, spec), peer_der)


def test_secp256k1_has_no_key_agreement(pairs):
    peer = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(DER, SPKI)
    raises("InvalidKeyUsageException", "Algorithm ECDH is incompatible with key spec ECC_SECG_P256K1.",
           asymmetric.derive_shared_secret, "ECC_SECG_P256K1", material(pairs, "ECC_SECG_P256K1"), peer)


# --- ML-KEM -------------------------------------------------------------------------------------

KEM_SIZES = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}


@pytest.mark.parametrize("spec", ["ML_KEM_768", "ML_KEM_1024"])
def test_ml_kem_with_cryptography(pairs, spec):
    key, spki = pairs[spec]
    secret, ciphertext = public(pairs, spec).encapsulate()
    assert asymmetric.decapsulate(spec, key, ciphertext) == secret
    secret, ciphertext = asymmetric.encapsulate(spec, spki)
    assert (len(secret), len(ciphertext)) == (32, KEM_SIZES[spec])
    assert private(pairs, spec).decapsulate(ciphertext) == secret
    assert len(key) == 86  # PKCS#8 seed form, as AWS returns it


def test_ml_kem_768_seed_matches_the_oracle(pairs):
    """The PKCS#8 seed is d ‖ z of FIPS 203: kyber-py derives the same keys from it."""
    key, spki = pairs["ML_KEM_768"]
    ek, dk = ORACLE_768.key_derive(key[-64:])
    assert public(pairs, "ML_KEM_768").public_bytes_raw() == ek
    secret, ciphertext = asymmetric.encapsulate("ML_KEM_768", spki)
    assert ORACLE_768.decaps(dk, ciphertext) == secret


def ml_kem_512_oracle_keys(pairs):
    key, spki = pairs["ML_KEM_512"]
    algorithm, ek = spki_parts(spki)
    assert algorithm == "2.16.840.1.101.3.4.4.1"  # id-alg-ml-kem-512
    [(tag, body)] = der_items(key)
    (version_tag, version), (alg_tag, alg), (octets_tag, octets) = der_items(body)
    assert (tag, version_tag, version, alg_tag, octets_tag) == (0x30, 0x02, b"\x00", 0x30, 0x04)
    [(oid_tag, oid_bytes)] = der_items(alg)
    assert (oid_tag, oid(oid_bytes)) == (0x06, "2.16.840.1.101.3.4.4.1")
    [(choice_tag, dk)] = der_items(octets)
    assert choice_tag == 0x04  # expandedKey OCTET STRING (seed would be [0] = 0x80)
    assert (len(ek), len(dk)) == (800, 1632)
    return ek, dk


def test_ml_kem_512_encodings_are_standard(pairs):
    ek, dk = ml_kem_512_oracle_keys(pairs)
    assert dk[768:1568] == ek and hashlib.sha3_256(ek).digest() == dk[1568:1600]
    # Same layout as cryptography's ML-KEM-768 SPKI, one arc apart.
    assert spki_parts(pairs["ML_KEM_768"][1])[0] == "2.16.840.1.101.3.4.4.2"
    assert asymmetric.public_key_der("ML_KEM_512", pairs["ML_KEM_512"][0]) == pairs["ML_KEM_512"][1]


def test_ml_kem_512_interoperates_with_the_oracle(pairs):
    key, spki = pairs["ML_KEM_512"]
    ek, dk = ml_kem_512_oracle_keys(pairs)
    secret, ciphertext = ORACLE_512.encaps(ek)
    assert asymmetric.decapsulate("ML_KEM_512", key, ciphertext) == secret
    secret, ciphertext = asymmetric.encapsulate("ML_KEM_512", spki)
    assert (len(secret), len(ciphertext)) == (32, 768)
    assert ORACLE_512.decaps(dk, ciphertext) == secret
    # Implicit rejection: a wrong ciphertext gives the oracle's pseudo-random secret J(z ‖ c).
    wrong = bytearray(ciphertext)
    wrong[0] ^= 1
    rejected = asymmetric.decapsulate("ML_KEM_512", key, bytes(wrong))
    assert rejected == ORACLE_512.decaps(dk, bytes(wrong)) != secret


def test_ml_kem_512_key_made_by_the_oracle(pairs):
    """Material whose dk came from another FIPS 203 implementation loads and decapsulates."""
    key, _ = pairs["ML_KEM_512"]
    ek, dk = ORACLE_512.keygen()
    foreign = key[:-1632] + dk
    assert spki_parts(asymmetric.public_key_der("ML_KEM_512", foreign))[1] == ek
    secret, ciphertext = ORACLE_512.encaps(ek)
    assert asymmetric.decapsulate("ML_KEM_512", foreign, ciphertext) == secret
    broken = bytearray(foreign)
    broken[-40] ^= 1  # inside H(ek)
    with pytest.raises(ValueError):
        asymmetric.decapsulate("ML_KEM_512", bytes(broken), ciphertext)


@pytest.mark.parametrize("spec", KEM_SIZES)
def test_ml_kem_ciphertext_length_and_implicit_rejection(pairs, spec):
    key, spki = pairs[spec]
    secret, ciphertext = asymmetric.encapsulate(spec, spki)
    for bad in (b"", ciphertext[:-1], ciphertext + b"\x00", b"\x00" * 1088 if spec != "ML_KEM_768" else b"\x00" * 768):
        raises("InvalidCiphertextException", None, asymmetric.decapsulate, spec, key, bad)
    wrong = bytes(b ^ 0xFF for b in ciphertext)
    first = asymmetric.decapsulate(spec, key, wrong)
    assert len(first) == 32 and first != secret
    assert asymmetric.decapsulate(spec, key, wrong) == first  # deterministic, not an error


@pytest.mark.parametrize("spec", KEM_SIZES)
def test_ml_kem_encapsulate_refuses_bad_public_keys(pairs, spec):
    other = "ML_KEM_1024" if spec != "ML_KEM_1024" else "ML_KEM_768"
    message = f"PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo (SPKI) {spec} public key."
    for bad in (b"", b"junk", pairs[spec][1][:-1], pairs[other][1], pairs["ECC_NIST_P256"][1]):
        raises("ValidationException", message, asymmetric.encapsulate, spec, bad)


def test_ml_kem_512_refuses_an_encapsulation_key_out_of_range(pairs):
    spki = bytearray(pairs["ML_KEM_512"][1])
    spki[-800] = 0xFF  # first 12-bit coefficient becomes ≥ q = 3329
    spki[-799] |= 0x0F
    raises("ValidationException", "PublicKey is not a valid ML_KEM_512 encapsulation key.",
           asymmetric.encapsulate, "ML_KEM_512", bytes(spki))


# --- HMAC ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", HMACS)
def test_hmac_matches_the_standard_library(spec):
    bits = int(spec[-3:])
    key = asymmetric.generate_material(spec)
    assert len(key) == {224: 28, 256: 32, 384: 48, 512: 64}[bits]
    algorithm = f"HMAC_SHA_{bits}"
    for message in (b"m", MESSAGE, os.urandom(4096)):
        tag = asymmetric.mac(spec, key, algorithm, message)
        assert tag == hmac.new(key, message, getattr(hashlib, f"sha{bits}")).digest()
        assert asymmetric.verify_mac(spec, key, algorithm, message, tag)
        assert not asymmetric.verify_mac(spec, key, algorithm, message, tag[:-1] + bytes([tag[-1] ^ 1]))
        assert not asymmetric.verify_mac(spec, key, algorithm, message, tag[:-1])


def test_hmac_imported_key_lengths_and_wrong_algorithm():
    key = os.urandom(128)  # imported HMAC_512 keys may be up to 128 bytes
    assert asymmetric.mac("HMAC_512", key, "HMAC_SHA_512", b"m") == hmac.new(key, b"m", hashlib.sha512).digest()
    raises("InvalidKeyUsageException", "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_384.",
           asymmetric.mac, "HMAC_384", os.urandom(48), "HMAC_SHA_256", b"m")


# --- key pairs, material and specs --------------------------------------------------------------

MODEL_KEY_PAIR_SPECS = botocore.loaders.Loader().load_service_model("kms", "service-2")["shapes"][
    "DataKeyPairSpec"]["enum"]


@pytest.mark.parametrize("spec", [s for s in MODEL_KEY_PAIR_SPECS if s != "SM2"])
def test_generate_key_pair_private_matches_public(pairs, spec):
    private_der, public_der = pairs[spec]
    if spec == "ML_KEM_512":
        ek, dk = ml_kem_512_oracle_keys(pairs)
        secret, ciphertext = ORACLE_512.encaps(ek)
        assert ORACLE_512.decaps(dk, ciphertext) == secret
        return
    loaded = _load_private(private_der)
    assert loaded.public_key().public_bytes(DER, SPKI) == public_der
    assert loaded.private_bytes(DER, PKCS8, serialization.NoEncryption()) == private_der
    assert asymmetric.public_key_der(spec, private_der) == public_der
    if isinstance(loaded, rsa.RSAPrivateKey):
        assert loaded.key_size == KEY_SPECS[spec].details["bits"]
        assert loaded.public_key().public_numbers().e == 65537
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        assert loaded.curve.name == KEY_SPECS[spec].details["curve"]
    elif isinstance(loaded, ed25519.Ed25519PrivateKey):
        assert (len(private_der), len(public_der)) == (48, 44)
    else:
        assert isinstance(loaded, (mlkem.MLKEM768PrivateKey, mlkem.MLKEM1024PrivateKey))


@pytest.mark.parametrize("spec", ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"])
def test_ml_dsa_material_is_seed_pkcs8(pairs, spec):
    key = serialization.load_der_private_key(pairs[spec][0], password=None)
    assert isinstance(key, (mldsa.MLDSA44PrivateKey, mldsa.MLDSA65PrivateKey, mldsa.MLDSA87PrivateKey))
    assert len(pairs[spec][0]) == 54
    assert len(pairs[spec][1]) == {"ML_DSA_44": 1334, "ML_DSA_65": 1974, "ML_DSA_87": 2614}[spec]


def test_material_generated_elsewhere_works():
    """Imported material: keys made by `cryptography` directly sign and verify here."""
    for spec, key in [("ECC_NIST_P384", ec.generate_private_key(ec.SECP384R1())),
                      ("ECC_NIST_EDWARDS25519", ed25519.Ed25519PrivateKey.generate()),
                      ("ML_DSA_65", mldsa.MLDSA65PrivateKey.generate())]:
        der = key.private_bytes(DER, PKCS8, serialization.NoEncryption())
        algorithm = KEY_SPECS[spec].algorithms["SIGN_VERIFY"][0]
        signature = asymmetric.sign(spec, der, algorithm, "RAW", MESSAGE)
        assert asymmetric.verify(spec, der, algorithm, "RAW", MESSAGE, signature)
        assert asymmetric.public_key_der(spec, der) == key.public_key().public_bytes(DER, SPKI)


def test_material_of_another_spec_is_refused(pairs):
    for spec, other in [("RSA_2048", "RSA_3072"), ("ECC_NIST_P256", "ECC_SECG_P256K1"),
                        ("ECC_NIST_P256", "ECC_NIST_EDWARDS25519"), ("ML_DSA_44", "ML_DSA_65"),
                        ("ML_KEM_768", "ML_KEM_1024"), ("ML_KEM_512", "ML_KEM_768"), ("ML_KEM_768", "ML_KEM_512")]:
        with pytest.raises(ValueError):
            asymmetric.public_key_der(spec, pairs[other][0])
    with pytest.raises(ValueError):
        asymmetric.public_key_der("RSA_2048", b"not der")


def test_generated_keys_are_cached_parsed_and_the_cache_is_bounded(pairs):
    material_, _ = asymmetric.generate_key_pair("ECC_NIST_P256")
    assert asymmetric._private_keys.get(("ECC_NIST_P256", material_)) is not None
    lru = asymmetric._LRU(2)
    for name in "abc":
        lru.put(name, name.upper())
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (None, "B", "C")
    lru.get("b")
    lru.put("d", "D")
    assert (lru.get("b"), lru.get("c")) == ("B", None)


def test_unsupported_and_keyless_specs():
    assert KEY_SPECS["ML_KEM_512"].supported and not KEY_SPECS["SM2"].supported
    raises("UnsupportedOperationException", "Key spec SM2 is not supported.", asymmetric.generate_key_pair, "SM2")
    raises("UnsupportedOperationException", "Key spec HMAC_256 has no key pair.",
           asymmetric.public_key_der, "HMAC_256", os.urandom(32))
    with pytest.raises(ValueError):
        asymmetric.generate_material("NOT_A_SPEC")


def test_the_specs_signed_on_the_event_loop_are_real_signing_specs():
    from trentd.crypto import specs

    for name in specs.INLINE_SIGN | specs.INLINE_VERIFY:
        assert specs.SIGN_VERIFY in specs.KEY_SPECS[name].usages, name
    assert specs.INLINE_SIGN <= specs.INLINE_VERIFY
    assert not {"RSA_3072", "RSA_4096", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"} & specs.INLINE_SIGN
