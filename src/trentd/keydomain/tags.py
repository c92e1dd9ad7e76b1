"""Tags on keys: AWS's rules for the tags of one request (TagResource, CreateKey, ReplicateKey)."""

from __future__ import annotations

from ..errors import AWSError

MAX_TAGS = 50


def reserved(tag_key: str) -> bool:
    return tag_key.lower().startswith("aws:")


def check_new_tags(tags: list[dict]) -> dict[str, str]:
    """AWS's TagException rules for the tags of one request; returns them as a dict."""
    result: dict[str, str] = {}
    for tag in tags:
        if reserved(tag["TagKey"]):
            raise AWSError("TagException", "Tags beginning with aws: are reserved")
        if tag["TagKey"] in result:
            raise AWSError("TagException", "Duplicate tag keys")
        result[tag["TagKey"]] = tag["TagValue"]
    if len(result) > MAX_TAGS:
        raise AWSError("TagException", "Too many tags")
    return result
