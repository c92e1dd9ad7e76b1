"""``aws-encryption-cli`` (aws-encryption-sdk-cli 4.3, on ESDK 3.x in its own venv): encrypt and
decrypt a file with an encryption context, pointed at trentd by ``AWS_ENDPOINT_URL_KMS`` alone."""

from __future__ import annotations

import base64
import json
import subprocess

from .conftest import ESDK_CLI_VENV, boto3_client, client_env, require


def test_encrypt_and_decrypt_a_file(server, home, tmp_path):
    cli = require(ESDK_CLI_VENV / "bin" / "aws-encryption-cli", "aws-encryption-cli (.venv-esdk-cli)")
    arn = boto3_client(server).create_key(Description="esdk cli")["KeyMetadata"]["Arn"]
    env = client_env(server, home)
    source = tmp_path / "report.csv"
    source.write_text("id,secret\n" + "".join(f"{i},value-{i}\n" for i in range(200)))
    common = ["--wrapping-keys", f"key={arn}", "--encryption-context", "purpose=test", "department=kms",
              "--commitment-policy", "require-encrypt-require-decrypt"]

    encrypted = tmp_path / "report.csv.encrypted"
    result = subprocess.run([cli, "--encrypt", "--input", str(source), "--output", str(encrypted), *common,
                             "--metadata-output", "-"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)
    assert metadata["header"]["encryption_context"]["purpose"] == "test"
    key_infos = [base64.b64decode(k["key_provider"]["key_info"]).decode()
                 for k in metadata["header"]["encrypted_data_keys"]]
    assert key_infos == [arn]  # the data key is wrapped by trentd's key, named by its ARN
    assert b"value-17" not in encrypted.read_bytes()

    result = subprocess.run([cli, "--decrypt", "--input", str(encrypted), "--output", "-", *common,
                             "--suppress-metadata", "--buffer"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == source.read_bytes()

    # The encryption context is checked on decrypt: with a different one the CLI writes nothing.
    result = subprocess.run([cli, "--decrypt", "--input", str(encrypted), "--output", "-", "--wrapping-keys",
                             f"key={arn}", "--encryption-context", "purpose=other",
                             "--commitment-policy", "require-encrypt-require-decrypt", "--suppress-metadata",
                             "--buffer"], env=env, capture_output=True, timeout=120)
    assert b"value-17" not in result.stdout
    assert b"encryption context did not match" in result.stderr
