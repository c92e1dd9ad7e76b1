"""Connections at the HTTP edge: keep-alive timeout, ``--limit-concurrency`` and its eviction
rule, the open-files limit (docs/operations.md, "Limits and deadlines", "Connections").

- 1,005 keep-alive connections that each sent one request and then sit idle do not stop a new
  signed request: at its worker's limit, a new connection closes the longest-idle one;
- the one closed is the longest idle even when several fell idle within one millisecond;
- a 503 is answered only when every connection has a request in flight;
- with two workers, each evicts among its own connections;
- over TLS an evicted connection is let go at once, and connections closed by the keep-alive
  timeout (still waiting for the client's close_notify) make room too;
- ``--keep-alive-timeout`` (default 5 s) closes an idle keep-alive connection; not positive: refused;
- at start the soft open-files limit is raised to the hard one, with a warning when it is still
  below what ``--limit-concurrency`` needs.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time

import pytest

from trentd.http.limits import FILES_BESIDES_CONNECTIONS
from trentd.testing.server import TrentdServer

from .test_hostile import SLACK, _connect, _read_until_closed, _status

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # keep-alive (HTTP/1.1's default)


def _raise_own_open_files_limit() -> None:
    """This test process holds 1,000+ sockets: its soft open-files limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _ask(sock: socket.socket, request: bytes = HEALTHZ) -> bytes:
    """Send one request and read exactly its answer (headers and Content-Length body), leaving
    the connection open."""
    sock.sendall(request)
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _idle_connections(server: TrentdServer, n: int) -> list[socket.socket]:
    """``n`` keep-alive connections that each sent one request, read its 200, and stay open."""
    socks = []
    try:
        for i in range(n):
            sock = _connect(server)
            socks.append(sock)
            response = _ask(sock)
            assert _status(response) == 200, f"idle connection {i}: {response[:200]!r}"
    except BaseException:
        _close_all(socks)
        raise
    return socks


def _in_flight(server: TrentdServer) -> socket.socket:
    """A connection whose request is in flight: its headers are in, its body never completes."""
    sock = _connect(server)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
                 b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{")
    return sock


def _close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def _closed_by_server(sock: socket.socket, limit: float = 5.0) -> bool:
    return _read_until_closed(sock, limit) == b""


def _still_served(sock: socket.socket) -> bool:
    return _status(_ask(sock)) == 200


# --- eviction at the limit -----------------------------------------------------------------------
def test_idle_connections_do_not_starve_a_new_signed_request():
    """The finding: 1,005 idle keep-alive connections (default --limit-concurrency 1000, one
    worker) made every new request a 503 for as long as they stayed open."""
    _raise_own_open_files_limit()
    # A keep-alive timeout longer than the test: the eviction, not the timeout, must make room.
    with TrentdServer(dev=False, extra_args=("--keep-alive-timeout", "300")) as server:
        idle = _idle_connections(server, 1005)  # each one answered 200: the oldest made room
        try:
            kms = server.client()  # a new connection, signed requests
            start = time.monotonic()
            assert kms.list_keys()["Keys"] == []
            assert time.monotonic() - start < 1.0
            # The longest-idle connections were the ones closed; the newest are still served.
            assert _closed_by_server(idle[0])
            assert _still_served(idle[-1])
        finally:
            _close_all(idle)


def test_the_longest_idle_is_closed_among_connections_answered_in_the_same_millisecond():
    """Three connections answered one after the other, often within one millisecond, then a
    fourth: the first of the three is closed, the other two are still served. Ordered by the event
    loop's clock (milliseconds under uvloop) they tied, and about half of the rounds closed a newer
    one: with two workers, sometimes the newest of all (test_each_worker_makes_room_...)."""
    args = ("--limit-concurrency", "4", "--keep-alive-timeout", "300")
    with TrentdServer(dev=True, extra_args=args) as server:
        for _ in range(20):
            idle = _idle_connections(server, 3)
            try:
                with _connect(server) as sock:
                    assert _status(_ask(sock)) == 200
                assert _closed_by_server(idle[0])
                assert _still_served(idle[1]) and _still_served(idle[2])
            finally:
                _close_all(idle)  # closed by the client: gone before the next round's first answer


def test_503_only_when_every_connection_has_a_request_in_flight():
    # uvicorn counts the new connection itself: at --limit-concurrency 4 it serves 3 others.
    args = ("--limit-concurrency", "4", "--header-timeout", "30", "--body-timeout", "30",
            "--keep-alive-timeout", "300")
    with TrentdServer(dev=True, extra_args=args) as server:
        busy = [_in_flight(server), _in_flight(server)]
        idle = _idle_connections(server, 1)[0]
        silent = _connect(server)  # connected, has sent nothing yet: no request in flight either
        held = [*busy, idle, silent]
        try:
            time.sleep(0.3)  # the server has seen every connection
            with _connect(server) as sock:  # five connections: the idle and the silent one make room
                assert _status(_ask(sock)) == 200
            assert _closed_by_server(idle) and _closed_by_server(silent)
            busy.append(_in_flight(server))
            held.append(busy[-1])
            time.sleep(0.3)
            with _connect(server) as sock:  # three requests in flight and this one: nothing to close
                sock.sendall(HEALTHZ)
                response = _read_until_closed(sock, 5)
                assert _status(response) == 503, response[:200]
                assert response.endswith(b"Service Unavailable")
            for sock in busy:  # the requests in flight were left alone
                sock.settimeout(0.2)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
        finally:
            _close_all(held)


def test_each_worker_makes_room_among_its_own_connections():
    """Two workers, each with --limit-concurrency 4: a new connection lands on either one, and
    that worker closes its own longest-idle connection."""
    args = ("--limit-concurrency", "4", "--keep-alive-timeout", "300")
    with TrentdServer(dev=False, workers=2, extra_args=args) as server:
        idle = _idle_connections(server, 12)  # more than both workers' limits together
        try:
            kms = server.client()
            start = time.monotonic()
            assert kms.list_keys()["Keys"] == []
            assert time.monotonic() - start < 1.0
            assert _still_served(idle[-1])
        finally:
            _close_all(idle)


def _sockets_of(pid: int) -> int:
    """How many sockets the process holds open."""
    fds = os.listdir(f"/proc/{pid}/fd")
    return sum(1 for fd in fds if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))


