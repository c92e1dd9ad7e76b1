"""Hostile input at the HTTP edge (security.md Part C, acceptance bars 9 and 10).

- a 1 MiB body → 413 at once (Content-Length) or as soon as the cap is passed (chunked), and the
  connection is closed; an endless chunked body → 413 with the server's memory bounded; a client
  that sends its whole oversized body before reading still reads the 413 (lingering close);
- a lying Content-Length (more declared than sent, then a stall) → 408 and close at the body
  deadline, while other clients are served meanwhile;
- clients trickling their headers are cut off at the header deadline (408), and do not stop a
  normal boto3 client from being served; oversized headers → 431;
- ``--limit-concurrency`` and its 503, keep-alive and idle connections: test_connections.py.

Malformed *bodies* (nesting, NaN, bad UTF-8…) are covered in test_protocol.py.
The servers here use short deadlines (2 s) so the suite stays fast; the defaults are 10 s.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time

import pytest
from botocore.exceptions import ClientError

from trentd.pipeline.asgi import MAX_BODY
from trentd.testing.server import TrentdServer

DEADLINE = 2.0  # --header-timeout and --body-timeout of the servers below
SLACK = 1.5  # scheduling slack on a loaded 2-core machine

HEAD = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\n")


@pytest.fixture(scope="module")
def server():
    with TrentdServer(dev=True, extra_args=("--header-timeout", str(DEADLINE), "--body-timeout", str(DEADLINE))) as s:
        yield s


def _connect(server: TrentdServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass)."""
    sock.settimeout(limit)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (TimeoutError, socket.timeout):
        raise AssertionError(f"the server kept the connection open for {limit}s; got {out[:200]!r}") from None
    except ConnectionResetError:
        return out


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _served_quickly(server: TrentdServer, kms=None, n: int = 10) -> list[float]:
    kms = kms or server.client()
    latencies = []
    for _ in range(n):
        start = time.monotonic()
        kms.list_keys()
        latencies.append(time.monotonic() - start)
    return latencies


# --- bodies --------------------------------------------------------------------------------------
def test_one_mib_body_is_refused_with_413_at_once(server):
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(HEAD + b"Content-Length: 1048576\r\n\r\n")
        try:
            sock.sendall(b"{" + b" " * (1024 * 1024 - 1))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body went out
        response = _read_until_closed(sock, DEADLINE + SLACK)
        assert _status(response) == 413, response[:200]
        assert b"RequestEntityTooLargeException" in response and b"connection: close" in response.lower()
        assert time.monotonic() - start < DEADLINE


def test_a_client_that_sends_its_whole_oversized_body_still_reads_the_413(server):
    """A client that writes its whole body before reading (most do) must get the error, not a
    reset: the server half-closes after answering and drops the rest of the body (lingering
    close), so the client's writes succeed and its read finds the answer, then the end."""
    body_size = 4 * 1024 * 1024
    for _ in range(3):  # a reset is a race: give it several chances to show
        with _connect(server) as sock:
            sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % body_size)
            sock.sendall(b"{" + b" " * (body_size - 1))  # no BrokenPipeError, no ConnectionResetError
            sock.settimeout(DEADLINE + SLACK)
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
            head, _, payload = response.partition(b"\r\n\r\n")
            assert _status(response) == 413 and b"connection: close" in head.lower(), response[:300]
            assert b'"RequestEntityTooLargeException"' in payload


def test_boto3_gets_the_413_as_an_error_code(server):
    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as caught:
        kms.encrypt(KeyId=key_id, Plaintext=b"x" * (1024 * 1024))  # far over the 512 KiB request cap
    error = caught.value.response["Error"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Code"] == "RequestEntityTooLargeException"
    assert error["Message"] == f"Request body exceeds the maximum allowed size of {MAX_BODY} bytes."
    assert kms.encrypt(KeyId=key_id, Plaintext=b"fits")["KeyId"].endswith(key_id)  # the client still works


def test_endless_chunked_body_gets_413_and_memory_stays_bounded(server):
    pid = server.process.pid
    before = _rss_kib(pid)
    chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
    with _connect(server) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        sent, start = 0, time.monotonic()
        sock.settimeout(5)
        try:
            while sent < 64 * 1024 * 1024 and time.monotonic() - start < DEADLINE + SLACK:  # bounded
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, socket.timeout):
            pass
        response = _read_until_closed(sock, DEADLINE + SLACK)
    assert _status(response) == 413, response[:200]
    assert time.monotonic() - start < DEADLINE + SLACK
    assert _rss_kib(pid) - before < 32 * 1024, "the server buffered the endless body"
    assert server.client().list_keys()["Keys"] is not None


