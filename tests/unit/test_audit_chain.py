"""The audit log's hash chain, sink and redaction rules, without a server."""

from __future__ import annotations

import threading
from concurrent.futures import wait
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from botocore.loaders import Loader

from trentd.audit import chain, events, redact
from trentd.audit.sink import AuditSink, AuditUnavailable
from trentd.kms.operations import OPERATIONS


def _event(i: int) -> dict:
    return {"eventName": "Encrypt", "eventID": f"id-{i}", "requestParameters": {"keyId": f"k{i}",
            "encryptionContext": {"b": "2", "a": "ü"}}, "responseElements": None, "readOnly": True}


def _write(path: Path, n: int, start_seq: int = 0, prev: str = chain.ZERO) -> str:
    lines = []
    for i in range(n):
        line, prev = chain.encode(_event(start_seq + i), start_seq + i, prev)
        lines.append(line)
    path.write_bytes(b"".join(lines))
    return prev


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def log_file(tmp_path) -> Path:
    path = tmp_path / "host_20250101T000000Z_1_abcd.0000.jsonl"
    _write(path, 5)
    return path


def test_untouched_chain_verifies(log_file):
    report = chain.verify_files([log_file])
    assert report.ok, report.as_dict()
    assert report.files[0].events == 5 and report.files[0].first_seq == 0 and report.files[0].last_seq == 4


def test_lines_are_canonical_json_with_the_chain_last(log_file):
    record = orjson.loads(_lines(log_file)[0])
    assert list(record)[-1] == chain.CHAIN_KEY
    assert record[chain.CHAIN_KEY]["seq"] == 0 and record[chain.CHAIN_KEY]["prev"] == chain.ZERO
    body = dict(record)
    body.pop(chain.CHAIN_KEY)
    assert record[chain.CHAIN_KEY]["hash"] == chain.link(chain.ZERO, 0, chain.canonical(body))


@pytest.mark.parametrize("tamper, line", [
    (lambda ls: [ls[0], ls[1], ls[2].replace(b'"k2"', b'"k9"'), ls[3], ls[4]], 3),  # edited value
    (lambda ls: [ls[0], ls[1], ls[3], ls[4]], 3),  # deleted line
    (lambda ls: [ls[0], ls[1], ls[2], ls[2], ls[3], ls[4]], 4),  # duplicated (inserted) line
    (lambda ls: [ls[0], ls[2], ls[1], ls[3], ls[4]], 2),  # swapped lines
    (lambda ls: ls[1:], 1),  # first line of the chain deleted
    (lambda ls: [ls[0], ls[1].replace(b'"Encrypt"', b'"Decrypt"'), *ls[2:]], 2),
    (lambda ls: [ls[0], ls[1].replace(b',"readOnly"', b', "readOnly"'), *ls[2:]], 2),  # reformatted
    (lambda ls: [ls[0], ls[1].replace(b'"seq":1', b'"seq":7'), *ls[2:]], 2),  # renumbered
    (lambda ls: [ls[0], b"not json\n", *ls[1:]], 2),
])
def test_tampering_is_detected_at_the_first_bad_line(log_file, tamper, line):
    log_file.write_bytes(b"".join(tamper(_lines(log_file))))
    report = chain.verify_files([log_file])
    assert not report.ok
    assert report.error["line"] == line and report.error["file"] == str(log_file), report.error


def test_recomputed_tail_cannot_hide_an_edit_in_the_middle(log_file):
    lines = _lines(log_file)
    record = orjson.loads(lines[1])
    record["requestParameters"]["keyId"] = "forged"
    record.pop(chain.CHAIN_KEY)
    forged, _ = chain.encode(record, 1, orjson.loads(lines[0])[chain.CHAIN_KEY]["hash"])
    log_file.write_bytes(lines[0] + forged + b"".join(lines[2:]))
    report = chain.verify_files([log_file])
    assert not report.ok and report.error["line"] == 3


