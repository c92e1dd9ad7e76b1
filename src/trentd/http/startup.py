"""What ``trentd serve`` checks and says around the start: that the port is free (before anything
else is done), and the banner naming the URLs it serves."""

from __future__ import annotations

import socket

WILDCARDS = ("", "0.0.0.0", "::")


class CannotServe(Exception):
    """What ``serve`` is asked to do cannot be done: said in one line, before anything is made."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def preflight(settings) -> None:
    """What can fail after the store is opened, checked before it is: the port (exit 1: it may
    be free later) and a certificate and key given (exit 2), so that no first-start credentials
    are printed, and no store is made, for a server that would not serve. (A ``--tls-self-signed``
    CA is made later, in the data dir, once the store has made it.)"""
    check_port(settings.host, settings.port)
    if settings.tls_cert:
        from .tls import server_context_for

        try:
            server_context_for(settings.tls_cert, settings.tls_key)
        except (OSError, ValueError) as exc:
            raise CannotServe(f"cannot set up TLS: {exc}", 2) from None


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go, so that a port in use is said first: before the
    store is opened and before first-start credentials are printed for a server that would not
    serve. uvicorn then binds it itself (in the parent process when there are several workers),
    with the same family and SO_REUSEADDR as here."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise CannotServe(f"cannot listen on {_authority(host, port)}: {reason}", 1) from None


def banner(settings) -> str:
    """One line naming the API's URL and the console's (a wildcard host is named as localhost)."""
    scheme = "https" if settings.tls_cert or settings.tls_self_signed else "http"
    url = f"{scheme}://{_authority('localhost' if settings.host in WILDCARDS else settings.host, settings.port)}"
    if settings.console:
        return f"trentd: serving the AWS KMS API on {url}; web console: {url}/console/"
    return f"trentd: serving the AWS KMS API on {url} (web console off)"


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
