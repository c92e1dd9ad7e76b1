"""The aliases page: every alias of the Region, and forms to create and delete one."""

from __future__ import annotations

from typing import Any

from ..errors import AWSError
from .calls import describe, status_of
from .keys import alias_name, all_aliases
from .web import Response, redirect


async def list_aliases(ctx) -> Response:
    return await _page(ctx)


async def _page(ctx, status: int = 200, **extra) -> Response:
    context: dict[str, Any] = {"aliases": [], "values": {"alias_name": "", "target_key": ""}, "error": None,
                               "list_error": None}
    context.update(extra)
    try:
        context["aliases"] = sorted(await all_aliases(ctx), key=lambda a: a["AliasName"])
    except AWSError as err:
        context["list_error"] = describe(err)
        status = max(status, status_of(err))
    return ctx.render("aliases.html", status, **context)


async def create_alias(ctx) -> Response:
    form = ctx.request.form
    values = {"alias_name": form["alias_name"].strip(), "target_key": form["target_key"].strip()}
    try:
        await ctx.call("CreateAlias", {"AliasName": alias_name(values["alias_name"]),
                                       "TargetKeyId": values["target_key"]})
    except AWSError as err:
        return await _failed(ctx, err, values=values)
    return redirect("/console/aliases", msg="alias-created")


async def delete_alias(ctx) -> Response:
    try:
        await ctx.call("DeleteAlias", {"AliasName": ctx.request.form["alias_name"]})
    except AWSError as err:
        return await _failed(ctx, err)
    return redirect("/console/aliases", msg="alias-deleted")


async def _failed(ctx, err: AWSError, **extra) -> Response:
    return await _page(ctx, status_of(err), error=describe(err), **extra)