def test_over_tls_an_evicted_connection_is_let_go_at_once():
    """Closing a TLS connection waits up to 30 s for the client's close_notify, which an idle
    client does not send: the evicted connection's descriptor must be freed at once."""
    args = ("--limit-concurrency", "4", "--keep-alive-timeout", "300")
    with TrentdServer(dev=True, tls="self-signed", extra_args=args) as server:
        ctx, pid = server.ssl_context(), server.process.pid
        time.sleep(0.3)  # the start-up health check's connection is gone
        before = _sockets_of(pid)
        idle = [ctx.wrap_socket(_connect(server), server_hostname="127.0.0.1") for _ in range(3)]
        try:
            for sock in idle:
                assert _still_served(sock)
            assert _sockets_of(pid) == before + 3
            with ctx.wrap_socket(_connect(server), server_hostname="127.0.0.1") as sock:
                assert _status(_ask(sock, HEALTHZ.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))) == 200
            assert _closed_by_server(idle[0])
            assert _still_served(idle[1]) and _still_served(idle[2])
            time.sleep(0.3)
            assert _sockets_of(pid) == before + 2
        finally:
            _close_all(idle)


def test_over_tls_connections_closed_by_the_keep_alive_timeout_make_room():
    """Closed by the keep-alive timeout, an idle TLS connection still waits for the client's
    close_notify (up to 30 s), and stays counted meanwhile: it must make room like an idle one."""
    args = ("--limit-concurrency", "4", "--keep-alive-timeout", "1")
    with TrentdServer(dev=True, tls="self-signed", extra_args=args) as server:
        ctx = server.ssl_context()
        idle = [ctx.wrap_socket(_connect(server), server_hostname="127.0.0.1") for _ in range(3)]
        try:
            for sock in idle:
                assert _still_served(sock)
            time.sleep(1 + SLACK)  # past the keep-alive timeout; the clients do not answer the close
            with ctx.wrap_socket(_connect(server), server_hostname="127.0.0.1") as sock:
                assert _status(_ask(sock)) == 200
        finally:
            _close_all(idle)


# --- keep-alive timeout --------------------------------------------------------------------------
@pytest.mark.parametrize("how,timeout", [("flag", 1.0), ("variable", 1.0), ("default", 5.0)])
def test_keep_alive_timeout_closes_an_idle_connection(how, timeout):
    extra_args = ("--keep-alive-timeout", str(timeout)) if how == "flag" else ()
    env = {"TRENTD_KEEP_ALIVE_TIMEOUT": str(timeout)} if how == "variable" else {}
    with TrentdServer(dev=True, extra_args=extra_args, env=env) as server:
        with _connect(server) as sock:
            assert _status(_ask(sock)) == 200
            start = time.monotonic()
            assert _read_until_closed(sock, timeout + SLACK + 2) == b""
            elapsed = time.monotonic() - start
    assert timeout - 0.3 < elapsed < timeout + SLACK


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_keep_alive_timeout_that_is_not_positive_is_refused_at_start(tmp_path, value):
    out = subprocess.run([sys.executable, "-m", "trentd", "serve", "--port", "1", "--data-dir", str(tmp_path),
                          "--keep-alive-timeout", value], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr == "trentd: --keep-alive-timeout must be a positive number of seconds\n"
    assert not (tmp_path / "trentd.db").exists()  # refused before anything was set up


# --- open files ----------------------------------------------------------------------------------
@contextlib.contextmanager
def _own_soft_open_files_limit(soft: int):
    """This process's soft open-files limit lowered for a while (children started meanwhile
    inherit it); the hard limit is left alone, so the old soft limit can be restored."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def _open_files_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def test_the_open_files_limit_is_raised_and_a_shortfall_is_warned():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # A limit of as many connections as the hard limit allows files: short of the other files
    # a worker holds (listening socket, store, audit log, event loop) whatever the machine.
    server = TrentdServer(dev=True, extra_args=("--limit-concurrency", str(hard)))
    with _own_soft_open_files_limit(1024):
        server.start()
    try:
        assert _open_files_limits(server.process.pid) == (hard, hard)
        needed = hard + FILES_BESIDES_CONNECTIONS
        assert (f"trentd: warning: the open-files limit is {hard}, below the {needed} that "
                f"--limit-concurrency {hard} needs") in server.logs()
    finally:
        server.cleanup()
    with TrentdServer(dev=True) as server:  # the default limit fits: no warning
        assert "open-files limit" not in server.logs()
