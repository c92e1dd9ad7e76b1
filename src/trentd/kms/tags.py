"""Tags on keys: TagResource, UntagResource, ListResourceTags, and the rules CreateKey shares."""

from __future__ import annotations

from ..errors import AWSError
from ..keydomain.states import require_not_pending_deletion
from .paging import decode_marker, page
from .service import operation

MAX_TAGS = 50


def _reserved(tag_key: str) -> bool:
    return tag_key.lower().startswith("aws:")


def check_new_tags(tags: list[dict]) -> dict[str, str]:
    """AWS's TagException rules for the tags of one request; returns them as a dict."""
    result: dict[str, str] = {}
    for tag in tags:
        if _reserved(tag["TagKey"]):
            raise AWSError("TagException", "Tags beginning with aws: are reserved")
        if tag["TagKey"] in result:
            raise AWSError("TagException", "Duplicate tag keys")
        result[tag["TagKey"]] = tag["TagValue"]
    if len(result) > MAX_TAGS:
        raise AWSError("TagException", "Too many tags")
    return result


@operation("TagResource")
def tag_resource(svc, caller, req):
    new = check_new_tags(req["Tags"])
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        require_not_pending_deletion(key)
        if len(tx.get_tags(key).keys() | new.keys()) > MAX_TAGS:
            raise AWSError("TagException", "Too many tags")
        for tag_key, tag_value in new.items():
            tx.put_tag(key, tag_key, tag_value)
    return None


@operation("UntagResource")
def untag_resource(svc, caller, req):
    if any(_reserved(k) for k in req["TagKeys"]):
        raise AWSError("TagException", "Tags beginning with aws: are reserved")
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        require_not_pending_deletion(key)
        for tag_key in req["TagKeys"]:
            tx.delete_tag(key, tag_key)
    return None


@operation("ListResourceTags")
def list_resource_tags(svc, caller, req):
    after = decode_marker(req.get("Marker"))
    with svc.store.read() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        tags = [(k, v) for k, v in tx.get_tags(key).items() if k > after]
    rows, more = page(tags, req.get("Limit", 50), lambda t: t[0])
    return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in rows], **more}
