"""Just enough HTTP for server-rendered pages over plain ASGI: requests with their cookies, query
and form, and responses that always carry the console's security headers.

No framework (DESIGN.md: none on the API route, and the console does not need one either):
forms are parsed with urllib.parse, bodies are capped and must arrive within the body deadline.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlencode, urlsplit

from ..pipeline.asgi import read_capped

MAX_FORM_BYTES = 256 * 1024  # a 32 KB key policy, percent-encoded, fits with room to spare
MAX_FORM_FIELDS = 200
FORM_TYPE = "application/x-www-form-urlencoded"
HTML_TYPE = "text/html; charset=utf-8"

# Sent with every console answer, pages, redirects, errors and static files alike.
SECURITY_HEADERS = (
    ("content-security-policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
)


class FormError(Exception):
    """A form the console will not read (too large, too slow, wrong type): answered with ``status``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Form:
    """Submitted fields: ``form["name"]`` is the last value sent, or "" when absent."""

    def __init__(self, fields: dict[str, list[str]] | None = None):
        self._fields = fields or {}

    def __getitem__(self, name: str) -> str:
        values = self._fields.get(name)
        return values[-1] if values else ""

    def __contains__(self, name: str) -> bool:
        return name in self._fields

    def get(self, name: str, default: str = "") -> str:
        return self[name] if name in self._fields else default


@dataclass
class Request:
    scope: dict
    headers: dict[str, str]
    query: Form
    form: Form = field(default_factory=Form)

    @property
    def method(self) -> str:
        return self.scope["method"]

    @property
    def path(self) -> str:
        return self.scope["path"]

    @property
    def secure(self) -> bool:
        return self.scope.get("scheme") == "https"

    @property
    def origin(self) -> str:
        """This server's origin as the browser addressed it."""
        return f"{'https' if self.secure else 'http'}://{self.headers.get('host', '')}"

    @property
    def client_ip(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None

    def cookie(self, name: str) -> str | None:
        try:
            jar = SimpleCookie(self.headers.get("cookie", ""))
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None

    def same_origin(self) -> bool:
        """The POST came from one of our own pages: Origin (or, without it, Referer) names this
        server. A request carrying neither is refused: every browser sends one on a form POST."""
        origin = self.headers.get("origin")
        if origin is not None:
            return origin == self.origin
        referer = self.headers.get("referer")
        if not referer:
            return False
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" == self.origin


def make_request(scope: dict) -> Request:
    headers = {}
    for name, value in scope["headers"]:
        headers[name.decode("latin-1").lower()] = value.decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    return Request(scope, headers, _parse(query))


def _parse(text: str) -> Form:
    try:
        return Form(parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict"))
    except (ValueError, UnicodeDecodeError):
        raise FormError("The form could not be read.") from None


async def read_form(request: Request, receive, timeout: float | None) -> Form:
    """The urlencoded body of a POST, at most MAX_FORM_BYTES, within ``timeout`` seconds."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise FormError("Forms must be sent as application/x-www-form-urlencoded.", 415)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise FormError("The form is too large.", 413)
    try:
        async with asyncio.timeout(timeout or None):
            body = await read_capped(receive, MAX_FORM_BYTES, lambda: FormError("The form is too large.", 413))
    except TimeoutError:
        raise FormError("The form was not received in time.", 408) from None
    try:
        return _parse(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise FormError("The form could not be read.") from None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


def redirect(location: str, **query: str) -> Response:
    """303 See Other: after a POST the browser GETs ``location`` (no resubmission on reload)."""
    if query:
        location += ("&" if "?" in location else "?") + urlencode(query)
    return Response(303, headers=[("location", location)])


def text(status: int, message: str) -> Response:
    return Response(status, message.encode(), "text/plain; charset=utf-8")


async def send_response(send, response: Response, *, close: bool = False) -> None:
    headers = [(b"content-type", response.content_type.encode()),
               (b"content-length", str(len(response.body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
