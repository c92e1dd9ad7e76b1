"""CloudTrail's LookupEvents over the central trail, through a running trentd with boto3.

One non-dev server per store for the module (principals made with the admin CLI:
tests/e2e/authz_world.py): each lookup attribute, the time range, the errors CloudTrail models
(exact ``__type`` and message), paging with boto3's paginator while new events arrive, the
account edge (another account's events never shown; an allowed cross-account call in both
accounts' trails, a refused one only in the caller's), authorization, the operations trentd does
not implement, and the lookup's own audit event. Two nodes over PostgreSQL: a call on one node
is found by LookupEvents on the other. The AWS CLI: tests/clients/test_cloudtrail_cli.py.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from trentd.cloudtrail.lookup import MAX_RESULTS_RANGE, ONE_ATTRIBUTE, START_AFTER_END
from trentd.cloudtrail.tokens import INVALID as INVALID_TOKEN
from trentd.testing.postgres import ThrowawayDatabase, require_postgres
from trentd.testing.server import TrentdServer

from ..helpers import error_of, fails, new_account
from .authz_world import ACCT_A, ACCT_B, REGION, World, policy

LOOKUP_AND_KMS = policy({"Effect": "Allow", "Action": ["kms:*", "cloudtrail:LookupEvents"], "Resource": "*"})
KMS_ONLY = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
DEADLINE = 10.0  # seconds to wait for an event to reach the central trail (it takes well under one)


@pytest.fixture(scope="module")
def world(authz_server):
    world = World(authz_server)
    world.make_users([(ACCT_A, "filterer", LOOKUP_AND_KMS), (ACCT_A, "pager", LOOKUP_AND_KMS),
                      (ACCT_A, "nolook", KMS_ONLY), (ACCT_B, "reader", LOOKUP_AND_KMS)])
    return world


def request_id(response_or_error) -> str:
    meta = (response_or_error.response if isinstance(response_or_error, ClientError)
            else response_or_error)["ResponseMetadata"]
    return meta["RequestId"]


def record(event: dict) -> dict:
    return json.loads(event["CloudTrailEvent"])


def all_events(cloudtrail, **kwargs) -> list[dict]:
    """Every page boto3's paginator fetches."""
    pages = cloudtrail.get_paginator("lookup_events").paginate(**kwargs)
    return [event for page in pages for event in page["Events"]]


def wait_for(cloudtrail, rid: str, **kwargs) -> dict:
    """The event of request ``rid``, once the central trail has it."""
    deadline = time.monotonic() + DEADLINE
    while True:
        for event in all_events(cloudtrail, **kwargs):
            if record(event)["requestID"] == rid:
                return event
        assert time.monotonic() < deadline, f"request {rid} not in the central trail after {DEADLINE} s"
        time.sleep(0.05)


def by_attribute(cloudtrail, key: str, value: str, **kwargs) -> list[dict]:
    return all_events(cloudtrail, LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], **kwargs)


# --- the filters -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def made(world):
    """The filterer's calls: CreateKey, Encrypt, DescribeKey, Decrypt, all in the central trail."""
    user = world["filterer"]
    kms, cloudtrail = user.kms, user.client("cloudtrail")
    created = kms.create_key(Description="lookup filters")
    arn = created["KeyMetadata"]["Arn"]
    encrypted = kms.encrypt(KeyId=arn, Plaintext=b"lookup")
    described = kms.describe_key(KeyId=arn)
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"])
    rids = {name: request_id(r) for name, r in (("CreateKey", created), ("Encrypt", encrypted),
                                                ("DescribeKey", described), ("Decrypt", decrypted))}
    events = {name: wait_for(cloudtrail, rid, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])
              for name, rid in rids.items()}
    return {"user": user, "cloudtrail": cloudtrail, "arn": arn, "rids": rids, "events": events}


def test_an_event_has_the_summary_fields_and_its_record(made):
    user, encrypt = made["user"], made["events"]["Encrypt"]
    assert {k: v for k, v in encrypt.items() if k not in ("EventId", "EventTime", "CloudTrailEvent")} == {
        "EventName": "Encrypt", "ReadOnly": "true", "AccessKeyId": user.access_key,
        "EventSource": "kms.amazonaws.com", "Username": "filterer",
        "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": made["arn"]}]}
    event = record(encrypt)
    assert event["eventID"] == encrypt["EventId"] and event["requestID"] == made["rids"]["Encrypt"]
    assert event["userIdentity"]["arn"] == user.arn and event["awsRegion"] == REGION
    assert event["requestParameters"]["keyId"] == made["arn"]
    when = datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert encrypt["EventTime"] == when
    assert made["events"]["CreateKey"]["ReadOnly"] == "false"


