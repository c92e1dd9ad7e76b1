"""HMAC keys: GenerateMac and VerifyMac. VerifyMac never answers "false": a MAC that does not
match is KMSInvalidMacException with no message, as AWS does."""

from __future__ import annotations

from ..crypto import asymmetric, specs
from ..errors import AWSError
from .paging import dry_run
from .service import operation


def _mac_key(svc, caller, req, operation_name: str):
    with svc.hot_reads() as tx:
        key = svc.key_for_use(tx, caller, req["KeyId"], specs.GENERATE_VERIFY_MAC, operation_name,
                              req["MacAlgorithm"])
        return key, svc.current_material(tx, key)


@operation("GenerateMac")
def generate_mac(svc, caller, req):
    key, material = _mac_key(svc, caller, req, "GenerateMac")
    mac = asymmetric.mac(key.key_spec, material, req["MacAlgorithm"], req["Message"])
    dry_run(req)
    return {"Mac": mac, "MacAlgorithm": req["MacAlgorithm"], "KeyId": key.arn}


@operation("VerifyMac")
def verify_mac(svc, caller, req):
    key, material = _mac_key(svc, caller, req, "VerifyMac")
    if not asymmetric.verify_mac(key.key_spec, material, req["MacAlgorithm"], req["Message"], req["Mac"]):
        raise AWSError("KMSInvalidMacException")
    dry_run(req)  # a DryRun answers what the call would: a wrong MAC is still the real error
    return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": req["MacAlgorithm"]}
