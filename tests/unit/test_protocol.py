"""Protocol layer: parsing, validation and serialization generated from botocore's KMS model."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json

import orjson
import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import JSONParser
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trentd.errors import AWSError
from trentd.protocol import jsonio
from trentd.protocol.inputs import InputCompiler
from trentd.protocol.model import error_body, load_service

SERVICE = load_service("kms")
BOTO_MODEL = ServiceModel(Loader().load_service_model("kms", "service-2"), "kms")
OPERATIONS = sorted(BOTO_MODEL.operation_names)
SENSITIVE = object()  # marks an elided value in expected messages
ALIAS_RE = "^[a-zA-Z0-9:/_-]+$"


def parse(op: str, body) -> dict:
    return SERVICE.operation(op).parse(body if isinstance(body, bytes) else json.dumps(body).encode())


def error(op: str, body) -> AWSError:
    with pytest.raises(AWSError) as info:
        parse(op, body)
    assert info.value.status == 400
    return info.value


def message(op: str, body, code: str = "ValidationException") -> str:
    err = error(op, body)
    assert err.code == code, err.message
    return err.message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def fail(value, path: str, phrase: str) -> str:
    shown = "Value null" if value is None else "Value" if value is SENSITIVE else f"Value '{value}'"
    return f"{shown} at '{path}' failed to satisfy constraint: {phrase}"


def errors(*parts: str) -> str:
    return f"{len(parts)} validation error{'s' if len(parts) > 1 else ''} detected: " + "; ".join(parts)


def le(n, word="length"):
    return f"Member must have {word} less than or equal to {n}"


def ge(n, word="length"):
    return f"Member must have {word} greater than or equal to {n}"


NOT_NULL = "Member must not be null"


# ---------------------------------------------------------------- service surface


def test_service_surface():
    assert (SERVICE.name, SERVICE.target_prefix) == ("kms", "TrentService")
    assert len(SERVICE.operation_names) == 56 and SERVICE.operation_names == frozenset(OPERATIONS)
    assert SERVICE.operation("Encrypt").name == "Encrypt"
    assert SERVICE.operation("NoSuchOperation") is None
    assert load_service() is SERVICE


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_parses_empty_object(name):
    required = BOTO_MODEL.operation_model(name).input_shape.required_members
    for body in (b"{}", b""):
        try:
            assert SERVICE.operation(name).parse(body) == {}
            assert not required
        except AWSError as err:
            assert err.code == "ValidationException" and required
            assert err.message.startswith(f"{len(required)} validation error")
            assert err.message.count(NOT_NULL) == len(required)


# ---------------------------------------------------------------- validation messages

KEYSPEC_ENUM = ", ".join(BOTO_MODEL.shape_for("KeySpec").enum)
TAGS = [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "", "TagValue": "x" * 257}, {"TagKey": "a"}]
XKS_CREDENTIAL = {"AccessKeyId": "short", "RawSecretAccessKey": "s" * 43}
EXACT = [
    ("GenerateRandom", {"NumberOfBytes": 1025}, [fail(1025, "numberOfBytes", le(1024, "value"))]),
    ("GenerateRandom", {"NumberOfBytes": 0}, [fail(0, "numberOfBytes", ge(1, "value"))]),
    ("Encrypt", {"KeyId": "k", "Plaintext": b64(b"x" * 4097)}, [fail(SENSITIVE, "plaintext", le(4096))]),
    ("Decrypt", {"CiphertextBlob": ""}, [fail("java.nio.HeapByteBuffer[pos=0 lim=0 cap=0]", "ciphertextBlob", ge(1))]),
    ("CreateKey", {"KeySpec": "AES_999"}, [fail("AES_999", "keySpec", f"Member must satisfy enum value set: [{KEYSPEC_ENUM}]")]),
    ("CreateAlias", {"AliasName": "alias/bad name", "TargetKeyId": "k"},
     [fail("alias/bad name", "aliasName", f"Member must satisfy regular expression pattern: {ALIAS_RE}")]),
    ("CreateAlias", {"AliasName": "", "TargetKeyId": "k"},  # one member, two constraints
     [fail("", "aliasName", ge(1)), fail("", "aliasName", f"Member must satisfy regular expression pattern: {ALIAS_RE}")]),
    ("CreateAlias", {}, [fail(None, "aliasName", NOT_NULL), fail(None, "targetKeyId", NOT_NULL)]),
    # JSON null is absent; a sensitive member shows no value even when null
    ("Encrypt", {"KeyId": None, "Plaintext": None}, [fail(None, "keyId", NOT_NULL), fail(SENSITIVE, "plaintext", NOT_NULL)]),
    ("TagResource", {"KeyId": "k", "Tags": TAGS},
     [fail("", "tags.2.member.tagKey", ge(1)), fail("x" * 257, "tags.2.member.tagValue", le(256)),
      fail(None, "tags.3.member.tagValue", NOT_NULL)]),
    ("DescribeKey", {"KeyId": "k", "GrantTokens": ["a", None]}, [fail(None, "grantTokens.2.member", NOT_NULL)]),
    ("CreateGrant", {"KeyId": "", "GranteePrincipal": "a b", "Operations": ["Encrypt", "Nope"], "GrantTokens": [str(i) for i in range(11)]},
     [fail("", "keyId", ge(1)), fail("a b", "granteePrincipal", "Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$"),
      fail("Nope", "operations.2.member", "Member must satisfy enum value set: [" + ", ".join(BOTO_MODEL.shape_for("GrantOperation").enum) + "]"),
      fail("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "grantTokens", le(10))]),
    ("CreateCustomKeyStore", {"CustomKeyStoreName": "s", "XksProxyAuthenticationCredential": XKS_CREDENTIAL},
     [fail(SENSITIVE, "xksProxyAuthenticationCredential.accessKeyId", ge(20)),
      fail(SENSITIVE, "xksProxyAuthenticationCredential.accessKeyId", "Member must satisfy regular expression pattern: ^[A-Z2-7]+$")]),
    ("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "EncryptionContext": {"a": None}},
     [fail("{a=null}", "encryptionContext", f"Map value must satisfy constraint: [{NOT_NULL}]")]),
    ("UpdateKeyDescription", {"KeyId": "k", "Description": "é" * 8193}, [fail("é" * 8193, "description", le(8192))]),
    ("GetKeyPolicy", {"KeyId": "k", "PolicyName": "défaut"},  # \w is ASCII-only, as in Java
     [fail("défaut", "policyName", "Member must satisfy regular expression pattern: [\\w]+")]),
    ("CreateAlias", {"AliasName": "alias/x\n", "TargetKeyId": "k"},  # the pattern must match the whole value
     [fail("alias/x\n", "aliasName", f"Member must satisfy regular expression pattern: {ALIAS_RE}")]),
]


@pytest.mark.parametrize(("op", "body", "parts"), EXACT)
def test_exact_validation_messages(op, body, parts):
    assert message(op, body) == errors(*parts)


def test_limits_are_inclusive_and_apply_to_decoded_bytes():
    assert parse("GenerateRandom", {"NumberOfBytes": 1024}) == {"NumberOfBytes": 1024}
    assert parse("Encrypt", {"KeyId": "k", "Plaintext": b64(b"x" * 4096)})["Plaintext"] == b"x" * 4096
    assert parse("UpdateKeyDescription", {"KeyId": "k", "Description": "é" * 8192})  # characters, not bytes
    assert parse("GetKeyPolicy", {"KeyId": "k", "PolicyName": "default"})["PolicyName"] == "default"


@pytest.mark.parametrize(
    ("op", "extra", "limit"),
    [("ListAliases", {}, 100), ("ListGrants", {"KeyId": "k"}, 100), ("ListRetirableGrants", {}, 100),
     ("ListResourceTags", {"KeyId": "k"}, 50), ("ListKeys", {}, 1000)],
)
def test_list_limits_documented_overrides_and_model(op, extra, limit):
    assert parse(op, {**extra, "Limit": limit})["Limit"] == limit
    assert message(op, {**extra, "Limit": limit + 1}) == errors(fail(limit + 1, "limit", le(limit, "value")))
    assert message(op, {**extra, "Limit": 0}) == errors(fail(0, "limit", ge(1, "value")))


def test_map_key_and_value_constraints_use_aws_wording():
    shapes = {
        "M": {"type": "map", "key": {"shape": "K"}, "value": {"shape": "V"}},
        "K": {"type": "string", "min": 1, "max": 3, "pattern": "[a-z]+"},
        "V": {"type": "string", "max": 2},
        "In": {"type": "structure", "members": {"Tags": {"shape": "M"}}},
    }
    found: list = []
    assert InputCompiler(shapes).shape("In")({"Tags": {"ab": "v", "ABCD": "long"}}, "", found) == {"Tags": {"ab": "v", "ABCD": "long"}}
    keys = f"[{le(3)}, {ge(1)}, Member must satisfy regular expression pattern: [a-z]+]"
    assert found == [fail("{ab=v, ABCD=long}", "tags", f"Map keys must satisfy constraint: {keys}"),
                     fail("{ab=v, ABCD=long}", "tags", f"Map value must satisfy constraint: [{le(2)}]")]


def test_unknown_members_ignored_and_types_converted():
    body = {"KeyId": "k", "ImportToken": b64(b"t"), "EncryptedKeyMaterial": b64(b"\x00\xff"), "ValidTo": 1893456000, "Bogus": [1, {"x": None}]}
    out = parse("ImportKeyMaterial", body)
    assert out == {"KeyId": "k", "ImportToken": b"t", "EncryptedKeyMaterial": b"\x00\xff", "ValidTo": 1893456000.0}
    assert type(out["ValidTo"]) is float
    assert parse("Encrypt", {"KeyId": "k", "Plaintext": "QQ==", "EncryptionContext": {"a": "b", "": ""}})["EncryptionContext"] == {"a": "b", "": ""}


def test_type_error_wins_over_constraint_errors():
    # Coral deserializes before it validates: the bad NumberOfBytes is not reported
    assert message("GenerateRandom", {"NumberOfBytes": 0, "CustomKeyStoreId": 5}, "SerializationException") == (
        "NUMBER_VALUE can not be converted to a String")


def test_botocore_serialized_requests_parse():
    serializer = create_serializer("json", include_validation=False)
    params = {
        "ImportKeyMaterial": {"KeyId": "k", "ImportToken": b"abc", "EncryptedKeyMaterial": b"\x00\xff",
                              "ValidTo": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)},
        "Encrypt": {"KeyId": "alias/a", "Plaintext": b"secret", "EncryptionContext": {"a": "b:c", "é": "\n"}, "GrantTokens": ["g"]},
        "CreateKey": {"Policy": json.dumps({"Version": "2012-10-17", "Statement": []}), "Tags": [{"TagKey": "k", "TagValue": ""}]},
    }
    for name, p in params.items():
        body = serializer.serialize_to_request(p, BOTO_MODEL.operation_model(name))["body"]
        assert parse(name, body) == {k: (v.timestamp() if isinstance(v, dt.datetime) else v) for k, v in p.items()}


# ---------------------------------------------------------------- hostile JSON

HOSTILE = [
    b"{", b"{}}", b"nul", b"{'a': 1}", b'{"a": 1,}', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b'{"a": "\xc3"}',
    b'{"a": "\xed\xa0\x80"}', b'{"a": "\\ud800"}', b'{"a": "\\udc00x"}', b'{"a": "\\ud800\\u0041"}',  # surrogates
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e400}',
    b'{"a": ' + b"9" * 5000 + b"}", b'{"a": -' + b"1" * 400 + b"}",
    b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"a":' + b"[" * 64 + b"]" * 64 + b"}",
    b'{"a":' + b'{"b":' * 70 + b"1" + b"}" * 70 + b"}",
    b"[]", b"[{}]", b'"str"', b"1", b"null", b"true", b" ", '{"a": "x"}'.encode("utf-16"), b'{"a": "\x00"}',
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_json_is_a_serialization_exception(body):
    for op in ("Encrypt", "ListKeys"):
        err = error(op, body)
        assert err.code == "SerializationException"
        assert err.message and "line" not in err.message and "char" not in err.message  # not a parser's text


def test_nesting_up_to_the_cap_is_accepted():
    assert parse("ListKeys", b'{"Unknown":' + b"[" * 63 + b"]" * 63 + b"}") == {}


def test_big_integers_do_not_crash():
    assert parse("ListKeys", b'{"Unknown": ' + b"1" * 25 + b"}") == {}
    for digits in (b"1" * 11, b"1" * 21, b"1" * 25, b"-" + b"9" * 30):
        assert message("ListKeys", b'{"Limit": ' + digits + b"}", "SerializationException").endswith("can not be converted to an Integer")


DUPLICATES = [
    b'{"KeyId": "a", "KeyId": "b"}', b'{"KeyId" : "a", "KeyId"\n:\t"b"}',
    b'{"KeyId": "k", "Plaintext": "QQ==", "EncryptionContext": {"x": "1", "x": "2"}}',
    b'{"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "", "TagKey": "b"}]}',
    b'{"Unknown": {"deep": [{"z": 1, "z": 1}]}}', b'{"KeyId": "k", "Description": "\\":", "KeyId": "j"}',
    b'{"KeyId": ":x", "KeyId": "y"}',
]


@pytest.mark.parametrize("body", DUPLICATES)
def test_duplicate_keys_are_rejected(body):
    assert message("TagResource", body, "SerializationException").startswith("Duplicate key '")


def test_duplicate_key_message_is_bounded():
    key = "k" * 10_000
    assert len(message("ListKeys", ('{"%s": 1, "%s": 2}' % (key, key)).encode(), "SerializationException")) < 200


def test_no_false_duplicates_from_colons_or_quotes_inside_strings():
    policy = json.dumps({"Statement": [{"Principal": {"AWS": "arn:aws:iam::111122223333:root"}}]})
    body = json.dumps({"Policy": policy, "Description": 'a":b \\": c', "Tags": [{"TagKey": 'x":', "TagValue": ""}]}).encode()
    out = parse("CreateKey", body)
    assert out["Policy"] == policy and out["Tags"] == [{"TagKey": 'x":', "TagValue": ""}]
    assert parse("TagResource", b'{ "KeyId" : "k" ,\n "Tags" : [ ] }') == {"KeyId": "k", "Tags": []}
    colons = b'{"KeyId": ":x", "Tags": [{"TagKey": ":", "TagValue": " :"}]}'
    assert parse("TagResource", colons) == {"KeyId": ":x", "Tags": [{"TagKey": ":", "TagValue": " :"}]}


# ---------------------------------------------------------------- wrong JSON types and base64

RANDOM = "GenerateRandom"
ENC = {"KeyId": "k", "Plaintext": "QQ=="}
IMPORT = {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ=="}
GRANT = {"KeyId": "k", "Operations": ["Encrypt"]}
WRONG_TYPES = [
    (RANDOM, {"NumberOfBytes": "32"}, "STRING_VALUE can not be converted to an Integer"),
    (RANDOM, {"NumberOfBytes": True}, "TRUE_VALUE can not be converted to an Integer"),
    (RANDOM, {"NumberOfBytes": False}, "FALSE_VALUE can not be converted to an Integer"),
    (RANDOM, {"NumberOfBytes": 32.0}, "DECIMAL_VALUE can not be converted to an Integer"),
    (RANDOM, {"NumberOfBytes": 2**31}, "NUMBER_VALUE can not be converted to an Integer"),
    (RANDOM, {"NumberOfBytes": [32]}, "Start of list found where not expected"),
    (RANDOM, {"NumberOfBytes": {}}, "Start of structure or map found where not expected"),
    ("DescribeKey", {"KeyId": 5}, "NUMBER_VALUE can not be converted to a String"),
    ("DescribeKey", {"KeyId": 5.5}, "DECIMAL_VALUE can not be converted to a String"),
    ("DescribeKey", {"KeyId": True}, "TRUE_VALUE can not be converted to a String"),
    ("DescribeKey", {"KeyId": ["k"]}, "Start of list found where not expected"),
    ("DescribeKey", {"KeyId": {"k": 1}}, "Start of structure or map found where not expected"),
    ("DescribeKey", {"KeyId": "k", "GrantTokens": "t"}, "STRING_VALUE can not be converted to a List"),
    ("DescribeKey", {"KeyId": "k", "GrantTokens": {"t": 1}}, "Start of structure or map found where not expected"),
    ("DescribeKey", {"KeyId": "k", "GrantTokens": [1]}, "NUMBER_VALUE can not be converted to a String"),
    ("Encrypt", {**ENC, "DryRun": "true"}, "STRING_VALUE can not be converted to a Boolean"),
    ("Encrypt", {**ENC, "DryRun": 1}, "NUMBER_VALUE can not be converted to a Boolean"),
    ("Encrypt", {**ENC, "EncryptionContext": []}, "Start of list found where not expected"),
    ("Encrypt", {**ENC, "EncryptionContext": "a=b"}, "STRING_VALUE can not be converted to a Map"),
    ("Encrypt", {**ENC, "EncryptionContext": {"a": 1}}, "NUMBER_VALUE can not be converted to a String"),
    ("Encrypt", {**ENC, "Plaintext": 5}, "only base-64-encoded strings are convertible to bytes"),
    ("Encrypt", {**ENC, "Plaintext": True}, "only base-64-encoded strings are convertible to bytes"),
    ("Encrypt", {**ENC, "Plaintext": ["QQ=="]}, "Start of list found where not expected"),
    ("CreateGrant", {**GRANT, "Constraints": []}, "Start of list found where not expected"),
    ("CreateGrant", {**GRANT, "Constraints": "x"}, "STRING_VALUE can not be converted to a Structure"),
    ("CreateGrant", {**GRANT, "Constraints": {"EncryptionContextSubset": {"k": 1}}}, "NUMBER_VALUE can not be converted to a String"),
    ("TagResource", {"KeyId": "k", "Tags": ["a"]}, "STRING_VALUE can not be converted to a Structure"),
    ("ImportKeyMaterial", {**IMPORT, "ValidTo": "2030-01-01T00:00:00Z"}, "STRING_VALUE can not be converted to a Timestamp"),
    ("ImportKeyMaterial", {**IMPORT, "ValidTo": True}, "TRUE_VALUE can not be converted to a Timestamp"),
]


@pytest.mark.parametrize(("op", "body", "expected"), WRONG_TYPES)
def test_wrong_types(op, body, expected):
    assert message(op, body, "SerializationException") == expected


def length(n: int) -> str:
    return f"Base64 encoded length is expected a multiple of 4 bytes but found: {n}"


NOT_B64 = "only base-64-encoded strings are convertible to bytes"
BAD_BASE64 = [("QQ", length(2)), ("QUJDR", length(5)), ("QQ=", length(3)), ("QQ==\n", length(5)), ("QU\nJD", length(5)),
              ("QQ===", length(5)), ("QQ==QQ==", NOT_B64), ("=QQ=", NOT_B64), ("Q Q=", NOT_B64), ("QUJ-", NOT_B64),
              ("QUJ_", NOT_B64), ("QUJé", NOT_B64), ("Q===", NOT_B64), ("QUJD=", length(5))]


@pytest.mark.parametrize(("text", "expected"), BAD_BASE64)
def test_bad_base64(text, expected):
    assert message("Encrypt", {"KeyId": "k", "Plaintext": text}, "SerializationException") == expected


def test_good_base64_round_trips():
    for data in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        assert jsonio.b64decode_strict(b64(data)) == data and jsonio.b64encode(data) == b64(data)


@pytest.mark.skipif(jsonio._pybase64 is None, reason="pybase64 not installed")
@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="ABCQUJDab+/=-_ \n\xe9", max_size=12))
def test_pybase64_is_as_strict_as_binascii(text):
    """Large blobs are decoded by pybase64, small ones by binascii: both must accept and refuse
    exactly the same texts."""
    def outcome(fn):
        try:
            return fn(text)
        except ValueError:
            return "error"

    via_pybase64 = outcome(lambda t: jsonio._pybase64.b64decode(t, validate=True))
    assert via_pybase64 == outcome(jsonio._b64decode_binascii)
    if via_pybase64 != "error":
        assert outcome(lambda t: binascii.a2b_base64(t, strict_mode=True)) == via_pybase64


@pytest.mark.skipif(jsonio._pybase64 is None, reason="pybase64 not installed")
def test_large_blobs_round_trip_through_pybase64():
    data = bytes(range(256)) * (jsonio._PYBASE64_FROM // 256 + 3)
    text = b64(data)
    assert len(text) >= jsonio._PYBASE64_FROM
    assert jsonio.b64decode_strict(text) == data and jsonio.b64encode(data) == text
    with pytest.raises(ValueError):
        jsonio.b64decode_strict(text[:-1] + "!")


# ---------------------------------------------------------------- serialization, read back by botocore


def boto_parse(op: str, body: bytes) -> dict:
    shape = BOTO_MODEL.operation_model(op).output_shape
    parsed = JSONParser().parse({"body": body, "headers": {}, "status_code": 200}, shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_serialize_create_key_metadata():
    created = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    meta = {"AWSAccountId": "111122223333", "KeyId": "1234", "Arn": "arn:aws:kms:us-east-1:111122223333:key/1234",
            "CreationDate": created, "Enabled": True, "Description": "", "KeyState": "Enabled", "DeletionDate": None,
            "ValidTo": 1893456000, "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": False,
            "InternalSecret": b"never", "MultiRegionConfiguration": None}
    body = SERVICE.operation("CreateKey").serialize({"KeyMetadata": meta})
    raw = orjson.loads(body)["KeyMetadata"]
    assert raw["CreationDate"] == 1714979289.123 and type(raw["CreationDate"]) is float  # a number, ms precision
    assert raw["ValidTo"] == 1893456000
    assert not {"DeletionDate", "InternalSecret", "MultiRegionConfiguration"} & raw.keys()
    assert (raw["Description"], raw["MultiRegion"], raw["Enabled"]) == ("", False, True)
    parsed = boto_parse("CreateKey", body)["KeyMetadata"]
    assert parsed["CreationDate"] == created.replace(microsecond=123000)
    assert parsed["ValidTo"] == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert parsed["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    naive = SERVICE.operation("ScheduleKeyDeletion").serialize({"KeyId": "k", "DeletionDate": dt.datetime(2030, 1, 1)})
    assert orjson.loads(naive)["DeletionDate"] == 1893456000  # naive datetimes are UTC


def test_serialize_encrypt_blob():
    out = {"CiphertextBlob": bytes(range(256)) * 3, "KeyId": "arn:aws:kms:us-east-1:1:key/1", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    body = SERVICE.operation("Encrypt").serialize(out)
    assert orjson.loads(body)["CiphertextBlob"] == b64(out["CiphertextBlob"])
    assert boto_parse("Encrypt", body) == out


def test_serialize_list_keys():
    out = {"Keys": [{"KeyId": "a", "KeyArn": "arn:a"}, {"KeyId": "b", "KeyArn": None}], "Truncated": False, "NextMarker": None}
    expected = {"Keys": [{"KeyId": "a", "KeyArn": "arn:a"}, {"KeyId": "b"}], "Truncated": False}
    body = SERVICE.operation("ListKeys").serialize(out)
    assert orjson.loads(body) == expected and boto_parse("ListKeys", body) == expected


def test_serialize_empty_outputs():
    assert orjson.loads(SERVICE.operation("GetPublicKey").serialize({"KeyId": "k", "PublicKey": b"\x30\x00", "SigningAlgorithms": []})) == {
        "KeyId": "k", "PublicKey": "MAA=", "SigningAlgorithms": []}
    for name in ("CreateAlias", "TagResource", "UpdateKeyDescription"):  # no output shape: reply {}
        assert BOTO_MODEL.operation_model(name).output_shape is None
        assert SERVICE.operation(name).serialize(None) == SERVICE.operation(name).serialize({"Ignored": 1}) == b"{}"
        assert boto_parse(name, b"{}") == {}
    assert SERVICE.operation("DisconnectCustomKeyStore").serialize({}) == b"{}"
    assert SERVICE.operation("ListKeys").serialize(None) == b"{}"


def test_error_body():
    assert orjson.loads(error_body(AWSError("NotFoundException", "Invalid keyId 'x'"))) == {
        "__type": "NotFoundException", "message": "Invalid keyId 'x'"}
    assert error_body(AWSError("InvalidCiphertextException")) == b'{"__type":"InvalidCiphertextException"}'


# ---------------------------------------------------------------- properties: only AWSError ever escapes

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TYPICAL = st.sampled_from(["QQ==", "k", "alias/a", "ENCRYPT_DECRYPT", "", 1, 0, True, [], {}, [{"TagKey": "a", "TagValue": ""}]])


@st.composite
def near_valid_bodies(draw):
    """The operation's real member names with arbitrary JSON values."""
    op = draw(st.sampled_from(OPERATIONS))
    names = list(BOTO_MODEL.operation_model(op).input_shape.members)
    keys = draw(st.lists(st.sampled_from(names) | st.text(max_size=5), max_size=len(names) + 1))
    return op, {k: draw(TYPICAL | JSON_VALUES) for k in keys}


