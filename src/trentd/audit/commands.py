"""``trentd audit verify|tail|search|hash``: reading the audit files (no server needed).

- ``verify FILE…`` (or a directory, or ``--data-dir``): check the hash chains; prints a JSON report
  and exits 1 naming the first bad line on any tampering.
- ``tail [-n N]``: the last N events of the data dir, oldest first, as JSON lines.
- ``search [--key ARN] [--principal ARN] [--event NAME] [--error] [--since T] [--until T]``:
  matching events as JSON lines. T is ISO 8601 (``2025-05-20``, ``2025-05-20T20:46:16Z``) or a
  duration back from now (``30s``, ``15m``, ``2h``, ``7d``).
- ``hash [VALUE]``: the ``hmac-sha256:…`` form a sensitive value (a grant token) takes in this
  deployment's events, to search for it; reads VALUE from stdin when not given.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from . import audit_dir
from .chain import split_name, verify_files

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BLOCK = 64 * 1024


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("audit", help="verify and read the audit log")
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check the hash chain of audit files")
    verify.add_argument("files", nargs="*", metavar="FILE", help="audit files or directories (default: the data dir's)")
    tail = actions.add_parser("tail", help="the last events")
    tail.add_argument("-n", "--lines", type=int, default=10, metavar="N")
    search = actions.add_parser("search", help="events matching filters")
    search.add_argument("--key", metavar="ARN", help="a key ARN (or key id) the event touched")
    search.add_argument("--principal", metavar="ARN", help="the caller's ARN")
    search.add_argument("--event", action="append", metavar="NAME", help="event name (repeatable)")
    search.add_argument("--error", action="store_true", help="only failed requests")
    search.add_argument("--since", metavar="T", help="ISO 8601 time or a duration back from now (15m, 2h, 7d)")
    search.add_argument("--until", metavar="T")
    for sub in (verify, tail, search):
        data_dir_arg(sub, root_key=False, database=False)  # the data dir whose audit/ to read
    for sub in (tail, search):
        sub.add_argument("--file", action="append", dest="files", metavar="FILE",
                         help="read these files (or directories) instead of the data dir's")
    hashing = actions.add_parser("hash", help="the salted hash a sensitive value has in events")
    hashing.add_argument("value", nargs="?", help="the value (default: read from stdin)")
    data_dir_arg(hashing)


def run(args, admin_store) -> int:
    if args.action == "verify":
        return verify(args)
    if args.action == "tail":
        return tail(args)
    if args.action == "search":
        return search(args)
    return hash_value(args, admin_store)


def _files(paths: list[str] | None, data_dir: str) -> list[Path]:
    out: list[Path] = []
    for raw in paths or [str(audit_dir(data_dir))]:
        path = Path(raw)
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.jsonl") if p.is_file()))
        else:
            out.append(path)
    return out


def verify(args) -> int:
    files = _files(args.files, args.data_dir)
    if not files:
        print(json.dumps({"ok": False, "error": {"reason": "no audit files found"}}, indent=2))
        return 1
    report = verify_files(files)
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1


def _ordered(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda p: (split_name(p)[0], split_name(p)[1] or 0))


def _events(lines: list[bytes]):
    for line in lines:
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # an interrupted write; `audit verify` reports it
        if isinstance(event, dict):
            yield line, event


def _emit(matches: list[tuple[bytes, dict]]) -> None:
    matches.sort(key=lambda m: m[1].get("eventTime") or "")  # stable: file order within a second
    out = sys.stdout.buffer
    for line, _ in matches:
        out.write(line.rstrip(b"\n") + b"\n")
    out.flush()


def tail(args) -> int:
    n = max(0, args.lines)
    matches = []
    for path in _ordered(_files(args.files, args.data_dir)):
        matches.extend(_events(_last_lines(path, n)))
    matches.sort(key=lambda m: m[1].get("eventTime") or "")
    _emit(matches[-n:] if n else [])
    return 0


def _last_lines(path: Path, n: int) -> list[bytes]:
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
    now = now or datetime.now(timezone.utc)
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def search(args) -> int:
    try:
        since = _stamp(parse_time(args.since)) if args.since else None
        until = _stamp(parse_time(args.until)) if args.until else None
    except ValueError as exc:
        raise ValueError(f"--since/--until: {exc}") from None
    found = []
    for path in _ordered(_files(args.files, args.data_dir)):
        with open(path, "rb") as f:
            for line, event in _events(f.read().split(b"\n")):
                if matches(event, key=args.key, principal=args.principal, events=args.event, error=args.error,
                           since=since, until=until):
                    found.append((line, event))
    _emit(found)
    return 0


def hash_value(args, admin_store) -> int:
    from . import load_hmac_key
    from .events import Hasher

    value = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    rt = admin_store(args)
    try:
        hasher = Hasher(load_hmac_key(rt.store, rt.root_key))
    finally:
        rt.store.close()
    print(json.dumps({"Hash": hasher(value)}))
    return 0
