"""``trentd audit verify|tail|search|export|hash``: reading the audit trail (no server needed).

Without FILEs (``--data-dir``, or ``--database DSN --root-key-file FILE``) these read the
central trail in the store, every node's events (audit/trail.py); given FILEs (``verify FILE…``,
``--file``) they read those files as before (audit/reader.py, audit/chain.py).

- ``verify``: check every chain of the central trail (from its retention checkpoint) and report
  the first break of each; ``verify FILE…`` (or a directory) checks the files. JSON report; exit 1
  on any tampering.
- ``tail [-n N]``: the last N events, oldest first, as JSON lines.
- ``search [--key ARN] [--principal ARN] [--event NAME] [--error] [--since T] [--until T]``:
  matching events as JSON lines. T is ISO 8601 (``2025-05-20``, ``2025-05-20T20:46:16Z``) or a
  duration back from now (``30s``, ``15m``, ``2h``, ``7d``).
- ``export --since T [--until T] --out FILE``: the central trail's events between the two as
  JSON lines, each a CloudTrail record, for a SIEM.
- ``hash [VALUE]``: the ``hmac-sha256:…`` form a sensitive value (a grant token) takes in this
  deployment's events, to search for it; reads VALUE from stdin when not given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from ..audit import load_hmac_key
from ..audit import trail as central
from ..audit.chain import verify_files
from ..audit.events import Hasher
from ..audit.reader import audit_files, last_lines, matches, ordered, parse_time, read_events
from .common import open_admin_runtime


def add_parser(commands, data_dir_arg) -> None:
    parser = commands.add_parser("audit", help="verify and read the audit log")
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check the hash chain of audit files")
    verify.add_argument("files", nargs="*", metavar="FILE",
                        help="audit files or directories (default: the central trail in the store)")
    tail = actions.add_parser("tail", help="the last events")
    tail.add_argument("-n", "--lines", type=int, default=10, metavar="N")
    search = actions.add_parser("search", help="events matching filters")
    search.add_argument("--key", metavar="ARN", help="a key ARN (or key id) the event touched")
    search.add_argument("--principal", metavar="ARN", help="the caller's ARN")
    search.add_argument("--event", action="append", metavar="NAME", help="event name (repeatable)")
    search.add_argument("--error", action="store_true", help="only failed requests")
    search.add_argument("--since", metavar="T", help="ISO 8601 time or a duration back from now (15m, 2h, 7d)")
    search.add_argument("--until", metavar="T")
    export = actions.add_parser("export", help="the central trail's events as JSON lines, for a SIEM")
    export.add_argument("--since", metavar="T", required=True,
                        help="ISO 8601 time or a duration back from now (15m, 2h, 7d)")
    export.add_argument("--until", metavar="T")
    export.add_argument("--out", metavar="FILE", required=True, help="where to write (made 0600; - for stdout)")
    for sub in (verify, tail, search, export):
        data_dir_arg(sub)  # the store whose central trail to read
    for sub in (tail, search):
        sub.add_argument("--file", action="append", dest="files", metavar="FILE",
                         help="read these files (or directories) instead of the central trail")
    hashing = actions.add_parser("hash", help="the salted hash a sensitive value has in events")
    hashing.add_argument("value", nargs="?", help="the value (default: read from stdin)")
    data_dir_arg(hashing)


def run(args) -> int:
    if args.action == "verify":
        return verify(args)
    if args.action == "tail":
        return tail(args)
    if args.action == "search":
        return search(args)
    if args.action == "export":
        return export(args)
    return hash_value(args)


@contextmanager
def _store(args) -> Iterator:
    """The store of ``--data-dir``/``--database`` (which must exist), closed afterwards."""
    rt = open_admin_runtime(args)
    try:
        yield rt.store
    finally:
        rt.root_key.close()
        rt.store.close()


def verify(args) -> int:
    if not args.files:
        with _store(args) as store:
            checked = central.verify(store)
        print(json.dumps(checked.as_dict(), indent=2))
        return 0 if checked.ok else 1
    files = audit_files(args.files, args.data_dir)
    if not files:
        print(json.dumps({"ok": False, "error": {"reason": "no audit files found"}}, indent=2))
        return 1
    report = verify_files([*files])
    print(json.dumps(report.as_dict(), indent=2))
    return 0 if report.ok else 1


def _emit(found: list[tuple[bytes, dict]]) -> None:
    found.sort(key=lambda m: m[1].get("eventTime") or "")  # stable: file order within a second
    out = sys.stdout.buffer
    for line, _ in found:
        out.write(line.rstrip(b"\n") + b"\n")
    out.flush()


def tail(args) -> int:
    n = max(0, args.lines)
    if not args.files:
        with _store(args) as store:
            lines = central.tail(store, n)
        out = sys.stdout.buffer
        out.write(b"".join(line + b"\n" for line in lines))
        out.flush()
        return 0
    found: list[tuple[bytes, dict]] = []
    for path in ordered(audit_files(args.files, args.data_dir)):
        found.extend(read_events(last_lines(path, n)))
    found.sort(key=lambda m: m[1].get("eventTime") or "")
    _emit(found[-n:] if n else [])
    return 0


def _stamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bounds(args) -> tuple[str | None, str | None]:
    try:
        since = _stamp(parse_time(args.since)) if args.since else None
        until = _stamp(parse_time(args.until)) if args.until else None
    except ValueError as exc:
        raise ValueError(f"--since/--until: {exc}") from None
    return since, until


def search(args) -> int:
    since, until = _bounds(args)
    if not args.files:
        with _store(args) as store:
            found = central.search(store, key=args.key, principal=args.principal, events=args.event,
                                   error=args.error, since=since, until=until)
        out = sys.stdout.buffer
        out.write(b"".join(line + b"\n" for line, _ in found))
        out.flush()
        return 0
    found = []
    for path in ordered(audit_files(args.files, args.data_dir)):
        with open(path, "rb") as f:
            for line, event in read_events(f.read().split(b"\n")):
                if matches(event, key=args.key, principal=args.principal, events=args.event, error=args.error,
                           since=since, until=until):
                    found.append((line, event))
    _emit(found)
    return 0


def export(args) -> int:
    since, until = _bounds(args)
    with _store(args) as store:
        if args.out == "-":
            count = central.export(store, sys.stdout.buffer, since or "", until)
            sys.stdout.buffer.flush()
            print(json.dumps({"Events": count}), file=sys.stderr)
            return 0
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            count = central.export(store, out, since or "", until)
    print(json.dumps({"Events": count, "Out": args.out}))
    return 0


def hash_value(args) -> int:
    value = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    rt = open_admin_runtime(args)
    try:
        hasher = Hasher(load_hmac_key(rt.store, rt.root_key))
    finally:
        rt.store.close()
    print(json.dumps({"Hash": hasher(value)}))
    return 0
