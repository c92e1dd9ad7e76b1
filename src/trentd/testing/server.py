"""A real trentd for tests: a process on a free port with its own data dir, and boto3 clients.

Outside pytest use ``TrentdServer`` as a context manager (the pytest plugin wraps it)::

    with TrentdServer() as server:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TrentdServer:
    def __init__(self, *, dev: bool = True, data_dir: str | os.PathLike | None = None, port: int | None = None,
                 account: str = "000000000000", region: str = "us-east-1", extra_args: tuple[str, ...] = (),
                 test_clock: bool = True):
        self.dev = dev
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="trentd-test-"))
        self.port = port or free_port()
        self.account = account
        self.region = region
        self.extra_args = tuple(extra_args) + (("--test-clock",) if test_clock and not dev else ())
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "TrentdServer":
        args = [sys.executable, "-m", "trentd", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--account", self.account, "--region", self.region, *self.extra_args]
        if self.dev:
            args.append("--dev")
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"trentd exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"trentd did not become healthy in {timeout}s:\n{self.log_path.read_text()}")

    def stop(self, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()

    def restart(self) -> "TrentdServer":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "TrentdServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --- clients --------------------------------------------------------------------------
    def admin_credentials(self) -> tuple[str, str]:
        """The administrator's access key, from the 0600 file written at first start."""
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "admin-credentials")
        return parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]

    def client(self, service: str = "kms", *, access_key: str | None = None, secret_key: str | None = None,
               region: str | None = None, **config):
        import boto3
        from botocore.config import Config

        if access_key is None:
            access_key, secret_key = (self.account, "dev-secret") if self.dev else self.admin_credentials()
        return boto3.client(
            service, endpoint_url=self.url, region_name=region or self.region, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, config=Config(retries={"max_attempts": 1}, **config))

    def move_clock(self, *, advance_seconds: float | None = None, offset_seconds: float | None = None) -> dict:
        body = {"advance_seconds": advance_seconds} if advance_seconds is not None else {"offset_seconds": offset_seconds}
        req = urllib.request.Request(self.url + "/_trentd/clock", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
