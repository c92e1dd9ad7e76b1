"""The audit trail page: the central trail (every node's events, audit/trail.py), newest first,
filtered and paginated.

Who may read it: a principal whose identity policy allows the trentd-specific action
``trentd:ReadAudit`` (on ``arn:aws:trentd:REGION:ACCOUNT:audit`` or ``*``); the bootstrap
administrator's allow-all policy includes it. Key policies play no part: the trail is not a key.
Even then a reader sees only the events of their own account: its callers' calls, and allowed
calls of other accounts on its keys (the central trail's visibility, as CloudTrail's); the whole
trail stays for ``trentd audit search`` on the host.

Each view is itself recorded, as the AWS console's CloudTrail page is (LookupEvents).
The filters are those of ``trentd audit search`` (audit/reader.py, whose matching is reused).
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from ..audit import trail as central
from ..audit.reader import parse_time
from ..auth.invocation import Invocation
from ..errors import AWSError
from ..kms.context_keys import condition_context
from .web import Response

READ_AUDIT = "trentd:ReadAudit"
PAGE_SIZE = 50
FILTERS = ("key", "principal", "operation", "error", "writes", "since", "until")


def audit_resource(region: str, account: str) -> str:
    return f"arn:aws:trentd:{region}:{account}:audit"


async def show(ctx) -> Response:
    query = ctx.request.query
    filters = {name: query[name].strip() for name in FILTERS}
    page = int(query["page"]) if query["page"].isdigit() and int(query["page"]) > 0 else 1
    context = dict(filters=filters, events=[], page=1, pages=1, total=0, links={}, filter_error=None)
    try:
        await ctx.run(_authorize, ctx)
    except AWSError as err:
        await _record(ctx, err)
        return ctx.failure("audit.html", err, **context)
    await _record(ctx, None)
    try:
        criteria = _criteria(filters)
    except ValueError as exc:
        context["filter_error"] = str(exc)
        return ctx.render("audit.html", 400, **context)
    found = await ctx.run(_search, ctx.console.app.audit, ctx.console.app.runtime.store, ctx.session.account,
                          criteria, filters["writes"] == "on")
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(page, pages)
    context.update(events=[_row(e) for e in found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]], page=page,
                   pages=pages, total=len(found), links=_links(filters, page, pages))
    return ctx.render("audit.html", **context)


def _authorize(ctx) -> None:
    """Identity policies alone decide (kms/authorize.py check_account), on a worker thread."""
    call = Invocation(ctx.console.kms.caller(ctx.request, ctx.session, ""), "ReadAudit", service="trentd")
    resource = audit_resource(ctx.session.region, ctx.session.account)
    ctx.console.app.service.authorizer.check_account(call, READ_AUDIT, resource,
                                                     condition_context(None, call, READ_AUDIT))


async def _record(ctx, err: AWSError | None) -> None:
    await ctx.console.kms.record_console_event(ctx.request, "LookupEvents", source="cloudtrail.amazonaws.com",
                                               session=ctx.session, region=ctx.session.region, error=err)


def _criteria(filters: dict) -> dict:
    """The filters as ``audit.reader.matches`` takes them; ValueError for a time it cannot read."""
    def stamp(text: str, name: str) -> str | None:
        if not text:
            return None
        try:
            return parse_time(text).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise ValueError(f"{name}: enter an ISO 8601 time (2025-05-20T20:46:16Z) or a duration "
                             "back from now (15m, 2h, 7d).") from None

    return dict(key=filters["key"] or None, principal=filters["principal"] or None,
                events={filters["operation"]} if filters["operation"] else None, error=filters["error"] == "on",
                since=stamp(filters["since"], "Since"), until=stamp(filters["until"], "Until"))


def _search(audit_log, store, account: str, criteria: dict, writes_only: bool = False) -> list[dict]:
    """Matching events of ``account``, newest first; ``writes_only`` leaves out read-only ones
    (Describe*, Get*, List*, cryptographic calls), which every page view of the console makes many
    of. This node's own latest events are waited for (briefly), so a change shows at once."""
    if audit_log.central is not None:
        audit_log.central.wait_copied()
    found = [event for _, event in central.search(store, account=account, writes_only=writes_only, **criteria)]
    found.reverse()
    return found


def _row(event: dict) -> dict:
    ident = event.get("userIdentity") or {}
    return {"time": event.get("eventTime", ""), "name": event.get("eventName", ""),
            "source": event.get("eventSource", ""), "principal": ident.get("arn") or ident.get("type", ""),
            "error": event.get("errorCode"), "error_message": event.get("errorMessage"),
            "key_arns": [r.get("ARN") or "" for r in event.get("resources") or () if isinstance(r, dict)],
            "agent": event.get("userAgent") or "", "json": orjson.dumps(event, option=orjson.OPT_INDENT_2).decode()}


def _links(filters: dict, page: int, pages: int) -> dict:
    base = {k: v for k, v in filters.items() if v}
    links = {}
    if page > 1:
        links["prev"] = "/console/audit?" + urlencode({**base, "page": page - 1})
    if page < pages:
        links["next"] = "/console/audit?" + urlencode({**base, "page": page + 1})
    return links
