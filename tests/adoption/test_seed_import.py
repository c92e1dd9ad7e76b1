"""``trentd seed import FILE``: a local-kms seed file imports as it is, into a running server's
data dir: fixed key ids, aliases, the supplied key material (several backing keys = rotated key)."""

from __future__ import annotations

import hmac
import json
import subprocess
import sys
import uuid

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from trentd.crypto import envelope
from trentd.admin.seed import SeedError, parse
from trentd.testing.server import TrentdServer

ACCOUNT, REGION = "111122223333", "eu-west-2"  # local-kms's defaults
AES_ID, HMAC_ID, RSA_ID, ECC_ID, K1_ID = (str(uuid.uuid4()) for _ in range(5))
OLD_AES, NEW_AES = "11" * 32, "5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9"
HMAC_KEY = "ab" * 32
SECP256K1_HEX = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _indent(pem: bytes, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in pem.decode().strip().splitlines())


@pytest.fixture(scope="module")
def private_keys():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory, private_keys):
    rsa_key, ecc_key = private_keys
    rsa_pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    ecc_pem = ecc_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())  # "EC PRIVATE KEY", as local-kms's README has it
    path = tmp_path_factory.mktemp("seed") / "seed.yaml"
    path.write_text(f"""\
Keys:
  Symmetric:
    Aes:
      - Metadata:
          KeyId: {AES_ID}
          Description: "Your key description"
        NextKeyRotation: "2099-09-12T15:19:21+00:00"
        BackingKeys:
          - {OLD_AES}
          - {NEW_AES.upper()}
    Hmac:
      - Metadata:
          KeyId: {HMAC_ID}
          KeySpec: HMAC_256
        BackingKeys:
          - {HMAC_KEY}
  Asymmetric:
    Rsa:
      - Metadata:
          KeyId: {RSA_ID}
          KeyUsage: SIGN_VERIFY
          Description: RSA key with 2048 bits
        PrivateKeyPem: |
{_indent(rsa_pem, 10)}
    Ecc:
      - Metadata:
          KeyId: {ECC_ID}
          KeyUsage: SIGN_VERIFY
        PrivateKeyPem: |
{_indent(ecc_pem, 10)}
      - Metadata:
          KeyId: {K1_ID}
          KeyUsage: SIGN_VERIFY
        PrivateKeyHex: {SECP256K1_HEX}

Aliases:
  - AliasName: alias/testing
    TargetKeyId: {AES_ID}
  - AliasName: alias/signing
    TargetKeyId: arn:aws:kms:{REGION}:{ACCOUNT}:key/{RSA_ID}
""")
    return path


@pytest.fixture(scope="module")
def server():
    with TrentdServer(dev=True) as srv:  # --dev: a 12-digit access key id selects the account
        yield srv


@pytest.fixture(scope="module")
def imported(server, seed_file):
    return _import(server, seed_file)


@pytest.fixture(scope="module")
def kms(server, imported):
    return server.client(access_key=ACCOUNT, secret_key="any", region=REGION)


