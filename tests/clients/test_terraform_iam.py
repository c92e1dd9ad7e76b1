"""Terraform manages trentd's principals with the IAM API (issue #25): one configuration with a
user (force_destroy) and its access key, a group and its membership, a role with a trust policy,
a managed policy and its attachments, an inline role policy, tags on each that has them, a KMS key
whose policy names the role, an alias and a grant to the role.

``apply``; ``plan`` shows no changes; a changed policy document and role description apply
cleanly (and leave no drift); ``destroy`` leaves nothing behind but the KMS key, pending
deletion. Terraform and the hashicorp/aws provider are installed on this machine (the provider in
the filesystem mirror /opt/tf-plugins): the test runs here, and fails in CI where they are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from .conftest import boto3_client, client_env, require, start_server
from .test_terraform import provider_mirror

ROLE_TRUST_USER = "aws_iam_user.app.arn"
REGION = "eu-central-1"  # IAM is global: its requests are signed for the provider's Region too


def configuration(server, policy_action: str, role_description: str) -> str:
    access_key, secret_key = server.admin_credentials()
    url = server.url
    return f"""
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region                      = "{REGION}"
  access_key                  = "{access_key}"
  secret_key                  = "{secret_key}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {{
    iam = "{url}"
    kms = "{url}"
    sts = "{url}"
  }}
}}

resource "aws_iam_user" "app" {{
  name          = "tf-app"
  path          = "/apps/"
  force_destroy = true
  tags          = {{ team = "platform" }}
}}

resource "aws_iam_access_key" "app" {{
  user = aws_iam_user.app.name
}}

resource "aws_iam_group" "team" {{
  name = "tf-team"
}}

resource "aws_iam_group_membership" "team" {{
  name  = "tf-team-membership"
  group = aws_iam_group.team.name
  users = [aws_iam_user.app.name]
}}

resource "aws_iam_role" "app" {{
  name                 = "tf-app-role"
  description          = "{role_description}"
  max_session_duration = 7200
  assume_role_policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [{{ Effect = "Allow", Principal = {{ AWS = {ROLE_TRUST_USER} }}, Action = "sts:AssumeRole" }}]
  }})
  tags = {{ team = "platform" }}
}}

resource "aws_iam_policy" "kms_use" {{
  name        = "tf-kms-use"
  description = "what the app may do with keys"
  policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Action = ["{policy_action}"], Resource = "*" }}]
  }})
  tags = {{ team = "platform" }}
}}

resource "aws_iam_role_policy_attachment" "app" {{
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.kms_use.arn
}}

resource "aws_iam_user_policy_attachment" "app" {{
  user       = aws_iam_user.app.name
  policy_arn = aws_iam_policy.kms_use.arn
}}

resource "aws_iam_group_policy_attachment" "team" {{
  group      = aws_iam_group.team.name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}}

resource "aws_iam_role_policy" "inline" {{
  name = "tf-inline"
  role = aws_iam_role.app.id
  policy = jsonencode({{
    Version   = "2012-10-17"
    Statement = [{{ Effect = "Allow", Action = ["kms:DescribeKey"], Resource = "*" }}]
  }})
}}

resource "aws_kms_key" "app" {{
  description             = "the app's key"
  deletion_window_in_days = 7
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
      {{ Sid = "Admin", Effect = "Allow", Principal = {{ AWS = "arn:aws:iam::{server.account}:root" }},
        Action = "kms:*", Resource = "*" }},
      {{ Sid = "App", Effect = "Allow", Principal = {{ AWS = aws_iam_role.app.arn }},
        Action = ["kms:Encrypt", "kms:Decrypt"], Resource = "*" }}
    ]
  }})
  tags = {{ team = "platform" }}
}}

resource "aws_kms_alias" "app" {{
  name          = "alias/tf-app"
  target_key_id = aws_kms_key.app.key_id
}}

