"""A plain HTTP client for the console: cookies kept, redirects not followed unless asked, and
POSTs sent as a browser sends them (Origin header, the page's CSRF token)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import requests

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
ALERT = re.compile(r'role="alert"[^>]*>(.*?)</', re.DOTALL)


class ConsoleClient:
    def __init__(self, server):
        self.server = server
        self.base = server.url
        self.http = requests.Session()
        self.csrf = ""

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("allow_redirects", False)
        response = self.http.get(self.url(path), timeout=30, **kw)
        self._remember_csrf(response)
        return response

    def post(self, path: str, data: dict, *, csrf: str | None = None, origin: str | None = "same",
             follow: bool = False, headers: dict | None = None) -> requests.Response:
        """POST a form. ``csrf``: the token to send (default: the last page's); ``origin``:
        "same" (this server), None (no Origin header) or another origin."""
        sent = dict(data)
        if "csrf" not in sent:
            sent["csrf"] = self.csrf if csrf is None else csrf
        head = dict(headers or {})
        if origin == "same":
            head["Origin"] = self.base
        elif origin is not None:
            head["Origin"] = origin
        response = self.http.post(self.url(path), data=sent, headers=head, allow_redirects=follow, timeout=60)
        self._remember_csrf(response)
        return response

    def _remember_csrf(self, response: requests.Response) -> None:
        found = CSRF.search(response.text or "")
        if found:
            self.csrf = html.unescape(found.group(1))

    # --- sign-in --------------------------------------------------------------------------
    def sign_in(self, access_key_id: str, secret: str, region: str = "us-east-1") -> requests.Response:
        self.get("/console/signin")  # the form, with its CSRF token (and the cookie it is bound to)
        response = self.post("/console/signin", {"access_key_id": access_key_id, "secret_access_key": secret,
                                                 "region": region})
        assert response.status_code == 303, (response.status_code, alerts(response))
        self.get("/console/keys")  # a page with the session's CSRF token
        return response

    def sign_in_as_admin(self) -> requests.Response:
        return self.sign_in(*self.server.admin_credentials())


def audit_events(server) -> list[dict]:
    """Every event in the server's audit files."""
    events = []
    for path in sorted(Path(server.data_dir, "audit").glob("*.jsonl")):
        events += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return events


def alerts(response: requests.Response) -> list[str]:
    """The texts of the page's role=alert elements (flash messages and errors)."""
    return [html.unescape(" ".join(m.split())) for m in ALERT.findall(response.text or "")]


def textarea(response: requests.Response, element_id: str) -> str:
    found = re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', response.text, re.DOTALL)
    assert found, f"no textarea #{element_id}"
    return html.unescape(found.group(1))


def key_id_from(response: requests.Response) -> str:
    found = re.search(r"/console/keys/([0-9a-f-]{36}|mrk-[0-9a-f]{32})", response.headers.get("location", ""))
    assert found, response.headers
    return found.group(1)
