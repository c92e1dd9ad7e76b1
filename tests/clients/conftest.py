"""Real clients against a real trentd: helpers shared by the client tests.

Each test module starts its own server (the ``server`` fixture: one per module and transport, so the
modules run in parallel under xdist) in normal mode, signatures checked, with the administrator's credentials
from the data dir. Clients that run as subprocesses get a *minimal* environment built here: this
machine exports AWS_CA_BUNDLE, SSL_CERT_FILE and may export other AWS_* variables, and a stray
``~/.aws/config`` would change what the CLI or SOPS do, so nothing is inherited but PATH and
locale, and HOME is a fresh directory.

``transport`` is ``http`` or ``https``. HTTPS uses trentd's own self-signed CA
(``--tls-self-signed``, ``DATA_DIR/tls/ca.pem``) and is skipped, with the reason, while this
trentd has no TLS support.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from trentd.testing.server import TrentdServer

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TRANSPORTS = ("http", "https")


def tls_supported() -> bool:
    """Whether this trentd can serve HTTPS with its own CA (``TrentdServer(tls="self-signed")``)."""
    import inspect

    return "tls" in inspect.signature(TrentdServer.__init__).parameters


def start_server(transport: str = "http", **kwargs) -> TrentdServer:
    if transport == "https":
        if not tls_supported():
            pytest.skip("trentd has no --tls-self-signed yet: the HTTPS variant waits for the TLS issue")
        kwargs["tls"] = "self-signed"
    return TrentdServer(dev=kwargs.pop("dev", False), **kwargs).start()


def ca_file(server: TrentdServer) -> str | None:
    """The CA a client must trust to reach ``server`` (None over plain HTTP)."""
    if not server.url.startswith("https:"):
        return None
    return str(server.ca_bundle)


def boto3_client(server: TrentdServer, service: str = "kms", **config):
    """A boto3 client with the admin credentials, trusting the server's CA over HTTPS."""
    import boto3
    from botocore.config import Config

    access_key, secret = server.admin_credentials() if not server.dev else (server.account, "dev")
    return boto3.client(service, endpoint_url=server.url, region_name=server.region, aws_access_key_id=access_key,
                        aws_secret_access_key=secret, verify=ca_file(server) or True,
                        config=Config(retries={"max_attempts": 1}, **config))


def client_env(server: TrentdServer, home: Path, *, endpoint_env: bool = True, **extra: str) -> dict[str, str]:
    """A minimal environment for a client subprocess: credentials, Region, endpoint and CA."""
    access_key, secret = server.admin_credentials() if not server.dev else (server.account, "dev")
    env = {
        "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": server.region,
        "AWS_DEFAULT_REGION": server.region,
        # No shared config: nothing from this machine's ~/.aws reaches the client.
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint_env:
        env["AWS_ENDPOINT_URL_KMS"] = server.url
    ca = ca_file(server)
    if ca:
        env["AWS_CA_BUNDLE"] = ca  # botocore, the AWS CLI, the ESDK CLI and SOPS (Go SDK)
        env["NODE_EXTRA_CA_CERTS"] = ca  # Node
    env.update(extra)
    return env


@pytest.fixture(scope="module", params=TRANSPORTS)
def server(request):
    """One server per test module and transport (a module may override it, as test_boto3_sweep does)."""
    srv = start_server(request.param)
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def home():
    """A fresh HOME for client subprocesses (no ~/.aws, no caches from this machine)."""
    path = Path(tempfile.mkdtemp(prefix="trentd-client-home-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def require(path: Path | str | None, what: str, how: str = "run scripts/test") -> str:
    """A tool the test needs: skipped when missing here, but a failure in CI (scripts/test installs it)."""
    if path and Path(path).exists():
        return str(path)
    message = f"{what} is not installed ({how})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


ESDK_CLI_VENV = REPO / ".venv-esdk-cli"  # aws-encryption-sdk-cli pins ESDK 3.x: a venv of its own
