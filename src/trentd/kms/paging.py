"""List pagination: opaque markers that encode the last item returned, and the DryRun rule."""

from __future__ import annotations

import base64
import binascii

from ..errors import AWSError


def decode_marker(marker: str | None) -> str:
    """The sort key after which the next page starts ('' for the first page)."""
    if marker is None:
        return ""
    try:
        # validate=True: urlsafe_b64decode silently drops non-alphabet characters, so "!!!"
        # would decode to "" and restart the listing instead of being refused.
        after = base64.b64decode(marker.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
        if not after:
            raise ValueError("empty marker")
        return after
    except (binascii.Error, UnicodeError, ValueError):
        raise AWSError("InvalidMarkerException", "Invalid marker") from None


def encode_marker(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii")


def page(rows: list, limit: int, sort_key) -> tuple[list, dict]:
    """``rows`` were fetched with ``limit + 1``: return the page and Truncated/NextMarker."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, {"Truncated": True, "NextMarker": encode_marker(sort_key(rows[-1]))}
    return rows, {"Truncated": False}


def dry_run(request: dict) -> None:
    """Called after every check and before any effect: a DryRun that got this far succeeds."""
    if request.get("DryRun"):
        raise AWSError("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
