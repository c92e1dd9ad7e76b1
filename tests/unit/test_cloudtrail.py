"""CloudTrail's LookupEvents without a server: its NextToken, its row, what its audit event shows,
and the model constraints it checks itself (the behaviour end to end: tests/e2e/test_cloudtrail.py)."""

from __future__ import annotations

import base64

import pytest
from botocore.loaders import Loader

from trentd.cloudtrail import tokens
from trentd.cloudtrail.operations import OPERATIONS, UNSUPPORTED
from trentd.errors import AWSError
from trentd.pipeline.services import SERVICES
from trentd.protocol.model import SERVICE_CHECKED, load_service
from trentd.protocol.redaction import CLOUDTRAIL_LOGGED, CLOUDTRAIL_OMITTED

KEY = tokens.token_key(b"k" * 32)
REQUEST = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}],
           "StartTime": 1_700_000_000.0, "EndTime": 1_800_000_000.5}
POSITION = (1_750_000_000_123_456, "0f8fad5b-d9cb-469f-a165-70867728950e")


def _bound(account="111122223333", region="us-east-1", request=None):
    return tokens.binding(account, region, REQUEST if request is None else request)


def test_a_token_names_the_position_it_was_made_for():
    token = tokens.make(KEY, _bound(), POSITION)
    assert token.isascii() and "=" not in token
    assert tokens.read(KEY, _bound(), token) == POSITION


def test_the_page_size_is_not_bound():  # the paginator may change MaxResults between pages
    token = tokens.make(KEY, _bound(), POSITION)
    assert tokens.read(KEY, _bound(request={**REQUEST, "MaxResults": 5}), token) == POSITION