def test_event_id(made):
    encrypt = made["events"]["Encrypt"]
    assert by_attribute(made["cloudtrail"], "EventId", encrypt["EventId"]) == [encrypt]


def test_event_name(made):
    events = by_attribute(made["cloudtrail"], "EventName", "Decrypt")
    assert {e["EventName"] for e in events} == {"Decrypt"}
    assert made["events"]["Decrypt"]["EventId"] in {e["EventId"] for e in events}
    assert by_attribute(made["cloudtrail"], "EventName", "NoSuchOperation") == []


@pytest.mark.parametrize("value, name", [("true", "Encrypt"), ("false", "CreateKey")])
def test_read_only(made, value, name):
    events = by_attribute(made["cloudtrail"], "ReadOnly", value)
    assert {e["ReadOnly"] for e in events} == {value}
    assert made["events"][name]["EventId"] in {e["EventId"] for e in events}
    assert by_attribute(made["cloudtrail"], "ReadOnly", "maybe") == []


def test_username_and_access_key_id(made):
    user, ours = made["user"], {e["EventId"] for e in made["events"].values()}
    named = by_attribute(made["cloudtrail"], "Username", "filterer")
    assert {e["Username"] for e in named} == {"filterer"} and ours <= {e["EventId"] for e in named}
    keyed = by_attribute(made["cloudtrail"], "AccessKeyId", user.access_key)
    assert {e["AccessKeyId"] for e in keyed} == {user.access_key} and ours <= {e["EventId"] for e in keyed}
    assert "LookupEvents" in {e["EventName"] for e in keyed}  # the lookups are the user's calls too


def test_resource_name_and_type(made):
    events = by_attribute(made["cloudtrail"], "ResourceName", made["arn"])
    assert sorted(e["EventName"] for e in events) == ["CreateKey", "Decrypt", "DescribeKey", "Encrypt"]
    assert all({"ResourceType": "AWS::KMS::Key", "ResourceName": made["arn"]} in e["Resources"] for e in events)
    typed = by_attribute(made["cloudtrail"], "ResourceType", "AWS::KMS::Key")
    assert all(any(r["ResourceType"] == "AWS::KMS::Key" for r in e["Resources"]) for e in typed)
    assert {e["EventId"] for e in events} <= {e["EventId"] for e in typed}
    assert by_attribute(made["cloudtrail"], "ResourceName", made["arn"] + "0") == []


