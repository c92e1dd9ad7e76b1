"""One key: its metadata, aliases, tags, policy, grants and rotation, and the actions on it.

Every section is its own KMS call, so a principal allowed DescribeKey but not GetKeyPolicy sees
the key with AWS's AccessDenied text in place of the policy rather than no page at all. Actions
are POSTs answered with a redirect (Post/Redirect/Get); a refused one re-renders the page with
the error beside the form that caused it, and the policy editor keeps what was typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..errors import AWSError
from .calls import describe, status_of
from .web import Form, Response, redirect

DELETION_WINDOW = (7, 30)  # days, as KMS enforces them
ROTATION_PERIOD = (90, 2560)  # days (EnableKeyRotation's RotationPeriodInDays)
ROTATABLE_SPECS = ("SYMMETRIC_DEFAULT",)  # automatic and on-demand rotation: symmetric encryption keys only


class FieldError(ValueError):
    """A form value the console rejects before calling KMS (not a whole number, say)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _days(form: Form, name: str, bounds: tuple[int, int], default: int | None) -> int | None:
    text = form[name].strip()
    if not text:
        return default
    if not text.isdigit() or not bounds[0] <= int(text) <= bounds[1]:
        raise FieldError(name, f"Enter a whole number of days from {bounds[0]} to {bounds[1]}.")
    return int(text)


def _optional(params: dict) -> dict:
    return {k: v for k, v in params.items() if v is not None}


# action in the URL -> (KMS operation, request built from the form and key id, message code)
ACTIONS: dict[str, tuple[str, Callable[[Form, str], dict], str]] = {
    "enable": ("EnableKey", lambda f, k: {"KeyId": k}, "enabled"),
    "disable": ("DisableKey", lambda f, k: {"KeyId": k}, "disabled"),
    "schedule-deletion": ("ScheduleKeyDeletion", lambda f, k: {
        "KeyId": k, "PendingWindowInDays": _days(f, "window", DELETION_WINDOW, 30)}, "deletion-scheduled"),
    "cancel-deletion": ("CancelKeyDeletion", lambda f, k: {"KeyId": k}, "deletion-cancelled"),
    "rotate": ("RotateKeyOnDemand", lambda f, k: {"KeyId": k}, "rotated"),
    "enable-rotation": ("EnableKeyRotation", lambda f, k: _optional({
        "KeyId": k, "RotationPeriodInDays": _days(f, "period", ROTATION_PERIOD, None)}), "rotation-enabled"),
    "disable-rotation": ("DisableKeyRotation", lambda f, k: {"KeyId": k}, "rotation-disabled"),
    "policy": ("PutKeyPolicy", lambda f, k: {"KeyId": k, "PolicyName": "default", "Policy": f["policy"]},
               "policy-saved"),
    "revoke-grant": ("RevokeGrant", lambda f, k: {"KeyId": k, "GrantId": f["grant_id"]}, "grant-revoked"),
}


async def show_key(ctx) -> Response:
    return await render_key(ctx, ctx.params["key_id"])


async def render_key(ctx, key_id: str, status: int = 200, **extra) -> Response:
    try:
        meta = (await ctx.call("DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    except AWSError as err:  # the key cannot be shown: say why, or why the action before failed
        shown = extra.get("error") or extra.get("policy_error")
        return ctx.render("error.html", status if shown else status_of(err), error=shown or describe(err))
    kid = meta["KeyId"]
    rotatable = meta.get("KeySpec") in ROTATABLE_SPECS
    aliases, tags, policy, grants, rotation, rotations = await asyncio.gather(
        _section(ctx, "ListAliases", {"KeyId": kid, "Limit": 100}),
        _section(ctx, "ListResourceTags", {"KeyId": kid, "Limit": 50}),
        _section(ctx, "GetKeyPolicy", {"KeyId": kid, "PolicyName": "default"}),
        _section(ctx, "ListGrants", {"KeyId": kid, "Limit": 100}),
        _section(ctx, "GetKeyRotationStatus", {"KeyId": kid}) if rotatable else _nothing(),
        _section(ctx, "ListKeyRotations", {"KeyId": kid, "Limit": 100}) if rotatable else _nothing(),
    )
    policy_text = extra.pop("policy_text", None)
    if policy_text is None:
        policy_text = (policy["data"] or {}).get("Policy", "")
    context = dict(meta=meta, aliases=aliases, tags=tags, policy=policy, policy_text=policy_text, grants=grants,
                   rotatable=rotatable, rotation=rotation, rotations=rotations, deletion_window=DELETION_WINDOW,
                   rotation_period=ROTATION_PERIOD, field_errors={}, policy_error=None, error=None)
    context.update(extra)
    return ctx.render("key.html", status, **context)


async def _nothing() -> None:
    return None


async def _section(ctx, operation: str, params: dict) -> dict:
    """One part of the page: the call's answer, or the words of its error in its place."""
    try:
        return {"data": await ctx.call(operation, params), "error": None}
    except AWSError as err:
        return {"data": None, "error": describe(err)}


async def key_action(ctx) -> Response:
    key_id, action, form = ctx.params["key_id"], ctx.params["action"], ctx.request.form
    found = ACTIONS.get(action)
    if found is None:
        return ctx.render("error.html", 404, error="There is no such action on a key.")
    operation, build, done = found
    try:
        params = build(form, key_id)
    except FieldError as exc:
        return await render_key(ctx, key_id, 400, field_errors={exc.field: str(exc)})
    try:
        await ctx.call(operation, params)
    except AWSError as err:
        if action == "policy":  # beside the editor, with the text as typed
            return await render_key(ctx, key_id, status_of(err), policy_text=form["policy"],
                                    policy_error=describe(err))
        return await render_key(ctx, key_id, status_of(err), error=describe(err))
    return redirect(f"/console/keys/{key_id}", msg=done)
