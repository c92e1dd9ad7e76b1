"""docs/deploy.md, run where it can be here: trentd started with the documented config files
(deploy/systemd/trentd.toml, the Kubernetes ConfigMap's trentd.toml) with only their paths and
ports changed, the Kubernetes procedure (the Job's migrate and first start, nodes, the
administrator's access key) over a fresh PostgreSQL database, and the backup and restore steps.
systemd and Kubernetes themselves are not run (docs/deploy.md says so); the files are checked by
tests/unit/test_deploy_files.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from trentd import options
from trentd.cli import build_parser
from trentd.testing.postgres import ThrowawayDatabase, require_postgres
from trentd.testing.server import TrentdServer, free_port, write_root_key

ROOT = Path(__file__).resolve().parents[2]
HOST_CONFIG = ROOT / "deploy" / "systemd" / "trentd.toml"
CONFIGMAP = ROOT / "deploy" / "kubernetes" / "configmap.yaml"
ADMIN = "arn:aws:iam::000000000000:user/admin"
# Flags of the metrics and JSON-logs work, merged separately from this one (as in
# tests/unit/test_deploy_files.py): left out of the file while this trentd does not know them.
PENDING_FLAGS = {"metrics-port", "metrics-host", "log-format"}


def adapted(text: str, values: dict[str, object]) -> str:
    """The config file with the keys of ``values`` given those values (each key must be there
    exactly once; ``cert`` and ``key`` are [tls]'s), less the lines of flags this trentd does not
    declare yet."""
    build_parser()  # declares every option in options.KNOWN
    pending = PENDING_FLAGS - set(options.KNOWN)
    lines, changed = [], []
    for line in text.splitlines(keepends=True):
        name = line.split("=")[0].strip() if "=" in line and not line.startswith("#") else None
        if name in values:
            line = f"{name} = {json.dumps(values[name])}\n"
            changed.append(name)
        if name not in pending:
            lines.append(line)
    assert sorted(changed) == sorted(values)
    return "".join(lines)


@pytest.fixture
def certificate(tmp_path):
    """Your own certificate, as the files expect (``[tls] cert``/``key``): a test CA's."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"cert": tmp_path / "server.pem", "key": tmp_path / "server-key.pem", "ca": tmp_path / "ca.pem"}
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    return paths


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any TRENTD_ setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRENTD_") or k == "TRENTD_TEST_POSTGRES"}
    return env | variables


class ConfiguredServer(TrentdServer):
    """``trentd serve --config FILE`` and nothing else on the command line: what the systemd unit
    and the Deployment run; the rest comes from the file and the environment."""

    def __init__(self, config: Path, *, data_dir: Path, port: int, certificate: dict, env: dict[str, str],
                 workers: int, args: tuple[str, ...] = ()):
        super().__init__(dev=False, data_dir=data_dir, port=port, tls=(certificate["cert"], certificate["key"]),
                         ca_bundle=certificate["ca"], workers=workers, test_clock=False)
        self.config, self.args, self.environment = config, args, env

    def serve_args(self) -> list[str]:
        return [sys.executable, "-m", "trentd", "serve", "--config", str(self.config), *self.args]

    def process_env(self) -> dict[str, str]:
        return self.environment


def admin_command(*args: str, config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "trentd", *args, "--config", str(config)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def encrypt_and_decrypt(writer, reader) -> None:
    key_id = writer.create_key()["KeyMetadata"]["KeyId"]
    blob = writer.encrypt(KeyId=key_id, Plaintext=b"deployed")["CiphertextBlob"]
    assert reader.decrypt(CiphertextBlob=blob)["Plaintext"] == b"deployed"


# --- systemd: deploy/systemd/trentd.toml -----------------------------------------------------------

def test_the_systemd_config_file_serves_https_on_sqlite(tmp_path, certificate):
    data_dir, port = tmp_path / "var-lib-trentd", free_port()
    config = tmp_path / "trentd.toml"
    config.write_text(adapted(HOST_CONFIG.read_text(), {
        "host": "127.0.0.1", "port": port, "data-dir": str(data_dir), "metrics-host": "127.0.0.1",
        "metrics-port": free_port(), "cert": str(certificate["cert"]), "key": str(certificate["key"])}))
    # as systemd's credentials directory holds it: readable by the service user only
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    root_key = write_root_key(credentials / "root.key")
    root_key.chmod(0o400)
    credentials.chmod(0o500)
    workers = tomllib.loads(config.read_text())["workers"]
    with ConfiguredServer(config, data_dir=data_dir, port=port, certificate=certificate, workers=workers,
                          env=clean_environment(), args=("--root-key-file", str(root_key))) as server:
        assert server.url.startswith("https://")
        assert (data_dir / "admin-credentials").exists() and not (data_dir / "root.key").exists()
        kms = server.client()  # the administrator's key, from the data dir
        encrypt_and_decrypt(kms, kms)


# --- Kubernetes: the ConfigMap, the Job, the Deployment's nodes ----------------------------------

def kubernetes_config(tmp_path: Path, root_key: Path, certificate: dict, name: str) -> Path:
    configmap = yaml.safe_load(CONFIGMAP.read_text())
    path = tmp_path / f"{name}.toml"
    path.write_text(adapted(configmap["data"]["trentd.toml"], {
        "root-key-file": str(root_key), "metrics-host": "127.0.0.1", "metrics-port": free_port(),
        "cert": str(certificate["cert"]), "key": str(certificate["key"])}))
    return path


def test_the_kubernetes_procedure_over_postgres(tmp_path, certificate):
    require_postgres()
    root_key = write_root_key(tmp_path / "root.key")
    with ThrowawayDatabase() as database:
        # The Job: migrate, which with the root key at hand also does the first start, in the
        # pod's throwaway dir.
        job_dir = tmp_path / "job-data"
        job_env = clean_environment(TRENTD_DATABASE=database.dsn, TRENTD_DATA_DIR=str(job_dir))
        job_config = kubernetes_config(tmp_path, root_key, certificate, "job")
        first_start = admin_command("migrate", config=job_config, env=job_env)
        migrated = json.loads(first_start.stdout)
        assert migrated["Store"] == "postgres" and migrated["Applied"] and migrated["Initialised"] is True
        assert "first start" in first_start.stderr and "The secret is not printed" in first_start.stderr
        first_secret = (job_dir / "admin-credentials").read_text().split("aws_secret_access_key = ")[1].split()[0]
        assert first_secret not in first_start.stdout + first_start.stderr  # not in the Job's log
        listed = admin_command("access-keys", "list", config=job_config, env=job_env)
        [first_key] = json.loads(listed.stdout)["AccessKeys"]
        assert first_key["Principal"] == ADMIN
        shutil.rmtree(job_dir)  # the pod's emptyDir goes with it
        # the Job of the next rollout finds nothing to do
        assert json.loads(admin_command("migrate", config=job_config, env=job_env).stdout)["Applied"] == []

        # The Deployment: two nodes, each with the image's environment and a data dir of its own.
        nodes = []
        try:
            for name in ("node-a", "node-b"):
                port, data_dir = free_port(), tmp_path / name
                env = clean_environment(TRENTD_DATABASE=database.dsn, TRENTD_DATA_DIR=str(data_dir),
                                        TRENTD_HOST="127.0.0.1", TRENTD_PORT=str(port))
                config = kubernetes_config(tmp_path, root_key, certificate, name)
                workers = tomllib.loads(config.read_text())["workers"]
                nodes.append(ConfiguredServer(config, data_dir=data_dir, port=port, certificate=certificate,
                                              env=env, workers=workers).start())
            assert not any((node.data_dir / "admin-credentials").exists() for node in nodes)  # no first start

            # kubectl exec deploy/trentd -- trentd access-keys create ... (node A's environment)
            made = admin_command("access-keys", "create", "--principal", ADMIN, config=nodes[0].config,
                                 env=nodes[0].environment)
            created = json.loads(made.stdout)
            key = dict(access_key=created["AccessKeyId"], secret_key=created["SecretAccessKey"])
            encrypt_and_decrypt(nodes[0].client(**key), nodes[1].client(**key))

            first = dict(access_key=first_key["AccessKeyId"], secret_key=first_secret)
            nodes[0].client(**first).list_keys()  # valid until deleted
            admin_command("access-keys", "delete", "--access-key-id", first_key["AccessKeyId"],
                          config=nodes[0].config, env=nodes[0].environment)
            with pytest.raises(ClientError) as refused:
                nodes[1].client(**first).list_keys()  # node B never cached it
            assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
            nodes[1].client(**key).list_keys()
        finally:
            for node in nodes:
                node.cleanup()


# --- backup and restore --------------------------------------------------------------------------

def key_exists(kms, key_id: str) -> bool:
    try:
        kms.describe_key(KeyId=key_id)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NotFoundException"
        return False
    return True


def test_sqlite_online_backup_and_restore(tmp_path):
    root_key = write_root_key(tmp_path / "root.key")
    backup = tmp_path / "backups" / "trentd.db"
    backup.parent.mkdir(mode=0o700)
    server = TrentdServer(dev=False, data_dir=tmp_path / "var-lib-trentd", root_key_file=root_key, test_clock=False)
    with server:
        kms = server.client()
        kept = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=kept, Plaintext=b"backed up")["CiphertextBlob"]
        # docs/deploy.md: sqlite3 /var/lib/trentd/trentd.db ".backup /var/backups/trentd/trentd.db"
        db = server.data_dir / "trentd.db"
        subprocess.run(["sqlite3", str(db), f".backup {backup}"], check=True, timeout=60)
        later = kms.create_key()["KeyMetadata"]["KeyId"]
        server.stop()

        # restore: the old database's -wal and -shm removed, the backup put in place, same root key
        for journal in ("trentd.db-wal", "trentd.db-shm"):
            (server.data_dir / journal).unlink(missing_ok=True)
        shutil.copyfile(backup, db)
        db.chmod(0o600)
        server.start()
        kms = server.client()
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"backed up"
        assert key_exists(kms, kept) and not key_exists(kms, later)
        server.stop()

        server.root_key_file = write_root_key(tmp_path / "another.key")
        with pytest.raises(RuntimeError, match="refusing to start"):
            server.start()


def test_postgres_dump_and_restore(tmp_path):
    require_postgres()
    with TrentdServer(dev=False, store="postgres", test_clock=False) as source, ThrowawayDatabase() as target:
        kms = source.client()
        kept = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=kept, Plaintext=b"backed up")["CiphertextBlob"]
        dump = tmp_path / "trentd.dump"
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", source.database], check=True, timeout=120)
        later = kms.create_key()["KeyMetadata"]["KeyId"]
        source.stop()

        subprocess.run(["pg_restore", "--no-owner", f"--dbname={target.dsn}", str(dump)], check=True, timeout=120)
        admin = dict(zip(("access_key", "secret_key"), source.admin_credentials()))
        with TrentdServer(dev=False, database=target.dsn, root_key_file=source.root_key_file,
                          test_clock=False) as restored:
            kms = restored.client(**admin)
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"backed up"
            assert key_exists(kms, kept) and not key_exists(kms, later)
        wrong = TrentdServer(dev=False, database=target.dsn, root_key_file=write_root_key(tmp_path / "another.key"),
                             test_clock=False)
        with pytest.raises(RuntimeError, match="refusing to start"):
            with wrong:
                pass
