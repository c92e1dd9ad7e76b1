"""The keys list (search, filters, sort, pages) and the create-key form.

The list is what the AWS console does too: ListKeys, then DescribeKey for each key (each call
authorized and audited as the principal's own), so a key the principal may not describe shows as
such instead of leaking its metadata. At most MAX_KEYS keys of the Region are read per view.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from ..crypto.specs import ALGORITHM_FIELD, KEY_SPECS
from ..errors import AWSError
from .calls import describe, status_of
from .key_detail import render_key
from .web import Response, redirect

PAGE_SIZE = 20
MAX_KEYS = 1000
DESCRIBE_CONCURRENCY = 8  # DescribeKey calls in flight for one list view: the pool serves the API too
KEY_STATES = ("Enabled", "Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion", "Unavailable",
              "Creating", "Updating")
KEY_USAGES = tuple(ALGORITHM_FIELD)
ORIGINS = ("AWS_KMS", "EXTERNAL")
# Sortable columns: the KeyMetadata member each sorts by.
SORTS = {"created": "CreationDate", "id": "KeyId", "description": "Description", "state": "KeyState",
         "spec": "KeySpec", "usage": "KeyUsage"}


def creatable_specs() -> list[str]:
    """KeySpecs CreateKey accepts, from the single key-spec table (crypto/specs.py)."""
    return [name for name, spec in KEY_SPECS.items() if spec.supported]


# --- the list --------------------------------------------------------------------------------
async def list_keys(ctx) -> Response:
    query = ctx.request.query
    filters = {name: query[name].strip() for name in ("q", "state", "spec", "usage")}
    sort = query["sort"] if query["sort"] in SORTS else "created"
    order = query["order"] if query["order"] in ("asc", "desc") else ("desc" if sort == "created" else "asc")
    page = int(query["page"]) if query["page"].isdigit() and int(query["page"]) > 0 else 1
    context = dict(filters=filters, sort=sort, order=order, states=KEY_STATES, specs=creatable_specs(),
                   usages=KEY_USAGES, rows=[], page=1, pages=1, total=0, capped=False, links={})
    try:
        ids, capped = await _key_ids(ctx)
    except AWSError as err:
        return ctx.failure("keys.html", err, **context)
    aliases = await _aliases_by_key(ctx)
    rows = await _describe_all(ctx, ids, aliases)
    rows = [row for row in rows if _matches(row, filters)]
    rows.sort(key=lambda row: _sort_value(row, sort), reverse=order == "desc")
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = min(page, pages)
    context.update(rows=rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], page=page, pages=pages, total=len(rows),
                   capped=capped, links=_links(filters, sort, order, page, pages))
    return ctx.render("keys.html", **context)


async def _key_ids(ctx) -> tuple[list[str], bool]:
    ids: list[str] = []
    params: dict = {"Limit": 1000}
    while True:
        out = await ctx.call("ListKeys", params)
        ids.extend(k["KeyId"] for k in out.get("Keys", ()))
        if not out.get("Truncated") or len(ids) >= MAX_KEYS:
            return ids[:MAX_KEYS], bool(out.get("Truncated")) or len(ids) > MAX_KEYS
        params = {"Limit": 1000, "Marker": out["NextMarker"]}


async def all_aliases(ctx) -> list[dict]:
    """Every alias of the Region (ListAliases pages of 100, the documented maximum)."""
    found: list[dict] = []
    params: dict = {"Limit": 100}
    while True:
        out = await ctx.call("ListAliases", params)
        found.extend(out.get("Aliases", ()))
        if not out.get("Truncated"):
            return found
        params = {"Limit": 100, "Marker": out["NextMarker"]}


async def _aliases_by_key(ctx) -> dict[str, list[str]]:
    try:
        aliases = await all_aliases(ctx)
    except AWSError:  # a principal who may list keys but not aliases still gets the list
        return {}
    out: dict[str, list[str]] = {}
    for alias in aliases:
        if alias.get("TargetKeyId"):
            out.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    return out


async def _describe_all(ctx, ids: list[str], aliases: dict[str, list[str]]) -> list[dict]:
    gate = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def one(key_id: str) -> dict:
        async with gate:
            try:
                meta = (await ctx.call("DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
                return {"id": key_id, "meta": meta, "aliases": aliases.get(key_id, []), "error": None}
            except AWSError as err:
                return {"id": key_id, "meta": None, "aliases": aliases.get(key_id, []), "error": describe(err)}

    return list(await asyncio.gather(*(one(key_id) for key_id in ids)))


def _matches(row: dict, filters: dict) -> bool:
    meta = row["meta"] or {}
    for name, member in (("state", "KeyState"), ("spec", "KeySpec"), ("usage", "KeyUsage")):
        if filters[name] and meta.get(member) != filters[name]:
            return False
    needle = filters["q"].lower()
    if needle:
        haystack = [row["id"], meta.get("Arn", ""), meta.get("Description", ""), *row["aliases"]]
        return any(needle in text.lower() for text in haystack)
    return True


def _sort_value(row: dict, sort: str):
    value = (row["meta"] or {}).get(SORTS[sort])
    if value is None:
        return (1, "") if sort != "created" else (1, 0)
    return (0, value.lower() if isinstance(value, str) else value)


def _links(filters: dict, sort: str, order: str, page: int, pages: int) -> dict:
    """Query strings for the column headers (sort) and the previous/next page."""
    base = {k: v for k, v in filters.items() if v}

    def url(**extra) -> str:
        return "/console/keys?" + urlencode({**base, **extra})

    links: dict[str, Any] = {"sort": {}}
    for column in SORTS:
        flipped = "desc" if (column == sort and order == "asc") else "asc"
        links["sort"][column] = url(sort=column, order=flipped)
    if page > 1:
        links["prev"] = url(sort=sort, order=order, page=page - 1)
    if page < pages:
        links["next"] = url(sort=sort, order=order, page=page + 1)
    return links


# --- create ----------------------------------------------------------------------------------
def _create_context(values: dict | None = None, **extra) -> dict:
    defaults = {"key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS",
                "multi_region": "", "description": "", "tags": "", "alias": ""}
    usages_of = {name: " ".join(spec.usages) for name, spec in KEY_SPECS.items()}
    return dict(values={**defaults, **(values or {})}, specs=creatable_specs(), usages=KEY_USAGES, origins=ORIGINS,
                usages_of=usages_of, **extra)


async def new_key(ctx) -> Response:
    return ctx.render("create_key.html", **_create_context())


def parse_tags(text: str) -> list[dict]:
    """``key=value`` lines (blank lines ignored) as CreateKey's Tags; ValueError names a bad line."""
    tags = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Tag line {number} must look like key=value.")
        tags.append({"TagKey": key.strip(), "TagValue": value.strip()})
    return tags


