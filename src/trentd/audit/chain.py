"""The hash chain over audit lines, and its verifier.

Each line is one JSON object: the event's members in canonical form (keys sorted at every level,
orjson's compact output) followed by ``"trentdChain": {"seq": n, "prev": P, "hash": H}`` where

    H = SHA-256( bytes.fromhex(P) || seq as 8 bytes big-endian || canonical JSON of the event )

and P is the previous line's H (64 zeros before the first event of a process). The verifier
re-derives the canonical bytes from the parsed line and insists the line is exactly what the
writer produced, so an edited value, a deleted, inserted or reordered line, or a renumbered one
breaks verification at the first bad line.

A process's chain spans its files: ``<chain>.<part>.jsonl`` (part 0000 starts at seq 0; a
rotated or re-opened part continues the seq and hash of the part before it).

What a plain hash chain cannot show: lines cut off the *end* of the newest file, and a chain
recomputed from scratch by someone who can write the files. Ship the files (or ``--audit-stdout``)
elsewhere, or record the head hash ``trentd audit verify`` prints, to cover those.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ZERO = "0" * 64
CHAIN_KEY = "trentdChain"
_FILE_NAME = re.compile(r"(?P<chain>.+)\.(?P<part>\d{4,})\.jsonl")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def canonical(event: dict) -> bytes:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def link(prev: str, seq: int, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev) + seq.to_bytes(8, "big") + body).hexdigest()


def encode(event: dict, seq: int, prev: str) -> tuple[bytes, str]:
    """(line with its newline, this line's hash)."""
    body = canonical(event)
    digest = link(prev, seq, body)
    return render_line(body, seq, prev, digest), digest


def render_line(body: bytes, seq: int, prev: str, digest: str) -> bytes:
    chain = orjson.dumps({"seq": seq, "prev": prev, "hash": digest})
    if body == b"{}":
        return b'{"' + CHAIN_KEY.encode() + b'":' + chain + b"}\n"
    return body[:-1] + b',"' + CHAIN_KEY.encode() + b'":' + chain + b"}\n"


def split_name(path: Path) -> tuple[str, int | None]:
    """(chain name, part number) from ``<chain>.<part>.jsonl``; other names are their own chain."""
    match = _FILE_NAME.fullmatch(path.name)
    if not match:
        return str(path), None
    return str(path.parent / match["chain"]), int(match["part"])


# --- verification ------------------------------------------------------------------------------
@dataclass
class FileReport:
    file: str
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None

    def as_dict(self) -> dict:
        return {"file": self.file, "events": self.events, "firstSeq": self.first_seq, "lastSeq": self.last_seq,
                "head": self.head}


@dataclass
class Report:
    ok: bool = True
    files: list[FileReport] = field(default_factory=list)
    error: dict | None = None
    warnings: list[str] = field(default_factory=list)

    def fail(self, file: str, line: int, reason: str) -> "Report":
        self.ok = False
        self.error = {"file": file, "line": line, "reason": reason}
        return self

    def as_dict(self) -> dict:
        out = {"ok": self.ok, "files": [f.as_dict() for f in self.files]}
        if self.error:
            out["error"] = self.error
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def verify_files(paths: list[str | Path]) -> Report:
    """Verify each chain among ``paths`` (in any order): lines within a file, and the links
    between consecutive parts of one process's chain. Stops at the first bad line."""
    report = Report()
    items = []
    for raw in paths:
        path = Path(raw)
        chain, part = split_name(path)
        items.append((chain, part if part is not None else -1, str(path), path))
    items.sort()
    state: dict[str, tuple[int, str, int]] = {}  # chain -> (next seq, prev hash, part)
    for chain, part, _, path in items:
        file_report = FileReport(str(path))
        report.files.append(file_report)
        expected = state.get(chain)
        if expected is not None and part >= 0 and part != expected[2] + 1:
            report.warnings.append(f"{path}: part {expected[2] + 1} of this chain was not given")
        try:
            data = path.read_bytes()
        except OSError as exc:
            return report.fail(str(path), 0, f"cannot read: {exc.strerror or exc}")
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for number, line in enumerate(lines, 1):
            problem, seq, prev, digest = _check_line(line)
            if problem:
                return report.fail(str(path), number, problem)
            if expected is None:
                if seq == 0 and prev != ZERO:
                    return report.fail(str(path), number, "the first event of a chain must have prev 000…0")
                if seq != 0 and part <= 0:
                    return report.fail(str(path), number, f"chain starts at seq {seq}: earlier events are missing")
                if seq != 0:
                    report.warnings.append(f"{path}: continues an earlier part (seq {seq}) that was not given; "
                                           f"its first link is taken on trust")
            else:
                want_seq, want_prev, _ = expected
                if seq != want_seq:
                    return report.fail(str(path), number, f"seq {seq} where {want_seq} was expected "
                                                          "(a line was deleted, inserted or reordered)")
                if prev != want_prev:
                    return report.fail(str(path), number, "prev does not match the hash of the line before "
                                                          "(a line was deleted, inserted, reordered or edited)")
            expected = (seq + 1, digest, part)
            file_report.events += 1
            file_report.last_seq = seq
            file_report.head = digest
            if file_report.first_seq is None:
                file_report.first_seq = seq
        if expected is not None:
            state[chain] = (expected[0], expected[1], part)
        if tail:
            report.warnings.append(f"{path}: line {len(lines) + 1} is incomplete (an interrupted write); ignored")
    return report


def _check_line(line: bytes) -> tuple[str | None, int, str, str]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not valid JSON", 0, "", ""
    if not isinstance(record, dict):
        return "not a JSON object", 0, "", ""
    chain = record.pop(CHAIN_KEY, None)
    if not isinstance(chain, dict):
        return f"no {CHAIN_KEY} member", 0, "", ""
    seq, prev, digest = chain.get("seq"), chain.get("prev"), chain.get("hash")
    if type(seq) is not int or seq < 0 or not isinstance(prev, str) or not _HEX64.fullmatch(prev) \
            or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        return f"malformed {CHAIN_KEY}", 0, "", ""
    body = canonical(record)
    if link(prev, seq, body) != digest:
        return "hash mismatch: the event was modified", seq, prev, digest
    if render_line(body, seq, prev, digest)[:-1] != line:
        return "line is not in the form the writer produced (reformatted or duplicate members)", seq, prev, digest
    return None, seq, prev, digest
