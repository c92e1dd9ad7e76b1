"""Imported key material (BYOK) over HTTP: CreateKey Origin=EXTERNAL, GetParametersForImport,
ImportKeyMaterial, DeleteImportedKeyMaterial, expiry of material and of import tokens (moved
clock), and several materials in one symmetric key (NEW_KEY_MATERIAL + RotateKeyOnDemand).

The material is made and wrapped here with `cryptography`, as a customer would, so every answer
is checked against it locally: our ciphertext opens with the imported AES key, MACs and
signatures verify with the imported HMAC key and private key (kms-api.md §3.10)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


from ..helpers import fails, server_now
from .byok import ALGORITHMS, DAY, import_material, open_ciphertext, wrap

HEX64 = re.compile(r"[0-9a-f]{64}")
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"


def meta(kms, key_id: str) -> dict:
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]


def external_key(kms, **kwargs) -> dict:
    return kms.create_key(Origin="EXTERNAL", **kwargs)["KeyMetadata"]


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)




# --- CreateKey and GetParametersForImport ---------------------------------------------------
def test_external_key_starts_pending_import(kms, account):
    created = external_key(kms, Description="byok")
    assert (created["KeyState"], created["Enabled"], created["Origin"]) == ("PendingImport", False, "EXTERNAL")
    assert "CurrentKeyMaterialId" not in created and "ExpirationModel" not in created
    assert meta(kms, created["KeyId"]) == created
    arn = created["Arn"]
    pending = ("KMSInvalidStateException", f"{arn} is pending import.")
    assert fails(kms.encrypt, KeyId=arn, Plaintext=b"x") == pending
    assert fails(kms.generate_data_key, KeyId=arn, KeySpec="AES_256") == pending
    assert fails(kms.enable_key, KeyId=arn) == pending
    assert fails(kms.disable_key, KeyId=arn) == pending
    assert kms.list_key_rotations(KeyId=arn, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"] == []
    hmac_key = external_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    assert (hmac_key["KeyState"], hmac_key["MacAlgorithms"]) == ("PendingImport", ["HMAC_SHA_256"])
    assert fails(kms.generate_mac, KeyId=hmac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256") == (
        "KMSInvalidStateException", f"{hmac_key['Arn']} is pending import.")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_get_parameters_for_import(kms, trentd_server, algorithm):
    key = external_key(kms)
    before = server_now(trentd_server)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048")
    assert params["KeyId"] == key["Arn"]
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert abs(params["ParametersValidTo"].timestamp() - (before + DAY)) < 10
    assert 1 <= len(params["ImportToken"]) <= 6144


@pytest.mark.parametrize("spec, bits", [("RSA_3072", 3072), ("RSA_4096", 4096)])
def test_wrapping_key_specs(kms, spec, bits):
    key = external_key(kms)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                           WrappingKeySpec=spec)
    assert serialization.load_der_public_key(params["PublicKey"]).key_size == bits
    material = os.urandom(32)
    out = import_material(kms, key["KeyId"], material, "RSA_AES_KEY_WRAP_SHA_256", params=params)
    assert out["KeyMaterialId"] == meta(kms, key["KeyId"])["CurrentKeyMaterialId"]


def test_get_parameters_for_import_refusals(kms):
    key = external_key(kms)
    for algorithm, spec in [("RSAES_PKCS1_V1_5", "RSA_2048"), ("SM2PKE", "RSA_2048"), ("RSAES_OAEP_SHA_256", "SM2")]:
        code, message = fails(kms.get_parameters_for_import, KeyId=key["KeyId"], WrappingAlgorithm=algorithm,
                              WrappingKeySpec=spec)
        assert code == "UnsupportedOperationException" and (algorithm in message or spec in message)
    generated = kms.create_key()["KeyMetadata"]
    assert fails(kms.get_parameters_for_import, KeyId=generated["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                 WrappingKeySpec="RSA_2048") == (
        "UnsupportedOperationException", f"{generated['Arn']} origin is AWS_KMS which is not valid for this operation.")
    kms.create_alias(AliasName="alias/byok", TargetKeyId=key["KeyId"])
    assert fails(kms.get_parameters_for_import, KeyId="alias/byok", WrappingAlgorithm="RSAES_OAEP_SHA_256",
                 WrappingKeySpec="RSA_2048") == (
        "InvalidArnException", "Key Aliases are not supported for this operation.")
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert fails(kms.get_parameters_for_import, KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                 WrappingKeySpec="RSA_2048") == ("KMSInvalidStateException", f"{key['Arn']} is pending deletion.")
    # Cancelling the deletion of a key that has no material leaves it waiting for its import.
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert meta(kms, key["KeyId"])["KeyState"] == "PendingImport"


# --- import round trips ---------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_symmetric_import_round_trip(kms, account, algorithm):
    key = external_key(kms)
    material = os.urandom(32)
    out = import_material(kms, key["KeyId"], material, algorithm)
    assert out["KeyId"] == key["Arn"] and HEX64.fullmatch(out["KeyMaterialId"])
    described = meta(kms, key["KeyId"])
    assert (described["KeyState"], described["Enabled"]) == ("Enabled", True)
    assert described["ExpirationModel"] == DOES_NOT_EXPIRE and "ValidTo" not in described
    assert described["CurrentKeyMaterialId"] == out["KeyMaterialId"]

    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"imported", EncryptionContext={"k": "v"})["CiphertextBlob"]
    # The ciphertext opens with the material we imported, outside trentd.
    assert open_ciphertext(blob, material, {"k": "v"}) == (key["KeyId"], out["KeyMaterialId"], b"imported")
    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})
    assert (decrypted["Plaintext"], decrypted["KeyMaterialId"]) == (b"imported", out["KeyMaterialId"])
    data_key = kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=32)
    assert open_ciphertext(data_key["CiphertextBlob"], material)[2] == data_key["Plaintext"]
    [entry] = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert entry == {"KeyId": key["KeyId"], "KeyMaterialId": out["KeyMaterialId"], "ImportState": "IMPORTED",
                     "KeyMaterialState": "CURRENT", "ExpirationModel": DOES_NOT_EXPIRE}


def test_hmac_import(kms):
    key = external_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    for size in (31, 65):  # HMAC_256 takes 32 to 64 bytes
        code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=os.urandom(size), params=params)
        assert code == "IncorrectKeyMaterialException"
    material = os.urandom(40)
    out = import_material(kms, key["KeyId"], material, params=params)  # the token serves several attempts
    assert "KeyMaterialId" not in out  # material ids are shown for symmetric encryption keys only
    described = meta(kms, key["KeyId"])
    assert described["KeyState"] == "Enabled" and "CurrentKeyMaterialId" not in described
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.digest(material, b"message", hashlib.sha256)
    assert kms.verify_mac(KeyId=key["KeyId"], Message=b"message", MacAlgorithm="HMAC_SHA_256", Mac=mac)["MacValid"]
    code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=os.urandom(40), params=params)
    assert code == "IncorrectKeyMaterialException"  # an HMAC key's material never changes


def test_ecc_signing_key_import(kms):
    key = external_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    private = ec.generate_private_key(ec.SECP256R1())
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    wrong_curve = pkcs8(ec.generate_private_key(ec.SECP384R1()))
    code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=wrong_curve,
                    algorithm="RSA_AES_KEY_WRAP_SHA_256", params=params)
    assert code == "IncorrectKeyMaterialException"
    code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=b"not a key",
                    algorithm="RSA_AES_KEY_WRAP_SHA_256", params=params)
    assert code == "IncorrectKeyMaterialException"
    import_material(kms, key["KeyId"], pkcs8(private), "RSA_AES_KEY_WRAP_SHA_256", params=params)
    public_der = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    assert public_der == private.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = kms.sign(KeyId=key["KeyId"], Message=b"signed by kms", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    private.public_key().verify(signature, b"signed by kms", ec.ECDSA(hashes.SHA256()))  # raises if invalid


def test_rsa_encryption_key_import(kms):
    key = external_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import_material(kms, key["KeyId"], pkcs8(private), "RSA_AES_KEY_WRAP_SHA_1")
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"for the holder", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert private.decrypt(blob["CiphertextBlob"], oaep) == b"for the holder"
    local = private.public_key().encrypt(b"from outside", oaep)
    assert kms.decrypt(KeyId=key["KeyId"], CiphertextBlob=local,
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"from outside"


def test_reimport_takes_the_same_material_only(kms, trentd_server):
    key = external_key(kms)
    material = os.urandom(32)
    valid_to = server_now(trentd_server) + 30 * DAY
    first = import_material(kms, key["KeyId"], material, ValidTo=at(valid_to))
    described = meta(kms, key["KeyId"])
    assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert abs(described["ValidTo"].timestamp() - valid_to) < 1
    code, message = fails(import_material, kms=kms, key_id=key["KeyId"], material=os.urandom(32))
    assert code == "IncorrectKeyMaterialException" and message
    code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=material,
                    KeyMaterialId="0" * 64)
    assert code == "IncorrectKeyMaterialException"
    again = import_material(kms, key["KeyId"], material, KeyMaterialId=first["KeyMaterialId"])  # new expiry
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    described = meta(kms, key["KeyId"])
    assert described["ExpirationModel"] == DOES_NOT_EXPIRE and "ValidTo" not in described


def test_expiration_is_validated(kms, trentd_server):
    key = external_key(kms)
    material = os.urandom(32)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    blob = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material)
    now = server_now(trentd_server)
    attempt = dict(KeyId=key["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=blob)
    assert fails(kms.import_key_material, **attempt) == (
        "ValidationException", "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
    assert fails(kms.import_key_material, ExpirationModel="KEY_MATERIAL_EXPIRES", **attempt)[0] == "ValidationException"
    assert fails(kms.import_key_material, ExpirationModel=DOES_NOT_EXPIRE, ValidTo=at(now + DAY),
                 **attempt)[0] == "ValidationException"
    for valid_to in (now - 60, now + 366 * DAY):
        assert fails(kms.import_key_material, ValidTo=at(valid_to), **attempt)[0] == "ValidationException"
    assert meta(kms, key["KeyId"])["KeyState"] == "PendingImport"
    kms.import_key_material(ValidTo=at(now + 365 * DAY - 60), **attempt)
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_bad_tokens_and_wrapping(kms):
    key, other = external_key(kms), external_key(kms)
    material = os.urandom(32)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    blob = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", material)
    invalid = fails(kms.import_key_material, KeyId=other["KeyId"], ImportToken=params["ImportToken"],
                    EncryptedKeyMaterial=blob, ExpirationModel=DOES_NOT_EXPIRE)
    assert invalid[0] == "InvalidImportTokenException"  # a token is bound to its key
    tampered = params["ImportToken"][:-1] + bytes([params["ImportToken"][-1] ^ 1])
    for token in (b"garbage", tampered):
        assert fails(kms.import_key_material, KeyId=key["KeyId"], ImportToken=token, EncryptedKeyMaterial=blob,
                     ExpirationModel=DOES_NOT_EXPIRE)[0] == "InvalidImportTokenException"
    wrong_hash = wrap(params["PublicKey"], "RSAES_OAEP_SHA_1", material)  # the token says SHA-256
    other_params = kms.get_parameters_for_import(KeyId=other["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                                 WrappingKeySpec="RSA_2048")
    wrong_key = wrap(other_params["PublicKey"], "RSAES_OAEP_SHA_256", material)
    for encrypted in (wrong_hash, wrong_key, b"\x00" * 256):
        assert fails(kms.import_key_material, KeyId=key["KeyId"], ImportToken=params["ImportToken"],
                     EncryptedKeyMaterial=encrypted, ExpirationModel=DOES_NOT_EXPIRE) == (
            "InvalidCiphertextException", "")
    assert meta(kms, key["KeyId"])["KeyState"] == "PendingImport"
    generated = kms.create_key()["KeyMetadata"]
    assert fails(kms.import_key_material, KeyId=generated["KeyId"], ImportToken=params["ImportToken"],
                 EncryptedKeyMaterial=blob, ExpirationModel=DOES_NOT_EXPIRE) == (
        "UnsupportedOperationException", f"{generated['Arn']} origin is AWS_KMS which is not valid for this operation.")


# --- deletion, expiry (moved clock) ---------------------------------------------------------
def test_import_token_expires_after_24_hours(clock_server, clock_kms):
    kms = clock_kms
    key = external_key(kms)
    material = os.urandom(32)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1",
                                           WrappingKeySpec="RSA_2048")
    clock_server.move_clock(advance_seconds=25 * 3600)
    code, message = fails(import_material, kms=kms, key_id=key["KeyId"], material=material,
                          algorithm="RSAES_OAEP_SHA_1", params=params)
    assert code == "ExpiredImportTokenException" and message
    import_material(kms, key["KeyId"], material, "RSAES_OAEP_SHA_1")  # fresh parameters work
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_material_expires_at_valid_to(clock_server, clock_kms):
    kms = clock_kms
    key = external_key(kms)
    material = os.urandom(32)
    valid_to = server_now(clock_server) + 2 * DAY
    imported = import_material(kms, key["KeyId"], material, ValidTo=at(valid_to))
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before expiry")["CiphertextBlob"]
    assert abs(meta(kms, key["KeyId"])["ValidTo"].timestamp() - valid_to) < 1

    clock_server.move_clock(advance_seconds=2 * DAY - 3600)
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"
    clock_server.move_clock(advance_seconds=2 * 3600)
    described = meta(kms, key["KeyId"])
    assert (described["KeyState"], described["Enabled"]) == ("PendingImport", False)
    assert "ExpirationModel" not in described and "ValidTo" not in described
    assert fails(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == (
        "KMSInvalidStateException", f"{key['Arn']} is pending import.")
    assert fails(kms.decrypt, CiphertextBlob=blob) == ("KMSInvalidStateException", f"{key['Arn']} is pending import.")
    [entry] = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert (entry["ImportState"], entry["KeyMaterialId"]) == ("PENDING_IMPORT", imported["KeyMaterialId"])

    import_material(kms, key["KeyId"], material)  # the same material, now without expiry
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before expiry"
    clock_server.move_clock(advance_seconds=400 * DAY)
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_delete_imported_key_material(kms):
    key = external_key(kms)
    material = os.urandom(32)
    imported = import_material(kms, key["KeyId"], material)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    out = kms.delete_imported_key_material(KeyId=key["Arn"])
    assert (out["KeyId"], out["KeyMaterialId"]) == (key["Arn"], imported["KeyMaterialId"])
    described = meta(kms, key["KeyId"])
    assert (described["KeyState"], described["Enabled"]) == ("PendingImport", False)
    assert "ExpirationModel" not in described
    assert described["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
    assert fails(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == (
        "KMSInvalidStateException", f"{key['Arn']} is pending import.")
    kms.delete_imported_key_material(KeyId=key["KeyId"])  # nothing left to delete: no change
    assert fails(import_material, kms=kms, key_id=key["KeyId"], material=os.urandom(32))[0] == (
        "IncorrectKeyMaterialException")
    import_material(kms, key["KeyId"], material)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    generated = kms.create_key()["KeyMetadata"]
    assert fails(kms.delete_imported_key_material, KeyId=generated["KeyId"]) == (
        "UnsupportedOperationException", f"{generated['Arn']} origin is AWS_KMS which is not valid for this operation.")
    assert fails(kms.delete_imported_key_material, KeyId=key["KeyId"], KeyMaterialId="a" * 64)[0] == (
        "NotFoundException")


def test_delete_material_of_an_asymmetric_key(kms):
    key = external_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    private = pkcs8(ec.generate_private_key(ec.SECP256R1()))
    import_material(kms, key["KeyId"], private, "RSAES_OAEP_SHA_256")
    kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert "KeyMaterialId" not in kms.delete_imported_key_material(KeyId=key["KeyId"])
    pending = ("KMSInvalidStateException", f"{key['Arn']} is pending import.")
    assert fails(kms.sign, KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == pending
    assert fails(kms.get_public_key, KeyId=key["KeyId"]) == pending
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert meta(kms, key["KeyId"])["KeyState"] == "PendingImport"  # its material is still missing
    import_material(kms, key["KeyId"], private, "RSAES_OAEP_SHA_256")
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"


def test_new_key_material_and_on_demand_rotation(kms):
    key = external_key(kms)
    arn = key["Arn"]
    first, second, third = os.urandom(32), os.urandom(32), os.urandom(32)
    params = kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_2048")
    first_id = import_material(kms, key["KeyId"], first, params=params, KeyMaterialDescription="first")["KeyMaterialId"]
    old_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under the first")["CiphertextBlob"]
    assert fails(kms.rotate_key_on_demand, KeyId=key["KeyId"]) == (
        "KMSInvalidStateException", f"No available key material pending rotation for the key: {arn}.")
    code, _ = fails(import_material, kms=kms, key_id=key["KeyId"], material=first, params=params,
                    ImportType="NEW_KEY_MATERIAL")
    assert code == "IncorrectKeyMaterialException"  # already this key's material

    second_id = import_material(kms, key["KeyId"], second, params=params, ImportType="NEW_KEY_MATERIAL",
                                KeyMaterialDescription="second")["KeyMaterialId"]
    assert meta(kms, key["KeyId"])["CurrentKeyMaterialId"] == first_id  # not current until rotated
    assert kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"] == []
    listed = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [(r["KeyMaterialId"], r["KeyMaterialState"], r["KeyMaterialDescription"]) for r in listed] == [
        (first_id, "CURRENT", "first"), (second_id, "PENDING_ROTATION", "second")]
    assert fails(import_material, kms=kms, key_id=key["KeyId"], material=third, params=params,
                 ImportType="NEW_KEY_MATERIAL") == (
        "KMSInvalidStateException",
        f"New key material (id: {import_id(kms, key, third)}) cannot be imported into KMS key {key['KeyId']}, "
        f"because another key material (id: {second_id}) is pending rotation.")

    assert kms.rotate_key_on_demand(KeyId=key["KeyId"])["KeyId"] == arn
    assert meta(kms, key["KeyId"])["CurrentKeyMaterialId"] == second_id
    new_blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"under the second")["CiphertextBlob"]
    assert open_ciphertext(new_blob, second)[1:] == (second_id, b"under the second")
    assert kms.decrypt(CiphertextBlob=old_blob)["KeyMaterialId"] == first_id
    [rotation] = kms.list_key_rotations(KeyId=key["KeyId"])["Rotations"]
    assert (rotation["KeyMaterialId"], rotation["RotationType"], rotation["ImportState"],
            rotation["KeyMaterialState"]) == (second_id, "ON_DEMAND", "IMPORTED", "CURRENT")

    # Deleting any permanent material (here the non-current first) makes the key unusable
    # until that material is imported again.
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=first_id)
    assert meta(kms, key["KeyId"])["KeyState"] == "PendingImport"
    import_material(kms, key["KeyId"], first, params=params, ImportType="EXISTING_KEY_MATERIAL",
                    KeyMaterialId=first_id)
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=old_blob)["Plaintext"] == b"under the first"

    # Material pending rotation is not part of the key: deleting it changes nothing else.
    import_material(kms, key["KeyId"], third, params=params, ImportType="NEW_KEY_MATERIAL")
    kms.delete_imported_key_material(KeyId=key["KeyId"], KeyMaterialId=import_id(kms, key, third))
    assert meta(kms, key["KeyId"])["KeyState"] == "Enabled"
    assert len(kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]) == 2


def import_id(kms, key: dict, material: bytes) -> str:
    """The id trentd gives imported material: derived from account, key id and material
    (computed here only to name it in an expected message)."""
    from trentd.keydomain.materials import material_id_for

    return material_id_for(key["AWSAccountId"], key["KeyId"], material)


def test_imported_material_is_stored_wrapped(kms, trentd_server):
    if trentd_server.kind != "sqlite":
        pytest.skip("only the SQLite store keeps its data in the data dir")
    key = external_key(kms)
    material = os.urandom(32)
    import_material(kms, key["KeyId"], material)
    on_disk = b"".join(p.read_bytes() for p in trentd_server.data_dir.glob("trentd.db*"))
    assert material not in on_disk