def alias_name(text: str) -> str:
    text = text.strip()
    return text if not text or text.startswith("alias/") else "alias/" + text


async def create_key(ctx) -> Response:
    form = ctx.request.form
    values = {name: form[name] for name in ("key_spec", "key_usage", "origin", "multi_region", "description",
                                             "tags", "alias")}
    try:
        tags = parse_tags(values["tags"])
    except ValueError as exc:
        return ctx.render("create_key.html", 400, **_create_context(values, tags_error=str(exc)))
    params: dict = {"KeySpec": values["key_spec"], "KeyUsage": values["key_usage"], "Origin": values["origin"],
                    "MultiRegion": values["multi_region"] == "on"}
    if values["description"]:
        params["Description"] = values["description"]
    if tags:
        params["Tags"] = tags
    try:
        meta = (await ctx.call("CreateKey", params))["KeyMetadata"]
    except AWSError as err:
        return ctx.failure("create_key.html", err, **_create_context(values))
    alias = alias_name(values["alias"])
    if alias:
        try:
            await ctx.call("CreateAlias", {"AliasName": alias, "TargetKeyId": meta["KeyId"]})
        except AWSError as err:  # the key exists now: show it, with why its alias does not
            return await render_key(ctx, meta["KeyId"], status_of(err),
                                    error=f"The key was created, but not its alias. {describe(err)}")
    return redirect(f"/console/keys/{meta['KeyId']}", msg="created")
