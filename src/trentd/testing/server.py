"""A real trentd for tests: a process on a free port with its own data dir, and boto3 clients.

Outside pytest use ``TrentdServer`` as a context manager (the pytest plugin wraps it)::

    with TrentdServer() as server:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]

Over PostgreSQL: ``TrentdServer(store="postgres")`` creates a throwaway database of its own on the
test server (``trentd.testing.postgres``) and drops it at cleanup; ``TrentdServer(database=DSN,
root_key_file=FILE)`` joins an existing one, so several nodes can share a database.

HTTPS: ``TrentdServer(tls="self-signed")`` (the server's private CA, ``server.ca_bundle``) or
``tls=(cert_pem, key_pem), ca_bundle=ca_pem``; ``server.url`` is then ``https://…`` and
``server.client()`` trusts the CA. Root key in an HSM: ``pkcs11=Pkcs11Token(…)``
(``trentd.testing.softhsm`` makes a SoftHSM2 token in a temporary directory).
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def write_root_key(path: str | os.PathLike) -> Path:
    """32 random bytes, mode 0600: a root key file for ``--root-key-file``."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrentdServer:
    def __init__(self, *, dev: bool = True, data_dir: str | os.PathLike | None = None, port: int | None = None,
                 account: str = "000000000000", region: str = "us-east-1", extra_args: tuple[str, ...] = (),
                 test_clock: bool = True, store: str = "sqlite", database: str | None = None,
                 root_key_file: str | os.PathLike | None = None, workers: int = 1,
                 tls: str | tuple[str | os.PathLike, str | os.PathLike] | None = None,
                 ca_bundle: str | os.PathLike | None = None, pkcs11=None, env: dict[str, str] | None = None,
                 pool_size: int = 4):
        if store not in ("sqlite", "postgres"):
            raise ValueError(f"store must be 'sqlite' or 'postgres', not {store!r}")
        self.dev = dev
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="trentd-test-"))
        self._own_database = None
        if store == "postgres" and database is None:
            from .postgres import ThrowawayDatabase

            self._own_database = ThrowawayDatabase()
            database = self._own_database.dsn
        self.database = database
        self.pkcs11 = pkcs11  # an object with module, token, pin and env() (trentd.testing.softhsm)
        if database and root_key_file is None and pkcs11 is None:
            # A shared database needs its root key supplied; make one (pass it to other nodes).
            root_key_file = self.data_dir / "root.key"
            if not Path(root_key_file).exists():
                write_root_key(root_key_file)
        self.root_key_file = Path(root_key_file) if root_key_file else None
        self.workers = workers
        self.pool_size = pool_size  # PostgreSQL connections per process: test servers share one server
        self.tls = tls
        self._ca_bundle = Path(ca_bundle) if ca_bundle else None
        self.env = dict(env or {})
        self.port = port or free_port()
        self.account = account
        self.region = region
        self.extra_args = tuple(extra_args) + (("--test-clock",) if test_clock and not dev else ())
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path | None:
        """The CA that clients of an HTTPS server trust (None over HTTP)."""
        if self.tls == "self-signed":
            return self.data_dir / "tls" / "ca.pem"
        return self._ca_bundle

    def ssl_context(self):
        """A client-side context trusting ``ca_bundle`` (None over HTTP)."""
        if not self.tls:
            return None
        import ssl

        if self.ca_bundle:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        return ssl._create_unverified_context()

    def serve_args(self) -> list[str]:
        """The ``trentd serve`` command line of this server."""
        args = [sys.executable, "-m", "trentd", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--account", self.account, "--region", self.region, *self.extra_args]
        if self.dev:
            args.append("--dev")
        if self.database:
            args += ["--database", self.database, "--database-pool-size", str(self.pool_size)]
        if self.root_key_file:
            args += ["--root-key-file", str(self.root_key_file)]
        if self.pkcs11 is not None:
            args += self.pkcs11.args()
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        if self.tls == "self-signed":
            args.append("--tls-self-signed")
        elif self.tls:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        return args

    def process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.pkcs11 is not None:
            env.update(self.pkcs11.env())
        env.update(self.env)
        return env

    @property
    def kind(self) -> str:
        """The store this server uses: ``sqlite`` or ``postgres``."""
        return "postgres" if self.database else "sqlite"

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 30.0) -> "TrentdServer":
        args = self.serve_args()
        self._log = open(self.log_path, "ab")
        # Several workers: a process group of their own, so kill() reaches every one of them.
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=self.workers > 1, env=self.process_env())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trentd exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1, context=self.ssl_context()) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"trentd did not become healthy in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self._kill_all()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self._kill_all()
                self.process.wait()
        if self.process and self.workers > 1:
            try:  # workers outliving their parent would keep the port and the database busy
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()

    def _kill_all(self) -> None:
        assert self.process is not None  # called only while the server process runs
        if self.workers > 1:
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            self.process.kill()

    def restart(self) -> "TrentdServer":
        self.stop()
        return self.start()

    def kill(self) -> None:
        """kill -9 (every process of the server), as a crash would."""
        self.stop(kill=True)

    def cleanup(self) -> None:
        self.stop()
        if self._own_database is not None:
            self._own_database.drop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "TrentdServer":
        try:
            return self.start()
        except BaseException:
            self.cleanup()  # __exit__ will not run: drop the throwaway database and dir now
            raise

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- clients --------------------------------------------------------------------------
    def admin_credentials(self) -> tuple[str, str]:
        """The administrator's access key, from the 0600 file written at first start."""
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "admin-credentials")
        return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]

    def client(self, service: str = "kms", *, access_key: str | None = None, secret_key: str | None = None,
               region: str | None = None, session_token: str | None = None, **config):
        import boto3
        from botocore.config import Config

        if access_key is None:
            access_key, secret_key = (self.account, "dev-secret") if self.dev else self.admin_credentials()
        verify = str(self.ca_bundle) if self.tls and self.ca_bundle else None
        return boto3.client(
            service, endpoint_url=self.url, region_name=region or self.region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, aws_session_token=session_token,
            config=Config(retries={"max_attempts": 1}, **config), verify=verify)

    def move_clock(self, *, advance_seconds: float | None = None, offset_seconds: float | None = None,
                   access_key: str | None = None, secret_key: str | None = None) -> dict:
        """Move the service clock (``POST /_trentd/clock``); outside --dev the request is signed,
        by the administrator unless ``access_key``/``secret_key`` are given."""
        body = ({"advance_seconds": advance_seconds} if advance_seconds is not None
                else {"offset_seconds": offset_seconds})
        return self._clock_request("POST", json.dumps(body).encode(), access_key, secret_key)

    def clock(self, *, access_key: str | None = None, secret_key: str | None = None) -> dict:
        """The service clock (``GET /_trentd/clock``): ``{"offset_seconds", "now"}``."""
        return self._clock_request("GET", None, access_key, secret_key)

    def _clock_request(self, method: str, body: bytes | None, access_key: str | None, secret_key: str | None) -> dict:
        url = self.url + "/_trentd/clock"
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if not self.dev:  # SigV4 with service kms, as any SDK signs (docs/configuration.md, --test-clock)
            from botocore.auth import SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials

            if access_key is None:
                access_key, secret_key = self.admin_credentials()
            request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
            SigV4Auth(Credentials(access_key, secret_key), "kms", self.region).add_auth(request)
            headers = dict(request.headers)
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
            return json.loads(resp.read())
