"""One codec per wire protocol, chosen from the model's metadata (trentd.protocol.model.CODECS),
and the one walk of the shapes the compilers share (trentd.protocol.walk)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson
import pytest

from trentd.errors import AWSError
from trentd.protocol.inputs import InputCompiler
from trentd.protocol.json11 import Json11, JsonOutput
from trentd.protocol.model import load_service
from trentd.protocol.query import Query, XmlOutput

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


@pytest.mark.parametrize("name, codec", [("kms", Json11), ("sts", Query), ("iam", Query), ("cloudtrail", Json11)])
def test_the_codec_is_the_one_the_model_names(name, codec):
    service = load_service(name)
    assert isinstance(service.codec, codec) and service.codec.protocol == service.protocol


def test_json_error():
    status, body, content_type = load_service("kms").codec.error(AWSError("NotFoundException", "gone"), "r")
    assert (status, orjson.loads(body), content_type) == (
        400, {"__type": "NotFoundException", "message": "gone"}, b"application/x-amz-json-1.1")


@pytest.mark.parametrize("code, wire, status", [
    ("InvalidSignatureException", "SignatureDoesNotMatch", 403),
    ("IncompleteSignatureException", "IncompleteSignature", 400),
    ("ValidationError", "ValidationError", 400),
])
def test_query_error_uses_the_service_wording(code, wire, status):
    codec = load_service("sts").codec
    got_status, body, content_type = codec.error(AWSError(code, "a <b> & c"), "req-9")
    root = ET.fromstring(body)
    assert (got_status, content_type, codec.error_code(code)) == (status, b"text/xml", wire)
    assert root.tag == f"{{{STS_NS}}}ErrorResponse"
    assert root.find(f"{{{STS_NS}}}Error/{{{STS_NS}}}Code").text == wire
    assert root.find(f"{{{STS_NS}}}Error/{{{STS_NS}}}Type").text == "Sender"
    assert root.find(f"{{{STS_NS}}}Error/{{{STS_NS}}}Message").text == "a <b> & c"
    assert root.find(f"{{{STS_NS}}}RequestId").text == "req-9"


def test_query_faults_are_the_receivers():
    _, body, _ = load_service("sts").codec.error(AWSError("InternalFailure", "x", status=500), "r")
    assert b"<Type>Receiver</Type>" in body


def test_iam_words_sigv4_failures_as_sts_does():  # an unknown or inactive key: InvalidClientTokenId, 403
    codec = load_service("iam").codec
    assert codec.error_code("InvalidSignatureException") == "SignatureDoesNotMatch"
    status, body, _ = codec.error(AWSError("UnrecognizedClientException", "m"), "r")
    assert status == 403 and b"<Code>InvalidClientTokenId</Code>" in body
    status, body, _ = codec.error(AWSError("KMSInternalException", "m"), "r")  # a fault, in IAM's words
    assert status == 500 and b"<Code>ServiceFailure</Code>" in body and b"<Type>Receiver</Type>" in body


def test_malformed_form():
    with pytest.raises(AWSError) as info:
        load_service("sts").codec.parse(b"\xff=1")
    assert info.value.code == "MalformedQueryString"


def test_query_body_parser_folds_and_checks():
    operation = load_service("sts").operation("GetSessionToken")
    assert operation.parse(b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900") == {
        "DurationSeconds": 900}
    with pytest.raises(AWSError) as info:
        operation.parse(b"DurationSeconds=1")
    assert info.value.code == "ValidationError"


def test_audit_views_are_compiled_per_operation():
    encrypt = load_service("kms").operation("Encrypt")
    assert encrypt.audit is not None and encrypt.audit.request is not None
    assert encrypt.audit.request({"KeyId": "k", "Plaintext": b"p", "GrantTokens": ["t"]}, None) == {"keyId": "k"}
    assume = load_service("sts").operation("AssumeRole")
    request = {"RoleArn": "arn:aws:iam::111122223333:role/R", "RoleSessionName": "s", "DurationSeconds": 900,
               "PolicyArns": [{"arn": "arn:aws:iam::111122223333:policy/P"}], "Policy": "{}", "TokenCode": "123456",
               "Tags": [{"Key": "k", "Value": "v"}], "SerialNumber": "arn:aws:iam::111122223333:mfa/m"}
    assert assume.audit.parameters(request) == {
        "roleArn": "arn:aws:iam::111122223333:role/R", "roleSessionName": "s", "durationSeconds": 900,
        "policyArns": [{"arn": "arn:aws:iam::111122223333:policy/P"}]}
    assert load_service("sts").operation("GetCallerIdentity").audit.parameters({}) == {}


RECURSIVE = {
    "Node": {"type": "structure", "members": {"Name": {"shape": "Text"}, "Children": {"shape": "Nodes"},
                                              "When": {"shape": "Time"}}},
    "Nodes": {"type": "list", "member": {"shape": "Node"}},
    "Text": {"type": "string"},
    "Time": {"type": "timestamp"},
}


def test_recursive_shapes_compile_once_and_terminate():
    tree = {"Name": "a", "Children": [{"Name": "b", "Children": [{"Name": "c", "When": 1.5}]}]}
    assert JsonOutput(RECURSIVE).serializer("Node")(tree) == tree
    errors: list[str] = []
    assert InputCompiler(RECURSIVE).shape("Node")(tree, "", errors) == tree and not errors
    xml = XmlOutput(RECURSIVE).shape("Node")(tree)
    assert xml == ("<Name>a</Name><Children><member><Name>b</Name><Children><member><Name>c</Name>"
                   "<When>1970-01-01T00:00:01Z</When></member></Children></member></Children>")
