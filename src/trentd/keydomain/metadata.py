"""KeyMetadata: what CreateKey, DescribeKey and ReplicateKey answer about a key."""

from __future__ import annotations

from ..crypto import specs
from ..store.records import KeyRecord
from . import external, multiregion


def key_metadata(key: KeyRecord) -> dict:
    """KeyMetadata as AWS shapes it: only the algorithm list of the key's usage, material id
    only for symmetric keys, deletion date only while pending deletion."""
    spec = specs.KEY_SPECS[key.key_spec]
    meta = {
        "AWSAccountId": key.account,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.created,
        "Enabled": key.enabled,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.key_state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "CustomerMasterKeySpec": key.key_spec,
        "KeySpec": key.key_spec,
        "MultiRegion": key.multi_region,
        specs.ALGORITHM_FIELD[key.key_usage]: list(spec.algorithms[key.key_usage]),
    }
    if key.deletion_date is not None:
        meta["DeletionDate"] = key.deletion_date
    if spec.symmetric and key.current_material and key.origin != external.ORIGIN:
        meta["CurrentKeyMaterialId"] = key.current_material
    meta.update(multiregion.metadata_fields(key))
    meta.update(external.metadata_fields(key))
    return meta
