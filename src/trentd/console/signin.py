"""Sign-in, sign-out and the Region switch.

Sign-in takes an access key id and its secret (the same credential the API takes), compared in
constant time; a wrong id and a wrong secret get the same words, so the form is no oracle for
which access key ids exist. In --dev mode the account id alone signs in, as that account's
administrator (the API's dev mode accepts any key the same way).

The form carries a CSRF token bound to a cookie of its own (session.SignInTokens), since no
session exists yet; a POST without it signs no one in. Failed sign-ins are counted in the store
(throttle.py): after ten in a minute, by access key id or by source address, every attempt is
answered 429 for a minute. Each failure and each refusal is audited as a failed ConsoleLogin.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import replace
from typing import NamedTuple

from ..auth import principals
from ..auth.sigv4 import _REGION_RE as REGION  # one pattern for Regions everywhere (DESIGN.md, Accounts and regions)
from .session import COOKIE_NAME, SIGNIN_COOKIE_NAME, clearing_cookie, cookie
from .web import Response, redirect

BAD_CREDENTIALS = "The access key ID or secret access key is not correct."
BAD_ACCOUNT = "Enter a 12-digit account ID."
BAD_REGION = "Enter a valid Region name, such as us-east-1."
FORM_EXPIRED = "This sign-in form has expired or did not come from this console. Sign in again."
THROTTLED = "Too many failed sign-in attempts; try again in a minute."
_ACCOUNT = re.compile(r"\d{12}")
_UNKNOWN_SECRET = "\0" * 40  # compared against when the access key does not exist: same work either way


class Refusal(NamedTuple):
    """A sign-in refused: the form again, with this status, message and headers."""

    status: int
    message: str
    headers: tuple = ()


async def home(ctx) -> Response:
    target = "/console/keys" if ctx.request.cookie(COOKIE_NAME) else "/console/signin"
    return redirect(target)


async def show(ctx) -> Response:
    return _form(ctx)


def _form(ctx, status: int = 200, headers: tuple = (), **context) -> Response:
    """The sign-in form, with its CSRF token (and the cookie it is bound to, when the browser has
    none yet)."""
    request = ctx.request
    token, set_cookie = ctx.console.signin_tokens.issue(request.cookie(SIGNIN_COOKIE_NAME), secure=request.secure)
    all_headers = [*headers, *([("set-cookie", set_cookie)] if set_cookie else [])]
    values = {"region": ctx.settings.region, "access_key_id": "", "account": "", **context.pop("values", {})}
    return ctx.render("signin.html", status, headers=all_headers, csrf=token, values=values, **context)


async def submit(ctx) -> Response:
    request, form = ctx.request, ctx.request.form
    region = form["region"].strip() or ctx.settings.region
    values = {"region": region, "access_key_id": form["access_key_id"].strip(), "account": form["account"].strip()}
    if not ctx.console.signin_tokens.valid(request.cookie(SIGNIN_COOKIE_NAME), form["csrf"]):
        return _form(ctx, 403, values=values, error=FORM_EXPIRED)
    if not REGION.fullmatch(region):
        return _form(ctx, 400, values=values, region_error=BAD_REGION)
    principal: str | Refusal
    if ctx.settings.dev:
        account = values["account"]
        if not _ACCOUNT.fullmatch(account):
            return _form(ctx, 400, values=values, account_error=BAD_ACCOUNT)
        principal, access_key_id = principals.principal_arn(account, principals.ADMIN_NAME), account
    else:
        access_key_id = values["access_key_id"]
        principal = await _authenticate(ctx, access_key_id, form["secret_access_key"], region)
        if isinstance(principal, Refusal):
            return _form(ctx, principal.status, principal.headers, values=values, error=principal.message)
        account = principal.split(":")[4]
    session_id, session = await ctx.run(ctx.console.sessions.create, principal, access_key_id, account, region)
    found = None if ctx.settings.dev else await ctx.run(ctx.console.app.authenticator.lookup, access_key_id)
    if found is not None:  # the principal's unique id, for the ConsoleLogin event (cached: no store read)
        session = replace(session, principal_id=found[2])
    await ctx.console.kms.record_console_event(ctx.request, "ConsoleLogin", session=session, region=region)
    response = redirect("/console/keys")
    response.headers.append(("set-cookie", cookie(session_id, secure=ctx.request.secure)))
    return response


async def _authenticate(ctx, access_key_id: str, secret: str, region: str) -> str | Refusal:
    """The principal these credentials sign in as, or the refusal:
    429 while the throttle refuses this access key id or source address (whatever the secret),
    400 for wrong credentials (counted as a failure). Both are audited."""
    throttle, kms = ctx.console.throttle, ctx.console.kms
    subjects = throttle.subjects(access_key_id, ctx.request.client_ip)
    wait = await ctx.run(throttle.retry_after, subjects)
    if wait:
        await kms.record_console_event(ctx.request, "ConsoleLogin", access_key_id=access_key_id, region=region,
                                       failure=THROTTLED)
        return Refusal(429, THROTTLED, (("retry-after", str(wait)),))
    principal = await _check_secret(ctx, access_key_id, secret)
    if principal is None:
        await ctx.run(throttle.failed, subjects)
        await kms.record_console_event(ctx.request, "ConsoleLogin", access_key_id=access_key_id, region=region,
                                       failure="Failed authentication")
        return Refusal(400, BAD_CREDENTIALS)
    return principal


async def _check_secret(ctx, access_key_id: str, secret: str) -> str | None:
    """The principal of this access key when ``secret`` is its secret, else None."""
    found = None
    if access_key_id and len(access_key_id) <= 128 and access_key_id.isascii():
        found = await ctx.run(ctx.console.app.authenticator.lookup, access_key_id)
    expected = found[1] if found is not None else _UNKNOWN_SECRET
    matches = hmac.compare_digest(secret.encode("utf-8", "surrogateescape"), expected.encode())
    return found[0] if found is not None and matches else None


async def sign_out(ctx) -> Response:
    await ctx.run(ctx.console.sessions.delete, ctx.session)
    await ctx.console.kms.record_console_event(ctx.request, "ConsoleSignout", session=ctx.session,
                                               region=ctx.session.region)
    response = redirect("/console/signin", msg="signed-out")
    response.headers.append(("set-cookie", clearing_cookie(secure=ctx.request.secure)))
    return response


async def change_region(ctx) -> Response:
    region = ctx.request.form["region"].strip()
    if not REGION.fullmatch(region):
        return ctx.render("error.html", 400, error=BAD_REGION)
    await ctx.run(ctx.console.sessions.set_region, ctx.session, region)
    return redirect("/console/keys", msg="region-changed")
