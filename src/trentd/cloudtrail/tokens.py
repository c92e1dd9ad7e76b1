"""LookupEvents' NextToken: an opaque, tamper-evident keyset cursor bound to its request.

A token carries the position of the last event a page showed, (event_time, event_id), and a MAC
over that position and a digest of what the request asked (account, Region, lookup attributes,
time range, event category). AWS: "This token must be passed in with the same parameters that
were specified in the original call"; a token used with other parameters, by another account or
in another Region, or edited, fails its MAC and is InvalidNextTokenException. MaxResults is left
out of the digest: a page size changes no page's position in the sequence.

The MAC key is derived from the deployment's token key (the one grant tokens use, kept wrapped
under the root key in the store, so every node and worker accepts every other's tokens) under a
label of its own, so the two kinds of token can never stand in for each other.

Layout (then URL-safe base64 without padding): version (1 byte) · event_time (8 bytes, signed,
big-endian, µs) · event id (UTF-8) · MAC (16 bytes, HMAC-SHA256 truncated).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import orjson

from ..errors import AWSError

VERSION = 1
MAC_BYTES = 16
_LABEL = b"trentd cloudtrail LookupEvents NextToken"
_HEADER = 1 + 8
_MAX_TOKEN_CHARS = 512  # far above any token made here; longer is not one of ours
INVALID = "Invalid NextToken: it is malformed, or was issued for a request with other parameters."


def token_key(deployment_key: bytes) -> bytes:
    return hmac.new(deployment_key, _LABEL, hashlib.sha256).digest()


def binding(account: str, region: str, request: dict) -> bytes:
    """The digest of everything a token must be used with again."""
    bound = {
        "account": account,
        "region": region,
        "attributes": [[a["AttributeKey"], a["AttributeValue"]] for a in request.get("LookupAttributes") or ()],
        "start": request.get("StartTime"),
        "end": request.get("EndTime"),
        "category": request.get("EventCategory"),
    }
    return hashlib.sha256(orjson.dumps(bound, option=orjson.OPT_SORT_KEYS)).digest()


def make(key: bytes, bound: bytes, position: tuple[int, str]) -> str:
    moment, event_id = position
    payload = bytes([VERSION]) + moment.to_bytes(8, "big", signed=True) + event_id.encode("utf-8")
    return base64.urlsafe_b64encode(payload + _mac(key, bound, payload)).rstrip(b"=").decode("ascii")


def read(key: bytes, bound: bytes, token: str) -> tuple[int, str]:
    """The position a token names; InvalidNextTokenException unless this service made it for a
    request with the same parameters."""
    raw = _decode(token)
    if raw is None or len(raw) <= _HEADER + MAC_BYTES or raw[0] != VERSION:
        raise AWSError("InvalidNextTokenException", INVALID)
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, bound, payload)):
        raise AWSError("InvalidNextTokenException", INVALID)
    moment = int.from_bytes(payload[1:_HEADER], "big", signed=True)
    return moment, payload[_HEADER:].decode("utf-8")  # MAC'd by us: our own UTF-8


def _mac(key: bytes, bound: bytes, payload: bytes) -> bytes:
    return hmac.new(key, bound + payload, hashlib.sha256).digest()[:MAC_BYTES]


def _decode(token: str) -> bytes | None:
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