def test_parts_link_and_a_missing_part_is_found(tmp_path):
    first = tmp_path / "c.0000.jsonl"
    second = tmp_path / "c.0001.jsonl"
    third = tmp_path / "c.0002.jsonl"
    head = _write(first, 3)
    head = _write(second, 2, 3, head)
    _write(third, 2, 5, head)
    assert chain.verify_files([third, first, second]).ok  # order of arguments does not matter
    report = chain.verify_files([first, third])
    assert not report.ok and report.error["file"] == str(third) and report.error["line"] == 1
    alone = chain.verify_files([third])
    assert alone.ok and alone.warnings  # a later part alone: its first link is taken on trust


def test_incomplete_last_line_is_a_warning(log_file):
    with open(log_file, "ab") as f:
        f.write(b'{"eventName":"Enc')
    report = chain.verify_files([log_file])
    assert report.ok and "incomplete" in report.warnings[0]


# --- the sink ------------------------------------------------------------------------------------
def test_group_commit_from_many_threads(tmp_path):
    sink = AuditSink(tmp_path / "audit")
    futures = []

    def produce(t):
        for i in range(200):
            futures.append(sink.submit(_event(t * 1000 + i)))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait(futures, timeout=30)
    assert all(f.result() is True for f in futures)
    sink.close()
    assert sink.stats["events"] == 1600 and sink.stats["batches"] < 1600
    files = sorted((tmp_path / "audit").glob("*.jsonl"))
    assert chain.verify_files(files).ok
    assert sum(len(_lines(f)) for f in files) == 1600
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)


def test_event_loop_callers_are_committed_in_batches(tmp_path):
    """Events recorded from the event loop reach the writer as whole batches (what arrived while
    the previous batch was written), each resolved once it is durable, in one valid chain."""
    import asyncio

    sink = AuditSink(tmp_path / "audit")

    async def burst():
        return await asyncio.gather(*(sink.record(_event(i)) for i in range(300)))

    assert asyncio.run(burst()) == [True] * 300
    sink.close()
    assert sink.stats["events"] == 300 and sink.stats["batches"] <= 3  # 300 callers, not 300 fsyncs
    files = sorted((tmp_path / "audit").glob("*.jsonl"))
    assert chain.verify_files(files).ok and sum(len(_lines(f)) for f in files) == 300


def test_event_loop_callers_fail_closed_when_the_log_cannot_be_written(tmp_path):
    import asyncio

    blocker = tmp_path / "audit"
    blocker.write_text("a file where the audit directory should be")
    sink = AuditSink(blocker)

    async def burst():
        return await asyncio.gather(*(sink.record(_event(i)) for i in range(20)), return_exceptions=True)

    outcomes = asyncio.run(burst())
    assert all(isinstance(o, AuditUnavailable) for o in outcomes), outcomes
    blocker.unlink()  # writable again: the refused events are written late, in a valid chain
    sink.close()
    files = sorted(blocker.glob("*.jsonl"))
    lines = [orjson.loads(line) for f in files for line in _lines(f)]
    assert len(lines) == 20 and all(e["additionalEventData"]["auditDelivery"] == "late" for e in lines)
    assert chain.verify_files(files).ok


def test_rotation_continues_the_chain(tmp_path):
    sink = AuditSink(tmp_path / "audit", max_bytes=600)
    for i in range(12):
        sink.submit(_event(i)).result(10)
    sink.close()
    files = sorted((tmp_path / "audit").glob("*.jsonl"))
    assert len(files) > 3
    report = chain.verify_files(files)
    assert report.ok and sum(f.events for f in report.files) == 12 and not report.warnings


