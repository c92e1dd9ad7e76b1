"""Terraform with the hashicorp/aws provider against trentd: apply a key with rotation and an
alias, a plan that shows no drift, destroy; over HTTP and HTTPS (``custom_ca_bundle``) at once,
one provider configuration per transport in one root module.

Nothing reachable from CI installs Terraform or the provider; the test runs where the machine
ships them (``terraform`` on PATH, the provider in a filesystem mirror: ``TRENTD_TF_PLUGIN_DIR``
or one of the usual places) and is skipped with the reason elsewhere. The provider reads
GetKeyRotationStatus for every ``aws_kms_key`` (and polls it after EnableKeyRotation), so the test
also needs those operations implemented.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from trentd.kms.api import OPERATIONS

from .conftest import TRANSPORTS, boto3_client, ca_file, client_env, start_server, tls_supported

MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "/usr/local/share/terraform/plugins",
                     str(Path.home() / ".terraform.d" / "plugins"))
NEEDED = ("CreateKey", "DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "EnableKeyRotation",
          "ListResourceTags", "CreateAlias", "ListAliases", "DeleteAlias", "ScheduleKeyDeletion", "Encrypt")


def provider_mirror() -> str | None:
    candidates = [os.environ.get("TRENTD_TF_PLUGIN_DIR", "")] + list(MIRROR_CANDIDATES)
    for directory in filter(None, candidates):
        if (Path(directory) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return directory
    return None


PREAMBLE = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
"""


def config(transport: str, server) -> str:
    """One provider configuration (alias) per transport, each with its key, alias and ciphertext,
    and the credentials of its server (static keys, as people configure a self-hosted endpoint)."""
    url, ca = server.url, ca_file(server)
    access_key, secret_key = server.admin_credentials()
    ca_line = f'  custom_ca_bundle            = "{ca}"\n' if ca else ""
    return f"""
provider "aws" {{
  alias                       = "{transport}"
  region                      = "us-east-1"
  access_key                  = "{access_key}"
  secret_key                  = "{secret_key}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
{ca_line}  endpoints {{
    kms = "{url}"
  }}
}}

resource "aws_kms_key" "{transport}" {{
  provider                = aws.{transport}
  description             = "terraform key over {transport}"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  tags = {{
    team = "kms"
  }}
}}

resource "aws_kms_alias" "{transport}" {{
  provider      = aws.{transport}
  name          = "alias/terraform-app"
  target_key_id = aws_kms_key.{transport}.key_id
}}

data "aws_kms_ciphertext" "{transport}" {{
  provider  = aws.{transport}
  key_id    = aws_kms_alias.{transport}.arn
  plaintext = "terraform secret"
  context   = {{ purpose = "test" }}
}}

output "key_id_{transport}" {{ value = aws_kms_key.{transport}.key_id }}
"""


@pytest.fixture(scope="module")
def servers():
    """One server per transport, all driven by one Terraform configuration: every terraform
    command loads the provider's (large) schema once, so both transports cost one run."""
    missing = [op for op in NEEDED if op not in OPERATIONS]
    if missing:
        pytest.skip(f"trentd does not implement {', '.join(missing)} yet, which the aws provider calls "
                    "for aws_kms_key")
    if not shutil.which("terraform"):
        pytest.skip("terraform is not on PATH (this machine image does not ship it)")
    if not provider_mirror():
        pytest.skip("no filesystem mirror with registry.terraform.io/hashicorp/aws "
                    f"(set TRENTD_TF_PLUGIN_DIR; looked in {', '.join(MIRROR_CANDIDATES)})")
    started = {t: start_server(t) for t in TRANSPORTS if t == "http" or tls_supported()}
    yield started
    for srv in started.values():
        srv.cleanup()


def test_apply_plan_destroy(servers, home, tmp_path):
    # Each terraform command starts the aws provider (a large binary) up to three times: ~20 s each
    # on two busy cores. Hence one test with the fewest commands that prove apply, no drift, destroy.
    terraform = shutil.which("terraform")
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{provider_mirror()}"\n'
                          '    include = ["registry.terraform.io/*/*"]\n  }\n}\n')
    (tmp_path / "main.tf").write_text(PREAMBLE + "".join(config(t, srv) for t, srv in servers.items()))
    env = client_env(next(iter(servers.values())), home, endpoint_env=False, TF_CLI_CONFIG_FILE=str(cli_config),
                     TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1", TF_INPUT="0")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE"):
        env.pop(name, None)  # each provider block names its own credentials and CA

    def tf(*args: str, ok=(0,)) -> subprocess.CompletedProcess:
        result = subprocess.run([terraform, *args, "-no-color"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode in ok, f"terraform {args[0]}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    tf("init", "-backend=false")
    tf("apply", "-auto-approve")
    state = json.loads((tmp_path / "terraform.tfstate").read_text())  # (`terraform show` would start the provider)
    for transport, server in servers.items():
        key_id = state["outputs"][f"key_id_{transport}"]["value"]
        kms = boto3_client(server)
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
        assert kms.describe_key(KeyId="alias/terraform-app")["KeyMetadata"]["KeyId"] == key_id
        [data] = [r for r in state["resources"] if r["type"] == "aws_kms_ciphertext" and r["name"] == transport]
        blob = base64.b64decode(data["instances"][0]["attributes"]["ciphertext_blob"])
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "test"})["Plaintext"] == b"terraform secret"

    plan = tf("plan", "-detailed-exitcode", ok=(0, 2))
    assert plan.returncode == 0, f"plan shows drift right after apply:\n{plan.stdout}"

    tf("destroy", "-auto-approve")
    for transport, server in servers.items():
        key_id = state["outputs"][f"key_id_{transport}"]["value"]
        kms = boto3_client(server)
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
        assert not kms.list_aliases(KeyId=key_id)["Aliases"]
