"""The metrics listener (``--metrics-port``, docs/operations.md "Metrics"): ``GET /metrics`` in
Prometheus's text format, summed over every process of this node.

Every process that serves requests (each worker, or the one process without ``--workers``)
writes its figures into its own files under ``DATA_DIR/metrics`` (prometheus_client's
multiprocess mode, trentd/metrics.py). The listener runs in the parent: the supervisor (http/workers.py)
with ``--workers N``, the serving process otherwise. It reads those files at each scrape, so a
worker that is busy, hung or being restarted never blocks a scrape, and it lives as long as the
node. Before each scrape it marks the processes that are gone as dead: their live gauges (open
connections) stop counting, while their counters and histograms stay in the sums, as Prometheus
expects of counters.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

from .. import metrics

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are on
    from prometheus_client import CollectorRegistry

# The classic text format, which every Prometheus 2.x and promtool reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PID_OF_FILE = re.compile(r"_(\d+)\.db$")
_forgetting = threading.Lock()  # two scrapes at once must not remove the same files


def prepare(data_dir: str | os.PathLike) -> Path:
    """Empty ``DATA_DIR/metrics`` and name it in ``PROMETHEUS_MULTIPROC_DIR``, which the workers
    inherit. Before anything imports prometheus_client: it reads the variable on import. Files of
    an earlier run would otherwise add that run's counts (and its dead processes' gauges)."""
    directory = Path(data_dir) / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[metrics.MULTIPROC_ENV] = str(directory)
    return directory


def start(host: str, port: int, directory: Path) -> ThreadingHTTPServer:
    """Listen now (an OSError names a port in use), serve on a daemon thread."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    handler = type("MetricsHandler", (_Handler,), {"registry": registry, "directory": directory})
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), handler)
    threading.Thread(target=server.serve_forever, name="trentd-metrics", daemon=True).start()
    return server


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    registry: CollectorRegistry  # both set by the subclass start() makes
    directory: Path
    server_version = "trentd"
    sys_version = ""
    timeout = 10  # seconds a scraper's socket may stay silent: a stalled client frees its thread

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path.split("?", 1)[0] != "/metrics":
            return self._answer(404, b"Not Found\n")
        from prometheus_client import generate_latest

        with _forgetting:
            forget_dead_processes(self.directory)
        self._answer(200, generate_latest(self.registry), CONTENT_TYPE)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # noqa: A002 - scrapes are not logged, like /healthz
        pass


def forget_dead_processes(directory: Path) -> None:
    """``mark_process_dead`` for every process with files here that no longer runs (killed, or
    replaced by uvicorn after a crash): its live gauges are removed."""
    from prometheus_client.multiprocess import mark_process_dead

    pids = {int(m.group(1)) for m in map(_PID_OF_FILE.search, os.listdir(directory)) if m}
    for pid in pids:
        if not _running(pid):
            mark_process_dead(pid, str(directory))


def _running(pid: int) -> bool:
    if os.path.exists("/proc/self/stat"):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"  # a zombie has died; its parent has only not reaped it yet
    try:  # no /proc: ask the kernel whether the pid exists
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