def only_aws_errors(op: str, body: bytes) -> None:
    try:
        assert isinstance(SERVICE.operation(op).parse(body), dict)
    except AWSError as err:
        assert err.code in ("SerializationException", "ValidationException") and err.message and err.status == 400


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_bodies())
def test_property_near_valid_bodies(case):
    op, body = case
    only_aws_errors(op, json.dumps(body).encode())  # stdlib json: big ints and lone surrogates too


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OPERATIONS), JSON_VALUES)
def test_property_any_json_value(op, value):
    only_aws_errors(op, json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(OPERATIONS), st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_property_any_bytes(op, body):
    only_aws_errors(op, body)


SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from(['"', ":", "\\", " "]), max_size=6)
SAFE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", ":", '"', "a:"]) | SAFE_TEXT, SAFE_VALUES), max_size=5),
       st.sampled_from([":", " : ", "\n:\t", ": "]))
def test_property_duplicate_detection_is_exact(pairs, colon):
    body = ("{" + ", ".join(json.dumps(k) + colon + json.dumps(v) for k, v in pairs) + "}").encode()
    keys = [k for k, _ in pairs]
    if len(set(keys)) == len(keys):
        assert jsonio.loads_object(body) == dict(pairs)
    else:
        with pytest.raises(AWSError, match="^SerializationException: Duplicate key"):
            jsonio.loads_object(body)
