"""PostgreSQL for tests: a fresh throwaway database per server, and a throwaway cluster.

- ``ThrowawayDatabase``: ``CREATE DATABASE trentd_<random>`` on the shared test server
  (``TRENTD_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``), dropped at
  cleanup, so parallel test workers never share state.
- ``ThrowawayCluster``: a PostgreSQL cluster of the test's own (``initdb`` in a temporary
  directory, its own port), for tests that stop, hang or restart the database. ``initdb`` and
  ``pg_ctl`` refuse to run as root, so as root they run through ``runuser -u postgres``.
- ``require_postgres()``: skip a test when no PostgreSQL is reachable — or fail it when the
  environment variable ``CI`` is set, where a silent skip would hide a broken setup.

A test process killed before its teardown (``pytest -x`` under xdist, a timeout) leaves its
databases and clusters behind; both are named after their owner process, and the next one made
on the same host reaps those whose owner is gone.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ADMIN_DSN_ENV = "TRENTD_TEST_POSTGRES"
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"

_reason_cache: dict[str, str | None] = {}
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
STALE_AFTER = 3600.0  # seconds: a cluster directory without an owner file is reaped after this


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def admin_dsn() -> str:
    return os.environ.get(ADMIN_DSN_ENV) or DEFAULT_ADMIN_DSN


def unavailable_reason(dsn: str | None = None) -> str | None:
    """None when PostgreSQL answers at ``dsn``, else why not (checked once per DSN)."""
    dsn = dsn or admin_dsn()
    if dsn not in _reason_cache:
        try:
            import psycopg
        except ImportError as exc:
            _reason_cache[dsn] = f"psycopg is not installed ({exc})"
        else:
            try:
                with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                _reason_cache[dsn] = None
            except psycopg.Error as exc:
                from ..store.postgres import redact

                _reason_cache[dsn] = (f"PostgreSQL is not reachable at {redact(dsn)} "
                                      f"(set {ADMIN_DSN_ENV} to a server where CREATE DATABASE is allowed): "
                                      f"{' '.join(str(exc).split())}")
    return _reason_cache[dsn]


def require_postgres(dsn: str | None = None) -> None:
    """Skip (laptop) or fail (``CI`` set) the calling test when PostgreSQL is unreachable."""
    import pytest

    reason = unavailable_reason(dsn)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


def require_cluster_tools() -> None:
    """Skip (laptop) or fail (``CI`` set) the calling test when a ``ThrowawayCluster`` cannot be
    made: PostgreSQL unreachable, no ``initdb``/``pg_ctl``, or no ``runuser`` as root."""
    import pytest

    require_postgres()
    missing = []
    for tool in ("initdb", "pg_ctl"):
        try:
            pg_bin(tool)
        except FileNotFoundError:
            missing.append(tool)
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    if missing:
        reason = f"a throwaway PostgreSQL cluster needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)


def _with_dbname(dsn: str, dbname: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo("", **params)


class ThrowawayDatabase:
    """A database of its own on the shared server, dropped (with its connections) at cleanup."""

    def __init__(self, admin: str | None = None):
        import psycopg

        self.admin = admin or admin_dsn()
        prefix = f"trentd_{_HOST}_"
        self.name = f"{prefix}{os.getpid()}_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin, connect_timeout=5, autocommit=True) as conn:
            self._reap(conn, prefix)
            # template0: nobody is ever connected to it, so concurrent creates never collide.
            conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE template0')
        self.dsn = _with_dbname(self.admin, self.name)

    @staticmethod
    def _reap(conn, prefix: str) -> None:
        """Drop databases this host's killed test processes left behind."""
        import psycopg

        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)).fetchall()
        for (name,) in rows:
            owner = name[len(prefix):].split("_", 1)[0]
            if owner.isdigit() and not _alive(int(owner)):
                try:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except psycopg.Error:
                    pass  # another process reaping the same one

    def drop(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.admin, connect_timeout=5, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except psycopg.Error:
            pass

    def __enter__(self) -> "ThrowawayDatabase":
        return self

    def __exit__(self, *exc) -> None:
        self.drop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    """A PostgreSQL server program (initdb, pg_ctl) from PATH or Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(f"{name} not found (install the PostgreSQL server package)")


class ThrowawayCluster:
    """A PostgreSQL cluster in a temporary directory on a port of its own, trust auth for the
    ``postgres`` user on 127.0.0.1 only. Never the shared server: tests stop and hang this one."""

    PREFIX = "trentd-pg-"

    def __init__(self, port: int | None = None):
        self.port = port or _free_port()
        self._started_once = False
        self._reap()
        self.root = Path(tempfile.mkdtemp(prefix=self.PREFIX))
        (self.root / "owner").write_text(str(os.getpid()))
        self.datadir = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run([pg_bin("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                   "--no-sync", "-E", "UTF8"], timeout=120)

    @classmethod
    def _reap(cls) -> None:
        """Stop and remove clusters whose owner process is gone (killed before its teardown)."""
        for root in Path(tempfile.gettempdir()).glob(f"{cls.PREFIX}*"):
            try:
                owner = int((root / "owner").read_text())
                stale = not _alive(owner)
            except (OSError, ValueError):
                try:
                    stale = time.time() - root.stat().st_mtime > STALE_AFTER
                except OSError:
                    continue
            if not stale:
                continue
            cluster = cls.__new__(cls)
            cluster.root, cluster.datadir = root, root / "data"
            cluster._as_postgres = os.geteuid() == 0
            try:
                cluster.cleanup()
            except (OSError, subprocess.SubprocessError):
                pass

    def _run(self, argv: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or restart, on the same port). A first start whose port another process took
        since it was picked tries again on a new one."""
        for attempt in range(3):
            opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                    "-c fsync=on -c synchronous_commit=on -c max_connections=50")
            done = self._run([pg_bin("pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-o", opts,
                              "-w", "-t", "60", "start"], check=False)
            if done.returncode == 0:
                self._started_once = True
                return
            if self._started_once or attempt == 2:
                log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
                raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}{log}")
            self.port = _free_port()

    def stop(self, mode: str = "fast") -> None:
        self._run([pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"], check=False)

    def pids(self) -> list[int]:
        """The postmaster and every backend of this cluster."""
        pidfile = self.datadir / "postmaster.pid"
        try:
            postmaster = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:  # field 4 of /proc/PID/stat: the parent
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def pause(self) -> None:
        """Hang the database: every process stopped, sockets still open (the worst case)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # a backend that exited since it was listed
                pass

    def wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def cleanup(self) -> None:
        self.resume()
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "ThrowawayCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
