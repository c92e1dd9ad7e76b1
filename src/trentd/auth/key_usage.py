"""When and where each long-term access key was last used (IAM GetAccessKeyLastUsed).

The authenticator notes every use in memory (a dict store: no I/O and no lock on the hot path);
a background job of every process writes what was noted to the store once a second
(``flush``), where the latest use of a key wins whichever node saw it. A note racing with a flush
may be dropped; the key's next use notes it again, so last use is accurate to about a second, as
AWS's is approximate.
"""

from __future__ import annotations


class KeyUsage:
    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, str, str]] = {}

    def note(self, access_key_id: str, used_at: float, service: str, region: str) -> None:
        self._pending[access_key_id] = (used_at, service, region)

    def drain(self) -> dict[str, tuple[float, str, str]]:
        pending, self._pending = self._pending, {}
        return pending


RECENT = KeyUsage()  # this process's notes


def flush(svc) -> None:
    """Background job: write this process's notes to the store."""
    uses = RECENT.drain()
    if uses:
        with svc.store.write() as tx:
            tx.record_access_key_uses(uses)
