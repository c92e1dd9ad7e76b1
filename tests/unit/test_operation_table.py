"""The operation table's facts agree with what AWS states in botocore's KMS model."""

from __future__ import annotations

import re
from collections import Counter

import botocore.session

from trentd.kms.api import OPERATIONS
from trentd.kms.operations import CrossAccount

MODEL = botocore.session.get_session().get_service_model("kms")


def documented_cross_account_use(name: str) -> str | None:
    """AWS's sentence in the operation's reference: "Cross-account use: Yes|No|...", tags stripped."""
    text = re.sub(r"<[^>]+>", "", MODEL.operation_model(name).documentation)
    match = re.search(r"Cross-account use:\s*(\w+)", text)
    return match.group(1) if match else None


def test_cross_account_column_agrees_with_the_model():
    for name, row in OPERATIONS.items():
        said = documented_cross_account_use(name)
        members = set(MODEL.operation_model(name).input_shape.members)
        if row.cross_account is CrossAccount.YES:
            assert said == "Yes", name
        else:
            assert said != "Yes", name
            names_a_key = bool(members & {"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"})
            assert (row.cross_account is CrossAccount.NO) == names_a_key, name


def test_every_operation_has_a_row_and_the_three_values_count_as_aws_documents():
    assert set(OPERATIONS) == set(MODEL.operation_names)
    counts = Counter(row.cross_account for row in OPERATIONS.values())
    assert counts == {CrossAccount.YES: 21, CrossAccount.NO: 24, CrossAccount.NO_KEY: 11}
    assert OPERATIONS["ListRetirableGrants"].cross_account is CrossAccount.NO_KEY
    assert OPERATIONS["ReplicateKey"].cross_account is CrossAccount.NO
    assert OPERATIONS["Decrypt"].cross_account is CrossAccount.YES


def test_dry_run_column_agrees_with_the_model():
    for name, row in OPERATIONS.items():
        assert row.dry_run == ("DryRun" in MODEL.operation_model(name).input_shape.members), name
    assert OPERATIONS["Encrypt"].dry_run and not OPERATIONS["ListKeys"].dry_run


def test_each_row_names_its_family_module_and_a_handler_from_it():
    from trentd.kms.service import HANDLERS

    for name, row in OPERATIONS.items():
        assert HANDLERS[name].__module__ == f"trentd.kms.{row.family}", name
    assert OPERATIONS["Encrypt"].family == "encryption" and OPERATIONS["CreateGrant"].family == "grants"


def test_inline_operations_are_cached_and_cached_ones_are_cryptographic_reads():
    inline = {name for name, row in OPERATIONS.items() if row.inline}
    cached = {name for name, row in OPERATIONS.items() if row.cached}
    assert inline == {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                      "GenerateMac", "VerifyMac", "Sign", "Verify"}
    assert cached == inline | {"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"}
    # a cached operation may be retried once with fresh reads: it must write nothing (kms/api.py run)
    assert all(OPERATIONS[name].tracked for name in cached)


def test_tracked_operations_are_the_ones_aws_records_last_use_for():
    tracked = {name for name, row in OPERATIONS.items() if row.tracked}
    assert tracked == {"Decrypt", "DeriveSharedSecret", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
                       "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
                       "ReEncrypt", "Sign", "Verify", "VerifyMac", "Encapsulate", "Decapsulate"}


def test_condition_key_defaults_come_from_the_rows():
    from trentd.kms import context_keys

    assert OPERATIONS["Sign"].condition_defaults == {"kms:messagetype": "RAW"}
    assert OPERATIONS["ScheduleKeyDeletion"].condition_defaults == {"kms:schedulekeydeletionpendingwindowindays": 30}
    assert context_keys.DEFAULTS == {row.action: row.condition_defaults for row in OPERATIONS.values()
                                     if row.condition_defaults}


