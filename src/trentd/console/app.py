"""The web console: routing, sessions and CSRF checks in front of the page handlers.

Order of work for a console request: security headers on whatever is answered; a POST must come
from one of our own pages (Origin/Referer) and its form is read with a cap; a signed-in page
needs a live session whose access key still exists; a POST from a signed-in page must carry the
session's CSRF token. Page handlers then call KMS through ``calls.KmsBridge``, as the principal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field, replace
from importlib import resources

from ..errors import AWSError
from . import aliases, audit, key_detail, keys, signin, tools
from .calls import KmsBridge, describe, status_of
from .render import MESSAGES, render
from .session import COOKIE_NAME, Session, SessionStore, SignInTokens, clearing_cookie
from .throttle import SignInThrottle
from .web import FormError, Request, Response, make_request, read_form, redirect, send_response, text

log = logging.getLogger("trentd.console")

PREFIX = "/console"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

# (method, path pattern under /console, handler, needs a session)
ROUTES = [
    ("GET", r"/", signin.home, False),
    ("GET", r"/signin", signin.show, False),
    ("POST", r"/signin", signin.submit, False),
    ("POST", r"/signout", signin.sign_out, True),
    ("POST", r"/region", signin.change_region, True),
    ("GET", r"/keys", keys.list_keys, True),
    ("GET", r"/keys/new", keys.new_key, True),
    ("POST", r"/keys/new", keys.create_key, True),
    ("GET", r"/keys/(?P<key_id>[A-Za-z0-9-]{1,64})", key_detail.show_key, True),
    ("POST", r"/keys/(?P<key_id>[A-Za-z0-9-]{1,64})/(?P<action>[a-z-]{1,32})", key_detail.key_action, True),
    ("GET", r"/aliases", aliases.list_aliases, True),
    ("POST", r"/aliases", aliases.create_alias, True),
    ("POST", r"/aliases/delete", aliases.delete_alias, True),
    ("GET", r"/audit", audit.show, True),
    ("GET", r"/tools", tools.show, True),
    ("POST", r"/tools", tools.run, True),
]
_COMPILED = [(method, re.compile(pattern), handler, private) for method, pattern, handler, private in ROUTES]


@dataclass
class Ctx:
    """One console request as a page handler sees it."""

    console: "Console"
    request: Request
    session: Session | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self):
        return self.console.settings

    async def call(self, operation: str, params: dict | None = None) -> dict:
        """A KMS call as the signed-in principal (validated, authorized and audited as the API's)."""
        return await self.console.kms.call(self.request, self.session, operation, params)

    async def run(self, fn, *args):
        """Blocking work (the store, files) on the app's thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self.console.app.executor, fn, *args)

    def render(self, template: str, status: int = 200, *, headers: list | None = None, csrf: str | None = None,
               **context) -> Response:
        """``template`` with the session's CSRF token in its forms (``csrf``: another token, for
        the sign-in form)."""
        session = self.session
        message = MESSAGES.get(self.request.query["msg"])
        if csrf is None:
            csrf = session.csrf_secret if session else ""
        return render(template, status, headers, session=session, csrf=csrf, dev=self.settings.dev, message=message,
                      path=self.request.path, **context)

    def failure(self, template: str, err: AWSError, **context) -> Response:
        """Re-render ``template`` with the error of a KMS call shown on it (403 for AccessDenied)."""
        return self.render(template, status_of(err), error=describe(err), **context)


class Console:
    def __init__(self, app):
        self.app = app
        self.settings = app.settings
        self.sessions = SessionStore(app.runtime.store)
        # Keys of the sign-in form's token and of the throttle's hashes: derived from the
        # deployment's audit HMAC key (random, in the store, the same on every node).
        secret = getattr(app.runtime, "audit_hmac_key", None) or secrets.token_bytes(32)
        self.signin_tokens = SignInTokens(_derived(secret, b"trentd console sign-in form"))
        self.throttle = SignInThrottle(app.runtime.store, _derived(secret, b"trentd console sign-in throttle"))
        self.kms = KmsBridge(app)
        self.static = _load_static()

    async def __call__(self, scope, receive, send):
        request = make_request(scope)
        close = False
        try:
            response = await self._dispatch(request, receive)
        except ConnectionError:
            return
        except FormError as exc:
            response, close = text(exc.status, str(exc)), exc.status in (408, 413)
        except Exception:  # a page must never answer with a traceback
            log.exception("console request %s %s failed", request.method, request.path)
            response = render("error.html", 500, session=None, csrf="", dev=self.settings.dev, message=None,
                              path=request.path, error="An internal error occurred.")
        await send_response(send, response, close=close)

    async def _dispatch(self, request: Request, receive) -> Response:
        path = request.path
        if path == PREFIX:
            return redirect(PREFIX + "/")
        sub = path[len(PREFIX):]
        if sub.startswith("/static/"):
            return self._static(request, sub[len("/static/"):])
        found = self._route(request.method, sub)
        if isinstance(found, Response):
            return found
        handler, params, private = found
        if request.method == "POST":
            if not request.same_origin():
                return self._refused(request, "This form was sent from another site, so it was refused.")
            request.form = await read_form(request, receive, self.settings.body_timeout)
        session = None
        if private:
            live = await self._session(request)
            if isinstance(live, Response):
                return live
            session = live
            if request.method == "POST" and not session.csrf_ok(request.form["csrf"]):
                return self._refused(request, "This form has expired or did not come from this console. "
                                              "Reload the page and try again.", session)
        ctx = Ctx(self, request, session, params)
        try:
            return await handler(ctx)
        except AWSError as err:  # a KMS call the page did not handle itself: its message, not a crash
            return ctx.render("error.html", status_of(err), error=describe(err))

    def _route(self, method: str, sub: str):
        allowed = False
        for route_method, pattern, handler, private in _COMPILED:
            match = pattern.fullmatch(sub)
            if match is None:
                continue
            if route_method == method:
                return handler, match.groupdict(), private
            allowed = True
        if allowed:
            return text(405, "Method Not Allowed")
        return render("error.html", 404, session=None, csrf="", dev=self.settings.dev, message=None,
                      path=sub, error="There is no such page in the console.")

    async def _session(self, request: Request) -> Session | Response:
        """The request's live session, or the redirect to sign-in. A session whose access key was
        deleted ends here (the authenticator's one-second cache: no store read on most pages)."""
        loop = asyncio.get_running_loop()
        executor = self.app.executor
        session = await loop.run_in_executor(executor, self.sessions.load, request.cookie(COOKIE_NAME))
        if session is None:
            return self._to_sign_in(request, "session-ended" if request.cookie(COOKIE_NAME) else None)
        if not self.settings.dev:
            found = await loop.run_in_executor(executor, self.app.authenticator.lookup, session.access_key_id)
            if found is None or found[0] != session.principal_arn:
                await loop.run_in_executor(executor, self.sessions.delete_for_access_key, session.access_key_id)
                return self._to_sign_in(request, "session-ended")
            session = replace(session, principal_id=found[2])  # the id its API calls are audited with
        return session

    def _to_sign_in(self, request: Request, message: str | None) -> Response:
        response = redirect(PREFIX + "/signin", **({"msg": message} if message else {}))
        response.headers.append(("set-cookie", clearing_cookie(secure=request.secure)))
        return response

    def _refused(self, request: Request, reason: str, session: Session | None = None) -> Response:
        return render("error.html", 403, session=session, csrf=session.csrf_secret if session else "",
                      dev=self.settings.dev, message=None, path=request.path, error=reason)

    def _static(self, request: Request, name: str) -> Response:
        found = self.static.get(name)
        if found is None or request.method not in ("GET", "HEAD"):
            return text(404, "Not Found")
        return Response(200, found[0], found[1])


def _derived(secret: bytes, label: bytes) -> bytes:
    """A key of its own for one purpose: HMAC-SHA256 of the label under ``secret``."""
    return hmac.new(secret, label, hashlib.sha256).digest()


def _load_static() -> dict[str, tuple[bytes, str]]:
    """The static files, read once: a fixed set of names, so no path from a URL reaches the disk."""
    out = {}
    for entry in (resources.files("trentd.console") / "static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if suffix in STATIC_TYPES:
            out[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return out
