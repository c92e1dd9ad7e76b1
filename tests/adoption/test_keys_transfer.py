"""``trentd keys transfer-key | export | import``: move keys between instances with different root
keys. The bundle never holds key material in clear; ciphertext made on the first instance decrypts
on the second; the bundle opens only for its recipients and cannot be altered."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid

import pytest
from trentd.testing.server import TrentdServer

SEEDED_MATERIAL = "7f" * 16 + "a5" * 16


def trentd(*args: str, env: dict | None = None, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def new_instance(data_dir) -> str:
    """A new instance's data dir: served once, since admin commands never make a store."""
    with TrentdServer(dev=False, data_dir=data_dir):
        pass
    return str(data_dir)


@pytest.fixture(scope="module")
def source():
    with TrentdServer(dev=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def target():
    with TrentdServer(dev=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def exported(source, target, tmp_path_factory):
    """Keys on the source (one seeded with known material), exported for the target's transfer key
    and for a passphrase."""
    work = tmp_path_factory.mktemp("transfer")
    kms = source.client()
    key_id = kms.create_key(Description="moved", Tags=[{"TagKey": "team", "TagValue": "kms"}])["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/moved", TargetKeyId=key_id)
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    sign_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    seeded_id = str(uuid.uuid4())
    (work / "seed.yaml").write_text(
        f"Keys:\n  - Metadata: {{KeyId: {seeded_id}}}\n    BackingKeys: [{SEEDED_MATERIAL}]\n")
    trentd("seed", "import", str(work / "seed.yaml"), "--data-dir", str(source.data_dir))
    blobs = {
        key_id: kms.encrypt(KeyId="alias/moved", Plaintext=b"before the move", EncryptionContext={"k": "v"})[
            "CiphertextBlob"],
        seeded_id: kms.encrypt(KeyId=seeded_id, Plaintext=b"seeded")["CiphertextBlob"],
    }
    signature = kms.sign(KeyId=sign_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    # Rotated after the blob above was made: that blob needs the old material on the target.
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    kms.rotate_key_on_demand(KeyId=key_id)
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]

    transfer_key = json.loads(trentd("keys", "transfer-key", "--data-dir", str(target.data_dir), "--out",
                                     str(work / "target.pem")).stdout)
    assert transfer_key["Fingerprint"].startswith("SHA256:") and "PUBLIC KEY" in transfer_key["PublicKeyPem"]
    out = json.loads(trentd("keys", "export", "--data-dir", str(source.data_dir), "--out", str(work / "bundle.json"),
                            "--recipient", str(work / "target.pem"), "--passphrase-env", "BUNDLE_PASSPHRASE",
                            env={"BUNDLE_PASSPHRASE": "correct horse battery staple"}).stdout)
    assert out["Recipients"][0] == transfer_key["Fingerprint"]
    assert out["Keys"] == 3 and out["Aliases"] == 1
    return {"work": work, "bundle": work / "bundle.json", "key_id": key_id, "sign_id": sign_id, "seeded_id": seeded_id,
            "blobs": blobs, "signature": signature, "policy": policy, "digest": out["Digest"],
            "rotations": rotations}


def test_bundle_holds_no_material_in_clear(exported):
    text = exported["bundle"].read_text()
    raw = bytes.fromhex(SEEDED_MATERIAL)
    for form in (SEEDED_MATERIAL, SEEDED_MATERIAL.upper(), base64.b64encode(raw).decode(), raw.decode("latin-1")):
        assert form not in text
    bundle = json.loads(text)
    assert bundle["format"] == "trentd-key-bundle" and {r["type"] for r in bundle["recipients"]} == {"x25519", "scrypt"}
    assert "moved" not in bundle["payload"]["ciphertext"]
    assert os.stat(exported["bundle"]).st_mode & 0o077 == 0


def test_import_on_another_root_key_decrypts_old_ciphertext(exported, source, target):
    assert (source.data_dir / "root.key").read_bytes() != (target.data_dir / "root.key").read_bytes()
    out = json.loads(trentd("keys", "import", str(exported["bundle"]), "--data-dir", str(target.data_dir)).stdout)
    assert out["Digest"] == exported["digest"]
    assert len(out["ImportedKeys"]) == 3 and len(out["ImportedAliases"]) == 1

    kms = target.client()
    assert kms.decrypt(CiphertextBlob=exported["blobs"][exported["key_id"]],
                       EncryptionContext={"k": "v"})["Plaintext"] == b"before the move"
    assert kms.decrypt(CiphertextBlob=exported["blobs"][exported["seeded_id"]])["Plaintext"] == b"seeded"
    assert kms.verify(KeyId=exported["sign_id"], Message=b"m", Signature=exported["signature"],
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    meta = kms.describe_key(KeyId="alias/moved")["KeyMetadata"]
    assert meta["KeyId"] == exported["key_id"] and meta["Description"] == "moved"
    assert kms.list_resource_tags(KeyId=exported["key_id"])["Tags"] == [{"TagKey": "team", "TagValue": "kms"}]
    assert kms.get_key_policy(KeyId=exported["key_id"], PolicyName="default")["Policy"] == exported["policy"]
    assert kms.list_key_rotations(KeyId=exported["key_id"])["Rotations"] == exported["rotations"]
    status = kms.get_key_rotation_status(KeyId=exported["key_id"])
    assert status["KeyRotationEnabled"] and status["RotationPeriodInDays"] == 90

    again = json.loads(trentd("keys", "import", str(exported["bundle"]), "--data-dir", str(target.data_dir)).stdout)
    assert not again["ImportedKeys"] and len(again["SkippedKeys"]) == 3
    alias_arn = f"arn:aws:kms:{target.region}:{target.account}:alias/moved"
    assert (again["ImportedAliases"], again["SkippedAliases"]) == ([], [{"AliasArn": alias_arn,
                                                                        "Reason": "already exists"}])


def test_bundle_opens_only_for_its_recipients(exported, tmp_path):
    other = new_instance(tmp_path / "other")
    refused = trentd("keys", "import", str(exported["bundle"]), "--data-dir", str(other), ok=False)
    assert refused.returncode == 1 and "not for this instance" in refused.stderr
    wrong = trentd("keys", "import", str(exported["bundle"]), "--data-dir", str(other), "--passphrase-env", "P",
                   env={"P": "wrong"}, ok=False)
    assert wrong.returncode == 1 and "does not unwrap" in wrong.stderr
    # The passphrase recipient opens it anywhere: an offline backup.
    out = json.loads(trentd("keys", "import", str(exported["bundle"]), "--data-dir", str(other), "--passphrase-env",
                            "P", env={"P": "correct horse battery staple"}).stdout)
    assert len(out["ImportedKeys"]) == 3


def test_altered_bundle_is_refused(exported, tmp_path):
    bundle = json.loads(exported["bundle"].read_text())
    bundle["summary"]["keys"] = bundle["summary"]["keys"][:1]
    (tmp_path / "altered.json").write_text(json.dumps(bundle))
    other = new_instance(tmp_path / "other")
    result = trentd("keys", "import", str(tmp_path / "altered.json"), "--data-dir", str(other), "--passphrase-env",
                    "P", env={"P": "correct horse battery staple"}, ok=False)
    assert result.returncode == 1 and "modified" in result.stderr


def test_transfer_key_survives_root_key_rotation(tmp_path):
    """The transfer key's private half is wrapped under the root key: rotation rewraps it."""
    data = new_instance(tmp_path / "data")
    before = json.loads(trentd("keys", "transfer-key", "--data-dir", data).stdout)["Fingerprint"]
    trentd("root-key", "rotate", "--grace", "0", "--data-dir", data)
    after = json.loads(trentd("keys", "transfer-key", "--data-dir", data).stdout)["Fingerprint"]
    assert after == before