@pytest.mark.parametrize("other", [
    {"account": "444455556666"},
    {"region": "eu-west-1"},
    {"request": {**REQUEST, "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}]}},
    {"request": {**REQUEST, "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "Encrypt"}]}},
    {"request": {**REQUEST, "StartTime": 1_700_000_001.0}},
    {"request": {**REQUEST, "EndTime": None}},
    {"request": {**REQUEST, "EventCategory": "insight"}},
])
def test_a_token_is_refused_with_other_parameters(other):
    token = tokens.make(KEY, _bound(), POSITION)
    with pytest.raises(AWSError) as info:
        tokens.read(KEY, _bound(**other), token)
    assert (info.value.code, info.value.message) == ("InvalidNextTokenException", tokens.INVALID)


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("edit", [
    lambda raw: raw[:1] + (raw[1] ^ 1).to_bytes(1, "big") + raw[2:],  # the event time
    lambda raw: raw[:-17] + b"x" + raw[-16:],  # the event id
    lambda raw: raw[:-1] + (raw[-1] ^ 1).to_bytes(1, "big"),  # the MAC
    lambda raw: b"\x02" + raw[1:],  # the version
    lambda raw: raw[:12],  # cut short
])
def test_an_edited_token_is_refused(edit):
    token = _encode(edit(_raw(tokens.make(KEY, _bound(), POSITION))))
    with pytest.raises(AWSError) as info:
        tokens.read(KEY, _bound(), token)
    assert info.value.code == "InvalidNextTokenException"


@pytest.mark.parametrize("token", ["", "abc", "not base64 at all!", "é" * 10, "A" * 600])
def test_garbage_is_refused(token):
    with pytest.raises(AWSError) as info:
        tokens.read(KEY, _bound(), token)
    assert (info.value.code, info.value.message) == ("InvalidNextTokenException", tokens.INVALID)


def test_another_deployment_key_refuses_the_token():
    token = tokens.make(KEY, _bound(), POSITION)
    with pytest.raises(AWSError):
        tokens.read(tokens.token_key(b"j" * 32), _bound(), token)


def test_the_token_key_is_not_the_deployment_key():  # grant tokens and NextTokens never stand in for each other
    assert tokens.token_key(b"k" * 32) != b"k" * 32


# --- the service -------------------------------------------------------------------------------------
def test_the_service_is_tabled_by_its_credential_scope():
    service = SERVICES["cloudtrail"]
    assert service.model.target_prefix == "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
    assert service.model.protocol == "json" and service.codec.target_prefix == service.model.target_prefix
    assert set(service.operations) == {"LookupEvents"}
    assert all(name in service.model.operation_names for name in OPERATIONS)
    row = OPERATIONS["LookupEvents"]
    assert (row.action, row.inline, row.cached, row.audit.read_only) == ("cloudtrail:LookupEvents", False, False, True)
    error = service.unsupported("DescribeTrails")
    assert (error.code, error.message, error.status) == (UNSUPPORTED[0], "trentd implements only LookupEvents", 400)


def test_the_modelled_errors_answer_with_their_shape_name():
    """CloudTrail's exception shapes carry no ``code``: the wire ``__type`` is the shape's name."""
    service = load_service("cloudtrail")
    raised = {"InvalidLookupAttributesException", "InvalidTimeRangeException", "InvalidMaxResultsException",
              "InvalidEventCategoryException", "InvalidNextTokenException", "UnsupportedOperationException"}
    assert raised <= service.operation("LookupEvents").errors and raised <= service.error_codes
    status, body, _ = service.codec.error(AWSError("InvalidTimeRangeException", "m"), "r")
    assert (status, body) == (400, b'{"__type":"InvalidTimeRangeException","message":"m"}')


def test_the_codec_finds_the_operation_after_the_dotted_prefix():
    codec = SERVICES["cloudtrail"].codec
    target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
    assert codec.locate({"x-amz-target": target}, b"{}") == ("LookupEvents", b"{}")
    assert codec.locate({"x-amz-target": "TrentService.LookupEvents"}, b"{}")[0] == ""
    assert SERVICES["kms"].codec.locate({"x-amz-target": "TrentService.Encrypt"}, b"")[0] == "Encrypt"


def test_the_lifted_constraints_are_in_the_model_and_left_to_the_handler():
    shapes = Loader().load_service_model("cloudtrail", "service-2")["shapes"]
    for shape, traits in SERVICE_CHECKED["cloudtrail"].items():
        assert all(trait in shapes[shape] for trait in traits), shape  # a model change would show here
    parse = load_service("cloudtrail").operation("LookupEvents").parse
    request = parse(b'{"MaxResults": 51, "EventCategory": "management", '
                    b'"LookupAttributes": [{"AttributeKey": "Nope", "AttributeValue": "v"}]}')
    assert request["MaxResults"] == 51 and request["EventCategory"] == "management"
    with pytest.raises(AWSError) as info:  # the rest of the model still applies
        parse(b'{"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": ""}]}')
    assert info.value.message == ("1 validation error detected: Value '' at 'lookupAttributes.1.member.attributeValue' "
                                  "failed to satisfy constraint: Member must have length greater than or equal to 1")


def test_every_request_member_is_classified_for_the_audit():
    shapes = Loader().load_service_model("cloudtrail", "service-2")["shapes"]
    seen: set[str] = set()

    def walk(name: str) -> None:
        shape = shapes[name]
        if shape["type"] == "structure":
            for member, spec in shape["members"].items():
                seen.add(member)
                walk(spec["shape"])
        elif shape["type"] == "list":
            walk(shape["member"]["shape"])

    walk("LookupEventsRequest")
    assert seen == CLOUDTRAIL_LOGGED | CLOUDTRAIL_OMITTED and not CLOUDTRAIL_LOGGED & CLOUDTRAIL_OMITTED


def test_the_audit_shows_what_was_looked_up_and_never_the_answer():
    audit = load_service("cloudtrail").operation("LookupEvents").audit
    request = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}],
               "StartTime": 1_700_000_000.0, "MaxResults": 5, "NextToken": "opaque"}
    assert audit.parameters(request) == {
        "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "Encrypt"}],
        "startTime": "2023-11-14T22:13:20Z", "maxResults": 5}
    assert OPERATIONS["LookupEvents"].audit.response_members == ()