def _import(server, path, *extra):
    result = subprocess.run([sys.executable, "-m", "trentd", "seed", "import", str(path), "--data-dir",
                             str(server.data_dir), *extra], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_report_names_every_key_and_alias(imported):
    # Account and Region come from the key ARN in the file (no flags given).
    assert (imported["Account"], imported["Region"]) == (ACCOUNT, REGION)
    assert sorted(k["KeyArn"].rsplit("/", 1)[1] for k in imported["ImportedKeys"]) == sorted(
        [AES_ID, HMAC_ID, RSA_ID, ECC_ID, K1_ID])
    assert {k["KeyArn"].rsplit("/", 1)[1]: k["KeySpec"] for k in imported["ImportedKeys"]} == {
        AES_ID: "SYMMETRIC_DEFAULT", HMAC_ID: "HMAC_256", RSA_ID: "RSA_2048", ECC_ID: "ECC_NIST_P256",
        K1_ID: "ECC_SECG_P256K1"}
    assert len(imported["ImportedAliases"]) == 2 and not imported["SkippedKeys"]
    assert not imported["Warnings"]


def test_symmetric_key_keeps_its_id_alias_and_material(kms):
    meta = kms.describe_key(KeyId="alias/testing")["KeyMetadata"]
    assert meta["KeyId"] == AES_ID and meta["Description"] == "Your key description"
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{AES_ID}"
    blob = kms.encrypt(KeyId="alias/testing", Plaintext=b"seeded", EncryptionContext={"a": "b"})["CiphertextBlob"]
    # The last backing key is the current material: the blob opens with it, outside trentd.
    assert envelope.decrypt(blob, bytes.fromhex(NEW_AES), {"a": "b"}) == b"seeded"
    assert envelope.read_header(blob).material_id.hex() == meta["CurrentKeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"seeded"
    # Two backing keys: a key rotated once. NextKeyRotation turned automatic rotation on.
    rotations = kms.list_key_rotations(KeyId=AES_ID)["Rotations"]
    assert [r["KeyMaterialId"] for r in rotations] == [meta["CurrentKeyMaterialId"]]
    status = kms.get_key_rotation_status(KeyId=AES_ID)
    assert status["KeyRotationEnabled"] and status["NextRotationDate"].year == 2099


def test_asymmetric_and_hmac_material_carries_over(kms, private_keys):
    rsa_key, ecc_key = private_keys
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert kms.get_public_key(KeyId="alias/signing")["PublicKey"] == rsa_key.public_key().public_bytes(*spki)
    assert kms.get_public_key(KeyId=ECC_ID)["PublicKey"] == ecc_key.public_key().public_bytes(*spki)
    k1 = ec.derive_private_key(int(SECP256K1_HEX, 16), ec.SECP256K1())
    assert kms.get_public_key(KeyId=K1_ID)["PublicKey"] == k1.public_key().public_bytes(*spki)

    # Signatures made with the seeded keys elsewhere (as local-kms made them) verify in trentd.
    signature = rsa_key.sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert kms.verify(KeyId=RSA_ID, Message=b"message", Signature=signature,
                      SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["SignatureValid"]
    signature = ecc_key.sign(b"message", ec.ECDSA(hashes.SHA256()))
    assert kms.verify(KeyId=ECC_ID, Message=b"message", Signature=signature,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    tag = hmac.new(bytes.fromhex(HMAC_KEY), b"message", "sha256").digest()
    assert kms.verify_mac(KeyId=HMAC_ID, Message=b"message", Mac=tag, MacAlgorithm="HMAC_SHA_256")["MacValid"]


def test_import_is_idempotent(server, seed_file, kms):
    again = _import(server, seed_file)
    assert not again["ImportedKeys"] and not again["ImportedAliases"]
    assert len(again["SkippedKeys"]) == 5 and len(again["SkippedAliases"]) == 2
    assert kms.describe_key(KeyId="alias/testing")["KeyMetadata"]["KeyId"] == AES_ID


def test_flags_choose_account_and_region(server, tmp_path):
    key_id = str(uuid.uuid4())
    path = tmp_path / "seed.yaml"
    path.write_text(f"Keys:\n  - Metadata:\n      KeyId: {key_id}\n    BackingKeys:\n      - {'22' * 32}\n"
                    f"Aliases:\n  - AliasName: alias/legacy\n    TargetKeyId: {key_id}\n")
    report = _import(server, path, "--account", "444455556666", "--region", "us-west-2")
    assert report["Layout"] == "local-kms legacy"
    kms = server.client(access_key="444455556666", secret_key="any", region="us-west-2")
    assert kms.describe_key(KeyId="alias/legacy")["KeyMetadata"]["KeyId"] == key_id
    with pytest.raises(ClientError):
        server.client(access_key="444455556666", secret_key="any", region="us-east-1").describe_key(KeyId=key_id)


def test_version_2_layout():
    key_id = str(uuid.uuid4())
    seed = parse(f"Version: 2\nKeys:\n  - KeyId: {key_id}\n    Metadata:\n      KeySpec: SYMMETRIC_DEFAULT\n"
                 f"    Material:\n      BackingKeys: ['{'33' * 32}']\nAliases:\n  - AliasName: v2\n"
                 f"    TargetKeyId: {key_id}\n")
    assert seed.layout == "local-kms v2"
    assert seed.keys[0].materials == [bytes.fromhex("33" * 32)] and seed.aliases[0].name == "alias/v2"


def test_a_bad_file_lists_every_problem_and_writes_nothing(server, tmp_path):
    with pytest.raises(SeedError) as excinfo:
        parse("Keys:\n  Symmetric:\n    Aes:\n      - Metadata:\n          KeyId: not-a-uuid\n"
              "        BackingKeys: ['abcd']\nAliases:\n  - AliasName: alias/aws/reserved\n    TargetKeyId: x\n")
    problems = "\n".join(excinfo.value.problems)
    assert "KeyId must be a key id" in problems and "must be 32 bytes" in problems and "alias/aws/reserved" in problems

    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    path = tmp_path / "seed.yaml"
    path.write_text(f"Keys:\n  - Metadata: {{KeyId: {good}}}\n    BackingKeys: ['{'44' * 32}']\n"
                    f"Aliases:\n  - AliasName: alias/dangling\n    TargetKeyId: {bad}\n")
    result = subprocess.run([sys.executable, "-m", "trentd", "seed", "import", str(path), "--data-dir",
                             str(server.data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "alias/dangling" in result.stderr

    # Every problem at once: those of the file, and an alias whose key is nowhere.
    path.write_text(f"Keys:\n  - Metadata: {{KeyId: 0xdeadbeef}}\n    BackingKeys: ['{'44' * 32}']\n"
                    f"Aliases:\n  - AliasName: alias/dangling\n    TargetKeyId: {bad}\n")
    result = subprocess.run([sys.executable, "-m", "trentd", "seed", "import", str(path), "--data-dir",
                             str(server.data_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Keys[0] (0xdeadbeef): KeyId must be a key id" in result.stderr  # read as written, not as 3735928559
    assert f"alias alias/dangling: target key {bad} is neither in the file nor in account" in result.stderr
    with pytest.raises(ClientError):  # the transaction was rolled back: the good key is not there either
        server.client().describe_key(KeyId=good)
