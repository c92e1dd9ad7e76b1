"""The AWS Encryption SDK for Python against trentd: the strictest real KMS consumer.

It sends GenerateDataKey with NumberOfBytes, requires key ARNs in answers and, on decrypt, the
answer's KeyId equal to the configured identifier string for string.

* v4 (this venv) with the Material Providers library: an AWS KMS keyring given a boto3 client;
* v4 with the master-key-provider API (``KMSMasterKey`` given a client);
* v3 (the ESDK CLI's venv, since the CLI pins ESDK 3.x): ``StrictAwsKmsMasterKeyProvider``,
  which builds its own clients and is pointed at trentd only by ``AWS_ENDPOINT_URL_KMS``;
* a message written by v3 decrypts with the v4 keyring, and the reverse.
"""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from .conftest import ESDK_CLI_VENV, boto3_client, client_env, require

CONTEXT = {"purpose": "trentd-test", "team": "kms"}

V3_SCRIPT = textwrap.dedent("""
    # Runs in the ESDK 3.x venv: decrypt what v4 wrote, encrypt a message for v4 to read.
    import sys
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy
    assert aws_encryption_sdk.__version__.startswith("3."), aws_encryption_sdk.__version__
    arn, from_v4, message, out = sys.argv[1:5]
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
    plaintext, header = client.decrypt(source=open(from_v4, "rb").read(), key_provider=provider)
    assert plaintext == b"from v4", plaintext
    assert header.encryption_context["purpose"] == "trentd-test", header.encryption_context
    ciphertext, _ = client.encrypt(source=open(message, "rb").read(), key_provider=provider,
                                   encryption_context={"purpose": "trentd-test", "team": "kms"})
    open(out, "wb").write(ciphertext)
""")


@pytest.fixture(scope="module")
def kms(server):
    return boto3_client(server)


@pytest.fixture(scope="module")
def key_arn(kms) -> str:
    return kms.create_key(Description="esdk")["KeyMetadata"]["Arn"]


def _v4_keyring(kms, arn):
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput

    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return mpl.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=kms))


def _v4_client():
    import aws_encryption_sdk
    from aws_encryption_sdk import CommitmentPolicy

    assert aws_encryption_sdk.__version__.startswith("4."), aws_encryption_sdk.__version__
    return aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def test_v4_keyring_round_trip(kms, key_arn):
    client, keyring = _v4_client(), _v4_keyring(kms, key_arn)
    ciphertext, _ = client.encrypt(source=b"keyring secret", keyring=keyring, encryption_context=CONTEXT)
    plaintext, header = client.decrypt(source=ciphertext, keyring=keyring, encryption_context=CONTEXT)
    assert plaintext == b"keyring secret"
    assert header.encryption_context["team"] == "kms"


def test_v4_master_key_round_trip(kms, key_arn):
    from aws_encryption_sdk.key_providers.kms import KMSMasterKey

    client = _v4_client()
    master_key = KMSMasterKey(key_id=key_arn, client=kms)
    ciphertext, _ = client.encrypt(source=b"master key secret" * 100, key_provider=master_key,
                                   encryption_context=CONTEXT)
    plaintext, header = client.decrypt(source=ciphertext, key_provider=master_key)
    assert plaintext == b"master key secret" * 100
    assert header.encryption_context["purpose"] == "trentd-test"


def test_v3_strict_provider_through_endpoint_env(server, kms, key_arn, home, tmp_path):
    python = require(ESDK_CLI_VENV / "bin" / "python", "the ESDK 3.x venv (.venv-esdk-cli)")
    script = tmp_path / "esdk_v3.py"
    script.write_text(V3_SCRIPT)
    client, keyring = _v4_client(), _v4_keyring(kms, key_arn)
    v4_ciphertext, _ = client.encrypt(source=b"from v4", keyring=keyring, encryption_context=CONTEXT)
    (tmp_path / "from_v4").write_bytes(v4_ciphertext)
    (tmp_path / "message").write_bytes(b"v3 secret\n" * 50)

    # v3 reads what v4 wrote and writes a message of its own, through AWS_ENDPOINT_URL_KMS only ...
    result = subprocess.run([python, str(script), key_arn, str(tmp_path / "from_v4"), str(tmp_path / "message"),
                             str(tmp_path / "from_v3")], env=client_env(server, home), timeout=120,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    v3_ciphertext = (tmp_path / "from_v3").read_bytes()
    assert b"v3 secret" not in v3_ciphertext

    # ... which v4 (keyring) reads back.
    plaintext, _ = client.decrypt(source=v3_ciphertext, keyring=keyring, encryption_context=CONTEXT)
    assert plaintext == b"v3 secret\n" * 50
