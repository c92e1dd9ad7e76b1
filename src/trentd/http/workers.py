"""``--workers N``: uvicorn's supervisor, except that SIGHUP reloads TLS certificates.

uvicorn's supervisor answers SIGHUP by replacing every worker, and a replaced worker closes its
open keep-alive connections on the way out. trentd's workers reload their certificate in place
instead (http/tls.py, ``reload_certificates``), so the supervisor checks that the new files load
(one error in the log if not, and the workers keep the old certificate) and passes the signal on.

SIGHUP stays blocked in the supervisor, and so in the workers it spawns (they inherit the mask),
until a worker's event loop handles it: a worker still starting keeps the signal pending instead of
dying of it. The supervisor takes a pending SIGHUP itself, each round of its loop (twice a second).
"""

from __future__ import annotations

import logging
import os
import signal

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess

from . import tls

log = logging.getLogger("trentd.http")


class Supervisor(Multiprocess):
    def __init__(self, config: Config, sockets: list) -> None:
        super().__init__(config, sockets)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})

    def handle_signals(self) -> None:
        if signal.sigtimedwait({signal.SIGHUP}, 0) is not None:
            self.signal_queue.append(signal.SIGHUP)
        super().handle_signals()

    def handle_hup(self) -> None:
        config = self.config
        if not config.ssl_certfile:
            log.info("SIGHUP: no TLS listener, nothing to reload")
            return
        if not tls.check_certificate(config.ssl_certfile, config.ssl_keyfile, config.ssl_keyfile_password):
            return
        for process in self.processes:
            if process.pid is None:  # not started
                continue
            try:
                os.kill(process.pid, signal.SIGHUP)
            except ProcessLookupError:  # gone (replaced on the next round)
                pass


def run(app: str, handover=None, **options) -> None:
    """What ``uvicorn.run(app, factory=True, workers=N, …)`` does, with our supervisor.
    ``handover``: more listening sockets for the workers (http/listeners.py), carried in the
    Config that uvicorn pickles into each of them."""
    config = Config(app, factory=True, **options)
    if handover is not None:
        config.trentd_handover = handover  # type: ignore[attr-defined]
    sock = config.bind_socket()
    Supervisor(config, sockets=[sock]).run()
