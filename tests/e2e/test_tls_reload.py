"""SIGHUP reloads the TLS certificate and key without a restart and without dropping connections
(certificates renewed every 90 days must not need one), with one worker and with ``--workers 2``:

- a server on certificate A (a trustme CA), keep-alive connections open, the files replaced by
  certificate B (another serial and name), SIGHUP to the server's process: new connections get B,
  the open connections keep answering on the same socket with A, and no worker was replaced;
- files that do not load (a key that does not match the certificate) leave A in use, with an
  error in the log; fixed files and another SIGHUP then bring B.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from trentd.testing.server import TrentdServer


class Certificates:
    """A test CA and two server certificates for 127.0.0.1 with different serials and names."""

    def __init__(self, directory: Path):
        self.ca = trustme.CA()
        self.a = self.ca.issue_cert("127.0.0.1", "a.trentd.test")
        self.b = self.ca.issue_cert("127.0.0.1", "b.trentd.test")
        self.cert, self.key, self.ca_path = directory / "server.pem", directory / "server-key.pem", directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.install(self.a)

    def install(self, issued, key_of=None) -> None:
        """Replace the server's files, as a renewal (certbot, cert-manager) would."""
        issued.private_key_and_cert_chain_pem.write_to_path(str(self.cert))
        (key_of or issued).private_key_pem.write_to_path(str(self.key))

    @staticmethod
    def serial(issued) -> int:
        return x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes()).serial_number


def _serial_of(tls_socket: ssl.SSLSocket) -> int:
    return x509.load_der_x509_certificate(tls_socket.getpeercert(binary_form=True)).serial_number


def _new_connection_serial(server: TrentdServer) -> int:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        with server.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return _serial_of(tls)


def _wait_for_serial(server: TrentdServer, serial: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _new_connection_serial(server) != serial:
        assert time.monotonic() < deadline, "new connections never got the reloaded certificate"
        time.sleep(0.1)


def _get(conn: http.client.HTTPSConnection) -> int:
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    return response.status


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _server(certs: Certificates, workers: int) -> TrentdServer:
    # Keep-alive connections stay open for the whole test (the default closes them after 5 s idle).
    return TrentdServer(dev=True, tls=(certs.cert, certs.key), ca_bundle=certs.ca_path, workers=workers,
                        extra_args=("--keep-alive-timeout", "120"))


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_the_certificate_and_open_connections_go_on(tmp_path, workers):
    certs = Certificates(tmp_path)
    serial_a, serial_b = certs.serial(certs.a), certs.serial(certs.b)
    with _server(certs, workers) as server:
        # Several connections, so that with two workers both hold some.
        open_connections = [http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(),
                                                        timeout=10) for _ in range(3 * workers)]
        for conn in open_connections:
            assert _get(conn) == 200 and _serial_of(conn.sock) == serial_a
        sockets = [conn.sock for conn in open_connections]
        processes = _children(server.process.pid)

        certs.install(certs.b)
        os.kill(server.process.pid, signal.SIGHUP)
        _wait_for_serial(server, serial_b)
        for _ in range(4 * workers):  # every worker reloaded, not only the first to answer
            assert _new_connection_serial(server) == serial_b
        for conn, sock in zip(open_connections, sockets):
            assert _get(conn) == 200  # the same connection, still served
            assert conn.sock is sock and _serial_of(conn.sock) == serial_a
        assert _children(server.process.pid) == processes, server.logs()  # no worker was replaced
        assert "TLS certificate reloaded" in server.logs()
        kms = server.client()
        assert kms.list_keys()["Keys"] == []
        for conn in open_connections:
            conn.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_certificate_that_does_not_load_keeps_the_old_one(tmp_path, workers):
    certs = Certificates(tmp_path)
    serial_a, serial_b = certs.serial(certs.a), certs.serial(certs.b)
    with _server(certs, workers) as server:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ssl_context(), timeout=10)
        assert _get(conn) == 200
        certs.install(certs.b, key_of=certs.a)  # B's certificate with A's key: does not load
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "TLS certificate NOT reloaded" not in server.logs():
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.1)
        for _ in range(2 * workers):
            assert _new_connection_serial(server) == serial_a
        assert _get(conn) == 200 and _serial_of(conn.sock) == serial_a

        certs.install(certs.b)  # fixed: the next SIGHUP takes it
        os.kill(server.process.pid, signal.SIGHUP)
        _wait_for_serial(server, serial_b)
        assert _get(conn) == 200
        conn.close()
