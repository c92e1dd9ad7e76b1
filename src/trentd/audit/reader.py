"""Reading the audit files: which files, their events, and the filters of ``trentd audit search``.

Shared by the admin command (``trentd audit tail|search``, admin/audit.py) and the console's
audit page (console/audit.py), which read the same files with the same matching.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from . import audit_dir
from .chain import split_name

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BLOCK = 64 * 1024


def audit_files(paths: list[str] | None, data_dir: str) -> list[Path]:
    """The files named (a directory stands for its ``*.jsonl`` files), or the data dir's."""
    out: list[Path] = []
    for raw in paths or [str(audit_dir(data_dir))]:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.jsonl") if p.is_file()))
        else:
            out.append(path)
    return out


def ordered(files: list[Path]) -> list[Path]:
    """The files in chain order: by chain, then by rotation number."""
    return sorted(files, key=lambda p: (split_name(p)[0], split_name(p)[1] or 0))


def read_events(lines: Iterable[bytes]) -> Iterator[tuple[bytes, dict]]:
    """(line, event) for each line that holds an event; blank and torn lines are skipped."""
    for line in lines:
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # an interrupted write; `audit verify` reports it
        if isinstance(event, dict):
            yield line, event


def last_lines(path: Path, n: int) -> list[bytes]:
    """The last ``n`` complete lines of a file, reading only its end."""
    if n <= 0:
        return []
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        data, pos = b"", end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.split(b"\n")
    if not data.endswith(b"\n"):
        lines.pop()  # an incomplete last line
    else:
        lines.pop()  # the empty string after the final newline
    if pos > 0:
        lines = lines[1:]  # the first piece may be a partial line
    return lines[-n:]


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it has no zone) or a duration back from now (30s, 15m, 2h, 7d)."""
    now = now or datetime.now(timezone.utc)
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def matches(event: dict, *, key=None, principal=None, events=None, error=False, since=None, until=None) -> bool:
    if events and event.get("eventName") not in events:
        return False
    if error and not event.get("errorCode"):
        return False
    when = event.get("eventTime") or ""
    if since and when < since:
        return False
    if until and when > until:
        return False
    if principal:
        ident = event.get("userIdentity") or {}
        issuer = ((ident.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
        if principal not in (ident.get("arn"), issuer):
            return False
    if key:
        arns = [r.get("ARN") for r in event.get("resources") or () if isinstance(r, dict)]
        given = [v for k, v in (event.get("requestParameters") or {}).items()
                 if k in ("keyId", "sourceKeyId", "destinationKeyId", "targetKeyId")]
        if not (key in arns or key in given or any(a and a.endswith("/" + key) for a in arns)):
            return False
    return True