def test_fail_closed_then_recovers(tmp_path):
    directory = tmp_path / "audit"
    sink = AuditSink(directory)
    sink.submit(_event(0)).result(10)
    directory.rename(tmp_path / "moved")
    directory.write_text("a file where the directory should be")
    with pytest.raises(AuditUnavailable):
        sink.submit(_event(1)).result(10)
    directory.unlink()
    assert sink.submit(_event(2)).result(10) is True
    sink.close()
    files = sorted((tmp_path / "moved").glob("*.jsonl")) + sorted(directory.glob("*.jsonl"))
    report = chain.verify_files(files)
    assert report.ok, report.as_dict()
    written = [orjson.loads(line) for f in files for line in _lines(f)]
    assert [e["eventID"] for e in written] == ["id-0", "id-1", "id-2"]
    assert written[1]["additionalEventData"] == {"auditDelivery": "late", "callerAnswer": "KMSInternalException"}


def test_fail_open_answers_and_writes_later(tmp_path):
    directory = tmp_path / "audit"
    sink = AuditSink(directory, fail_open=True)
    sink.submit(_event(0)).result(10)
    sink._close_file()
    directory.rename(tmp_path / "moved")
    directory.write_text("x")
    assert sink.submit(_event(1)).result(10) is False
    directory.unlink()
    assert sink.submit(_event(2)).result(10) is True
    sink.close()
    assert sink.stats["failures"] == 1 and sink.stats["events"] == 3


def test_a_deleted_file_is_noticed(tmp_path):
    sink = AuditSink(tmp_path / "audit")
    sink.submit(_event(0)).result(10)
    sink.current_path.unlink()
    sink.submit(_event(1)).result(10)
    sink.close()
    (remaining,) = (tmp_path / "audit").glob("*.jsonl")
    assert remaining.name.endswith(".0001.jsonl") and len(_lines(remaining)) == 1


# --- redaction -----------------------------------------------------------------------------------
def _model():
    return Loader().load_service_model("kms", "service-2")


def test_lists_are_disjoint():
    assert not (events.LOGGED & events.HASHED) and not (events.LOGGED & events.OMITTED)
    assert not (events.HASHED & events.OMITTED)


def test_every_input_member_of_the_model_is_classified():
    """Default deny works either way, but a new model member should be a conscious decision."""
    model = _model()
    shapes = model["shapes"]
    unclassified, blobs_logged = set(), set()

    def walk(shape_name, seen):
        shape = shapes[shape_name]
        if shape_name in seen:
            return
        seen = seen | {shape_name}
        if shape["type"] == "structure":
            for member, spec in shape["members"].items():
                if member not in events.LOGGED | events.HASHED | events.OMITTED:
                    unclassified.add(member)
                if member in events.LOGGED:
                    if shapes[spec["shape"]]["type"] == "blob":
                        blobs_logged.add(member)
                    walk(spec["shape"], seen)
        elif shape["type"] == "list":
            walk(shape["member"]["shape"], seen)
        elif shape["type"] == "map":
            walk(shape["value"]["shape"], seen)

    for spec in model["operations"].values():
        if "input" in spec:
            walk(spec["input"]["shape"], frozenset())
    assert not unclassified, f"classify these request members in audit/events.py: {sorted(unclassified)}"
    assert not blobs_logged


def test_model_sensitive_members_are_never_logged():
    shapes = _model()["shapes"]
    for spec in shapes.values():
        for member, m in spec.get("members", {}).items():
            if shapes[m["shape"]].get("sensitive"):
                assert member not in events.LOGGED, member


HASHER = events.Hasher(b"k" * 32)
# What the audit event shows of each operation: its row's audit facts (kms/operations.py).
AUDIT = {name: row.audit for name, row in OPERATIONS.items()}


