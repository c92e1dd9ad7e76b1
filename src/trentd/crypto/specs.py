"""The one table of key specs: which usages each spec allows and which algorithms each usage offers.

Handlers never branch on spec names; they look the spec up here. The algorithm lists are the
ones KeyMetadata and GetPublicKey report for the key's usage (kms-api.md §3.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
SIGN_VERIFY = "SIGN_VERIFY"
GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
KEY_AGREEMENT = "KEY_AGREEMENT"
ENCAPSULATE_DECAPSULATE = "ENCAPSULATE_DECAPSULATE"

# KeyMetadata member that lists the algorithms of each usage.
ALGORITHM_FIELD = {
    ENCRYPT_DECRYPT: "EncryptionAlgorithms",
    SIGN_VERIFY: "SigningAlgorithms",
    GENERATE_VERIFY_MAC: "MacAlgorithms",
    KEY_AGREEMENT: "KeyAgreementAlgorithms",
    ENCAPSULATE_DECAPSULATE: "EncapsulationAlgorithms",
}


@dataclass(frozen=True)
class KeySpec:
    name: str
    family: str  # symmetric | hmac | rsa | ecc | ed25519 | ml_dsa | ml_kem | sm2
    algorithms: dict[str, tuple[str, ...]]  # usage -> algorithms offered
    default_usage: str | None = None  # only SYMMETRIC_DEFAULT may omit KeyUsage
    supported: bool = True  # False: listed in the model, refused at CreateKey
    details: dict = field(default_factory=dict)

    @property
    def usages(self) -> tuple[str, ...]:
        return tuple(self.algorithms)

    @property
    def symmetric(self) -> bool:
        return self.family == "symmetric"


_RSA_ENC = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_RSA_SIGN = (
    "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
)


def _spec(name, family, algorithms, **kw) -> KeySpec:
    return KeySpec(name=name, family=family, algorithms=algorithms, **kw)


KEY_SPECS: dict[str, KeySpec] = {
    s.name: s
    for s in [
        _spec("SYMMETRIC_DEFAULT", "symmetric", {ENCRYPT_DECRYPT: ("SYMMETRIC_DEFAULT",)},
              default_usage=ENCRYPT_DECRYPT, details={"key_bytes": 32}),
        *(
            # import_bytes: the lengths ImportKeyMaterial accepts (at least the hash length).
            _spec(f"HMAC_{bits}", "hmac", {GENERATE_VERIFY_MAC: (f"HMAC_SHA_{bits}",)},
                  details={"hash": f"SHA{bits}", "key_bytes": bits // 8,
                           "import_bytes": (bits // 8, 64 if bits <= 256 else 128)})
            for bits in (224, 256, 384, 512)
        ),
        *(
            # OAEP's limit is k - 2*hLen - 2 bytes (k: modulus bytes); AWS quotes the same numbers.
            _spec(f"RSA_{bits}", "rsa", {ENCRYPT_DECRYPT: _RSA_ENC, SIGN_VERIFY: _RSA_SIGN},
                  details={"bits": bits, "max_plaintext": {"RSAES_OAEP_SHA_1": bits // 8 - 42,
                                                           "RSAES_OAEP_SHA_256": bits // 8 - 66}})
            for bits in (2048, 3072, 4096)
        ),
        _spec("ECC_NIST_P256", "ecc", {SIGN_VERIFY: ("ECDSA_SHA_256",), KEY_AGREEMENT: ("ECDH",)},
              details={"curve": "secp256r1"}),
        _spec("ECC_NIST_P384", "ecc", {SIGN_VERIFY: ("ECDSA_SHA_384",), KEY_AGREEMENT: ("ECDH",)},
              details={"curve": "secp384r1"}),
        _spec("ECC_NIST_P521", "ecc", {SIGN_VERIFY: ("ECDSA_SHA_512",), KEY_AGREEMENT: ("ECDH",)},
              details={"curve": "secp521r1"}),
        # secp256k1 is SIGN_VERIFY only: key agreement is for the NIST curves (traps.md).
        _spec("ECC_SECG_P256K1", "ecc", {SIGN_VERIFY: ("ECDSA_SHA_256",)}, details={"curve": "secp256k1"}),
        _spec("ECC_NIST_EDWARDS25519", "ed25519", {SIGN_VERIFY: ("ED25519_SHA_512", "ED25519_PH_SHA_512")}),
        *(
            _spec(f"ML_DSA_{level}", "ml_dsa", {SIGN_VERIFY: ("ML_DSA_SHAKE_256",)}, details={"level": level})
            for level in (44, 65, 87)
        ),
        *(
            _spec(f"ML_KEM_{level}", "ml_kem", {ENCAPSULATE_DECAPSULATE: ("ML_KEM",)},
                  details={"level": level, "ciphertext_bytes": ct_bytes, "shared_secret_bytes": 32})
            for level, ct_bytes in ((512, 768), (768, 1088), (1024, 1568))
        ),
        _spec("SM2", "sm2", {ENCRYPT_DECRYPT: ("SM2PKE",), SIGN_VERIFY: ("SM2DSA",), KEY_AGREEMENT: ("ECDH",)},
              supported=False),
    ]
}


# Signatures that cost at most ~0.3 ms of one core (cryptography on the benchmark machine:
# RSA-2048 0.24 ms, P-256 0.04, P-384 0.15, P-521 0.17, secp256k1 0.26, Ed25519 0.02) are made on
# the event loop, like symmetric crypto: with one worker per core, the hop to the thread pool
# and the GIL hand-offs around it cost more than they free (trentd/inline.py). Dearer ones
# (RSA-3072 0.6 ms, RSA-4096 1.3 ms, ML-DSA) go to the pool. Verifying is cheaper: every RSA size
# (≤ 0.06 ms) and the same curves (≤ 0.35 ms).
INLINE_SIGN = frozenset({"RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
                         "ECC_NIST_EDWARDS25519"})
INLINE_VERIFY = INLINE_SIGN | {"RSA_3072", "RSA_4096"}


def algorithms_for(spec_name: str, usage: str) -> tuple[str, ...]:
    return KEY_SPECS[spec_name].algorithms.get(usage, ())
