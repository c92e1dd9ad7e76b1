"""The AWS JSON 1.1 wire protocol, with raw HTTP: hostile bodies, routing, limits, response shape.

Requests are signed with botocore's own SigV4Auth (fake credentials: the session server runs in
--dev mode) and sent byte for byte with http.client, so the server sees exactly what a test
writes. ``send`` checks what every response must satisfy (no 500, no traceback, RequestId,
Content-Type, error body shape); the tests check the rest.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.loaders import Loader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trentd.kms.api import OPERATIONS

pytestmark = pytest.mark.one_store  # the wire protocol: nothing here depends on the store

JSON_11 = "application/x-amz-json-1.1"
MAX_BODY = 512 * 1024
MODELLED = sorted(Loader().load_service_model("kms", "service-2")["operations"])
NOT_IMPLEMENTED = sorted(set(MODELLED) - set(OPERATIONS))


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error(self) -> tuple[int, str, str | None]:
        """(status, __type, message or None when the body has none)."""
        return self.status, self.json["__type"], self.json.get("message")


def check_invariants(reply: Reply) -> Reply:
    assert reply.status != 500 and reply.status < 500, reply
    assert b"Traceback" not in reply.body and b'File "' not in reply.body, reply
    assert reply.headers.get("content-type") == JSON_11, reply.headers
    assert uuid.UUID(reply.headers["x-amzn-requestid"]), reply.headers
    assert int(reply.headers["content-length"]) == len(reply.body)
    if reply.status != 200:
        body = reply.json
        assert set(body) <= {"__type", "message"} and isinstance(body["__type"], str), body
    return reply


def exchange(url: str, method: str, headers: dict, body: bytes) -> Reply:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, "/", body=body, headers=headers)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def send(server, target: str, body: bytes | dict = b"{}", *, account: str = "123456789012") -> Reply:
    """POST a body signed by botocore for ``account`` (the dev server trusts any secret)."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.url + "/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": JSON_11})
    SigV4Auth(Credentials(account, "dev-secret"), "kms", "us-east-1").add_auth(request)
    return check_invariants(exchange(server.url, "POST", dict(request.headers), body))


def op(name: str) -> str:
    return f"TrentService.{name}"


# --- malformed JSON ---------------------------------------------------------------------------
NOT_JSON = "Request body is not valid JSON"


@pytest.mark.parametrize("body, message", [
    (b"{", NOT_JSON),
    (b'{"Limit": 1,}', NOT_JSON),
    (b"{} {}", NOT_JSON),
    (b"\xef\xbb\xbf{}", NOT_JSON),  # a byte-order mark
    (b"[]", "Start of list found where not expected"),
    (b'"ListKeys"', "Request body must be a JSON object"),
    (b"42", "Request body must be a JSON object"),
    (b"null", "Request body must be a JSON object"),
    (b"[" * 100_000, NOT_JSON),  # deep nesting: no RecursionError, no 500
    (b"{" * 100_000, NOT_JSON),
    (b'{"Limit": 1, "x": ' + b"[" * 500 + b"]" * 500 + b"}", "JSON nesting exceeds the maximum depth of 64"),
    (b'{"Marker": "\xff"}', NOT_JSON),  # invalid UTF-8
    (b'{"Marker": "\xed\xa0\x80"}', NOT_JSON),  # a surrogate encoded as UTF-8
    (b'{"Marker": "\\ud800"}', NOT_JSON),  # an escaped lone surrogate
    (b'{"Limit": NaN}', NOT_JSON),
    (b'{"Limit": Infinity}', NOT_JSON),
    (b'{"Limit": ' + b"9" * 5000 + b"}", NOT_JSON),  # Python's int parser refuses > 4300 digits
    (b'{"Limit": 1, "Limit": 2}', "Duplicate key 'Limit' in JSON object"),
    (b'{"Limit": 1, "Marker": {"a": 1, "a": 2}}', "Duplicate key 'a' in JSON object"),
], ids=lambda v: v[:24].decode("latin-1") if isinstance(v, bytes) else None)
def test_malformed_json_is_a_serialization_error(trentd_server, body, message):
    assert send(trentd_server, op("ListKeys"), body).error == (400, "SerializationException", message)


def test_duplicate_text_inside_a_string_is_not_a_duplicate_key(trentd_server, account):
    body = b'{"Description": "{\\"a\\": 1, \\"a\\": 2}"}'
    reply = send(trentd_server, op("CreateKey"), body, account=account)
    assert reply.status == 200 and reply.json["KeyMetadata"]["Description"] == '{"a": 1, "a": 2}'