def test_encrypt_parameters():
    params = events.request_parameters("Encrypt", {
        "KeyId": "alias/app", "Plaintext": b"secret", "EncryptionContext": {"Dept": "Eng"},
        "GrantTokens": ["tok-1"], "DryRun": False}, HASHER, AUDIT["Encrypt"].request_defaults)
    assert params == {"keyId": "alias/app", "encryptionContext": {"Dept": "Eng"},
                      "grantTokens": [HASHER("tok-1")], "dryRun": False,
                      "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    assert params["grantTokens"][0].startswith("hmac-sha256:") and len(params["grantTokens"][0]) == 12 + 64


def test_decrypt_always_shows_the_algorithm_and_never_the_ciphertext():
    params = events.request_parameters("Decrypt", {"CiphertextBlob": b"\x01" * 40}, HASHER,
                                       AUDIT["Decrypt"].request_defaults)
    assert params == {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}


def test_nested_structures_lists_and_timestamps():
    params = events.request_parameters("CreateGrant", {
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "GranteePrincipal": "arn:aws:iam::111122223333:user/bob",
        "Operations": ["Encrypt"], "Constraints": {"EncryptionContextSubset": {"Key": "v"}}}, HASHER)
    assert params["constraints"] == {"encryptionContextSubset": {"Key": "v"}}
    params = events.request_parameters("CreateKey", {"Tags": [{"TagKey": "a", "TagValue": "b"}],
                                                     "Policy": "{}"}, HASHER)
    assert params == {"tags": [{"tagKey": "a", "tagValue": "b"}], "policy": "{}"}
    params = events.request_parameters("ImportKeyMaterial", {
        "KeyId": "k", "ImportToken": b"t", "EncryptedKeyMaterial": b"m", "ValidTo": 1747806465.0}, HASHER)
    assert params == {"keyId": "k", "validTo": "2025-05-21T05:47:45Z"}


def test_secrets_of_other_operations_are_omitted():
    for operation, request in [
        ("Sign", {"KeyId": "k", "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}),
        ("Verify", {"KeyId": "k", "Message": b"m", "Signature": b"s", "SigningAlgorithm": "ECDSA_SHA_256"}),
        ("VerifyMac", {"KeyId": "k", "Message": b"m", "Mac": b"s", "MacAlgorithm": "HMAC_SHA_256"}),
        ("RetireGrant", {"GrantToken": "the-token"}),
        ("CreateCustomKeyStore", {"CustomKeyStoreName": "n", "KeyStorePassword": "pw",
                                  "XksProxyAuthenticationCredential": {"AccessKeyId": "a", "RawSecretAccessKey": "s"}}),
    ]:
        text = orjson.dumps(events.request_parameters(operation, request, HASHER))
        for secret in (b'"m"', b'"s"', b"the-token", b"pw", b"RawSecret"):
            assert secret not in text, (operation, text)


def test_response_elements_only_for_listed_management_operations():
    meta = {"AWSAccountId": "111122223333", "KeyId": "k", "Arn": "arn:aws:kms:us-east-1:111122223333:key/k",
            "CreationDate": 1660171107.0, "Enabled": True, "KeyState": "Enabled"}
    out = events.response_elements("CreateKey", {"KeyMetadata": meta}, HASHER, [], AUDIT["CreateKey"].response_members)
    assert out == {"keyMetadata": {"AWSAccountId": "111122223333", "keyId": "k", "arn": meta["Arn"],
                                   "creationDate": "2022-08-10T22:38:27Z", "enabled": True, "keyState": "Enabled"}}
    assert events.response_elements("Encrypt", {"CiphertextBlob": b"x", "KeyId": "k"}, HASHER, []) is None
    grant = events.response_elements("CreateGrant", {"GrantId": "g", "GrantToken": "t"}, HASHER, ["arn:k"],
                                     AUDIT["CreateGrant"].response_members)
    assert grant == {"grantId": "g", "grantToken": HASHER("t"), "keyId": "arn:k"}


def test_validation_messages_lose_the_values_they_echo():
    message = ("2 validation errors detected: Value '[tok-a, tok-b]' at 'grantTokens' failed to satisfy "
               "constraint: Member must have length less than or equal to 10; Value 'x' at 'keyId' failed")
    scrubbed = events.scrub_message(message)
    assert "tok-a" not in scrubbed and "Value at 'grantTokens'" in scrubbed and "Value at 'keyId'" in scrubbed


@pytest.mark.parametrize("arn, kind, extra", [
    ("arn:aws:iam::111122223333:user/Alice", "IAMUser", {"userName": "Alice"}),
    ("arn:aws:iam::111122223333:root", "Root", {"principalId": "111122223333"}),
    ("arn:aws:iam::111122223333:role/Deployer", "AssumedRole", {}),
    ("arn:aws:sts::111122223333:assumed-role/Deployer/ci", "AssumedRole", {}),
])
def test_user_identity(arn, kind, extra):
    caller = SimpleNamespace(principal_arn=arn, account="111122223333", access_key_id="AKIAEXAMPLE")
    ident = events.user_identity(caller, None)
    assert ident["type"] == kind and ident["arn"] == arn and ident["accountId"] == "111122223333"
    assert ident["accessKeyId"] == "AKIAEXAMPLE" and ident["principalId"]
    for k, v in extra.items():
        assert ident[k] == v
    if kind == "AssumedRole":
        issuer = ident["sessionContext"]["sessionIssuer"]
        assert issuer["arn"] == "arn:aws:iam::111122223333:role/Deployer" and issuer["type"] == "Role"


def test_unauthenticated_identity_has_only_what_is_known():
    assert events.user_identity(None, SimpleNamespace(access_key_id="AKIAUNKNOWN000000000")) == {
        "type": "Unknown", "accessKeyId": "AKIAUNKNOWN000000000"}
    assert events.user_identity(None, None) == {"type": "Unknown"}
    # not well formed: perhaps a secret in the wrong place (tests/e2e/test_audit_redaction.py);
    # --dev accepts any key id and records it
    assert events.user_identity(None, SimpleNamespace(access_key_id="AKIAUNKNOWN")) == {
        "type": "Unknown", "accessKeyId": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    assert events.user_identity(None, SimpleNamespace(access_key_id="AKIAUNKNOWN"), dev=True) == {
        "type": "Unknown", "accessKeyId": "AKIAUNKNOWN"}


SIG = "f" * 64
HEADER = f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kms/aws4_request, Signature={SIG}"


@pytest.mark.parametrize("message, header, dev, expected", [
    # the whole header echoed: only the signature goes
    (f"Authorization header requires 'SignedHeaders' parameter. Authorization={HEADER}", HEADER, False,
     f"Authorization header requires 'SignedHeaders' parameter. Authorization={HEADER.replace(SIG, redact.HIDDEN)}"),
    # an item with a quote in it is hidden whole
    (f"'{SIG}'x' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 {SIG}'x'.",
     f"AWS4-HMAC-SHA256 {SIG}'x", False,
     f"'{redact.HIDDEN}' not a valid key=value pair (missing equal-sign) in Authorization header: "
     f"'AWS4-HMAC-SHA256 {redact.HIDDEN}'."),
    # a signature in any other message, whatever its header
    (f"Presigned: X-Amz-Signature={SIG}&X-Amz-Date=1", "", False,
     f"Presigned: X-Amz-Signature={redact.HIDDEN}&X-Amz-Date=1"),
    # a Credential echo: kept in --dev, hidden whole outside it when the key is not well formed
    ("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c'",
     "", True, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
               "got 'a/b/c'"),
    ("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c'",
     "", False, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
                f"got '{redact.HIDDEN}'"),
    # nothing echoed: unchanged
    ("Request is missing Authentication Token", "", False, "Request is missing Authentication Token"),
], ids=["header", "quoted-item", "query-signature", "credential-dev", "credential", "plain"])
def test_error_messages_lose_what_they_echo(message, header, dev, expected):
    assert redact.error_message(message, header, dev) == expected