def test_lying_content_length_is_cut_off_at_the_body_deadline(server):
    kms = server.client()
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n{\"Limit\":")  # ... and nothing more
        # Meanwhile everybody else is served.
        assert max(_served_quickly(server, kms, 5)) < 1.0
        response = _read_until_closed(sock, DEADLINE + SLACK + 2)
        elapsed = time.monotonic() - start
    assert _status(response) in (400, 408), response[:200]
    assert b"RequestTimeoutException" in response
    assert DEADLINE - 0.5 < elapsed < DEADLINE + SLACK
    assert kms.list_keys()["Keys"] is not None


def test_a_body_trickled_within_the_deadline_is_accepted(server):
    body = b'{"Limit": 5}'
    with _connect(server) as sock:
        sock.sendall(HEAD + b"X-Amz-Date: 20200101T000000Z\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        for byte in body:  # slow, but well inside the deadline: the deadline is for the whole body
            sock.sendall(bytes([byte]))
            time.sleep(DEADLINE / 4 / len(body))
        response = _read_until_closed(sock, 10)
    # the request reaches the API (and fails there: it is unsigned), not a 408
    assert _status(response) == 400 and b"RequestTimeout" not in response, response[:300]


def test_expect_100_continue_is_answered_before_the_body(server):
    """Responses leave in one write (http/limits.py), but an interim 100 Continue must not be
    held back: the client waits for it before it sends the body."""
    body = b'{"Limit": 5}'
    with _connect(server) as sock:
        sock.sendall(HEAD + b"Expect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        sock.settimeout(DEADLINE)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim[:200]
        sock.sendall(body)
        response = _read_until_closed(sock, 10)
    head, _, payload = response.partition(b"\r\n\r\n")
    # the request reaches the API (and fails there: it is unsigned), as one well-formed answer
    assert _status(response) == 400 and b"MissingAuthenticationToken" in payload, response[:300]
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert len(payload) == length


# --- headers -------------------------------------------------------------------------------------
def test_oversized_or_too_many_headers_get_431(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * 1024) + b"\r\n\r\n")
        assert _status(_read_until_closed(sock, 5)) == 431
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n")
        assert _status(_read_until_closed(sock, 5)) == 431
    with _connect(server) as sock:  # a header line that never ends is cut off as well
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            for _ in range(40):
                sock.sendall(b"a" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert _status(_read_until_closed(sock, 5)) == 431
    with _connect(server) as sock:  # large but legal headers still pass
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Token: " + b"t" * 8000 + b"\r\nConnection: close\r\n\r\n")
        assert _status(_read_until_closed(sock, 5)) == 200


def test_slow_header_clients_do_not_stop_a_normal_client(server):
    kms = server.client()
    baseline = _served_quickly(server, kms, 20)
    stop = threading.Event()
    closed_at: list[float] = []
    socks = [_connect(server) for _ in range(50)]
    start = time.monotonic()

    def trickle(sock: socket.socket) -> None:
        line = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10_000
        try:
            for i in range(len(line)):
                if stop.is_set():
                    return
                sock.sendall(line[i : i + 1])
                time.sleep(0.2)
        except OSError:
            closed_at.append(time.monotonic() - start)

    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in socks]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        under_attack = _served_quickly(server, kms, 20)
        # Every slow socket is answered 408 and closed at the header deadline.
        for sock in socks:
            response = _read_until_closed(sock, DEADLINE + SLACK + 2)
            assert _status(response) == 408, response[:200]
        assert time.monotonic() - start < DEADLINE + SLACK + 2
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for sock in socks:
            sock.close()
    p99 = sorted(under_attack)[-1]
    assert p99 < max(2 * sorted(baseline)[-1], 0.25), (statistics.mean(baseline), under_attack)


def test_an_idle_connection_is_closed_at_the_header_deadline(server):
    with _connect(server) as sock:
        start = time.monotonic()
        response = _read_until_closed(sock, DEADLINE + SLACK + 2)
        # nothing was asked, so nothing is answered: the connection is just closed
        assert response == b"" and DEADLINE - 0.5 < time.monotonic() - start < DEADLINE + SLACK


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
def test_server_memory_stays_bounded_after_the_hostile_tests(server):
    before = _rss_kib(server.process.pid)
    for _ in range(5):
        with _connect(server) as sock:
            sock.sendall(HEAD + b"Content-Length: 1048576\r\n\r\n" + b"x" * 65536)
            _read_until_closed(sock, 5)
    assert _rss_kib(server.process.pid) - before < 16 * 1024