def test_event_source_and_the_lookups_own_event(made):
    kms_events = by_attribute(made["cloudtrail"], "EventSource", "kms.amazonaws.com")
    assert {e["EventSource"] for e in kms_events} == {"kms.amazonaws.com"}
    assert made["events"]["Encrypt"]["EventId"] in {e["EventId"] for e in kms_events}
    lookup = made["cloudtrail"].lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}], MaxResults=3)
    event = record(wait_for(made["cloudtrail"], request_id(lookup),
                            LookupAttributes=[{"AttributeKey": "EventSource",
                                               "AttributeValue": "cloudtrail.amazonaws.com"}]))
    assert (event["eventSource"], event["eventName"], event["readOnly"], event["responseElements"]) == (
        "cloudtrail.amazonaws.com", "LookupEvents", True, None)
    assert event["requestParameters"] == {
        "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "Encrypt"}], "maxResults": 3}


def test_time_range(made):
    encrypt = made["events"]["Encrypt"]
    at = encrypt["EventTime"]
    inside = made["cloudtrail"].lookup_events(
        StartTime=at, EndTime=at, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}])
    assert encrypt["EventId"] in {e["EventId"] for e in inside["Events"]}
    assert {e["EventTime"] for e in inside["Events"]} == {at}  # both ends inclusive
    later = all_events(made["cloudtrail"], StartTime=at + timedelta(seconds=1),
                       LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": encrypt["EventId"]}])
    assert later == []
    assert made["cloudtrail"].lookup_events(EndTime=datetime(2001, 1, 1, tzinfo=timezone.utc))["Events"] == []


def test_only_the_regions_events(made, authz_server):
    user = made["user"]
    elsewhere = authz_server.client("cloudtrail", access_key=user.access_key, secret_key=user.secret,
                                    region="eu-west-1")
    events = all_events(elsewhere)  # its own earlier lookups there, at most
    assert all(record(e)["awsRegion"] == "eu-west-1" for e in events)
    assert made["events"]["Encrypt"]["EventId"] not in {e["EventId"] for e in events}


# --- errors ------------------------------------------------------------------------------------
def test_errors(made, authz_server):
    cloudtrail, user = made["cloudtrail"], made["user"]
    two = [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
           {"AttributeKey": "Username", "AttributeValue": "filterer"}]
    assert fails(cloudtrail.lookup_events, LookupAttributes=two) == ("InvalidLookupAttributesException", ONE_ATTRIBUTE)
    assert fails(cloudtrail.lookup_events, LookupAttributes=[{"AttributeKey": "Colour", "AttributeValue": "x"}]) == (
        "InvalidLookupAttributesException", "Invalid AttributeKey: Colour. Valid keys: EventId, EventName, ReadOnly, "
                                            "Username, ResourceType, ResourceName, EventSource, AccessKeyId.")
    now = datetime.now(timezone.utc)
    assert fails(cloudtrail.lookup_events, StartTime=now, EndTime=now - timedelta(seconds=1)) == (
        "InvalidTimeRangeException", START_AFTER_END)
    assert fails(cloudtrail.lookup_events, MaxResults=51) == ("InvalidMaxResultsException", MAX_RESULTS_RANGE)
    unchecked = authz_server.client("cloudtrail", access_key=user.access_key, secret_key=user.secret,
                                    parameter_validation=False)  # botocore refuses 0 itself
    assert fails(unchecked.lookup_events, MaxResults=0) == ("InvalidMaxResultsException", MAX_RESULTS_RANGE)
    assert fails(cloudtrail.lookup_events, EventCategory="management") == (
        "InvalidEventCategoryException", "Invalid EventCategory: management. Valid value: insight.")
    assert fails(cloudtrail.lookup_events, NextToken="not-a-token") == ("InvalidNextTokenException", INVALID_TOKEN)
    code, message = fails(unchecked.lookup_events, LookupAttributes=[{"AttributeKey": "EventName",
                                                                      "AttributeValue": ""}])
    assert code == "ValidationException" and "lookupAttributes.1.member.attributeValue" in message
    # Insights events are never recorded: none, whatever else is asked.
    assert cloudtrail.lookup_events(EventCategory="insight")["Events"] == []


def test_a_next_token_only_with_the_same_parameters(made, world):
    cloudtrail = made["cloudtrail"]
    asked = {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "filterer"}]}
    first = cloudtrail.lookup_events(MaxResults=1, **asked)
    token = first["NextToken"]
    second = cloudtrail.lookup_events(MaxResults=2, NextToken=token, **asked)  # another page size is fine
    assert first["Events"][0]["EventId"] not in {e["EventId"] for e in second["Events"]}
    for other in ({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "admin"}]},
                  {"StartTime": datetime(2020, 1, 1, tzinfo=timezone.utc), **asked}, {}):
        assert fails(cloudtrail.lookup_events, NextToken=token, **other) == ("InvalidNextTokenException",
                                                                             INVALID_TOKEN)
    nolook_peer = world.admin.client("cloudtrail")  # the same parameters, but from another principal: fine
    assert nolook_peer.lookup_events(NextToken=token, **asked)["Events"]
    reader = world["reader"].client("cloudtrail")  # another account
    assert fails(reader.lookup_events, NextToken=token, **asked) == ("InvalidNextTokenException", INVALID_TOKEN)
    edited = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert fails(cloudtrail.lookup_events, NextToken=edited, **asked) == ("InvalidNextTokenException",
                                                                          INVALID_TOKEN)


def test_a_refused_lookup_is_recorded_with_its_error(made):
    cloudtrail = made["cloudtrail"]
    with pytest.raises(ClientError) as info:
        cloudtrail.lookup_events(MaxResults=51)
    event = record(wait_for(cloudtrail, request_id(info.value),
                            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}]))
    assert (event["errorCode"], event["errorMessage"]) == ("InvalidMaxResultsException", MAX_RESULTS_RANGE)


# --- paging ------------------------------------------------------------------------------------
def test_paging_while_new_events_arrive(world):
    user = world["pager"]
    kms, cloudtrail = user.kms, user.client("cloudtrail")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    before = [request_id(kms.encrypt(KeyId=key, Plaintext=b"page")) for _ in range(12)]
    asked = {"LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": user.access_key}]}
    wait_for(cloudtrail, before[-1], **asked)  # one process, one chain: the earlier ones are in too
    pages, seen = 0, []
    for page in cloudtrail.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 4}, **asked):
        pages += 1
        seen += page["Events"]
        kms.encrypt(KeyId=key, Plaintext=b"arriving")  # a new event, besides the lookup's own
    ids = [e["EventId"] for e in seen]
    assert len(ids) == len(set(ids)), "an event shown twice"
    rids = [record(e)["requestID"] for e in seen]
    assert all(rids.count(rid) == 1 for rid in before), "an event that was there from the start is missing"
    times = [e["EventTime"] for e in seen]
    assert times == sorted(times, reverse=True), "not newest first"
    assert pages >= 4 and {e["AccessKeyId"] for e in seen} == {user.access_key}


