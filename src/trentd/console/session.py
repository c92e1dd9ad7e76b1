"""Console sessions: server-side rows in the store (migration 0006), so that a session works on
every worker and node and sign-out really ends it.

- The cookie holds a random 256-bit id; the store keeps only its SHA-256, so a copy of the
  database cannot be turned back into cookies.
- A session ends after IDLE_SECONDS without a request, ABSOLUTE_SECONDS after sign-in, at
  sign-out, or when its access key is deleted (checked by the console on every request).
- Each session has its own CSRF secret, put in every form and compared in constant time.
- The sign-in form, which no session covers yet, has a token of its own (``SignInTokens``).

Times here are the wall clock, not the service clock: a session is about people, not key
lifecycle, and moving the test clock must not sign anyone out.

Every method touches the store: call them on a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, replace

COOKIE_NAME = "trentd_console"
COOKIE_PATH = "/console/"
SIGNIN_COOKIE_NAME = "trentd_signin"
_SIGNIN_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
IDLE_SECONDS = 8 * 3600
ABSOLUTE_SECONDS = 12 * 3600
TOUCH_SECONDS = 60  # last_seen is rewritten at most once a minute per session, not per page
_COLUMNS = "id_hash, principal_arn, access_key_id, account, region, csrf_secret, created, last_seen"


@dataclass(frozen=True)
class Session:
    id_hash: str
    principal_arn: str
    access_key_id: str
    account: str
    region: str
    csrf_secret: str
    created: float
    last_seen: float
    principal_id: str = ""  # the principal's unique id, from the credential cache on each request (app.py)

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(self.csrf_secret.encode(), token.encode("utf-8", "surrogateescape"))


def hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def cookie(session_id: str, *, secure: bool, name: str = COOKIE_NAME) -> str:
    """The Set-Cookie value: no Max-Age, so the browser forgets it when it closes; the server's
    expiry is what counts."""
    value = f"{name}={session_id}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict"
    return value + "; Secure" if secure else value


def clearing_cookie(*, secure: bool) -> str:
    value = f"{COOKIE_NAME}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict"
    return value + "; Secure" if secure else value


class SignInTokens:
    """The sign-in form's CSRF token, before any session exists (a signed double submit): a random
    value in a cookie of its own, and in the form the HMAC of that value under a key of this
    deployment (the same on every worker and node). A page elsewhere can neither read the
    browser's cookie (HttpOnly, SameSite=Strict) nor make up a token for a value it chose, so it
    cannot sign a victim in, not even as the attacker (login CSRF)."""

    def __init__(self, key: bytes):
        self._key = key

    def _token(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def issue(self, value: str | None, *, secure: bool) -> tuple[str, str | None]:
        """(the form's token, the Set-Cookie value to send). The browser's cookie ``value`` is
        kept when it is well formed (several tabs share it); else a new one is made."""
        if value and _SIGNIN_COOKIE_VALUE.fullmatch(value):
            return self._token(value), None
        value = secrets.token_urlsafe(32)
        return self._token(value), cookie(value, secure=secure, name=SIGNIN_COOKIE_NAME)

    def valid(self, value: str | None, token: str) -> bool:
        if not value or not _SIGNIN_COOKIE_VALUE.fullmatch(value):
            return False
        return hmac.compare_digest(self._token(value).encode(), token.encode("utf-8", "surrogateescape"))


class SessionStore:
    def __init__(self, store, clock=time.time):
        self.store = store
        self.clock = clock

    def create(self, principal_arn: str, access_key_id: str, account: str, region: str) -> tuple[str, Session]:
        """A new session: (the id for the cookie, the session)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        session = Session(hash_id(session_id), principal_arn, access_key_id, account, region,
                          secrets.token_urlsafe(32), now, now)
        with self.store.write() as tx:
            self._sweep(tx, now)
            tx.q(f"INSERT INTO console_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (session.id_hash, principal_arn, access_key_id, account, region, session.csrf_secret, now, now))
        return session_id, session

    def load(self, session_id: str | None) -> Session | None:
        """The live session this cookie names, its idle timer restarted; None when there is none
        or it has expired (an expired row is removed)."""
        if not session_id or len(session_id) > 128:
            return None
        id_hash = hash_id(session_id)
        with self.store.read() as tx:
            row = tx.one(f"SELECT {_COLUMNS} FROM console_sessions WHERE id_hash = ?", (id_hash,))
        if row is None:
            return None
        session = Session(*row)
        now = self.clock()
        if self.expired(session, now):
            self.delete(session)
            return None
        if now - session.last_seen >= TOUCH_SECONDS:
            with self.store.write() as tx:
                tx.q("UPDATE console_sessions SET last_seen = ? WHERE id_hash = ?", (now, id_hash))
            session = replace(session, last_seen=now)
        return session

    @staticmethod
    def expired(session: Session, now: float) -> bool:
        return now - session.last_seen > IDLE_SECONDS or now - session.created > ABSOLUTE_SECONDS

    def set_region(self, session: Session, region: str) -> Session:
        with self.store.write() as tx:
            tx.q("UPDATE console_sessions SET region = ? WHERE id_hash = ?", (region, session.id_hash))
        return replace(session, region=region)

    def delete(self, session: Session) -> None:
        with self.store.write() as tx:
            tx.q("DELETE FROM console_sessions WHERE id_hash = ?", (session.id_hash,))

    def delete_for_access_key(self, access_key_id: str) -> None:
        """End every session signed in with this access key (it no longer exists)."""
        with self.store.write() as tx:
            tx.q("DELETE FROM console_sessions WHERE access_key_id = ?", (access_key_id,))

    def _sweep(self, tx, now: float) -> None:
        """Drop sessions past their idle or absolute limit (run at each sign-in: cheap, indexed)."""
        tx.q("DELETE FROM console_sessions WHERE last_seen < ? OR created < ?",
             (now - IDLE_SECONDS, now - ABSOLUTE_SECONDS))
