"""DryRun on the 17 operations that model it, and GetKeyLastUsage.

DryRun: every check runs (permission, key state, usage, algorithm, the request's own content);
when the call would succeed the answer is DryRunOperationException and nothing changes (no grant
made or removed, no last use recorded); when it would fail, the answer is the real error
(kms-api.md §3.11).

GetKeyLastUsage: the last successful cryptographic use per key, kept in memory and flushed to
the store at least once a second and at shutdown (DESIGN.md, Consistency)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trentd.testing.server import TrentdServer

from ..helpers import fails, new_account

DRY = ("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
ALIASES_REFUSED = ("InvalidArnException", "Key Aliases are not supported for this operation.")
SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def last_use(kms, key_id: str) -> dict:
    return kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"]


# --- a fresh account with one key of each kind, and inputs for every operation --------------
@pytest.fixture(scope="module")
def world(trentd_server):
    account = new_account()
    kms = trentd_server.client(access_key=account, secret_key="unused-in-dev-mode")

    def key(**kwargs) -> str:
        return kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]

    w = SimpleNamespace(kms=kms, account=account, sym=key(), sym2=key(),
                        hmac=key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
                        sign=key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
                        agree=key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT"),
                        kem=key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE"))
    w.blob = kms.encrypt(KeyId=w.sym, Plaintext=b"x", EncryptionContext={"c": "1"})["CiphertextBlob"]
    w.mac = kms.generate_mac(KeyId=w.hmac, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    w.signature = kms.sign(KeyId=w.sign, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    w.kem_ct = kms.encapsulate(KeyId=w.kem, EncapsulationAlgorithm="ML_KEM")["SharedSecretCiphertextBlob"]
    w.peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI)
    w.keys = (w.sym, w.sym2, w.hmac, w.sign, w.agree, w.kem)
    return w


# name -> (client method, arguments). Each would succeed without DryRun.
SUCCEEDING = {
    "Encrypt": ("encrypt", lambda w: {"KeyId": w.sym, "Plaintext": b"p"}),
    "Decrypt": ("decrypt", lambda w: {"CiphertextBlob": w.blob, "EncryptionContext": {"c": "1"}}),
    "Decrypt IGNORE_CIPHERTEXT": ("decrypt", lambda w: {"KeyId": w.sym, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}),
    "ReEncrypt": ("re_encrypt", lambda w: {"CiphertextBlob": w.blob, "SourceEncryptionContext": {"c": "1"},
                                           "DestinationKeyId": w.sym2}),
    "GenerateDataKey": ("generate_data_key", lambda w: {"KeyId": w.sym, "KeySpec": "AES_256"}),
    "GenerateDataKeyWithoutPlaintext": ("generate_data_key_without_plaintext",
                                        lambda w: {"KeyId": w.sym, "NumberOfBytes": 16}),
    "GenerateDataKeyPair": ("generate_data_key_pair", lambda w: {"KeyId": w.sym, "KeyPairSpec": "ECC_NIST_P256"}),
    "GenerateDataKeyPairWithoutPlaintext": ("generate_data_key_pair_without_plaintext",
                                            lambda w: {"KeyId": w.sym, "KeyPairSpec": "ECC_NIST_P384"}),
    "GenerateMac": ("generate_mac", lambda w: {"KeyId": w.hmac, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}),
    "VerifyMac": ("verify_mac", lambda w: {"KeyId": w.hmac, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256",
                                           "Mac": w.mac}),
    "Sign": ("sign", lambda w: {"KeyId": w.sign, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}),
    "Verify": ("verify", lambda w: {"KeyId": w.sign, "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256",
                                    "Signature": w.signature}),
    "DeriveSharedSecret": ("derive_shared_secret", lambda w: {"KeyId": w.agree, "KeyAgreementAlgorithm": "ECDH",
                                                              "PublicKey": w.peer}),
    "Encapsulate": ("encapsulate", lambda w: {"KeyId": w.kem, "EncapsulationAlgorithm": "ML_KEM"}),
    "Decapsulate": ("decapsulate", lambda w: {"KeyId": w.kem, "EncapsulationAlgorithm": "ML_KEM",
                                              "SharedSecretCiphertextBlob": w.kem_ct}),
}

# name -> (client method, arguments, the real error). Each fails without DryRun too.
FAILING = {
    "Encrypt wrong usage": ("encrypt", lambda w: {"KeyId": w.hmac, "Plaintext": b"p"}, "InvalidKeyUsageException"),
    "Decrypt wrong context": ("decrypt", lambda w: {"CiphertextBlob": w.blob, "EncryptionContext": {"c": "2"}},
                              "InvalidCiphertextException"),
    "ReEncrypt to a MAC key": ("re_encrypt", lambda w: {"CiphertextBlob": w.blob, "SourceEncryptionContext": {"c": "1"},
                                                        "DestinationKeyId": w.hmac}, "InvalidKeyUsageException"),
    "GenerateDataKey with a signing key": ("generate_data_key", lambda w: {"KeyId": w.sign, "KeySpec": "AES_256"},
                                           "InvalidKeyUsageException"),
    "GenerateDataKeyPair with a MAC key": ("generate_data_key_pair",
                                           lambda w: {"KeyId": w.hmac, "KeyPairSpec": "ECC_NIST_P256"},
                                           "InvalidKeyUsageException"),
    "GenerateMac wrong algorithm": ("generate_mac", lambda w: {"KeyId": w.hmac, "Message": b"m",
                                                               "MacAlgorithm": "HMAC_SHA_512"},
                                    "InvalidKeyUsageException"),
    "VerifyMac wrong MAC": ("verify_mac", lambda w: {"KeyId": w.hmac, "Message": b"other",
                                                     "MacAlgorithm": "HMAC_SHA_256", "Mac": w.mac},
                            "KMSInvalidMacException"),
    "Sign digest of wrong length": ("sign", lambda w: {"KeyId": w.sign, "Message": b"short", "MessageType": "DIGEST",
                                                       "SigningAlgorithm": "ECDSA_SHA_256"}, "ValidationException"),
    "Verify wrong signature": ("verify", lambda w: {"KeyId": w.sign, "Message": b"other",
                                                    "SigningAlgorithm": "ECDSA_SHA_256", "Signature": w.signature},
                               "KMSInvalidSignatureException"),
    "DeriveSharedSecret bad public key": ("derive_shared_secret",
                                          lambda w: {"KeyId": w.agree, "KeyAgreementAlgorithm": "ECDH",
                                                     "PublicKey": b"not a key"}, "ValidationException"),
    "Encapsulate with a signing key": ("encapsulate", lambda w: {"KeyId": w.sign, "EncapsulationAlgorithm": "ML_KEM"},
                                       "InvalidKeyUsageException"),
    "Decapsulate wrong length": ("decapsulate", lambda w: {"KeyId": w.kem, "EncapsulationAlgorithm": "ML_KEM",
                                                           "SharedSecretCiphertextBlob": b"\x00" * 10},
                                 "InvalidCiphertextException"),
}


@pytest.mark.parametrize("case", list(SUCCEEDING))
def test_dry_run_that_would_succeed(world, case):
    method, arguments = SUCCEEDING[case]
    before = {k: last_use(world.kms, k) for k in world.keys}
    assert fails(getattr(world.kms, method), DryRun=True, **arguments(world)) == DRY
    assert {k: last_use(world.kms, k) for k in world.keys} == before  # no use recorded


@pytest.mark.parametrize("case", list(FAILING))
def test_dry_run_gives_the_real_error(world, case):
    method, arguments, code = FAILING[case]
    assert fails(getattr(world.kms, method), **arguments(world))[0] == code
    assert fails(getattr(world.kms, method), DryRun=True, **arguments(world)) == fails(
        getattr(world.kms, method), **arguments(world))


def test_ignore_ciphertext_needs_a_key_id(kms):
    code, message = fails(kms.decrypt, DryRun=True, DryRunModifiers=["IGNORE_CIPHERTEXT"])
    assert (code, message) == ("ValidationException", "KeyId is required when DryRunModifiers contains IGNORE_CIPHERTEXT.")


def test_dry_run_checks_key_state(kms):
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key_id)
    code, message = fails(kms.sign, KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256", DryRun=True)
    assert code == "DisabledException" and message.endswith("is disabled.")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal="arn:aws:iam::111122223333:role/x",
                 Operations=["Sign"], DryRun=True)[0] == "KMSInvalidStateException"


def test_dry_run_checks_permission(kms, account):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:CreateGrant", "kms:RevokeGrant"],
         "Resource": "*"}]}
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"p", DryRun=True)[0] == "AccessDeniedException"
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:role/app",
                 Operations=["Decrypt"], DryRun=True)[0] == "AccessDeniedException"
    assert fails(kms.revoke_grant, KeyId=key_id, GrantId="a" * 64, DryRun=True)[0] == "AccessDeniedException"
    assert fails(kms.decrypt, KeyId=key_id, DryRunModifiers=["IGNORE_CIPHERTEXT"], DryRun=True) == DRY


# --- grants: DryRun never creates or removes one --------------------------------------------
def test_create_grant_dry_run(kms, account, key_id):
    grantee = f"arn:aws:iam::{account}:role/app"
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal=grantee, Operations=["Decrypt"], DryRun=True) == DRY
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal=grantee, Operations=["Decrypt"], Name="named",
                 DryRun=True) == DRY
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal=grantee, Operations=["Sign"],
                 DryRun=True)[0] == "ValidationException"  # not grantable on a symmetric key
    kms.create_grant(KeyId=key_id, GranteePrincipal=grantee, Operations=["Decrypt"], Name="named")
    # The idempotent repeat of a named grant also stops at DryRun.
    assert fails(kms.create_grant, KeyId=key_id, GranteePrincipal=grantee, Operations=["Decrypt"], Name="named",
                 DryRun=True) == DRY
    assert len(kms.list_grants(KeyId=key_id)["Grants"]) == 1


def test_retire_and_revoke_grant_dry_run(kms, account, key_id):
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    grant = kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:role/app",
                             RetiringPrincipal=f"arn:aws:iam::{account}:user/admin", Operations=["Encrypt"])
    assert fails(kms.retire_grant, GrantToken=grant["GrantToken"], DryRun=True) == DRY
    assert fails(kms.retire_grant, KeyId=arn, GrantId=grant["GrantId"], DryRun=True) == DRY
    assert fails(kms.revoke_grant, KeyId=key_id, GrantId=grant["GrantId"], DryRun=True) == DRY
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]] == [grant["GrantId"]]
    assert fails(kms.revoke_grant, KeyId=key_id, GrantId="b" * 64, DryRun=True)[0] == "InvalidGrantIdException"
    assert fails(kms.retire_grant, KeyId=arn, GrantId="b" * 64, DryRun=True)[0] == "InvalidGrantIdException"
    kms.revoke_grant(KeyId=key_id, GrantId=grant["GrantId"])
    assert kms.list_grants(KeyId=key_id)["Grants"] == []


# --- GetKeyLastUsage ------------------------------------------------------------------------
def test_last_usage_before_any_use(kms, key_id):
    out = kms.get_key_last_usage(KeyId=key_id)
    created = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CreationDate"]
    assert out["KeyId"] == key_id and out["KeyLastUsage"] == {}
    assert out["KeyCreationDate"] == created
    assert out["TrackingStartDate"] == created  # tracking began before this key existed


def test_last_usage_after_encrypt_decrypt_and_reencrypt(kms, account, trentd_server):
    source = kms.create_key()["KeyMetadata"]
    destination = kms.create_key()["KeyMetadata"]["KeyId"]
    encrypted = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"p", EncryptionContext={"a": "b"})
    now = trentd_server.move_clock(advance_seconds=0)["now"]
    usage = last_use(kms, source["Arn"])
    request_id = encrypted["ResponseMetadata"]["RequestId"]
    assert {k: v for k, v in usage.items() if k != "Timestamp"} == {
        "Operation": "Encrypt", "CloudTrailEventId": request_id, "KmsRequestId": request_id}
    assert now - 10 <= usage["Timestamp"].timestamp() <= now + 1

    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext={"a": "b"})
    usage = last_use(kms, source["KeyId"])
    assert (usage["Operation"], usage["KmsRequestId"]) == ("Decrypt", decrypted["ResponseMetadata"]["RequestId"])

    with pytest.raises(Exception):  # a failed call is not a use
        kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext={"a": "c"})
    assert last_use(kms, source["KeyId"]) == usage
    assert last_use(kms, destination) == {}

    reencrypted = kms.re_encrypt(CiphertextBlob=encrypted["CiphertextBlob"], SourceEncryptionContext={"a": "b"},
                                 DestinationKeyId=destination)
    request_id = reencrypted["ResponseMetadata"]["RequestId"]
    for key in (source["KeyId"], destination):  # ReEncrypt records both keys
        usage = last_use(kms, key)
        assert (usage["Operation"], usage["KmsRequestId"]) == ("ReEncrypt", request_id)


def test_every_cryptographic_operation_is_recorded(world):
    kms = world.kms
    calls = [name for name in SUCCEEDING if " " not in name]
    assert len(calls) == 14  # all the operations GetKeyLastUsage reports
    for name in calls:
        method, arguments = SUCCEEDING[name]
        response = getattr(kms, method)(**arguments(world))
        key = response["KeyId"].rsplit("/", 1)[1]
        usage = last_use(kms, key)
        assert (usage["Operation"], usage["KmsRequestId"]) == (name, response["ResponseMetadata"]["RequestId"]), name


def test_last_usage_takes_key_ids_and_arns_only(kms, account, key_id):
    kms.create_alias(AliasName="alias/used", TargetKeyId=key_id)
    assert fails(kms.get_key_last_usage, KeyId="alias/used") == ALIASES_REFUSED
    assert fails(kms.get_key_last_usage, KeyId=f"arn:aws:kms:us-east-1:{account}:alias/used") == ALIASES_REFUSED
    missing = "00000000-0000-4000-8000-000000000000"
    assert fails(kms.get_key_last_usage, KeyId=missing) == (
        "NotFoundException", f"Key 'arn:aws:kms:us-east-1:{account}:key/{missing}' does not exist")
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"] == {}  # any key state


# --- flushing: once a second, and at shutdown ------------------------------------------------
@pytest.fixture
def usage_server(store_kind):
    with TrentdServer(store=store_kind) as server:
        yield server


def stored_usage(server, account: str, key_id: str):
    """The row in the store itself (not this node's memory)."""
    from pathlib import Path

    from trentd.runtime import make_store

    store = make_store(Path(server.data_dir), server.database)
    try:
        with store.read() as tx:
            return tx.get_last_usage(account, server.region, key_id)
    finally:
        store.close()


def test_last_usage_is_flushed_within_a_second(usage_server):
    kms = usage_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    request_id = kms.encrypt(KeyId=key_id, Plaintext=b"p")["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 2.5  # one sweep a second, plus scheduling slack
    row = None
    while row is None and time.monotonic() < deadline:
        row = stored_usage(usage_server, usage_server.account, key_id)
        time.sleep(0.1)
    assert row is not None and (row[0], row[2]) == ("Encrypt", request_id)


def test_last_usage_is_written_at_shutdown(usage_server):
    kms = usage_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    encrypted = kms.encrypt(KeyId=key_id, Plaintext=b"p")
    usage_server.restart()  # at once (the sweep runs once a second): a graceful stop flushes memory
    usage = last_use(kms, key_id)
    assert (usage["Operation"], usage["KmsRequestId"]) == ("Encrypt", encrypted["ResponseMetadata"]["RequestId"])