@pytest.mark.parametrize("target, body, message", [
    ("GenerateRandom", b'{"NumberOfBytes": "32"}', "STRING_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": true}', "TRUE_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": false}', "FALSE_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": 32.0}', "DECIMAL_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": 1e2}', "DECIMAL_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": 99999999999}', "NUMBER_VALUE can not be converted to an Integer"),
    ("GenerateRandom", b'{"NumberOfBytes": [32]}', "Start of list found where not expected"),
    ("DescribeKey", b'{"KeyId": 5}', "NUMBER_VALUE can not be converted to a String"),
    ("DescribeKey", b'{"KeyId": {"id": "x"}}', "Start of structure or map found where not expected"),
    ("CreateKey", b'{"MultiRegion": "true"}', "STRING_VALUE can not be converted to a Boolean"),
    ("CreateKey", b'{"Tags": {"TagKey": "a"}}', "Start of structure or map found where not expected"),
    ("Encrypt", b'{"KeyId": "k", "Plaintext": "abc"}',
     "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
    ("Encrypt", b'{"KeyId": "k", "Plaintext": "@@@@"}', "only base-64-encoded strings are convertible to bytes"),
    ("Encrypt", b'{"KeyId": "k", "Plaintext": "aGk=aGk="}', "only base-64-encoded strings are convertible to bytes"),
    ("Encrypt", b'{"KeyId": "k", "Plaintext": "aGk-"}', "only base-64-encoded strings are convertible to bytes"),
    ("Encrypt", b'{"KeyId": "k", "Plaintext": 12}', "only base-64-encoded strings are convertible to bytes"),
])
def test_wrong_types_are_serialization_errors(trentd_server, target, body, message):
    assert send(trentd_server, op(target), body).error == (400, "SerializationException", message)


def test_type_errors_win_over_missing_members(trentd_server):
    # Encrypt lacks its required Plaintext, but the wrongly typed KeyId is reported first.
    reply = send(trentd_server, op("Encrypt"), b'{"KeyId": true}')
    assert reply.error == (400, "SerializationException", "TRUE_VALUE can not be converted to a String")


def test_null_means_absent_and_unknown_members_are_ignored(trentd_server, account):
    assert send(trentd_server, op("GenerateRandom"), b'{"NumberOfBytes": null}').error == (
        400, "ValidationException", "NumberOfBytes is required.")
    reply = send(trentd_server, op("ListKeys"), b'{"Limit": null, "NoSuchMember": [1, {"x": 2}]}', account=account)
    assert (reply.status, reply.json) == (200, {"Keys": [], "Truncated": False})


def test_empty_body_means_no_input(trentd_server, account):
    reply = send(trentd_server, op("ListKeys"), b"", account=account)
    assert (reply.status, reply.json) == (200, {"Keys": [], "Truncated": False})


# --- routing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, message", [
    ("TrentService.NoSuchOperation", "Unknown operation NoSuchOperation."),
    ("TrentService.listKeys", "Unknown operation listKeys."),
    ("TrentService.", "Unknown operation (none)."),
    ("ListKeys", "Unknown operation (none)."),
    ("Kms.ListKeys", "Unknown operation (none)."),
])
def test_unknown_target(trentd_server, target, message):
    assert send(trentd_server, target).error == (400, "UnknownOperationException", message)


@pytest.mark.skipif(not NOT_IMPLEMENTED, reason="every modelled operation is implemented")
@pytest.mark.parametrize("name", NOT_IMPLEMENTED)
def test_modelled_but_unimplemented_operation(trentd_server, name):
    assert send(trentd_server, op(name)).error == (
        400, "UnsupportedOperationException", f"{name} is not supported by trentd yet.")


# --- size limits -------------------------------------------------------------------------------------
def test_body_over_512_kib_is_413(trentd_server):
    assert send(trentd_server, op("ListKeys"), b"{}" + b" " * (MAX_BODY - 1)).error == (
        413, "RequestEntityTooLargeException", f"Request body exceeds the maximum allowed size of {MAX_BODY} bytes.")


def test_body_of_exactly_512_kib_is_read(trentd_server, account):
    reply = send(trentd_server, op("ListKeys"), b"{}" + b" " * (MAX_BODY - 2), account=account)
    assert (reply.status, reply.json) == (200, {"Keys": [], "Truncated": False})


def test_declared_oversize_body_is_refused_before_it_arrives(trentd_server):
    # Content-Length says 10 MiB and nothing follows: the answer must come at once, not after a read timeout.
    parts = urlsplit(trentd_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.putrequest("POST", "/")
        for name, value in (("Content-Type", JSON_11), ("X-Amz-Target", op("ListKeys")),
                            ("Content-Length", str(10 * 1024 * 1024))):
            conn.putheader(name, value)
        conn.endheaders()
        started = time.monotonic()
        resp = conn.getresponse()
        reply = check_invariants(Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()))
    finally:
        conn.close()
    assert reply.error[:2] == (413, "RequestEntityTooLargeException")
    assert time.monotonic() - started < 4


