"""The test clock on a real (non --dev) server: ``--test-clock`` makes ``/_trentd/clock`` exist,
but only a SigV4-signed request (service ``kms``) of a principal whose identity policy allows
``trentd:MoveClock`` may read or move it, and every such request is audited (eventSource
``trentd``). In --dev the clock stays unsigned (tests/e2e/test_keys.py and others move it so).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .authz_world import ACCT_A, REGION, World, policy
from .test_audit import all_events, event_for
from .test_auth import MISMATCH, MISSING

DAY = 86_400
KMS_ALL = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
CLOCK = policy({"Effect": "Allow", "Action": "trentd:MoveClock", "Resource": "*"})


@pytest.fixture(scope="module")
def world(authz_server) -> World:
    world = World(authz_server)
    world.make_users([(ACCT_A, "clock-kms-only", KMS_ALL), (ACCT_A, "clock-keeper", CLOCK)])
    return world


def unsigned(server, method: str, body: dict | None = None) -> tuple[int, dict, str]:
    """(status, JSON body, request id) of an unsigned request to the clock."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + "/_trentd/clock", data=data, method=method)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    err = excinfo.value
    return err.code, json.loads(err.read()), err.headers["x-amzn-RequestId"]


def refused(call) -> tuple[int, dict, str]:
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        call()
    err = excinfo.value
    return err.code, json.loads(err.read()), err.headers["x-amzn-RequestId"]


def pending_key(world: World) -> str:
    kms = world.admin.kms
    key_id = kms.create_key(Description="scheduled for deletion")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    return key_id


def state(world: World, key_id: str) -> str:
    return world.admin.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


def test_an_unsigned_request_does_not_move_the_clock(world):
    server = world.server
    key_id = pending_key(world)
    before = server.clock()["offset_seconds"]
    status, body, rid = unsigned(server, "POST", {"advance_seconds": 8 * DAY})
    assert (status, body) == (400, {"__type": "MissingAuthenticationTokenException", "message": MISSING})
    assert server.clock()["offset_seconds"] == before and state(world, key_id) == "PendingDeletion"
    assert unsigned(server, "GET")[:2] == (400, {"__type": "MissingAuthenticationTokenException",
                                                 "message": MISSING})
    event = event_for(server, rid)
    assert (event["eventSource"], event["eventName"]) == ("trentd", "MoveClock")
    assert event["errorCode"] == "MissingAuthenticationTokenException" and event["userIdentity"] == {"type": "Unknown"}


def test_a_principal_without_move_clock_is_denied(world):
    server, user = world.server, world["clock-kms-only"]
    key_id = pending_key(world)
    before = server.clock()["offset_seconds"]
    status, body, rid = refused(lambda: server.move_clock(advance_seconds=8 * DAY, access_key=user.access_key,
                                                         secret_key=user.secret))
    resource = f"arn:aws:trentd:{REGION}:{ACCT_A}:clock"
    assert (status, body) == (400, {"__type": "AccessDeniedException", "message": (
        f"User: {user.arn} is not authorized to perform: trentd:MoveClock on resource: {resource} "
        "because no identity-based policy allows the trentd:MoveClock action")})
    assert refused(lambda: server.clock(access_key=user.access_key, secret_key=user.secret))[1]["__type"] == \
        "AccessDeniedException"
    assert server.clock()["offset_seconds"] == before and state(world, key_id) == "PendingDeletion"
    event = event_for(server, rid)
    assert event["errorCode"] == "AccessDeniedException" and event["userIdentity"]["arn"] == user.arn
    assert event["requestParameters"] == {"advanceSeconds": 8 * DAY}


def test_a_bad_signature_is_refused(world):
    server, user = world.server, world["clock-keeper"]
    status, body, _ = refused(lambda: server.move_clock(advance_seconds=DAY, access_key=user.access_key,
                                                       secret_key="not-the-secret"))
    assert (status, body) == (400, {"__type": "InvalidSignatureException", "message": MISMATCH})


def test_allowed_principals_move_the_clock_and_are_audited(world):
    server, keeper = world.server, world["clock-keeper"]
    key_id = pending_key(world)
    before = server.clock()["offset_seconds"]
    moved = server.move_clock(advance_seconds=DAY, access_key=keeper.access_key, secret_key=keeper.secret)
    assert moved["offset_seconds"] == before + DAY and state(world, key_id) == "PendingDeletion"
    answer = server.move_clock(advance_seconds=7 * DAY)  # the bootstrap administrator (allow-all)
    assert answer["offset_seconds"] == before + 8 * DAY
    with pytest.raises(Exception) as excinfo:  # deleted by the background job the move ran
        state(world, key_id)
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"

    events = [e for e in all_events(server) if e["eventSource"] == "trentd" and "errorCode" not in e]
    moves = [e for e in events if e["eventName"] == "MoveClock"]
    by_keeper = next(e for e in moves if e["userIdentity"].get("arn") == keeper.arn)
    by_admin = next(e for e in moves if e["requestParameters"] == {"advanceSeconds": 7 * DAY})
    assert by_admin["userIdentity"]["arn"] == world.admin.arn and by_admin["readOnly"] is False
    assert by_admin["responseElements"] == {"offsetSeconds": answer["offset_seconds"], "now": answer["now"]}
    assert by_keeper["awsRegion"] == REGION and by_keeper["requestParameters"] == {"advanceSeconds": DAY}
    reads = [e for e in events if e["eventName"] == "GetClock"]
    assert reads and all(e["readOnly"] is True and e["requestParameters"] is None for e in reads)
