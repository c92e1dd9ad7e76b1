"""Templates (Jinja2, autoescaped) and the few filters pages need."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone

import jinja2

from .web import Response

# Messages shown after a successful POST (Post/Redirect/Get: ``?msg=<code>``). Only these fixed
# texts can appear, so the query string cannot put words on the page.
MESSAGES = {
    "created": "The key was created.",
    "enabled": "The key was enabled.",
    "disabled": "The key was disabled.",
    "deletion-scheduled": "The key is scheduled for deletion.",
    "deletion-cancelled": "Key deletion was cancelled. The key is disabled; enable it to use it again.",
    "rotated": "On-demand rotation has started.",
    "rotation-enabled": "Automatic rotation is enabled.",
    "rotation-disabled": "Automatic rotation is disabled.",
    "policy-saved": "The key policy was saved.",
    "grant-revoked": "The grant was revoked.",
    "alias-created": "The alias was created.",
    "alias-deleted": "The alias was deleted.",
    "region-changed": "Region changed.",
    "signed-out": "You are signed out.",
    "session-ended": "Your session has ended. Sign in again.",
}


def _when(value) -> str:
    """Epoch seconds (the wire form of KMS timestamps) as a UTC date and time."""
    if value in (None, ""):
        return ""
    try:
        return datetime.fromtimestamp(float(value), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return str(value)


def _pretty_json(value) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=False)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("trentd.console", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["pretty_json"] = _pretty_json
    return env


def render(template: str, status: int = 200, headers: list | None = None, **context) -> Response:
    body = environment().get_template(template).render(**context).encode()
    return Response(status, body, headers=headers or [])
