"""AWS managed keys: the predefined ``alias/aws/<service>`` aliases, the key policy AWS gives such a
key, and what anyone may do to one.

AWS creates an AWS managed key the first time a service uses it; trentd, which has no services
behind it, creates it the first time a request names its alias (kms/keys.py,
``create_managed_key``). Until then ListAliases shows the alias without a TargetKeyId. The key is
AWS's: its policy allows using it only through the service (``kms:ViaService``, never present in
a call to trentd, so a direct Encrypt is AccessDeniedException, as in AWS) and reading its
metadata; no one may change its policy, state, description, tags, aliases or rotation, or delete
it (``allows``). It rotates every year. This module is data and pure functions, used by key
resolution and authorization (kms/service.py), ListAliases and CreateAlias (kms/aliases.py).
"""

from __future__ import annotations

PREFIX = "alias/aws/"

# The predefined aliases: service name in the alias → (the name its policy's kms:ViaService holds,
# before ".<region>.amazonaws.com"; the service's short name in the policy and description).
SERVICES: dict[str, tuple[str, str]] = {
    "acm": ("acm", "ACM"),
    "dynamodb": ("dynamodb", "DynamoDB"),
    "ebs": ("ec2", "EBS"),
    "elasticfilesystem": ("elasticfilesystem", "EFS"),
    "es": ("es", "Elasticsearch"),
    "glue": ("glue", "Glue"),
    "kinesisvideo": ("kinesisvideo", "Kinesis Video Streams"),
    "lambda": ("lambda", "Lambda"),
    "rds": ("rds", "RDS"),
    "redshift": ("redshift", "Redshift"),
    "s3": ("s3", "S3"),
    "secretsmanager": ("secretsmanager", "Secrets Manager"),
    "ssm": ("ssm", "SSM"),
    "xray": ("xray", "X-Ray"),
}

ALIASES: tuple[str, ...] = tuple(sorted(PREFIX + service for service in SERVICES))

ROTATION_PERIOD_DAYS = 365

# The two statements of the policy: what principals of the account may do through the service,
# and what the account may do directly (read metadata, revoke grants).
_THROUGH_SERVICE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant",
                    "kms:DescribeKey")
_DIRECT = ("kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant")


class ManagedKeyMissing(Exception):
    """A request named a predefined alias whose AWS managed key does not exist yet. Raised by key
    resolution inside a read transaction; the operation table's wrapper (kms/keys.py) creates the
    key in a transaction of its own and runs the handler again (resolution has no effects)."""

    def __init__(self, alias_name: str):
        super().__init__(alias_name)
        self.alias_name = alias_name


def service_of(alias_name: str) -> str | None:
    """The service of a predefined alias name (None for any other name)."""
    if not alias_name.startswith(PREFIX):
        return None
    service = alias_name[len(PREFIX):]
    return service if service in SERVICES else None


def description(service: str) -> str:
    return f"Default key that protects my {SERVICES[service][1]} data when no other key is defined"


def policy(account: str, region: str, service: str) -> str:
    """AWS's key policy for the AWS managed key of ``service`` in ``account`` and ``region``,
    laid out as AWS returns policies (as policy.default_policy is)."""
    via, label = SERVICES[service]
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        f'  "Id" : "auto-{service}-2",\n'
        '  "Statement" : [ {\n'
        f'    "Sid" : "Allow access through {label} for all principals in the account that are authorized '
        f'to use {label}",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        '      "AWS" : "*"\n'
        "    },\n"
        f'    "Action" : {_listed(_THROUGH_SERVICE)},\n'
        '    "Resource" : "*",\n'
        '    "Condition" : {\n'
        '      "StringEquals" : {\n'
        f'        "kms:CallerAccount" : "{account}",\n'
        f'        "kms:ViaService" : "{via}.{region}.amazonaws.com"\n'
        "      }\n"
        "    }\n"
        "  }, {\n"
        '    "Sid" : "Allow direct access to key metadata to the account",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{account}:root"\n'
        "    },\n"
        f'    "Action" : {_listed(_DIRECT)},\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


def _listed(actions: tuple[str, ...]) -> str:
    return "[ " + ", ".join(f'"{action}"' for action in actions) + " ]"


def allows(action: str) -> bool:
    """Whether ``action`` may ever be allowed on an AWS managed key: only what its policy names.
    The policy already refuses the rest, but it is AWS's rule rather than the policy's, so it holds
    whatever a policy, an identity policy or a grant says."""
    return any(action == pattern or (pattern.endswith("*") and action.startswith(pattern[:-1]))
               for pattern in _THROUGH_SERVICE + _DIRECT)
