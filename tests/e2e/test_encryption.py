"""Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext), GenerateRandom end to end.

Every call goes over HTTP to a real trentd (the session --dev server unless a test needs its own
clock). Expected texts are AWS's (shared/reference/kms-api.md §2, security.md B2).
"""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trentd.testing.server import TrentdServer

pytestmark = pytest.mark.one_store  # ciphertexts, contexts and their errors: nothing here depends on the store

UNKNOWN_KEY = ("The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
               "or you are not allowed to access.")
INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."
EITHER = "Please specify either number of bytes or key spec."
HEX64 = re.compile(r"[0-9a-f]{64}")


def fails(call, **kwargs) -> tuple[str, str]:
    """Run a call that must fail with a client error: (code, message), HTTP status 400 checked."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400, response
    return response["Error"]["Code"], response["Error"].get("Message", "")


def invalid_ciphertext(call, **kwargs) -> None:
    """InvalidCiphertextException carries no message at all (the raw body is checked in test_protocol)."""
    assert fails(call, **kwargs) == ("InvalidCiphertextException", "")


def arn_of(client, key_id: str) -> str:
    return client.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


def bad_number_of_bytes(value: int, phrase: str) -> str:
    return (f"1 validation error detected: Value '{value}' at 'numberOfBytes' failed to satisfy constraint: "
            f"Member must have value {phrase}")


# --- Encrypt / Decrypt round trips ------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 4096])
def test_round_trip(kms, key_id, size):
    plaintext = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    encrypted = kms.encrypt(KeyId=key_id, Plaintext=plaintext)
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    assert decrypted["Plaintext"] == plaintext
    assert encrypted["CiphertextBlob"] != plaintext and len(encrypted["CiphertextBlob"]) <= 6144


def test_ciphertexts_are_randomised(kms, key_id):
    blobs = {kms.encrypt(KeyId=key_id, Plaintext=b"same")["CiphertextBlob"] for _ in range(3)}
    assert len(blobs) == 3


def test_plaintext_over_4096_bytes_is_a_validation_error(kms, key_id):
    # botocore checks no maximum client-side, so this is the server's own check; the value is sensitive.
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"x" * 4097) == (
        "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
                               "Member must have length less than or equal to 4096")


def test_response_members(kms, key_id):
    arn = arn_of(kms, key_id)
    material_id = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert HEX64.fullmatch(material_id)

    encrypted = kms.encrypt(KeyId=key_id, Plaintext=b"members")
    del encrypted["ResponseMetadata"]
    assert set(encrypted) == {"CiphertextBlob", "KeyId", "EncryptionAlgorithm"}  # no KeyMaterialId on Encrypt
    assert (encrypted["KeyId"], encrypted["EncryptionAlgorithm"]) == (arn, "SYMMETRIC_DEFAULT")

    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    del decrypted["ResponseMetadata"]
    assert decrypted == {"KeyId": arn, "Plaintext": b"members", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                         "KeyMaterialId": material_id}

    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    del data_key["ResponseMetadata"]
    assert set(data_key) == {"CiphertextBlob", "Plaintext", "KeyId", "KeyMaterialId"}
    assert (data_key["KeyId"], data_key["KeyMaterialId"]) == (arn, material_id)


# --- encryption context ---------------------------------------------------------------------
CONTEXT = {"purpose": "test", "Tenant": "Acme"}


def test_context_is_order_free(kms, key_id):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext=CONTEXT)["CiphertextBlob"]
    reordered = dict(reversed(list(CONTEXT.items())))
    assert list(reordered) != list(CONTEXT)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"p"


@pytest.mark.parametrize("context", [
    None,  # missing
    {},  # empty
    {"purpose": "test"},  # subset
    {**CONTEXT, "extra": "x"},  # superset
    {"purpose": "test", "Tenant": "acme"},  # value case
    {"purpose": "test", "tenant": "Acme"},  # key case
    {"purpose": "tes", "Tenant": "tAcme"},  # same concatenation, different split
], ids=["missing", "empty", "subset", "superset", "value-case", "key-case", "shifted"])
def test_context_must_match_exactly(kms, key_id, context):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext=CONTEXT)["CiphertextBlob"]
    kwargs = {"CiphertextBlob": blob} if context is None else {"CiphertextBlob": blob, "EncryptionContext": context}
    invalid_ciphertext(kms.decrypt, **kwargs)


def test_context_on_decrypt_only(kms, key_id):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    invalid_ciphertext(kms.decrypt, CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={})["Plaintext"] == b"p"


@pytest.mark.parametrize("written, read", [({"a": "bc"}, {"ab": "c"}), ({"ab": "c"}, {"a": "bc"}),
                                           ({"a": "b", "c": "d"}, {"a": "bc", "": "d"})])
def test_context_encoding_is_unambiguous(kms, key_id, written, read):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext=written)["CiphertextBlob"]
    invalid_ciphertext(kms.decrypt, CiphertextBlob=blob, EncryptionContext=read)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=written)["Plaintext"] == b"p"


# --- damaged and foreign ciphertext ---------------------------------------------------------------
def _layout(key_id: str) -> dict[str, int]:
    """Byte offsets in a trentd v1 blob (docs/ciphertext.md) for a key id of this length."""
    n = len(key_id)
    return {"version": 0, "material id": 14 + n, "material id end": 45 + n, "salt": 46 + n, "salt end": 61 + n,
            "nonce": 62 + n, "first ciphertext byte": 74 + n, "tag start": -16, "last byte": -1}


@pytest.mark.parametrize("field", list(_layout("k" * 36)))
def test_tampered_blob_is_invalid_ciphertext(kms, key_id, field):
    blob = bytearray(kms.encrypt(KeyId=key_id, Plaintext=b"tamper me", EncryptionContext={"a": "b"})["CiphertextBlob"])
    blob[_layout(key_id)[field]] ^= 0x01
    invalid_ciphertext(kms.decrypt, CiphertextBlob=bytes(blob), EncryptionContext={"a": "b"})


@pytest.mark.parametrize("cut", [1, 16, 17])
def test_truncated_blob_is_invalid_ciphertext(kms, key_id, cut):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    invalid_ciphertext(kms.decrypt, CiphertextBlob=blob[:-cut])


@pytest.mark.parametrize("blob", [b"\x00", b"garbage" * 20, bytes(range(256)) * 4, b"\x01" + b"0" * 200],
                         ids=["one-byte", "text", "bytes", "version-byte-then-junk"])
def test_random_garbage_is_invalid_ciphertext(kms, blob):
    invalid_ciphertext(kms.decrypt, CiphertextBlob=blob)


def test_header_naming_another_account_is_an_unknown_key(kms, key_id):
    # The account digits are part of the key reference: altered, the blob names a key we cannot see.
    blob = bytearray(kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"])
    blob[1] = ord("0") if blob[1] != ord("0") else ord("1")
    assert fails(kms.decrypt, CiphertextBlob=bytes(blob)) == ("AccessDeniedException", UNKNOWN_KEY)


def test_blob_from_another_account(trentd_server, kms, key_id):
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    stranger = trentd_server.client(access_key="999999999999", secret_key="any")
    assert fails(stranger.decrypt, CiphertextBlob=blob) == ("AccessDeniedException", UNKNOWN_KEY)
    own = stranger.create_key()["KeyMetadata"]["KeyId"]
    assert fails(stranger.re_encrypt, CiphertextBlob=blob, DestinationKeyId=own) == (
        "AccessDeniedException", UNKNOWN_KEY)


@pytest.fixture(scope="module")
def own_server(store_kind):
    """A dev server of our own: moving its clock must not disturb other tests."""
    with TrentdServer(store=store_kind) as server:
        yield server


def test_deleted_key_and_foreign_key_answer_identically(own_server):
    owner = own_server.client(access_key="111111111111", secret_key="x")
    stranger = own_server.client(access_key="222222222222", secret_key="x")
    kept = owner.create_key()["KeyMetadata"]["KeyId"]
    doomed = owner.create_key()["KeyMetadata"]["KeyId"]
    kept_blob = owner.encrypt(KeyId=kept, Plaintext=b"x")["CiphertextBlob"]
    doomed_blob = owner.encrypt(KeyId=doomed, Plaintext=b"x")["CiphertextBlob"]
    doomed_arn = arn_of(owner, doomed)

    owner.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    assert fails(owner.decrypt, CiphertextBlob=doomed_blob) == (
        "KMSInvalidStateException", f"{doomed_arn} is pending deletion.")
    own_server.move_clock(advance_seconds=7 * 86400 + 60)
    assert fails(owner.describe_key, KeyId=doomed)[0] == "NotFoundException"

    deleted = fails(owner.decrypt, CiphertextBlob=doomed_blob)
    foreign = fails(stranger.decrypt, CiphertextBlob=kept_blob)
    assert deleted == foreign == ("AccessDeniedException", UNKNOWN_KEY)  # no existence oracle
    assert owner.decrypt(CiphertextBlob=kept_blob)["Plaintext"] == b"x"


# --- Decrypt's KeyId -----------------------------------------------------------------------
@pytest.mark.parametrize("form", ["id", "arn", "alias", "alias-arn"])
def test_decrypt_with_the_right_key_id(kms, key_id, account, form):
    arn = arn_of(kms, key_id)
    kms.create_alias(AliasName=f"alias/right-{form}", TargetKeyId=key_id)
    named = {"id": key_id, "arn": arn, "alias": f"alias/right-{form}",
             "alias-arn": f"arn:aws:kms:us-east-1:{account}:alias/right-{form}"}[form]
    blob = kms.encrypt(KeyId=named, Plaintext=b"named")["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=blob, KeyId=named)
    assert (decrypted["Plaintext"], decrypted["KeyId"]) == (b"named", arn)


def test_decrypt_with_another_key_id(kms, key_id):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/other", TargetKeyId=other)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    for named in (other, arn_of(kms, other), "alias/other"):
        assert fails(kms.decrypt, CiphertextBlob=blob, KeyId=named) == ("IncorrectKeyException", INCORRECT_KEY)


def test_disabled_key(kms, key_id):
    arn = arn_of(kms, key_id)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key_id)
    disabled = ("DisabledException", f"{arn} is disabled.")
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"x") == disabled
    assert fails(kms.decrypt, CiphertextBlob=blob) == disabled
    assert fails(kms.generate_data_key, KeyId=key_id, KeySpec="AES_256") == disabled
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"x", DryRun=True) == disabled  # DryRun reports the real error
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_dry_run_encrypt(kms, key_id):
    assert fails(kms.encrypt, KeyId=key_id, Plaintext=b"x", DryRun=True) == (
        "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")


# --- ReEncrypt --------------------------------------------------------------------------------
def test_re_encrypt_changes_the_context(kms, key_id):
    material = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"moving", EncryptionContext={"v": "1"})["CiphertextBlob"]
    out = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"v": "1"}, DestinationKeyId=key_id,
                         DestinationEncryptionContext={"v": "2"})
    arn = arn_of(kms, key_id)
    del out["ResponseMetadata"]
    new_blob = out.pop("CiphertextBlob")
    assert out == {"SourceKeyId": arn, "KeyId": arn, "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                   "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "SourceKeyMaterialId": material,
                   "DestinationKeyMaterialId": material}
    assert kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"v": "2"})["Plaintext"] == b"moving"
    invalid_ciphertext(kms.decrypt, CiphertextBlob=new_blob, EncryptionContext={"v": "1"})


def test_re_encrypt_to_another_key(kms, key_id):
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"moving")["CiphertextBlob"]
    out = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=key_id, DestinationKeyId=other["KeyId"])
    assert (out["SourceKeyId"], out["KeyId"]) == (arn_of(kms, key_id), other["Arn"])
    assert out["DestinationKeyMaterialId"] == other["CurrentKeyMaterialId"] != out["SourceKeyMaterialId"]
    decrypted = kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
    assert (decrypted["Plaintext"], decrypted["KeyId"]) == (b"moving", other["Arn"])
    # the new blob names the destination key, so the source key is now the wrong one
    assert fails(kms.decrypt, CiphertextBlob=out["CiphertextBlob"], KeyId=key_id) == (
        "IncorrectKeyException", INCORRECT_KEY)


def test_re_encrypt_errors(kms, key_id):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"a": "b"})["CiphertextBlob"]
    invalid_ciphertext(kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=other,
                       SourceEncryptionContext={"a": "B"})
    invalid_ciphertext(kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=other)
    assert fails(kms.re_encrypt, CiphertextBlob=blob, SourceKeyId=other, DestinationKeyId=other,
                 SourceEncryptionContext={"a": "b"}) == ("IncorrectKeyException", INCORRECT_KEY)


# --- GenerateDataKey(WithoutPlaintext) -----------------------------------------------------------
@pytest.mark.parametrize("kwargs, length", [({"KeySpec": "AES_128"}, 16), ({"KeySpec": "AES_256"}, 32),
                                            ({"NumberOfBytes": 1}, 1), ({"NumberOfBytes": 1024}, 1024)])
def test_generate_data_key(kms, key_id, kwargs, length):
    out = kms.generate_data_key(KeyId=key_id, EncryptionContext={"k": "v"}, **kwargs)
    assert len(out["Plaintext"]) == length
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == out["Plaintext"]


def test_data_keys_are_fresh_each_call(kms, key_id):
    """Each data key is drawn from the kernel when it is asked for: no two alike, of the length asked."""
    keys = [kms.generate_data_key(KeyId=key_id, KeySpec=spec)["Plaintext"] for spec in ("AES_256", "AES_128") * 10]
    assert [len(k) for k in keys] == [32, 16] * 10
    assert len(set(keys)) == 20


@pytest.mark.parametrize("kwargs", [{}, {"KeySpec": "AES_256", "NumberOfBytes": 32}], ids=["neither", "both"])
def test_generate_data_key_needs_exactly_one_size(kms, key_id, kwargs):
    assert fails(kms.generate_data_key, KeyId=key_id, **kwargs) == ("ValidationException", EITHER)
    assert fails(kms.generate_data_key_without_plaintext, KeyId=key_id, **kwargs) == ("ValidationException", EITHER)


@pytest.mark.parametrize("size, phrase", [(0, "greater than or equal to 1"), (1025, "less than or equal to 1024")])
def test_generate_data_key_size_limits(raw_kms, key_id, size, phrase):
    assert fails(raw_kms.generate_data_key, KeyId=key_id, NumberOfBytes=size) == (
        "ValidationException", bad_number_of_bytes(size, phrase))


def test_generate_data_key_without_plaintext(kms, key_id):
    out = kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256")
    del out["ResponseMetadata"]
    assert set(out) == {"CiphertextBlob", "KeyId", "KeyMaterialId"}
    assert len(kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"]) == 32


# --- GenerateRandom -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 1024])
def test_generate_random(kms, size):
    first, second = (kms.generate_random(NumberOfBytes=size)["Plaintext"] for _ in range(2))
    assert len(first) == len(second) == size
    if size > 1:
        assert first != second


@pytest.mark.parametrize("kwargs, message", [
    ({"NumberOfBytes": 0}, bad_number_of_bytes(0, "greater than or equal to 1")),
    ({"NumberOfBytes": 1025}, bad_number_of_bytes(1025, "less than or equal to 1024")),
    ({}, "NumberOfBytes is required."),
], ids=["zero", "1025", "missing"])
def test_generate_random_errors(raw_kms, kwargs, message):
    assert fails(raw_kms.generate_random, **kwargs) == ("ValidationException", message)


# --- property: Decrypt inverts Encrypt ---------------------------------------------------------------
@pytest.fixture(scope="module")
def property_key(trentd_server):
    client = trentd_server.client(access_key="424242424242", secret_key="x")
    return client, client.create_key()["KeyMetadata"]["KeyId"]


contexts = st.dictionaries(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=24), max_size=4)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plaintext=st.binary(min_size=1, max_size=4096), context=contexts)
def test_decrypt_inverts_encrypt(property_key, plaintext, context):
    client, key_id = property_key
    blob = client.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == plaintext
    invalid_ciphertext(client.decrypt, CiphertextBlob=blob, EncryptionContext={**context, "\x00extra": "x"})


def test_decrypt_with_another_key_is_incorrect_key_before_its_usage(kms, key_id):
    """AWS compares the KeyId with the ciphertext's key before looking at the key's usage."""
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    message = "The key ID in the request does not identify a CMK that can perform this operation."
    with pytest.raises(kms.exceptions.IncorrectKeyException) as excinfo:
        kms.decrypt(CiphertextBlob=blob, KeyId=hmac_key)
    assert excinfo.value.response["Error"]["Message"] == message
    with pytest.raises(kms.exceptions.IncorrectKeyException) as excinfo:
        kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=hmac_key, DestinationKeyId=key_id)
    assert excinfo.value.response["Error"]["Message"] == message
