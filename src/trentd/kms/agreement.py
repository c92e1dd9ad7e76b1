"""Shared secrets: DeriveSharedSecret (ECDH with KEY_AGREEMENT keys) and Encapsulate /
Decapsulate (ML-KEM keys)."""

from __future__ import annotations

from ..crypto import asymmetric, specs
from ..keydomain.cipher import reject_recipient
from .paging import dry_run
from .service import operation


def _key_and_material(svc, caller, req, usage: str, operation_name: str, algorithm: str):
    with svc.store.read() as tx:
        key = svc.key_for_use(tx, caller, req["KeyId"], usage, operation_name, algorithm)
        return key, svc.current_material(tx, key)


@operation("DeriveSharedSecret")
def derive_shared_secret(svc, caller, req):
    reject_recipient(req)
    algorithm = req["KeyAgreementAlgorithm"]
    key, material = _key_and_material(svc, caller, req, specs.KEY_AGREEMENT, "DeriveSharedSecret", algorithm)
    secret = asymmetric.derive_shared_secret(key.key_spec, material, req["PublicKey"])
    dry_run(req)  # after the peer public key was checked; the secret is discarded
    return {"KeyId": key.arn, "SharedSecret": secret, "KeyAgreementAlgorithm": algorithm, "KeyOrigin": key.origin}


@operation("Encapsulate")
def encapsulate(svc, caller, req):
    algorithm = req["EncapsulationAlgorithm"]
    key, material = _key_and_material(svc, caller, req, specs.ENCAPSULATE_DECAPSULATE, "Encapsulate", algorithm)
    secret, ciphertext = asymmetric.encapsulate(key.key_spec, asymmetric.public_key_der(key.key_spec, material))
    dry_run(req)
    return {"KeyId": key.arn, "SharedSecret": secret, "SharedSecretCiphertextBlob": ciphertext,
            "EncapsulationAlgorithm": algorithm}


@operation("Decapsulate")
def decapsulate(svc, caller, req):
    algorithm = req["EncapsulationAlgorithm"]
    key, material = _key_and_material(svc, caller, req, specs.ENCAPSULATE_DECAPSULATE, "Decapsulate", algorithm)
    secret = asymmetric.decapsulate(key.key_spec, material, req["SharedSecretCiphertextBlob"])
    dry_run(req)  # after the ciphertext length check
    return {"KeyId": key.arn, "SharedSecret": secret, "EncapsulationAlgorithm": algorithm}
