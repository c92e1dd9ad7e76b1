"""The throttle on failed console sign-ins (store table ``console_signin_failures``, migration 0009).

Failures are counted in the store, so every worker and node agrees, per access key id and per
source address (the address the console sees, resolved through ``--trusted-proxies``). Each is
kept as an HMAC-SHA256 under a key of this deployment: the store never holds an access key id
someone typed (it may be a secret pasted in the wrong field) nor an address. After LIMIT failures
within WINDOW_SECONDS, sign-in with that access key id or from that address is refused for
LOCK_SECONDS, good credentials included. Refused attempts are not failures: they do not extend
the refusal. API calls never come here.

Times are the wall clock, as for sessions (session.py): moving the test clock must not lock
anyone out. Every method touches the store: call them on a worker thread, never on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

LIMIT = 10
WINDOW_SECONDS = 60.0
LOCK_SECONDS = 60.0
_LOOK_BACK = WINDOW_SECONDS + LOCK_SECONDS  # failures older than this can no longer cause a refusal


class SignInThrottle:
    def __init__(self, store, key: bytes, clock=time.time):
        self.store = store
        self._key = key
        self.clock = clock

    def subjects(self, access_key_id: str, source: str | None) -> tuple[str, ...]:
        """What one sign-in attempt is counted under: its access key id, and its source address
        when there is one."""
        found = [self._mac("access-key", access_key_id)]
        if source:
            found.append(self._mac("source", source))
        return tuple(found)

    def _mac(self, kind: str, value: str) -> str:
        message = f"{kind}\0{value}".encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def retry_after(self, subjects: tuple[str, ...]) -> int:
        """Seconds until these subjects may try again; 0 when they may now."""
        now = self.clock()
        marks = ", ".join("?" * len(subjects))
        with self.store.read() as tx:
            rows = tx.q(f"SELECT subject, failed_at FROM console_signin_failures "
                        f"WHERE subject IN ({marks}) AND failed_at > ?", (*subjects, now - _LOOK_BACK)).fetchall()
        until = max((locked_until([t for s, t in rows if s == subject]) for subject in subjects), default=0.0)
        return math.ceil(until - now) if until > now else 0

    def failed(self, subjects: tuple[str, ...]) -> None:
        """Count one failed sign-in under each subject, and drop failures too old to matter."""
        now = self.clock()
        with self.store.write() as tx:
            tx.q("DELETE FROM console_signin_failures WHERE failed_at < ?", (now - _LOOK_BACK,))
            for subject in subjects:
                tx.q("INSERT INTO console_signin_failures (subject, failed_at) VALUES (?, ?)", (subject, now))


def locked_until(failures: list[float]) -> float:
    """When the refusal these failure times cause ends: LOCK_SECONDS after the latest failure
    that completes LIMIT failures within WINDOW_SECONDS; 0 when there is none."""
    times = sorted(failures, reverse=True)
    for i in range(len(times) - LIMIT + 1):
        if times[i] - times[i + LIMIT - 1] <= WINDOW_SECONDS:
            return times[i] + LOCK_SECONDS
    return 0.0