def test_over_long_value_in_a_legal_body_is_a_validation_error(trentd_server):
    reply = send(trentd_server, op("CreateKey"), {"Description": "d" * 8193})
    assert reply.error == (400, "ValidationException", "1 validation error detected: Value '" + "d" * 8193 +
                           "' at 'description' failed to satisfy constraint: Member must have length less than or "
                           "equal to 8192")


# --- response shape ------------------------------------------------------------------------------------
def test_timestamps_are_json_numbers(trentd_server, account):
    before = time.time()
    created = send(trentd_server, op("CreateKey"), {"Description": "ts"}, account=account)
    metadata = created.json["KeyMetadata"]
    assert type(metadata["CreationDate"]) in (int, float)
    assert before - 5 <= metadata["CreationDate"] <= time.time() + 5
    assert re.search(rb'"CreationDate":\s*[0-9]', created.body)
    scheduled = send(trentd_server, op("ScheduleKeyDeletion"), {"KeyId": metadata["KeyId"], "PendingWindowInDays": 7},
                     account=account)
    assert type(scheduled.json["DeletionDate"]) in (int, float)
    assert abs(scheduled.json["DeletionDate"] - (metadata["CreationDate"] + 7 * 86400)) < 60


def test_blobs_are_standard_base64(trentd_server, account):
    key_id = send(trentd_server, op("CreateKey"), account=account).json["KeyMetadata"]["KeyId"]
    plaintext = bytes([0xFB, 0xFF, 0xBF] * 10)  # encodes to '+' and '/' in the standard alphabet
    encrypted = send(trentd_server, op("Encrypt"), {"KeyId": key_id, "Plaintext": base64.b64encode(plaintext).decode()},
                     account=account).json
    assert re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", encrypted["CiphertextBlob"])
    decrypted = send(trentd_server, op("Decrypt"), {"CiphertextBlob": encrypted["CiphertextBlob"]}, account=account).json
    assert decrypted["Plaintext"] == base64.b64encode(plaintext).decode() == "+/+/" * 10


def test_operations_without_output_answer_an_empty_object(trentd_server, account):
    key_id = send(trentd_server, op("CreateKey"), account=account).json["KeyMetadata"]["KeyId"]
    calls = [
        ("CreateAlias", {"AliasName": "alias/empty", "TargetKeyId": key_id}),
        ("UpdateAlias", {"AliasName": "alias/empty", "TargetKeyId": key_id}),
        ("DeleteAlias", {"AliasName": "alias/empty"}),
        ("DisableKey", {"KeyId": key_id}),
        ("EnableKey", {"KeyId": key_id}),
        ("UpdateKeyDescription", {"KeyId": key_id, "Description": "new"}),
        ("TagResource", {"KeyId": key_id, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
        ("UntagResource", {"KeyId": key_id, "TagKeys": ["k"]}),
    ]
    for name, body in calls:
        reply = send(trentd_server, op(name), body, account=account)
        assert reply.status == 200, (name, reply)
        assert reply.body in (b"", b"{}"), (name, reply.body)


def test_error_without_message_has_no_message_member(trentd_server, account):
    reply = send(trentd_server, op("Decrypt"), {"CiphertextBlob": "AAAAAAAAAAAAAAAA"}, account=account)
    assert (reply.status, reply.json) == (400, {"__type": "InvalidCiphertextException"})


def test_request_ids_are_unique(trentd_server):
    ids = {send(trentd_server, op("GenerateRandom"), {"NumberOfBytes": 1}).headers["x-amzn-requestid"]
           for _ in range(5)}
    assert len(ids) == 5


# --- never a 500 ---------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
MEMBER_NAMES = st.sampled_from(["KeyId", "Plaintext", "CiphertextBlob", "NumberOfBytes", "KeySpec", "Limit",
                                "Marker", "EncryptionContext", "AliasName", "TargetKeyId", "Tags", "Description",
                                "DryRun", "GrantTokens", "PendingWindowInDays", "KeyUsage", "Policy"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(OPERATIONS)), body=st.dictionaries(MEMBER_NAMES, json_values, max_size=5),
       account=st.integers(10**11, 10**12 - 1))
def test_random_bodies_never_crash_the_server(trentd_server, name, body, account):
    reply = send(trentd_server, op(name), body, account=str(account))
    assert reply.status in (200, 400), reply


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_random_bytes_never_crash_the_server(trentd_server, body):
    reply = send(trentd_server, op("Decrypt"), body)
    assert reply.status in (200, 400), reply