def test_audit_column_read_only_and_members_shown_exist_in_the_model():
    read_only = {name for name, row in OPERATIONS.items() if row.audit.read_only}
    assert {"Encrypt", "GenerateRandom", "DescribeKey", "ListAliases", "GetKeyLastUsage"} <= read_only
    assert not read_only & {"CreateKey", "ScheduleKeyDeletion", "CreateGrant", "PutKeyPolicy"}
    for name, row in OPERATIONS.items():
        output = MODEL.operation_model(name).output_shape
        assert set(row.audit.response_members) <= set(output.members if output else ()), name
        assert set(row.audit.request_defaults) <= set(MODEL.operation_model(name).input_shape.members), name
        if row.tracked:  # cryptography: its answer carries data or keys, never shown
            assert row.audit.read_only and not row.audit.response_members, name
    assert OPERATIONS["CreateGrant"].audit.response_members == ("GrantId", "GrantToken")
    assert OPERATIONS["Decrypt"].audit.request_defaults == {"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}


# --- the key states each operation accepts (kms-api.md §3.4, "Per-operation outcome") ----------
def _key(state: str, origin: str = "AWS_KMS"):
    from trentd.store.records import KeyRecord

    return KeyRecord("111122223333", "us-east-1", "1234abcd-12ab-34cd-56ef-1234567890ab", 1.0, "", "SYMMETRIC_DEFAULT",
                     "ENCRYPT_DECRYPT", origin, state, None, False, "{}", None)


def _answer(rule, state: str, origin: str = "AWS_KMS") -> tuple[str, str] | None:
    from trentd.errors import AWSError

    try:
        rule.check(_key(state, origin))
    except AWSError as err:
        return err.code, err.message
    return None


def test_every_row_names_a_key_state_rule_and_the_service_reads_the_same():
    from trentd.keydomain.states import RULES
    from trentd.kms.service import KEY_STATES

    for name, row in OPERATIONS.items():
        assert RULES[row.key_states.name] is row.key_states, name
    assert KEY_STATES == {name: row.key_states for name, row in OPERATIONS.items()}


def test_cryptographic_operations_need_an_enabled_key_and_reads_accept_any_state():
    from trentd.keydomain.states import ANY, USABLE

    usable = {name for name, row in OPERATIONS.items() if row.key_states is USABLE}
    tracked = {name for name, row in OPERATIONS.items() if row.tracked}
    assert usable == tracked | {"GetPublicKey", "CreateGrant", "EnableKeyRotation", "DisableKeyRotation",
                                "RotateKeyOnDemand"}
    reads = {name for name in OPERATIONS if name.startswith(("Describe", "List"))}
    reads |= {"GetKeyPolicy", "GetKeyLastUsage", "PutKeyPolicy", "DeleteAlias", "RetireGrant", "RevokeGrant"}
    assert all(OPERATIONS[name].key_states is ANY for name in reads), reads
    # operations that name no key have nothing to check
    assert all(row.key_states is ANY for row in OPERATIONS.values() if row.cross_account is CrossAccount.NO_KEY)


def test_the_rules_answer_with_aws_errors_and_messages():
    from trentd.keydomain.states import STATES

    arn = _key("Enabled").arn
    encrypt, tag = OPERATIONS["Encrypt"].key_states, OPERATIONS["TagResource"].key_states
    assert _answer(encrypt, "Enabled") is None
    assert _answer(encrypt, "Disabled") == ("DisabledException", f"{arn} is disabled.")
    assert _answer(encrypt, "PendingDeletion") == ("KMSInvalidStateException", f"{arn} is pending deletion.")
    assert _answer(encrypt, "PendingReplicaDeletion") == ("KMSInvalidStateException", f"{arn} is pending deletion.")
    assert _answer(encrypt, "PendingImport") == ("KMSInvalidStateException", f"{arn} is pending import.")
    assert _answer(encrypt, "Unavailable") == ("KMSInvalidStateException", f"{arn} is unavailable.")
    assert [s for s in STATES if _answer(tag, s)] == ["PendingDeletion", "PendingReplicaDeletion"]
    assert _answer(OPERATIONS["EnableKey"].key_states, "PendingImport") == (
        "KMSInvalidStateException", f"{arn} is pending import.")
    assert _answer(OPERATIONS["DisableKey"].key_states, "Disabled") is None
    cancel = OPERATIONS["CancelKeyDeletion"].key_states
    assert [s for s in STATES if not _answer(cancel, s)] == ["PendingDeletion", "PendingReplicaDeletion"]
    assert _answer(cancel, "Enabled") == ("KMSInvalidStateException", f"{arn} is not pending deletion.")
    assert _answer(OPERATIONS["GetKeyRotationStatus"].key_states, "PendingImport", "EXTERNAL") == (
        "UnsupportedOperationException", f"{arn} origin is EXTERNAL which is not valid for this operation.")
    assert _answer(OPERATIONS["GetKeyRotationStatus"].key_states, "PendingDeletion") is None
    assert all(_answer(OPERATIONS["DescribeKey"].key_states, s) is None for s in STATES)
