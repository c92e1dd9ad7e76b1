"""Asymmetric signatures: Sign, Verify, GetPublicKey.

Verify never answers "false": a signature that does not verify is KMSInvalidSignatureException
with no message, as AWS does.
"""

from __future__ import annotations

from ..crypto import asymmetric, specs
from ..errors import AWSError
from ..inline import offload_point
from .paging import dry_run
from .service import operation


def _offload_unless_cheap(key, cheap_specs: frozenset) -> None:
    """Signing with a cheap spec happens on the event loop; a dear one is sent to the thread pool
    (crypto/specs.py INLINE_SIGN, trentd/inline.py)."""
    if key.key_spec not in cheap_specs:
        offload_point()


def _signing_key(svc, tx, caller, req, operation_name: str):
    key = svc.key_for_use(tx, caller, req["KeyId"], specs.SIGN_VERIFY, operation_name, req["SigningAlgorithm"])
    return key, svc.current_material(tx, key)


@operation("Sign")
def sign(svc, caller, req):
    with svc.hot_reads() as tx:
        key, material = _signing_key(svc, tx, caller, req, "Sign")
    _offload_unless_cheap(key, specs.INLINE_SIGN)
    signature = asymmetric.sign(key.key_spec, material, req["SigningAlgorithm"], req.get("MessageType", "RAW"),
                                req["Message"])
    dry_run(req)  # after the message checks (type, digest length) that signing makes; nothing is kept
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": req["SigningAlgorithm"]}


@operation("Verify")
def verify(svc, caller, req):
    with svc.hot_reads() as tx:
        key, material = _signing_key(svc, tx, caller, req, "Verify")
    _offload_unless_cheap(key, specs.INLINE_VERIFY)
    valid = asymmetric.verify(key.key_spec, material, req["SigningAlgorithm"], req.get("MessageType", "RAW"),
                              req["Message"], req["Signature"])
    if not valid:
        raise AWSError("KMSInvalidSignatureException")
    dry_run(req)  # a DryRun answers what the call would: a bad signature is still the real error
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": req["SigningAlgorithm"]}


@operation("GetPublicKey")
def get_public_key(svc, caller, req):
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"], aliases=True)
        spec = specs.KEY_SPECS[key.key_spec]
        if spec.family in ("symmetric", "hmac"):
            raise AWSError("UnsupportedOperationException",
                           f"{key.arn} key spec {key.key_spec} does not have a public key.")
        material = svc.current_material(tx, key)
    return {
        "KeyId": key.arn,
        "PublicKey": asymmetric.public_key_der(key.key_spec, material),
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
        specs.ALGORITHM_FIELD[key.key_usage]: list(spec.algorithms[key.key_usage]),
    }
