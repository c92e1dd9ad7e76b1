"""Data keys: GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair(WithoutPlaintext).

A data key is random bytes (or a fresh key pair) returned with a copy encrypted under a
symmetric KMS key, for envelope encryption outside KMS.
"""

from __future__ import annotations

import secrets

from ..crypto import asymmetric, specs
from ..errors import AWSError, validation
from ..keydomain.cipher import SYMMETRIC, reject_recipient, seal, with_material_id
from ..keydomain.materials import is_symmetric
from ..keydomain.states import require_usage
from .paging import dry_run
from .service import operation

DATA_KEY_BYTES = {"AES_128": 16, "AES_256": 32}


def _data_key_length(req: dict) -> int:
    if ("KeySpec" in req) == ("NumberOfBytes" in req):
        raise validation("Please specify either number of bytes or key spec.")
    return DATA_KEY_BYTES[req["KeySpec"]] if "KeySpec" in req else req["NumberOfBytes"]


def _wrapping_key(svc, tx, caller, req, operation_name: str):
    """The KMS key that encrypts a data key must be a symmetric encryption key."""
    key = svc.resolve(tx, caller, req["KeyId"], aliases=True)
    # Usage first ("key usage is SIGN_VERIFY which is not valid for …", as Encrypt says), then spec.
    require_usage(key, specs.ENCRYPT_DECRYPT, operation_name)
    if not is_symmetric(key):
        raise AWSError("InvalidKeyUsageException",
                       f"{key.arn} key spec is {key.key_spec} which is not valid for {operation_name}.")
    dry_run(req)
    return key


def _generate_data_key(svc, caller, req, operation_name: str) -> dict:
    reject_recipient(req)
    length = _data_key_length(req)
    with svc.hot_reads() as tx:
        key = _wrapping_key(svc, tx, caller, req, operation_name)
        # Drawn from the kernel now, not from crypto/entropy.py's buffer: that buffer holds the
        # bytes of calls to come, fine for public salts and nonces but not for secret keys.
        plaintext = secrets.token_bytes(length)
        blob, material_id = seal(svc, tx, key, plaintext, req.get("EncryptionContext"), SYMMETRIC, caller=caller)
    return with_material_id({"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": key.arn}, material_id)


@operation("GenerateDataKey")
def generate_data_key(svc, caller, req):
    return _generate_data_key(svc, caller, req, "GenerateDataKey")


@operation("GenerateDataKeyWithoutPlaintext")
def generate_data_key_without_plaintext(svc, caller, req):
    out = _generate_data_key(svc, caller, req, "GenerateDataKeyWithoutPlaintext")
    del out["Plaintext"]
    return out


def _generate_data_key_pair(svc, caller, req, operation_name: str) -> dict:
    reject_recipient(req)
    pair_spec = req["KeyPairSpec"]
    if not specs.KEY_SPECS[pair_spec].supported:
        raise AWSError("UnsupportedOperationException", f"KeyPairSpec {pair_spec} is not supported by trentd.")
    with svc.hot_reads() as tx:
        key = _wrapping_key(svc, tx, caller, req, operation_name)
    # Key-pair generation (RSA-4096: ~0.4 s) happens outside any store transaction.
    private_der, public_der = asymmetric.generate_key_pair(pair_spec)
    with svc.hot_reads() as tx:
        blob, material_id = seal(svc, tx, key, private_der, req.get("EncryptionContext"), SYMMETRIC,
                                 caller=caller)
    out = {"PrivateKeyCiphertextBlob": blob, "PrivateKeyPlaintext": private_der, "PublicKey": public_der,
           "KeyId": key.arn, "KeyPairSpec": pair_spec}
    return with_material_id(out, material_id)


@operation("GenerateDataKeyPair")
def generate_data_key_pair(svc, caller, req):
    return _generate_data_key_pair(svc, caller, req, "GenerateDataKeyPair")


@operation("GenerateDataKeyPairWithoutPlaintext")
def generate_data_key_pair_without_plaintext(svc, caller, req):
    out = _generate_data_key_pair(svc, caller, req, "GenerateDataKeyPairWithoutPlaintext")
    del out["PrivateKeyPlaintext"]
    return out
