"""CloudTrail's LookupEvents over the central audit trail (store/trail_query.py).

What the model and the CloudTrail API reference document, in this order:

1. **Authorization**: ``cloudtrail:LookupEvents`` on ``*`` from the caller's identity policies
   (the action has no resource-level permissions, so AWS's refusal names no resource).
2. **The request's own rules**, each with the exception CloudTrail's model declares for it
   (the generic checker leaves these values alone: ``SERVICE_CHECKED`` in protocol/model.py):
   at most one lookup attribute, with a key the model lists (InvalidLookupAttributesException);
   StartTime not after EndTime (InvalidTimeRangeException); MaxResults 1 to 50, default 50
   (InvalidMaxResultsException); EventCategory ``insight`` or absent
   (InvalidEventCategoryException); a NextToken made for the same parameters
   (InvalidNextTokenException, cloudtrail/tokens.py).
3. **The page**: the caller's account's events of the credential scope's Region (an account
   sees an event when the central trail's visibility lists it: its own calls, and allowed calls
   of other accounts on its keys), newest first. ``EventCategory=insight`` asks for Insights
   events, which trentd never records: no events.

Each event carries CloudTrail's summary fields and ``CloudTrailEvent``, the event's JSON exactly
as stored (the canonical bytes its chain hashes). The texts of the errors are trentd's own:
AWS's have not been recorded.
"""

from __future__ import annotations

from ..auth.identity import base_context
from ..errors import AWSError
from ..store.trail_query import ATTRIBUTE_CONDITIONS, TrailEvent, TrailQuery, lookup_events as query_page
from . import tokens

MAX_RESULTS = 50  # AWS: "Possible values are 1 through 50. The default is 50."
ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
                  "AccessKeyId")  # the model's LookupAttributeKey, in its order
INSIGHT = "insight"
ONE_ATTRIBUTE = "You can specify at most one lookup attribute in a request."
START_AFTER_END = "Start time must not be after end time."
MAX_RESULTS_RANGE = f"MaxResults must be between 1 and {MAX_RESULTS}."
_READ_ONLY_VALUES = {"true": 1, "false": 0}  # AWS shows ReadOnly as these strings
_MATCHES_NOTHING = ("ReadOnly", -1)  # a ReadOnly value other than those: no event has it


def lookup_events(svc, call, request: dict) -> dict:
    svc.authorizer.check_account(call, call.action, "*", base_context(call.caller, None, {}), shown_resource=None)
    attribute = _attribute(request.get("LookupAttributes") or [])
    start, end = _microseconds(request.get("StartTime")), _microseconds(request.get("EndTime"))
    if start is not None and end is not None and start > end:
        raise AWSError("InvalidTimeRangeException", START_AFTER_END)
    limit = _max_results(request.get("MaxResults"))
    category = request.get("EventCategory")
    if category is not None and category != INSIGHT:
        raise AWSError("InvalidEventCategoryException", f"Invalid EventCategory: {category}. Valid value: {INSIGHT}.")
    key = tokens.token_key(svc.grant_token_key)
    bound = tokens.binding(call.account, call.region, request)
    after = tokens.read(key, bound, request["NextToken"]) if request.get("NextToken") else None
    if category == INSIGHT or attribute is _MATCHES_NOTHING:
        return {"Events": []}
    query = TrailQuery(call.account, call.region, limit + 1, start, end, attribute, after)
    with svc.store.read() as tx:
        events = query_page(tx, query)
    out: dict = {"Events": [_shown(event) for event in events[:limit]]}
    if len(events) > limit:  # one more than a page: there is a next one
        last = events[limit - 1]
        out["NextToken"] = tokens.make(key, bound, (last.event_time, last.event_id))
    return out


def _attribute(attributes: list[dict]) -> tuple[str, str | int] | None:
    if len(attributes) > 1:
        raise AWSError("InvalidLookupAttributesException", ONE_ATTRIBUTE)
    if not attributes:
        return None
    key, value = attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
    if key not in ATTRIBUTE_CONDITIONS:
        raise AWSError("InvalidLookupAttributesException",
                       f"Invalid AttributeKey: {key}. Valid keys: {', '.join(ATTRIBUTE_KEYS)}.")
    if key == "ReadOnly":
        read_only = _READ_ONLY_VALUES.get(value.lower())
        return _MATCHES_NOTHING if read_only is None else (key, read_only)
    return key, value


def _microseconds(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1_000_000)


def _max_results(value: int | None) -> int:
    if value is None:
        return MAX_RESULTS
    if not 1 <= value <= MAX_RESULTS:
        raise AWSError("InvalidMaxResultsException", MAX_RESULTS_RANGE)
    return value


def _shown(event: TrailEvent) -> dict:
    """An Event of the answer, as the model names its members."""
    return {
        "EventId": event.event_id,
        "EventName": event.event_name,
        "ReadOnly": None if event.read_only is None else ("true" if event.read_only else "false"),
        "AccessKeyId": event.access_key_id,
        "EventTime": event.event_time / 1_000_000,
        "EventSource": event.event_source,
        "Username": event.username,
        "Resources": [{"ResourceType": kind, "ResourceName": name} for kind, name in event.resources],
        "CloudTrailEvent": event.body.decode("utf-8"),
    }
