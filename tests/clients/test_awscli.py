"""AWS CLI v1 (``pip install awscli``): the common kms commands as people type them, with
``--query``, ``--output text`` and ``fileb://``, pointed at trentd three ways: ``--endpoint-url``,
``AWS_ENDPOINT_URL_KMS``, and a ``services`` section in the config file."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from trentd.kms.api import OPERATIONS

from .conftest import VENV_BIN, ca_file, client_env, require


@pytest.fixture(scope="module")
def aws(server, home):
    cli = require(VENV_BIN / "aws" if (VENV_BIN / "aws").exists() else shutil.which("aws"), "the AWS CLI v1 (awscli)")
    env = client_env(server, home, endpoint_env=False)

    def run(*args: str, endpoint: bool = True, extra_env: dict | None = None, check: bool = True) -> str:
        command = [cli, *(["--endpoint-url", server.url] if endpoint else []), *args]
        result = subprocess.run(command, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=120)
        if check:
            assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
            return result.stdout.strip()
        return result

    return run


def test_key_lifecycle_encrypt_decrypt(aws, tmp_path):
    # Each CLI call costs about a second of start-up: few calls, each doing something people do.
    key_id = aws("kms", "create-key", "--description", "cli key", "--tags", "TagKey=team,TagValue=kms",
                 "--query", "KeyMetadata.KeyId", "--output", "text")
    aws("kms", "create-alias", "--alias-name", "alias/cli-test", "--target-key-id", key_id)

    # fileb:// is raw bytes in v1; the text output of a blob is base64.
    (tmp_path / "plain.bin").write_bytes(b"\x00\x01binary secret\xff")
    blob_b64 = aws("kms", "encrypt", "--key-id", "alias/cli-test", "--plaintext", f"fileb://{tmp_path / 'plain.bin'}",
                   "--encryption-context", "app=cli,stage=test", "--query", "CiphertextBlob", "--output", "text")
    (tmp_path / "cipher.bin").write_bytes(base64.b64decode(blob_b64))
    decrypted = json.loads(aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}",
                               "--encryption-context", "app=cli,stage=test"))
    assert base64.b64decode(decrypted["Plaintext"]) == b"\x00\x01binary secret\xff"
    assert decrypted["KeyId"].endswith(key_id) and decrypted["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"

    wrong = aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'cipher.bin'}",
                "--encryption-context", "app=other", check=False)
    assert wrong.returncode == 255 and "InvalidCiphertextException" in wrong.stderr

    if "EnableKeyRotation" in OPERATIONS:
        aws("kms", "enable-key-rotation", "--key-id", key_id)
        assert aws("kms", "get-key-rotation-status", "--key-id", key_id, "--query", "KeyRotationEnabled",
                   "--output", "text") == "True"
    deletion = json.loads(aws("kms", "schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7"))
    assert deletion["KeyState"] == "PendingDeletion" and deletion["PendingWindowInDays"] == 7
    assert aws("kms", "describe-key", "--key-id", "alias/cli-test", "--query", "KeyMetadata.[KeyState,Description]",
               "--output", "text").split("\t") == ["PendingDeletion", "cli key"]


def test_endpoint_from_environment(aws, server):
    missing = aws("kms", "describe-key", "--key-id", "alias/does-not-exist", endpoint=False,
                  extra_env={"AWS_ENDPOINT_URL_KMS": server.url}, check=False)
    assert missing.returncode == 255  # AWS CLI v1: 255 for a service error
    assert "NotFoundException" in missing.stderr and "alias/does-not-exist" in missing.stderr


def test_config_services_section_and_admin_credentials_file(aws, server, tmp_path):
    """The README's way: the admin-credentials file trentd wrote, and an endpoint in the config."""
    config = tmp_path / "config"
    ca = ca_file(server)
    config.write_text(
        "[default]\nregion = us-east-1\nservices = trent-local\n"
        + (f"ca_bundle = {ca}\n" if ca else "")
        + f"\n[services trent-local]\nkms =\n  endpoint_url = {server.url}\n")
    env = {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(server.data_dir / "admin-credentials"),
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    random = json.loads(aws("kms", "generate-random", "--number-of-bytes", "24", endpoint=False, extra_env=env))
    assert len(base64.b64decode(random["Plaintext"])) == 24
