"""Listening sockets that the parent process binds and every worker serves, besides uvicorn's own
(the XKS proxy listener, http/xks.py).

uvicorn passes its listening socket to spawned workers as an argument; an extra one travels
inside the pickled uvicorn ``Config`` as a ``Handover`` (multiprocessing duplicates a socket's
descriptor into the child when it pickles it), whose unpickling in the worker registers the
sockets here. With one process the parent registers them itself. The app takes them at startup.
"""

from __future__ import annotations

import socket

_HANDED: dict[str, socket.socket] = {}


class Handover:
    """Named sockets for this process and, pickled with uvicorn's Config, for every worker."""

    def __init__(self, sockets: dict[str, socket.socket]):
        self.sockets = dict(sockets)
        _HANDED.update(self.sockets)

    def __reduce__(self):
        return (Handover, (self.sockets,))


def handed(name: str) -> socket.socket | None:
    return _HANDED.get(name)


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on host:port (OSError when it cannot be had)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
