"""The STS Query protocol from botocore's model (trentd.protocol.query), and STS rules that need no
server: folding flat form fields, STS's validation wording, the XML answer, root refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer

from trentd.errors import AWSError
from trentd.auth.identity import Caller
from trentd.protocol.inputs import python_pattern
from trentd.protocol.model import load_service
from trentd.sts import operations

ROLE = "arn:aws:iam::111122223333:role/R"
STS = load_service("sts")
NAMESPACE = STS.codec.namespace


def parse(action: str, form: dict[str, str]) -> dict:
    """Form fields -> the validated request, as the STS dispatcher gets it."""
    return STS.operation(action).request(form)


def serialize(action: str, result: dict, request_id: str) -> bytes:
    return STS.operation(action).serialize(result, request_id)


def form_of(operation: str, params: dict) -> dict[str, str]:
    """The form fields botocore sends for ``params``."""
    service = ServiceModel(Loader().load_service_model("sts", "service-2"))
    body = QuerySerializer().serialize_to_request(params, service.operation_model(operation))["body"]
    return {k: str(v) for k, v in body.items()}


def test_round_trip_of_every_member_kind():
    params = {"RoleArn": ROLE, "RoleSessionName": "s-1", "DurationSeconds": 1800,
              "PolicyArns": [{"arn": "arn:aws:iam::111122223333:policy/A"},
                             {"arn": "arn:aws:iam::111122223333:policy/B"}],
              "Tags": [{"Key": "team", "Value": "blue"}, {"Key": "ünïcode key", "Value": ""}],
              "TransitiveTagKeys": ["team"], "ExternalId": "ext-id", "Policy": '{"Version":"2012-10-17"}'}
    assert parse("AssumeRole", form_of("AssumeRole", params)) == params


def test_empty_list_and_absent_members():
    parsed = parse("AssumeRole", {"Action": "AssumeRole", "RoleArn": ROLE, "RoleSessionName": "ss",
                                                "PolicyArns": ""})
    assert parsed == {"RoleArn": ROLE, "RoleSessionName": "ss", "PolicyArns": []}
    assert parse("GetSessionToken", {}) == {}


@pytest.mark.parametrize("form, message", [
    ({"DurationSeconds": "899"}, "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
                                 "constraint: Member must have value greater than or equal to 900"),
    ({"DurationSeconds": "soon"}, "STRING_VALUE can not be converted to an Integer"),
    ({"TokenCode": "12a"}, "2 validation errors detected: Value '12a' at 'tokenCode' failed to satisfy constraint: "
                           "Member must have length greater than or equal to 6; Value '12a' at 'tokenCode' failed to "
                           "satisfy constraint: Member must satisfy regular expression pattern: [\\d]*"),
])
def test_validation_error_wording(form, message):
    with pytest.raises(AWSError) as info:
        parse("GetSessionToken", form)
    assert (info.value.code, info.value.message, info.value.status) == ("ValidationError", message, 400)


def test_java_unicode_classes():
    pattern = re.compile(python_pattern(r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+"), re.ASCII)
    for good in ("team", "Ünïcödé 名前 ١٢٣", "a_b.c:d/e=f+g-h@i", "non\u00a0breaking"):
        assert pattern.fullmatch(good), good
    for bad in ("a!b", "tab\there", "", "semi;colon"):
        assert not pattern.fullmatch(bad), bad


def test_xml_answer_parses_with_botocore():
    result = {"Credentials": {"AccessKeyId": "ASIAEXAMPLEEXAMPLE00", "SecretAccessKey": "s" * 40,
                              "SessionToken": "t<&>" * 20, "Expiration": 1_800_000_000.0},
              "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:s",
                                  "Arn": "arn:aws:sts::111122223333:assumed-role/R/s"},
              "PackedPolicySize": 7}
    body = serialize("AssumeRole", result, "req-1")
    root = ET.fromstring(body)
    assert root.tag == f"{{{NAMESPACE}}}AssumeRoleResponse"
    service = ServiceModel(Loader().load_service_model("sts", "service-2"))
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 200},
                                 service.operation_model("AssumeRole").output_shape)
    assert parsed["Credentials"]["SessionToken"] == "t<&>" * 20
    assert parsed["Credentials"]["Expiration"].timestamp() == 1_800_000_000
    assert parsed["PackedPolicySize"] == 7 and parsed["ResponseMetadata"]["RequestId"] == "req-1"


def test_root_may_not_assume_roles():
    root = Caller(account="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:root",
                  access_key_id="AKIAROOT")
    with pytest.raises(AWSError) as info:
        operations.assume_role(None, root, {"RoleArn": ROLE, "RoleSessionName": "s"})
    assert (info.value.code, info.value.message, info.value.status) == (
        "AccessDenied", "Roles may not be assumed by root accounts.", 403)
