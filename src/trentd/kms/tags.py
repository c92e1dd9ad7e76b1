"""Tags on keys: TagResource, UntagResource, ListResourceTags (the rules on tags that CreateKey and
ReplicateKey share are keydomain/tags.py)."""

from __future__ import annotations

from ..errors import AWSError
from ..keydomain.tags import MAX_TAGS, check_new_tags, reserved
from .paging import decode_marker, page
from .service import operation

@operation("TagResource")
def tag_resource(svc, caller, req):
    new = check_new_tags(req["Tags"])
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
        if len(tx.get_tags(key).keys() | new.keys()) > MAX_TAGS:
            raise AWSError("TagException", "Too many tags")
        for tag_key, tag_value in new.items():
            tx.put_tag(key, tag_key, tag_value)
    return None


@operation("UntagResource")
def untag_resource(svc, caller, req):
    if any(reserved(k) for k in req["TagKeys"]):
        raise AWSError("TagException", "Tags beginning with aws: are reserved")
    with svc.store.write() as tx:
        key = svc.resolve(tx, caller, req["KeyId"])
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