resource "aws_kms_grant" "app" {{
  name              = "tf-app-grant"
  key_id            = aws_kms_key.app.key_id
  grantee_principal = aws_iam_role.app.arn
  operations        = ["Encrypt", "GenerateDataKey"]
}}

output "key_id" {{ value = aws_kms_key.app.key_id }}
output "role_arn" {{ value = aws_iam_role.app.arn }}
output "access_key_id" {{ value = aws_iam_access_key.app.id }}
"""


@pytest.fixture(scope="module")
def server():
    srv = start_server("http")
    yield srv
    srv.cleanup()


def test_terraform_manages_principals(server, home, tmp_path):
    terraform = require(shutil.which("terraform"), "terraform", "install Terraform")
    mirror = require(provider_mirror(), "the hashicorp/aws provider mirror", "see /opt/tf-plugins")
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n'
                          '    include = ["registry.terraform.io/*/*"]\n  }\n}\n')
    env = client_env(server, home, endpoint_env=False, TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1",
                     CHECKPOINT_DISABLE="1", TF_INPUT="0")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE"):
        env.pop(name, None)

    def tf(*args: str, ok=(0,)) -> subprocess.CompletedProcess:
        result = subprocess.run([terraform, *args, "-no-color"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=900)
        assert result.returncode in ok, f"terraform {args[0]}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def no_drift() -> None:
        plan = tf("plan", "-detailed-exitcode", ok=(0, 2))
        assert plan.returncode == 0, f"plan shows changes:\n{plan.stdout}"

    main = tmp_path / "main.tf"
    main.write_text(configuration(server, "kms:Encrypt", "first"))
    tf("init", "-backend=false")
    tf("apply", "-auto-approve")
    outputs = json.loads((tmp_path / "terraform.tfstate").read_text())["outputs"]
    key_id, role_arn = outputs["key_id"]["value"], outputs["role_arn"]["value"]
    iam = boto3_client(server, "iam")
    kms = server.client("kms", region=REGION)  # the provider's Region: where its key lives
    account = server.account
    user = iam.get_user(UserName="tf-app")["User"]
    assert user["Arn"] == f"arn:aws:iam::{account}:user/apps/tf-app" and user["Tags"] == [
        {"Key": "team", "Value": "platform"}]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="tf-app")["Groups"]] == ["tf-team"]
    role = iam.get_role(RoleName="tf-app-role")["Role"]
    assert role["Arn"] == role_arn and role["Description"] == "first" and role["MaxSessionDuration"] == 7200
    assert [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName="tf-app-role")["AttachedPolicies"]] == [
        "tf-kms-use"]
    assert iam.list_role_policies(RoleName="tf-app-role")["PolicyNames"] == ["tf-inline"]
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [g["GranteePrincipal"] for g in grants] == [role_arn]
    assert kms.describe_key(KeyId="alias/tf-app")["KeyMetadata"]["KeyId"] == key_id
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="tf-app")["AccessKeyMetadata"]] == [
        outputs["access_key_id"]["value"]]
    no_drift()

    main.write_text(configuration(server, "kms:GenerateDataKey", "second"))
    tf("apply", "-auto-approve")
    policy_arn = f"arn:aws:iam::{account}:policy/tf-kms-use"
    policy = iam.get_policy(PolicyArn=policy_arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    assert document["Document"]["Statement"][0]["Action"] in (["kms:GenerateDataKey"], "kms:GenerateDataKey")
    assert iam.get_role(RoleName="tf-app-role")["Role"]["Description"] == "second"
    no_drift()

    # A key Terraform does not know of: only force_destroy lets the user be deleted.
    iam.create_access_key(UserName="tf-app")
    tf("destroy", "-auto-approve")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["admin"]
    assert iam.list_roles()["Roles"] == [] and iam.list_groups()["Groups"] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert not kms.list_aliases(KeyId=key_id)["Aliases"]
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