# --- accounts and authorization -------------------------------------------------------------------
def test_cross_account_calls_and_the_account_edge(world):
    admin, reader = world.admin, world["reader"]
    shared = admin.kms.create_key(Description="shared with B", Policy=policy(
        {"Sid": "Owner", "Effect": "Allow", "Principal": {"AWS": admin.root}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "B", "Effect": "Allow", "Principal": {"AWS": reader.root}, "Action": "kms:Encrypt",
         "Resource": "*"}))["KeyMetadata"]["Arn"]
    private = admin.kms.create_key(Description="not shared")["KeyMetadata"]["Arn"]
    allowed = request_id(reader.kms.encrypt(KeyId=shared, Plaintext=b"cross"))
    with pytest.raises(ClientError) as refused_info:
        reader.kms.encrypt(KeyId=private, Plaintext=b"cross")
    assert error_of(refused_info)[0] == "AccessDeniedException"
    refused = request_id(refused_info.value)

    reader_trail = reader.client("cloudtrail")
    by_name = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}]}
    assert record(wait_for(reader_trail, allowed, **by_name))["resources"][0]["ARN"] == shared
    assert record(wait_for(reader_trail, refused, **by_name))["errorCode"] == "AccessDeniedException"
    owner_trail = admin.client("cloudtrail")
    owner_view = record(wait_for(owner_trail, allowed, LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": shared}]))
    assert owner_view["userIdentity"]["accountId"] == ACCT_B
    # The refused call is already central (the reader saw it after the allowed one): the owner never does.
    owner_events = all_events(owner_trail)
    from_b = {record(e)["requestID"] for e in owner_events if record(e)["userIdentity"].get("accountId") == ACCT_B}
    assert from_b == {allowed}
    assert all(record(e)["userIdentity"]["accountId"] == ACCT_B for e in all_events(reader_trail))


def test_a_principal_without_the_permission_is_refused(world):
    user = world["nolook"]
    assert fails(user.client("cloudtrail").lookup_events) == (
        "AccessDeniedException", f"User: {user.arn} is not authorized to perform: cloudtrail:LookupEvents "
                                 "because no identity-based policy allows the cloudtrail:LookupEvents action")


@pytest.mark.parametrize("call, kwargs", [
    ("describe_trails", {}),
    ("create_trail", {"Name": "t", "S3BucketName": "b"}),
    ("get_trail_status", {"Name": "t"}),
    ("start_logging", {"Name": "t"}),
])
def test_other_operations_are_not_implemented(world, call, kwargs):
    cloudtrail = world.admin.client("cloudtrail")
    with pytest.raises(ClientError) as info:
        getattr(cloudtrail, call)(**kwargs)
    assert error_of(info) == ("UnsupportedOperationException", "trentd implements only LookupEvents")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- two nodes over PostgreSQL -------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_nodes():
    require_postgres()
    database = ThrowawayDatabase()
    first = TrentdServer(database=database.dsn)
    second = TrentdServer(database=database.dsn, root_key_file=first.root_key_file)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        second.cleanup()
        first.cleanup()
        database.drop()


def _found_after(cloudtrail, rid: str, key_id: str) -> float:
    """Poll until the lookup finds request ``rid``: when the finding lookup was sent, in seconds."""
    start = time.monotonic()
    while True:
        sent = time.monotonic() - start
        events = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                             "AttributeValue": key_id}])["Events"]
        if rid in {record(e)["requestID"] for e in events}:
            return sent
        assert sent < DEADLINE, f"request {rid} not found on the other node after {DEADLINE} s"
        time.sleep(0.02)


def test_a_call_on_one_node_is_found_on_the_other(two_nodes):
    account = new_account()
    for here, there in (two_nodes, two_nodes[::-1]):
        kms = here.client(access_key=account, secret_key="unused-in-dev-mode")
        lookup = there.client("cloudtrail", access_key=account, secret_key="unused-in-dev-mode")
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        rid = request_id(kms.encrypt(KeyId=arn, Plaintext=b"node"))
        sent = _found_after(lookup, rid, arn)
        assert sent < 1.0, f"found on the other node only {sent:.2f} s later"
