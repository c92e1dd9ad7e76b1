"""The operations the benchmark drives, the keys they need, and the pools of signed requests.

Each operation is data: which key it uses and how to make the parameters of one request. A pool
holds several distinct requests (different plaintexts, messages and ciphertexts) so no layer can
get away with answering the same bytes from a cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from .signing import signed_request
from .target import Target

# CreateKey parameters of each key the operations use.
KEY_KINDS = {
    "symmetric": {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"},
    "ecc-p256": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
    "rsa-2048": {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
    "hmac-256": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
}

# Stand-ins when an endpoint answers CreateKey/Encrypt without real content (the echo app): the
# requests then have the same shape and size as against a real KMS.
PLACEHOLDER_KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
PLACEHOLDER_CIPHERTEXT = b"\x01" * 150

DECRYPT_CIPHERTEXTS = 16


@dataclass
class Fixtures:
    """What setup made on one endpoint: a key id per kind and ciphertexts for Decrypt."""
    key_ids: dict[str, str]
    ciphertexts: list[bytes]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    name: str  # as given to --ops
    api: str  # the KMS operation
    key_kind: str
    params: Callable[[Fixtures, int], dict]  # (fixtures, index in the pool) -> request parameters
    symmetric: bool  # counted in the "p99 at 16 conns < 10 ms for symmetric ops" target


def _encrypt(size: int):
    return lambda fx, i: {"KeyId": fx.key_ids["symmetric"], "Plaintext": os.urandom(size)}


OPERATIONS = {op.name: op for op in [
    Operation("encrypt-64", "Encrypt", "symmetric", _encrypt(64), True),
    Operation("encrypt-4k", "Encrypt", "symmetric", _encrypt(4096), True),
    Operation("decrypt", "Decrypt", "symmetric",
              lambda fx, i: {"KeyId": fx.key_ids["symmetric"], "CiphertextBlob": fx.ciphertexts[i % len(fx.ciphertexts)]},
              True),
    Operation("generate-data-key", "GenerateDataKey", "symmetric",
              lambda fx, i: {"KeyId": fx.key_ids["symmetric"], "KeySpec": "AES_256"}, True),
    Operation("sign-ecdsa", "Sign", "ecc-p256",
              lambda fx, i: {"KeyId": fx.key_ids["ecc-p256"], "Message": os.urandom(64), "MessageType": "RAW",
                             "SigningAlgorithm": "ECDSA_SHA_256"}, False),
    Operation("sign-rsa", "Sign", "rsa-2048",
              lambda fx, i: {"KeyId": fx.key_ids["rsa-2048"], "Message": os.urandom(64), "MessageType": "RAW",
                             "SigningAlgorithm": "RSASSA_PSS_SHA_256"}, False),
    Operation("generate-mac", "GenerateMac", "hmac-256",
              lambda fx, i: {"KeyId": fx.key_ids["hmac-256"], "Message": os.urandom(64),
                             "MacAlgorithm": "HMAC_SHA_256"}, False),
    Operation("describe-key", "DescribeKey", "symmetric", lambda fx, i: {"KeyId": fx.key_ids["symmetric"]}, False),
]}


def parse_ops(text: str) -> list[Operation]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(OPERATIONS.values())
    unknown = [name for name in names if name not in OPERATIONS]
    if unknown:
        raise SystemExit(f"bench: unknown operation(s) {', '.join(unknown)}; known: {', '.join(OPERATIONS)}")
    return [OPERATIONS[name] for name in names]


def make_fixtures(target: Target, operations: list[Operation]) -> Fixtures:
    """Create one key of each kind the operations need (through the API, with boto3), and
    ciphertexts for Decrypt."""
    kms = target.client()
    fixtures = Fixtures(key_ids={}, ciphertexts=[])
    for kind in sorted({op.key_kind for op in operations}):
        answer = kms.create_key(Description=f"trentd bench: {kind}", **KEY_KINDS[kind])
        key_id = answer.get("KeyMetadata", {}).get("KeyId")
        if not key_id:
            fixtures.notes.append(f"CreateKey ({kind}) returned no key: using a placeholder id")
            key_id = PLACEHOLDER_KEY_ID
        fixtures.key_ids[kind] = key_id
    if any(op.api == "Decrypt" for op in operations):
        fixtures.ciphertexts = [_ciphertext(kms, fixtures) for _ in range(DECRYPT_CIPHERTEXTS)]
    return fixtures


def _ciphertext(kms, fixtures: Fixtures) -> bytes:
    blob = kms.encrypt(KeyId=fixtures.key_ids["symmetric"], Plaintext=os.urandom(64)).get("CiphertextBlob")
    if blob:
        return blob
    if not any("ciphertext" in note for note in fixtures.notes):
        fixtures.notes.append("Encrypt returned no ciphertext: Decrypt sends placeholder ciphertexts")
    return PLACEHOLDER_CIPHERTEXT


def signed_pool(target: Target, operation: Operation, fixtures: Fixtures, size: int) -> list[bytes]:
    """``size`` freshly signed, distinct requests of one operation."""
    return [signed_request(target, operation.api, operation.params(fixtures, i)) for i in range(size)]
