"""The scale run's own parts: filling the store with keys through the API, and paging through
ListKeys with per-page timings."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .signing import RawConnection, signed_request
from .target import Target

# Signatures are dated and refused after 5 minutes of skew: the CreateKey request is re-signed
# this often while the store fills.
RESIGN_SECONDS = 60.0


@dataclass
class ListingResult:
    keys: int
    pages: int
    page_seconds: list[float] = field(default_factory=list)


def list_all_keys(target: Target, limit: int = 1000) -> ListingResult:
    """Follow ListKeys' Marker through every page; time each page from request sent to body
    received (the client's JSON parsing is not counted)."""
    result = ListingResult(keys=0, pages=0)
    marker = None
    with RawConnection(target.url) as connection:
        while True:
            params = {"Limit": limit, **({"Marker": marker} if marker else {})}
            answer = connection.send(signed_request(target, "ListKeys", params))
            if answer.status != 200:
                raise SystemExit(f"bench: ListKeys answered HTTP {answer.status}: {answer.body[:2000]!r}")
            page = json.loads(answer.body)
            result.pages += 1
            result.keys += len(page.get("Keys", []))
            result.page_seconds.append(answer.seconds)
            marker = page.get("NextMarker")
            if not page.get("Truncated") or not marker:
                return result


@dataclass
class FillResult:
    created: int = 0
    failed: int = 0  # refused (4xx): not retried
    retried: int = 0  # 5xx or a dropped connection: sent again
    seconds: float = 0.0
    first_failure: str = ""


# A store that cannot keep up answers a retryable 5xx (DependencyTimeoutException): the fill sends
# those again, but gives up on refusals (a quota, bad credentials) and on a server that only fails.
MAX_REFUSALS = 100


class _SignedCreateKey:
    """One CreateKey request, re-signed when it gets old. Every key created by the fill is the
    same request replayed: KMS has no replay protection, and each replay makes a new key."""

    def __init__(self, target: Target):
        self._target = target
        self._signed_at = 0.0
        self._raw = b""

    def bytes(self) -> bytes:
        if time.monotonic() - self._signed_at > RESIGN_SECONDS:
            self._raw = signed_request(self._target, "CreateKey", {"Description": "trentd bench: scale filler"})
            self._signed_at = time.monotonic()
        return self._raw


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("bench: chunked answers are not supported by the fill client")
    return status, await reader.readexactly(length)


async def _fill_connection(target: Target, request: _SignedCreateKey, state: dict, result: FillResult) -> None:
    parts = urlsplit(target.url)
    tls = ssl._create_unverified_context() if parts.scheme == "https" else None
    address = (parts.hostname, parts.port or (443 if tls else 80))
    writer = None
    try:
        while state["remaining"] > 0:
            state["remaining"] -= 1
            if writer is None:
                reader, writer = await asyncio.open_connection(*address, ssl=tls)
            try:
                writer.write(request.bytes())
                status, body = await _read_answer(reader)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                # The server closed the connection (e.g. a 503 beyond its concurrency limit): send
                # the request again on a new connection rather than lose this connection's share.
                status, body = 0, repr(exc).encode()
                writer.close()
                writer = None
            if status == 200:
                result.created += 1
                continue
            result.first_failure = result.first_failure or f"HTTP {status}: {body[:500].decode(errors='replace')}"
            if status == 0 or status >= 500:
                result.retried += 1
                state["remaining"] += 1
                if result.retried > 10 * (result.created + 100):  # nothing but failures
                    state["remaining"] = 0
                await asyncio.sleep(0.05)  # let the store catch up
                continue
            result.failed += 1
            if result.failed >= MAX_REFUSALS:
                state["remaining"] = 0
    finally:
        if writer is not None:
            writer.close()


async def _progress(state: dict, result: FillResult, started: float) -> None:
    while True:
        await asyncio.sleep(10)
        elapsed = time.monotonic() - started
        print(f"  … {result.created:,} keys created in {elapsed:.0f} s ({result.created / elapsed:,.0f}/s), "
              f"{state['remaining']:,} to go", flush=True)


async def _fill(target: Target, count: int, concurrency: int) -> FillResult:
    result, state, request = FillResult(), {"remaining": count}, _SignedCreateKey(target)
    started = time.monotonic()
    reporter = asyncio.create_task(_progress(state, result, started))
    try:
        await asyncio.gather(*(_fill_connection(target, request, state, result)
                               for _ in range(min(concurrency, max(count, 1)))))
    finally:
        reporter.cancel()
    result.seconds = time.monotonic() - started
    return result


def fill_keys(target: Target, count: int, concurrency: int) -> FillResult:
    """Create ``count`` symmetric keys through the API over ``concurrency`` keep-alive connections."""
    if count <= 0:
        return FillResult()
    return asyncio.run(_fill(target, count, concurrency))
