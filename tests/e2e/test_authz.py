"""Authorization end to end (issue #4): key policies, identity policies, grants' absence, the
condition operators and keys, cross-account use, the lockout check, malformed policies and the
Decrypt existence oracle — through a real non-dev server, principals made with the admin CLI,
and boto3 clients signing as each of them.

Principals (authz_world.py): account A (the server's) has ``admin`` (allow-all identity policy),
``alice``, ``carol`` and ``dave`` (no identity policy), ``ida`` (an identity policy assembled from
the table rows below), ``creator`` (may create and tag keys under conditions); account B has
``bob`` (identity policy allowing Encrypt/Decrypt on account A's keys) and ``bea`` (none).

Expected texts: shared/reference/security.md B2/B3 and kms-api.md §3.9; where AWS's behaviour
could not be confirmed the row says so.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Callable

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ..helpers import error_of
from .authz_world import (ACCT_A, ACCT_B, ACCT_C, DENY_I, DENY_R, LOCKOUT, REGION, UNKNOWN_KEY, XDENY_I, XDENY_R,
                          World, access_denied, policy)

OK = None
UNKNOWN = "unknown-key"  # Decrypt's single answer for "no such key" and "not allowed"
ZERO_KEY = "00000000-0000-4000-8000-000000000000"


# --- the table -------------------------------------------------------------------------------
class Ctx:
    """What one row's policies and call refer to: its key, alias, principals."""

    def __init__(self, world: World, key: dict):
        self.world = world
        self.key_id, self.key_arn = key["KeyId"], key["Arn"]
        self.alias = f"alias/finance-{uuid.uuid4().hex[:12]}"
        self.alias_arn = f"arn:aws:kms:{REGION}:{ACCT_A}:{self.alias}"
        self.blob: bytes | None = None
        self.policy_text: str | None = None

    def __getattr__(self, name: str) -> str:  # c.alice -> alice's ARN
        if name.startswith("_"):
            raise AttributeError(name)
        return self.world[name].arn

    @property
    def root_a(self) -> str:
        return f"arn:aws:iam::{ACCT_A}:root"

    @property
    def root_b(self) -> str:
        return f"arn:aws:iam::{ACCT_B}:root"

    def userid(self, name: str) -> str:
        return self.world.userids[name]


@dataclass(frozen=True)
class Case:
    id: str
    call: str  # the KMS operation
    args: Callable[[Ctx], dict]
    expect: str | None  # None: allowed; else an AccessDenied reason (authz_world) or UNKNOWN
    key_policy: Callable[[Ctx], list] | None = None  # None: the default key policy
    identity: Callable[[Ctx], list] | None = None  # ida's statements about this row's key
    caller: str = "alice"
    setup: Callable[[Ctx, object], None] | None = None  # run by the administrator before the policy
    key: dict = field(default_factory=dict)  # CreateKey arguments


def stmt(effect: str, principal=None, action="kms:*", resource="*", **extra) -> dict:
    out: dict = {"Effect": effect}
    if principal is not None:
        out["Principal"] = principal if principal == "*" or isinstance(principal, dict) else {"AWS": principal}
    if action is not None:
        out["Action"] = action
    if resource is not None:
        out["Resource"] = resource
    out.update(extra)
    return out


def alice_if(action, condition: dict, who: str = "alice"):
    """Key policy: allow ``who`` ``action`` when ``condition`` holds (nothing else)."""
    return lambda c: [stmt("Allow", getattr(c, who), action, Condition=condition)]


def enc(context: dict | None = None, key: str = "id", **extra):
    def args(c: Ctx) -> dict:
        key_id = {"id": c.key_id, "arn": c.key_arn, "alias": c.alias, "alias_arn": c.alias_arn}[key]
        out = {"KeyId": key_id, "Plaintext": b"secret", **extra}
        if context is not None:
            out["EncryptionContext"] = context
        return out
    return args


def key_only(**extra):
    return lambda c: {"KeyId": c.key_id, **extra}


def with_alias(c: Ctx, kms) -> None:
    kms.create_alias(AliasName=c.alias, TargetKeyId=c.key_id)


def tagged(**tags):
    def setup(c: Ctx, kms) -> None:
        kms.tag_resource(KeyId=c.key_id, Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])
    return setup


def encrypted(context: dict | None = None):
    def setup(c: Ctx, kms) -> None:
        c.blob = kms.encrypt(KeyId=c.key_id, Plaintext=b"secret", **({"EncryptionContext": context} if context else {}))[
            "CiphertextBlob"]
    return setup


def dec(context: dict | None = None, named: bool = False):
    def args(c: Ctx) -> dict:
        out = {"CiphertextBlob": c.blob}
        if context is not None:
            out["EncryptionContext"] = context
        if named:
            out["KeyId"] = c.key_arn
        return out
    return args


def grant_to(grantee: str, operations=("Encrypt",), **extra):
    return lambda c: {"KeyId": c.key_id, "GranteePrincipal": getattr(c, grantee), "Operations": list(operations),
                      **extra}


EC = "kms:EncryptionContext:purpose"
SIGN_KEY = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
MAC_KEY = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}

KEY_POLICY_CASES = [
    # who the key policy names
    Case("default-policy-no-identity-policy", "Encrypt", enc(), DENY_I),
    Case("default-policy-no-identity-policy-describe", "DescribeKey", key_only(), DENY_I),
    Case("names-user", "Encrypt", enc(), OK, lambda c: [stmt("Allow", c.alice, "kms:Encrypt")]),
    Case("names-user-other-action", "DescribeKey", key_only(), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt")]),
    Case("names-other-user", "Encrypt", enc(), DENY_R, lambda c: [stmt("Allow", c.carol, "kms:*")]),
    Case("names-user-in-list", "Encrypt", enc(), OK, lambda c: [stmt("Allow", [c.carol, c.alice], "kms:Encrypt")]),
    Case("principal-star", "Encrypt", enc(), OK, lambda c: [stmt("Allow", "*", "kms:Encrypt")]),
    Case("principal-aws-star", "Encrypt", enc(), OK, lambda c: [stmt("Allow", {"AWS": "*"}, "kms:Encrypt")]),
    Case("account-id-form-delegates", "Encrypt", enc(), DENY_I, lambda c: [stmt("Allow", ACCT_A, "kms:*")]),
    # actions
    Case("action-wildcard", "GenerateDataKey", key_only(KeySpec="AES_256"), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Generate*")]),
    Case("action-wildcard-miss", "Encrypt", enc(), DENY_R, lambda c: [stmt("Allow", c.alice, "kms:Generate*")]),
    Case("action-question-mark", "Encrypt", enc(), OK, lambda c: [stmt("Allow", c.alice, "kms:En?rypt")]),
    Case("action-case-insensitive", "Encrypt", enc(), OK, lambda c: [stmt("Allow", c.alice, "KMS:encrypt")]),
    Case("action-list", "DescribeKey", key_only(), OK,
         lambda c: [stmt("Allow", c.alice, ["kms:Encrypt", "kms:DescribeKey"])]),
    Case("not-action-allows-others", "DescribeKey", key_only(), OK,
         lambda c: [stmt("Allow", c.alice, None, NotAction="kms:Encrypt")]),
    Case("not-action-excludes", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, None, NotAction=["kms:Encrypt", "kms:Decrypt"])]),
    Case("statement-without-action-has-no-effect", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, None)]),
    # resources
    Case("resource-key-arn", "Encrypt", enc(), OK, lambda c: [stmt("Allow", c.alice, "kms:Encrypt", c.key_arn)]),
    Case("resource-other-key", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", f"arn:aws:kms:{REGION}:{ACCT_A}:key/{ZERO_KEY}")]),
    Case("resource-wildcard-arn", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", f"arn:aws:kms:*:{ACCT_A}:key/*")]),
    Case("not-resource-other", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", None,
                         NotResource=f"arn:aws:kms:*:*:key/{ZERO_KEY}")]),
    Case("not-resource-self", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", None, NotResource=c.key_arn)]),
    # explicit deny wins
    Case("deny-user", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", c.alice, "kms:Encrypt")]),
    Case("deny-user-other-action-still-allowed", "DescribeKey", key_only(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", c.alice, "kms:Encrypt")]),
    Case("deny-account-covers-its-users", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", c.root_a, "kms:Encrypt")]),
    Case("deny-star", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", "*", "kms:Encrypt")]),
    Case("deny-not-action", "DescribeKey", key_only(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", c.alice, None, NotAction="kms:Encrypt")]),
    Case("deny-not-resource-miss", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:*"), stmt("Deny", c.alice, "kms:*", None, NotResource=c.key_arn)]),
    # NotPrincipal
    Case("deny-not-principal-applies", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", [c.alice, c.carol], "kms:*"),
                    stmt("Deny", None, "kms:Encrypt", NotPrincipal={"AWS": [c.carol, c.root_a]})]),
    Case("deny-not-principal-exempts", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", [c.alice, c.carol], "kms:*"),
                    stmt("Deny", None, "kms:Encrypt", NotPrincipal={"AWS": [c.carol, c.root_a]})], caller="carol"),
    Case("allow-not-principal-applies", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", None, "kms:Encrypt", NotPrincipal={"AWS": c.carol})]),
    Case("allow-not-principal-excludes", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", None, "kms:Encrypt", NotPrincipal={"AWS": c.carol})], caller="carol"),

    # --- condition operators, through kms:EncryptionContext:<key> ---------------------------
    Case("string-equals", "Encrypt", enc({"purpose": "backup"}), OK, alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}})),
    Case("string-equals-value-is-case-sensitive", "Encrypt", enc({"purpose": "Backup"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}})),
    Case("string-equals-absent-key", "Encrypt", enc(), DENY_R, alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}})),
    Case("string-equals-values-or", "Encrypt", enc({"purpose": "archive"}), OK,
         alice_if("kms:Encrypt", {"StringEquals": {EC: ["backup", "archive"]}})),
    Case("string-equals-keys-and", "Encrypt", enc({"purpose": "backup"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup", "kms:EncryptionContext:team": "blue"}})),
    Case("string-equals-keys-and-both", "Encrypt", enc({"purpose": "backup", "team": "blue"}), OK,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup", "kms:EncryptionContext:team": "blue"}})),
    Case("operators-and", "Encrypt", enc({"purpose": "backup"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
    Case("context-key-part-case-insensitive", "Encrypt", enc({"PURPOSE": "backup"}), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionContext:Purpose": "backup"}})),
    # two context keys differing only in case: which one the condition reads is ambiguous (deny)
    Case("context-key-collision", "Encrypt", enc({"PURPOSE": "secret", "purpose": "backup"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}})),
    Case("context-key-collision-other-order", "Encrypt", enc({"purpose": "backup", "PURPOSE": "secret"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {EC: "backup"}})),
    Case("condition-key-name-case-insensitive", "Encrypt", enc({"purpose": "backup"}), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"KMS:encryptioncontext:PURPOSE": "backup"}})),
    Case("string-equals-ignore-case", "Encrypt", enc({"purpose": "backup"}), OK,
         alice_if("kms:Encrypt", {"StringEqualsIgnoreCase": {EC: "BACKUP"}})),
    Case("string-not-equals-ignore-case", "Encrypt", enc({"purpose": "Secret"}), DENY_R,
         alice_if("kms:Encrypt", {"StringNotEqualsIgnoreCase": {EC: "SECRET"}})),
    Case("string-not-equals-absent-key-is-true", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"StringNotEquals": {EC: "secret"}})),
    Case("string-not-equals-match", "Encrypt", enc({"purpose": "secret"}), DENY_R,
         alice_if("kms:Encrypt", {"StringNotEquals": {EC: "secret"}})),
    Case("string-not-equals-values-nor", "Encrypt", enc({"purpose": "b"}), DENY_R,
         alice_if("kms:Encrypt", {"StringNotEquals": {EC: ["a", "b"]}})),
    Case("string-not-equals-other", "Encrypt", enc({"purpose": "backup"}), OK,
         alice_if("kms:Encrypt", {"StringNotEquals": {EC: ["a", "b"]}})),
    Case("string-like", "Encrypt", enc({"purpose": "app-42"}), OK, alice_if("kms:Encrypt", {"StringLike": {EC: "app-*"}})),
    Case("string-like-question-mark", "Encrypt", enc({"purpose": "app-4"}), OK,
         alice_if("kms:Encrypt", {"StringLike": {EC: "app-?"}})),
    Case("string-like-miss", "Encrypt", enc({"purpose": "web-1"}), DENY_R, alice_if("kms:Encrypt", {"StringLike": {EC: "app-*"}})),
    Case("string-not-like-absent-key-is-true", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"StringNotLike": {EC: "tmp-*"}})),
    Case("string-not-like-match", "Encrypt", enc({"purpose": "tmp-1"}), DENY_R,
         alice_if("kms:Encrypt", {"StringNotLike": {EC: "tmp-*"}})),
    Case("if-exists-absent", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"StringEqualsIfExists": {EC: "backup"}})),
    Case("if-exists-present-match", "Encrypt", enc({"purpose": "backup"}), OK,
         alice_if("kms:Encrypt", {"StringEqualsIfExists": {EC: "backup"}})),
    Case("if-exists-present-mismatch", "Encrypt", enc({"purpose": "other"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEqualsIfExists": {EC: "backup"}})),
    Case("null-true-absent", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"Null": {EC: "true"}})),
    Case("null-true-present", "Encrypt", enc({"purpose": "x"}), DENY_R, alice_if("kms:Encrypt", {"Null": {EC: "true"}})),
    Case("null-false-absent", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"Null": {"kms:EncryptionContextKeys": "false"}})),
    Case("null-false-present", "Encrypt", enc({"any": "thing"}), OK,
         alice_if("kms:Encrypt", {"Null": {"kms:EncryptionContextKeys": "false"}})),
    Case("unknown-condition-key-is-absent", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:NoSuchConditionKey": "x"}})),
    # set operators on the multi-valued kms:EncryptionContextKeys
    Case("for-any-value-one-matches", "Encrypt", enc({"a": "1", "z": "9"}), OK,
         alice_if("kms:Encrypt", {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-any-value-none-matches", "Encrypt", enc({"z": "9"}), DENY_R,
         alice_if("kms:Encrypt", {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-any-value-absent", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-any-value-keys-are-case-sensitive", "Encrypt", enc({"A": "1"}), DENY_R,
         alice_if("kms:Encrypt", {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "a"}})),
    Case("for-any-value-ignore-case", "Encrypt", enc({"A": "1"}), OK,
         alice_if("kms:Encrypt", {"ForAnyValue:StringEqualsIgnoreCase": {"kms:EncryptionContextKeys": "a"}})),
    Case("for-all-values-subset", "Encrypt", enc({"a": "1"}), OK,
         alice_if("kms:Encrypt", {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-all-values-extra-key", "Encrypt", enc({"a": "1", "z": "9"}), DENY_R,
         alice_if("kms:Encrypt", {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-all-values-absent-is-true", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]}})),
    Case("for-all-values-with-null-false-absent", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["a", "b"]},
                                  "Null": {"kms:EncryptionContextKeys": "false"}})),
    Case("for-all-values-like", "Encrypt", enc({"app:x": "1", "app:y": "2"}), OK,
         alice_if("kms:Encrypt", {"ForAllValues:StringLike": {"kms:EncryptionContextKeys": "app:*"}})),
    Case("for-any-value-not-equals", "Encrypt", enc({"a": "1", "b": "2"}), OK,
         alice_if("kms:Encrypt", {"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": "a"}})),
    # numeric (request parameters with documented defaults)
    Case("numeric-ge-explicit", "ScheduleKeyDeletion", key_only(PendingWindowInDays=7), DENY_R,
         alice_if("kms:ScheduleKeyDeletion",
                  {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "20"}})),
    Case("numeric-ge-default-30", "ScheduleKeyDeletion", key_only(), OK,
         alice_if("kms:ScheduleKeyDeletion",
                  {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "20"}})),
    Case("numeric-not-equals", "ScheduleKeyDeletion", key_only(PendingWindowInDays=7), DENY_R,
         alice_if("kms:ScheduleKeyDeletion", {"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}})),
    Case("numeric-equals", "ScheduleKeyDeletion", key_only(PendingWindowInDays=10), OK,
         alice_if("kms:ScheduleKeyDeletion", {"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 10}})),
    Case("numeric-less-than", "EnableKeyRotation", key_only(RotationPeriodInDays=90), OK,
         alice_if("kms:EnableKeyRotation", {"NumericLessThan": {"kms:RotationPeriodInDays": "200"}})),
    Case("numeric-less-than-miss", "EnableKeyRotation", key_only(RotationPeriodInDays=365), DENY_R,
         alice_if("kms:EnableKeyRotation", {"NumericLessThanEquals": {"kms:RotationPeriodInDays": "364"}})),
    Case("numeric-on-non-number-fails-closed", "Encrypt", enc({"n": "abc"}), DENY_R,
         alice_if("kms:Encrypt", {"NumericLessThan": {"kms:EncryptionContext:n": "10"}})),
    Case("numeric-on-context-number", "Encrypt", enc({"n": "7"}), OK,
         alice_if("kms:Encrypt", {"NumericLessThan": {"kms:EncryptionContext:n": "10"}})),
    # dates
    Case("date-greater-than", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
    Case("date-greater-than-future", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"DateGreaterThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}})),
    Case("date-less-than", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
    Case("date-epoch-seconds", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"DateGreaterThanEquals": {"aws:CurrentTime": "1577836800"}})),
    Case("date-not-equals", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}})),
    # Bool
    Case("bool-secure-transport-true", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"Bool": {"aws:SecureTransport": "true"}})),
    Case("bool-secure-transport-false", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"Bool": {"aws:SecureTransport": "false"}})),
    Case("bool-json-boolean", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"Bool": {"aws:SecureTransport": False}})),
    Case("deny-insecure-transport", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:*", Condition={"Bool": {"aws:SecureTransport": "false"}})]),
    Case("bool-multi-region-false", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"Bool": {"kms:MultiRegion": "false"}})),
    # Binary (AWS compares the request value's bytes with the base64 literal; trentd base64-decodes
    # a string request value — not confirmed against AWS, which has no binary KMS key)
    Case("binary-equals", "Encrypt", enc({"blob": "aGVsbG8="}), OK,
         alice_if("kms:Encrypt", {"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}})),
    # IP addresses (the tests connect from 127.0.0.1)
    Case("ip-address", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})),
    Case("ip-address-single", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"IpAddress": {"aws:SourceIp": "127.0.0.1"}})),
    Case("ip-address-list-with-ipv6", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "127.0.0.1/32"]}})),
    Case("ip-address-miss", "Encrypt", enc(), DENY_R, alice_if("kms:Encrypt", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
    Case("not-ip-address-deny", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})]),
    Case("not-ip-address-allow-miss", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/24"}})),
    # ARNs and principal keys
    Case("arn-equals-principal", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"ArnEquals": {"aws:PrincipalArn": c.alice}})]),
    Case("arn-like-principal", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt",
                         Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/ali*"}})]),
    Case("arn-like-principal-miss", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/bo*"}})]),
    Case("arn-not-equals-deny", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:Encrypt", Condition={"ArnNotEquals": {"aws:PrincipalArn": c.carol}})]),
    Case("arn-not-like-deny-exempt", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:Encrypt", Condition={"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}})]),
    Case("string-equals-principal-arn", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalArn": c.alice}})]),
    Case("principal-account", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalAccount": ACCT_A}})]),
    Case("requested-region", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"aws:RequestedRegion": REGION}})),
    Case("requested-region-miss", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}})),
    Case("username", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"StringEquals": {"aws:username": "alice"}})),
    Case("username-miss", "Encrypt", enc(), DENY_R, alice_if("kms:Encrypt", {"StringEquals": {"aws:username": "bob"}})),
    Case("userid-is-the-unique-id", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", Condition={"StringEquals": {"aws:userid": c.userid("alice")}})]),
    Case("policy-variable", "Encrypt", enc({"owner": "alice"}), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}})),
    Case("policy-variable-miss", "Encrypt", enc({"owner": "bob"}), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}})),

    # --- KMS condition keys ------------------------------------------------------------------
    Case("caller-account", "Encrypt", enc(), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": ACCT_A}})]),
    Case("caller-account-other", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": ACCT_B}})]),
    Case("encryption-algorithm-default", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}})),
    Case("encryption-algorithm-explicit", "Encrypt", enc(EncryptionAlgorithm="SYMMETRIC_DEFAULT"), OK,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}})),
    Case("encryption-algorithm-miss", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}})),
    Case("decrypt-encryption-algorithm-default", "Decrypt", dec(), OK,
         alice_if("kms:Decrypt", {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}), setup=encrypted()),
    Case("decrypt-context-condition", "Decrypt", dec({"purpose": "backup"}), OK,
         alice_if("kms:Decrypt", {"StringEquals": {EC: "backup"}}), setup=encrypted({"purpose": "backup"})),
    Case("decrypt-denied-is-the-unknown-key-answer", "Decrypt", dec(), UNKNOWN,
         alice_if("kms:Decrypt", {"StringEquals": {EC: "backup"}}), setup=encrypted()),
    Case("request-alias-by-alias", "Encrypt", enc(key="alias"), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", Condition={"StringEquals": {"kms:RequestAlias": c.alias}})],
         setup=with_alias),
    Case("request-alias-by-alias-arn", "Encrypt", enc(key="alias_arn"), OK,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", Condition={"StringEquals": {"kms:RequestAlias": c.alias}})],
         setup=with_alias),
    Case("request-alias-by-key-id", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:Encrypt", Condition={"StringEquals": {"kms:RequestAlias": c.alias}})],
         setup=with_alias),
    Case("request-alias-like", "Encrypt", enc(key="alias"), OK,
         alice_if("kms:Encrypt", {"StringLike": {"kms:RequestAlias": "alias/finance-*"}}), setup=with_alias),
    Case("resource-aliases", "Encrypt", enc(), OK,
         alice_if("kms:Encrypt", {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/finance-*"}}),
         setup=with_alias),
    Case("resource-aliases-none", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/finance-*"}})),
    Case("resource-tag", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"StringEquals": {"aws:ResourceTag/env": "dev"}}),
         setup=tagged(env="dev")),
    Case("resource-tag-other-value", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"aws:ResourceTag/env": "dev"}}), setup=tagged(env="prod")),
    Case("resource-tag-untagged", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"aws:ResourceTag/env": "dev"}})),
    Case("key-spec", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}})),
    Case("key-usage-miss", "Encrypt", enc(), DENY_R, alice_if("kms:Encrypt", {"StringEquals": {"kms:KeyUsage": "SIGN_VERIFY"}})),
    Case("key-origin", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"StringEquals": {"kms:KeyOrigin": "AWS_KMS"}})),
    Case("via-service-absent", "Encrypt", enc(), DENY_R,
         alice_if("kms:Encrypt", {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}})),
    Case("via-service-null", "Encrypt", enc(), OK, alice_if("kms:Encrypt", {"Null": {"kms:ViaService": "true"}})),
    Case("signing-algorithm", "Sign", key_only(Message=b"m", SigningAlgorithm="ECDSA_SHA_256"), OK,
         alice_if("kms:Sign", {"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256",
                                                 "kms:MessageType": "RAW", "kms:KeySpec": "ECC_NIST_P256"}}),
         key=SIGN_KEY),
    Case("signing-message-type-miss", "Sign", key_only(Message=b"m", SigningAlgorithm="ECDSA_SHA_256"), DENY_R,
         alice_if("kms:Sign", {"StringEquals": {"kms:MessageType": "DIGEST"}}), key=SIGN_KEY),
    Case("mac-algorithm", "GenerateMac", key_only(Message=b"m", MacAlgorithm="HMAC_SHA_256"), OK,
         alice_if("kms:GenerateMac", {"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256",
                                                        "kms:KeyUsage": "GENERATE_VERIFY_MAC"}}), key=MAC_KEY),
    Case("grant-operations", "CreateGrant", grant_to("carol", ["Encrypt"]), OK,
         alice_if("kms:CreateGrant", {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}})),
    Case("grant-operations-miss", "CreateGrant", grant_to("carol", ["Encrypt", "ReEncryptFrom"]), DENY_R,
         alice_if("kms:CreateGrant", {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}})),
    Case("grantee-principal", "CreateGrant", grant_to("carol"), OK,
         lambda c: [stmt("Allow", c.alice, "kms:CreateGrant",
                         Condition={"StringEquals": {"kms:GranteePrincipal": c.carol}})]),
    Case("grantee-principal-miss", "CreateGrant", grant_to("dave"), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:CreateGrant",
                         Condition={"StringEquals": {"kms:GranteePrincipal": c.carol}})]),
    Case("retiring-principal-absent", "CreateGrant", grant_to("carol"), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:CreateGrant",
                         Condition={"StringEquals": {"kms:RetiringPrincipal": c.dave}})]),
    Case("retiring-principal", "CreateGrant", lambda c: {**grant_to("carol")(c), "RetiringPrincipal": c.dave}, OK,
         lambda c: [stmt("Allow", c.alice, "kms:CreateGrant",
                         Condition={"StringEquals": {"kms:RetiringPrincipal": c.dave}})]),
    Case("grant-is-for-aws-resource", "CreateGrant", grant_to("carol"), DENY_R,
         alice_if("kms:CreateGrant", {"Bool": {"kms:GrantIsForAWSResource": "true"}})),
    Case("grant-constraint-type", "CreateGrant",
         grant_to("carol", Constraints={"EncryptionContextSubset": {"purpose": "x"}}), OK,
         alice_if("kms:CreateGrant", {"StringEquals": {"kms:GrantConstraintType": "EncryptionContextSubset"}})),
    Case("bypass-lockout-denied", "PutKeyPolicy",
         lambda c: {"KeyId": c.key_id, "Policy": c.policy_text, "BypassPolicyLockoutSafetyCheck": True}, XDENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:PutKeyPolicy",
                         Condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}})]),
    Case("bypass-lockout-default-false", "PutKeyPolicy", lambda c: {"KeyId": c.key_id, "Policy": c.policy_text}, OK,
         lambda c: [stmt("Allow", c.alice, "kms:*"),
                    stmt("Deny", "*", "kms:PutKeyPolicy",
                         Condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}})]),

    # --- cross-account (bob and bea are in account B; the key is in A) ------------------------
    Case("cross-account-key-and-identity-policy", "Encrypt", enc(key="arn"), OK,
         lambda c: [stmt("Allow", c.root_b, ["kms:Encrypt", "kms:DescribeKey"])], caller="bob"),
    Case("cross-account-by-alias-arn", "Encrypt", enc(key="alias_arn"), OK,
         lambda c: [stmt("Allow", c.root_b, "kms:Encrypt")], caller="bob", setup=with_alias),
    Case("cross-account-no-identity-policy", "Encrypt", enc(key="arn"), DENY_I,
         lambda c: [stmt("Allow", c.root_b, ["kms:Encrypt", "kms:DescribeKey"])], caller="bea"),
    Case("cross-account-user-named-still-needs-identity-policy", "Encrypt", enc(key="arn"), DENY_I,
         lambda c: [stmt("Allow", c.bea, "kms:Encrypt")], caller="bea"),
    Case("cross-account-identity-does-not-allow-action", "DescribeKey", lambda c: {"KeyId": c.key_arn}, DENY_I,
         lambda c: [stmt("Allow", c.root_b, ["kms:Encrypt", "kms:DescribeKey"])], caller="bob"),
    Case("cross-account-key-policy-silent", "Encrypt", enc(key="arn"), DENY_R, caller="bob"),
    Case("cross-account-star-with-caller-account", "Encrypt", enc(key="arn"), OK,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": ACCT_B}})],
         caller="bob"),
    Case("cross-account-star-other-caller-account", "Encrypt", enc(key="arn"), DENY_R,
         lambda c: [stmt("Allow", "*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": ACCT_A}})],
         caller="bob"),
    Case("cross-account-explicit-deny", "Encrypt", enc(key="arn"), XDENY_R,
         lambda c: [stmt("Allow", c.root_b, "kms:Encrypt"), stmt("Deny", c.bob, "kms:Encrypt")], caller="bob"),
]

# ida: an identity policy (one statement list per row, all about that row's key) with the default
# key policy (delegation to the account) unless the row sets another.
IDENTITY_CASES = [
    Case("identity-allows", "Encrypt", enc(), OK, identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn)]),
    Case("identity-other-action", "DescribeKey", key_only(), DENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn)]),
    Case("identity-action-wildcard", "DescribeKey", key_only(), OK,
         identity=lambda c: [stmt("Allow", None, "kms:Describe*", c.key_arn)]),
    Case("identity-resource-wildcard", "Encrypt", enc(), OK,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", f"arn:aws:kms:*:{ACCT_A}:key/{c.key_id}")]),
    Case("identity-other-resource", "Encrypt", enc(), DENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", f"arn:aws:kms:{REGION}:{ACCT_A}:key/{ZERO_KEY}")]),
    Case("identity-alias-arn-is-not-the-key", "Encrypt", enc(key="alias"), DENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.alias_arn)], setup=with_alias),
    Case("identity-explicit-deny", "Encrypt", enc(), XDENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:*", c.key_arn), stmt("Deny", None, "kms:Encrypt", c.key_arn)]),
    Case("identity-deny-beats-key-policy-allow", "Encrypt", enc(), XDENY_I,
         lambda c: [stmt("Allow", c.root_a, "kms:*"), stmt("Allow", c.ida, "kms:*")],
         identity=lambda c: [stmt("Deny", None, "kms:Encrypt", c.key_arn)], caller="ida"),
    Case("key-policy-deny-beats-identity-allow", "Encrypt", enc(), XDENY_R,
         lambda c: [stmt("Allow", c.root_a, "kms:*"), stmt("Deny", c.ida, "kms:Encrypt")],
         identity=lambda c: [stmt("Allow", None, "kms:*", c.key_arn)], caller="ida"),
    Case("identity-without-delegation", "Encrypt", enc(), DENY_R,
         lambda c: [stmt("Allow", c.alice, "kms:*")],
         identity=lambda c: [stmt("Allow", None, "kms:*", c.key_arn)], caller="ida"),
    Case("identity-not-action", "DescribeKey", key_only(), OK,
         identity=lambda c: [stmt("Allow", None, None, c.key_arn, NotAction="kms:Encrypt")]),
    Case("identity-not-action-excludes", "Encrypt", enc(), DENY_I,
         identity=lambda c: [stmt("Allow", None, None, c.key_arn, NotAction="kms:Encrypt")]),
    Case("identity-not-resource-excludes", "GetKeyRotationStatus", key_only(), DENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:GetKeyRotationStatus", None, NotResource=c.key_arn)]),
    Case("identity-not-resource-other", "GetKeyPolicy", key_only(), OK,
         identity=lambda c: [stmt("Allow", None, "kms:GetKeyPolicy", None,
                                  NotResource=f"arn:aws:kms:{REGION}:{ACCT_A}:key/{ZERO_KEY}")]),
    Case("identity-condition-context", "Encrypt", enc({"app": "billing"}), OK,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEquals": {"kms:EncryptionContext:app": "billing"}})]),
    Case("identity-condition-context-absent", "Encrypt", enc(), DENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEquals": {"kms:EncryptionContext:app": "billing"}})]),
    Case("identity-condition-resource-tag", "Encrypt", enc(), OK, setup=tagged(team="blue"),
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}})]),
    Case("identity-condition-caller-account", "Encrypt", enc(), OK,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEquals": {"kms:CallerAccount": ACCT_A}})]),
    Case("identity-condition-deny-if-exists", "Encrypt", enc({"class": "secret"}), XDENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn),
                             stmt("Deny", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEqualsIfExists": {"kms:EncryptionContext:class": "secret"}})]),
    Case("identity-condition-deny-if-exists-absent", "Encrypt", enc(), XDENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn),
                             stmt("Deny", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringEqualsIfExists": {"kms:EncryptionContext:class": "secret"}})]),
    Case("identity-condition-deny-string-not-equals-absent", "Encrypt", enc(), XDENY_I,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn),
                             stmt("Deny", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringNotEquals": {"kms:EncryptionContext:class": "public"}})]),
    Case("identity-condition-deny-string-not-equals-match", "Encrypt", enc({"class": "public"}), OK,
         identity=lambda c: [stmt("Allow", None, "kms:Encrypt", c.key_arn),
                             stmt("Deny", None, "kms:Encrypt", c.key_arn,
                                  Condition={"StringNotEquals": {"kms:EncryptionContext:class": "public"}})]),
]
IDENTITY_CASES = [Case(**{**c.__dict__, "caller": "ida"}) for c in IDENTITY_CASES]
CASES = KEY_POLICY_CASES + IDENTITY_CASES
assert len({c.id for c in CASES}) == len(CASES)

# creator: CreateKey and TagResource under request-tag and key-property conditions.
CREATOR_POLICY = policy(
    {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
     "Condition": {"StringEquals": {"kms:KeySpec": ["SYMMETRIC_DEFAULT", "RSA_2048"], "kms:KeyUsage": "ENCRYPT_DECRYPT"}}},
    {"Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*",
     "Condition": {"StringEquals": {"kms:KeyOrigin": "EXTERNAL"}}},
    {"Effect": "Deny", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/env": "prod"}}},
    {"Effect": "Deny", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*",
     "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "forbidden"}}},
    {"Effect": "Allow", "Action": ["kms:TagResource", "kms:DescribeKey"], "Resource": "*"},
    {"Effect": "Allow", "Action": "kms:UntagResource", "Resource": "*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["temp", "scratch"]}}},
)
# maker: may create keys, but may tag only one (nonexistent) key, so not while creating one
MAKER_POLICY = policy(
    {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"},
    {"Effect": "Allow", "Action": "kms:TagResource", "Resource": f"arn:aws:kms:{REGION}:{ACCT_A}:key/{ZERO_KEY}"},
    {"Effect": "Deny", "Action": "kms:TagResource", "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/team": "red"}}},
)
BOB_POLICY = policy({"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"],
                     "Resource": f"arn:aws:kms:*:{ACCT_A}:key/*"})


def snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class Authz:
    def __init__(self, world: World):
        self.world = world
        self.ctx: dict[str, Ctx] = {}


@pytest.fixture(scope="module")
def authz(authz_server) -> Authz:
    world = World(authz_server)
    world.make_users([
        (ACCT_A, "alice", None), (ACCT_A, "carol", None), (ACCT_A, "dave", None), (ACCT_A, "ida", None),
        (ACCT_A, "creator", CREATOR_POLICY), (ACCT_A, "maker", MAKER_POLICY), (ACCT_B, "bob", BOB_POLICY),
        (ACCT_B, "bea", None),
    ])
    world.userids["alice"] = world["alice"].client("sts").get_caller_identity()["UserId"]
    state = Authz(world)
    admin = world.admin.kms
    ida_statements = []
    for case in CASES:
        c = state.ctx[case.id] = Ctx(world, admin.create_key(Description=case.id, **case.key)["KeyMetadata"])
        if case.setup:
            case.setup(c, admin)
        if case.key_policy is not None:
            c.policy_text = policy(*case.key_policy(c))
            try:
                admin.put_key_policy(KeyId=c.key_id, PolicyName="default", Policy=c.policy_text,
                                     BypassPolicyLockoutSafetyCheck=True)
            except ClientError as exc:
                raise AssertionError(f"row {case.id}: {exc}") from None
        if case.identity is not None:
            ida_statements += case.identity(c)
    # ida made no request yet, so the server has not cached her (empty) identity policies
    world.put_policy(world["ida"].arn, policy(*ida_statements))
    return state


def call(client, operation: str, args: dict):
    return getattr(client, snake(operation))(**args)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_policy_table(authz, case):
    c = authz.ctx[case.id]
    caller = authz.world[case.caller]
    if case.expect is OK:
        call(caller.kms, case.call, case.args(c))
        return
    with pytest.raises(ClientError) as info:
        call(caller.kms, case.call, case.args(c))
    if case.expect == UNKNOWN:
        expected = UNKNOWN_KEY
    else:
        expected = access_denied(caller.arn, f"kms:{case.call}", c.key_arn, case.expect)
    assert error_of(info) == ("AccessDeniedException", expected)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_key_policy_names_user_without_identity_policy_end_to_end(authz):
    """A key policy that names the user works for the whole round trip, and GetKeyPolicy
    returns it verbatim; removing the statement takes effect at once."""
    world = authz.world
    admin, alice = world.admin.kms, world["alice"].kms
    key = admin.create_key()["KeyMetadata"]
    text = policy(stmt("Allow", world.admin.root, "kms:*"), stmt("Allow", world["alice"].arn, ["kms:Encrypt", "kms:Decrypt"]))
    admin.put_key_policy(KeyId=key["KeyId"], Policy=text)
    assert admin.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == text
    blob = alice.encrypt(KeyId=key["Arn"], Plaintext=b"p", EncryptionContext={"k": "v"})["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})["Plaintext"] == b"p"
    admin.put_key_policy(KeyId=key["KeyId"], Policy=policy(stmt("Allow", world.admin.root, "kms:*")))
    with pytest.raises(ClientError) as info:
        alice.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    assert error_of(info) == ("AccessDeniedException",
                              access_denied(world["alice"].arn, "kms:Encrypt", key["Arn"], DENY_I))


# --- CreateKey / TagResource: identity policy only ------------------------------------------------
CREATE_CASES = [
    ("default-key", {}, OK),
    ("rsa-encrypt", {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, OK),
    ("rsa-sign-usage-refused", {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, DENY_I),
    ("ecc-spec-refused", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, DENY_I),
    ("legacy-customer-master-key-spec", {"CustomerMasterKeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, OK),
    ("origin-external-denied", {"Origin": "EXTERNAL"}, XDENY_I),
    ("request-tag-allowed", {"Tags": [{"TagKey": "env", "TagValue": "dev"}]}, OK),
    ("request-tag-denied", {"Tags": [{"TagKey": "env", "TagValue": "prod"}]}, XDENY_I),
    ("tag-keys-denied", {"Tags": [{"TagKey": "team", "TagValue": "x"}, {"TagKey": "forbidden", "TagValue": "1"}]},
     XDENY_I),
]


@pytest.mark.parametrize("args, expect", [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES])
def test_create_key_conditions(authz, args, expect):
    creator = authz.world["creator"]
    if expect is OK:
        meta = creator.kms.create_key(**args)["KeyMetadata"]
        assert meta["AWSAccountId"] == ACCT_A
        return
    with pytest.raises(ClientError) as info:
        creator.kms.create_key(**args)
    assert error_of(info) == ("AccessDeniedException", access_denied(creator.arn, "kms:CreateKey", "*", expect))


def test_tags_on_create_key_need_tag_resource(authz):
    """CreateKey with Tags also needs kms:TagResource from an identity policy that covers every
    key of the account (KMS guide, "Controlling access to tags"); AWS's refusal names no resource."""
    maker = authz.world["maker"]
    maker.kms.create_key()
    reasons = {"blue": "because no identity-based policy allows the kms:TagResource action",
               "red": "with an explicit deny in an identity-based policy"}
    for team, reason in reasons.items():
        with pytest.raises(ClientError) as info:
            maker.kms.create_key(Tags=[{"TagKey": "team", "TagValue": team}])
        assert error_of(info) == ("AccessDeniedException",
                                  f"User: {maker.arn} is not authorized to perform: kms:TagResource {reason}")
    creator = authz.world["creator"]  # TagResource on "*"
    key = creator.kms.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    assert authz.world.admin.kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "team",
                                                                                     "TagValue": "blue"}]


@pytest.mark.parametrize("operation, args, expect", [
    ("TagResource", {"Tags": [{"TagKey": "env", "TagValue": "dev"}]}, OK),
    ("TagResource", {"Tags": [{"TagKey": "env", "TagValue": "prod"}]}, XDENY_I),
    ("TagResource", {"Tags": [{"TagKey": "forbidden", "TagValue": "1"}]}, XDENY_I),
    ("UntagResource", {"TagKeys": ["temp"]}, OK),
    ("UntagResource", {"TagKeys": ["temp", "env"]}, DENY_I),
], ids=["tag-allowed", "request-tag-denied", "tag-keys-denied", "untag-allowed", "untag-tag-keys-refused"])
def test_tag_conditions(authz, operation, args, expect):
    creator = authz.world["creator"]
    key = creator.kms.create_key(Tags=[{"TagKey": "temp", "TagValue": "1"}])["KeyMetadata"]
    if expect is OK:
        call(creator.kms, operation, {"KeyId": key["KeyId"], **args})
        return
    with pytest.raises(ClientError) as info:
        call(creator.kms, operation, {"KeyId": key["KeyId"], **args})
    assert error_of(info) == ("AccessDeniedException", access_denied(creator.arn, f"kms:{operation}", key["Arn"], expect))


def test_account_operations_need_an_identity_policy(authz):
    alice = authz.world["alice"]
    for operation, args in (("ListKeys", {}), ("CreateKey", {}), ("ListAliases", {}), ("GenerateRandom", {"NumberOfBytes": 8})):
        with pytest.raises(ClientError) as info:
            call(alice.kms, operation, args)
        assert error_of(info) == ("AccessDeniedException", access_denied(alice.arn, f"kms:{operation}", "*", DENY_I))


# --- cross-account addressing -------------------------------------------------------------------
def test_cross_account_needs_the_key_arn(authz):
    """A bare key id names a key in the caller's own account."""
    c = authz.ctx["cross-account-key-and-identity-policy"]
    bob = authz.world["bob"]
    with pytest.raises(ClientError) as info:
        bob.kms.encrypt(KeyId=c.key_id, Plaintext=b"x")
    assert error_of(info) == ("NotFoundException", f"Key 'arn:aws:kms:{REGION}:{ACCT_B}:key/{c.key_id}' does not exist")
    out = bob.kms.encrypt(KeyId=c.key_arn, Plaintext=b"x", EncryptionContext={"from": "bob"})
    assert out["KeyId"] == c.key_arn
    # Decrypt is not in the key policy for account B: the ciphertext's key is "not accessible"
    with pytest.raises(ClientError) as info:
        bob.kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"from": "bob"})
    assert error_of(info) == ("AccessDeniedException", UNKNOWN_KEY)


# --- Decrypt: no existence oracle (security bar 19) ---------------------------------------------
def _retarget(blob: bytes, account: str | None = None, key_id: str | None = None) -> bytes:
    """The same ciphertext with another account or key id in its clear header (format v1)."""
    id_len = blob[13]
    old_account, old_key = blob[1:13].decode(), blob[14:14 + id_len].decode()
    new_key = (key_id or old_key).encode()
    assert len(new_key) == id_len
    return blob[:1] + (account or old_account).encode() + blob[13:14] + new_key + blob[14 + id_len:]


def _raw_decrypt(server, principal, blob: bytes) -> tuple[int, bytes]:
    body = json.dumps({"CiphertextBlob": base64.b64encode(blob).decode()}).encode()
    request = AWSRequest(method="POST", url=server.url + "/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Decrypt"})
    SigV4Auth(Credentials(principal.access_key, principal.secret), "kms", REGION).add_auth(request)
    http = urllib.request.Request(server.url + "/", data=body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_decrypt_absent_and_denied_keys_answer_identically(authz):
    world = authz.world
    admin = world.admin
    key = admin.kms.create_key()["KeyMetadata"]
    blob = admin.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"oracle")["CiphertextBlob"]
    absent = _retarget(blob, key_id=str(uuid.uuid4()))
    other_account = _retarget(blob, account=ACCT_C)
    answers = {
        "present, caller not allowed (same account)": _raw_decrypt(world.server, world["alice"], blob),
        "present, caller not allowed (other account)": _raw_decrypt(world.server, world["bea"], blob),
        "absent key, caller without permissions": _raw_decrypt(world.server, world["alice"], absent),
        "absent key, administrator": _raw_decrypt(world.server, admin, absent),
        "account without keys": _raw_decrypt(world.server, admin, other_account),
    }
    expected = json.dumps({"__type": "AccessDeniedException", "message": UNKNOWN_KEY}, separators=(",", ":")).encode()
    first = next(iter(answers.values()))
    assert first[0] == 400 and json.loads(first[1]) == json.loads(expected)
    for what, answer in answers.items():
        assert answer == first, what  # status and body, byte for byte
    # control: the administrator may decrypt the real ciphertext
    assert admin.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"oracle"


def test_decrypt_of_a_deleted_key_is_the_same_answer(authz):
    """A key pending deletion is still there (KMSInvalidState for its owner); once really gone
    its ciphertexts get the single AccessDenied answer (checked above with a retargeted blob)."""
    admin = authz.world.admin.kms
    key = admin.create_key()["KeyMetadata"]
    blob = admin.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    admin.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as info:
        admin.decrypt(CiphertextBlob=blob)
    assert error_of(info) == ("KMSInvalidStateException", f"{key['Arn']} is pending deletion.")
    with pytest.raises(ClientError) as info:
        authz.world["alice"].kms.decrypt(CiphertextBlob=blob)
    assert error_of(info) == ("AccessDeniedException", UNKNOWN_KEY)


# --- the lockout safety check (security bar 18) --------------------------------------------------
def test_put_key_policy_lockout_and_bypass(authz):
    world = authz.world
    admin, alice = world.admin, world["alice"]
    key = admin.kms.create_key()["KeyMetadata"]
    only_alice = policy(stmt("Allow", alice.arn, "kms:*"))
    with pytest.raises(ClientError) as info:
        admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=only_alice)
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert '"key-default-1"' in admin.kms.get_key_policy(KeyId=key["KeyId"])["Policy"]  # unchanged
    with pytest.raises(ClientError) as info:
        admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=only_alice, BypassPolicyLockoutSafetyCheck=False)
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)

    admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=only_alice, BypassPolicyLockoutSafetyCheck=True)
    assert alice.kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == only_alice
    with pytest.raises(ClientError) as info:  # the administrator really is locked out now
        admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=only_alice, BypassPolicyLockoutSafetyCheck=True)
    assert error_of(info) == ("AccessDeniedException",
                              access_denied(admin.arn, "kms:PutKeyPolicy", key["Arn"], DENY_R))
    # alice has no identity policy: the root-only policy would lock her out; naming her keeps her in
    root_only = policy(stmt("Allow", admin.root, "kms:*"))
    with pytest.raises(ClientError) as info:
        alice.kms.put_key_policy(KeyId=key["KeyId"], Policy=root_only)
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)
    alice.kms.put_key_policy(KeyId=key["KeyId"], Policy=policy(stmt("Allow", admin.root, "kms:*"),
                                                               stmt("Allow", alice.arn, "kms:PutKeyPolicy")))
    admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=root_only)  # delegation: admin's IAM policy allows


@pytest.mark.parametrize("new_policy", [
    lambda w: policy(stmt("Allow", w.admin.root, "kms:*"), stmt("Deny", w.admin.arn, "kms:PutKeyPolicy")),
    lambda w: policy(stmt("Allow", w.admin.root, ["kms:Encrypt", "kms:Decrypt"])),
    lambda w: policy(stmt("Allow", w.admin.root, "kms:*",
                          Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
    lambda w: policy(stmt("Allow", w.admin.root, "kms:*", None, NotResource="*")),
], ids=["explicit-deny", "other-actions-only", "condition-not-met", "not-resource-star"])
def test_lockout_variants(authz, new_policy):
    admin = authz.world.admin.kms
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as info:
        admin.put_key_policy(KeyId=key_id, Policy=new_policy(authz.world))
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)


def test_create_key_with_policy_lockout(authz):
    world = authz.world
    admin, alice = world.admin, world["alice"]
    only_alice = policy(stmt("Allow", alice.arn, "kms:*"))
    before = {k["KeyId"] for k in admin.kms.list_keys(Limit=1000)["Keys"]}
    with pytest.raises(ClientError) as info:
        admin.kms.create_key(Policy=only_alice)
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)
    assert {k["KeyId"] for k in admin.kms.list_keys(Limit=1000)["Keys"]} == before  # nothing created
    key = admin.kms.create_key(Policy=only_alice, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    assert alice.kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == only_alice
    with pytest.raises(ClientError) as info:
        admin.kms.describe_key(KeyId=key["KeyId"])
    assert error_of(info) == ("AccessDeniedException", access_denied(admin.arn, "kms:DescribeKey", key["Arn"], DENY_R))
    # with a policy that delegates to the account, the administrator's IAM policy keeps it in
    admin.kms.create_key(Policy=policy(stmt("Allow", admin.root, "kms:*")))


def test_create_key_lockout_counts_the_callers_identity_policy(authz):
    """creator may create keys but not change key policies: a policy that delegates to the
    account would lock it out, the default policy (no Policy given) is not checked."""
    creator = authz.world["creator"]
    with pytest.raises(ClientError) as info:
        creator.kms.create_key(Policy=policy(stmt("Allow", f"arn:aws:iam::{ACCT_A}:root", "kms:*")))
    assert error_of(info) == ("MalformedPolicyDocumentException", LOCKOUT)
    creator.kms.create_key(Policy=policy(stmt("Allow", f"arn:aws:iam::{ACCT_A}:root", "kms:*")),
                           BypassPolicyLockoutSafetyCheck=True)
    creator.kms.create_key(Policy=policy(stmt("Allow", f"arn:aws:iam::{ACCT_A}:root", "kms:*"),
                                         stmt("Allow", creator.arn, "kms:PutKeyPolicy")))
    creator.kms.create_key()


# --- malformed policies ------------------------------------------------------------------------
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


def _malformed_cases():
    root = f"arn:aws:iam::{ACCT_A}:root"
    ok = stmt("Allow", root, "kms:*")
    return [
        ("bad-json", '{"Version": "2012-10-17", "Statement": [', "MalformedPolicyDocumentException", None),
        ("not-an-object", '["kms:*"]', "MalformedPolicyDocumentException", None),
        ("unknown-statement-element",
         policy(ok, {**stmt("Allow", root, "kms:Encrypt"), "Colour": "blue"}), "MalformedPolicyDocumentException", None),
        ("unknown-top-level-element", json.dumps({"Version": "2012-10-17", "Statement": [ok], "Extra": 1}),
         "MalformedPolicyDocumentException", None),
        ("unknown-operator", policy(ok, stmt("Deny", root, "kms:Encrypt",
                                             Condition={"StringEqualz": {"aws:username": "x"}})),
         "MalformedPolicyDocumentException", None),
        ("unknown-set-operator", policy(ok, stmt("Deny", root, "kms:Encrypt",
                                                 Condition={"ForSomeValues:StringEquals": {"aws:TagKeys": "x"}})),
         "MalformedPolicyDocumentException", None),
        ("bad-effect", policy(ok, {**stmt("Allow", root), "Effect": "Permit"}), "MalformedPolicyDocumentException", None),
        ("no-principal", policy(ok, stmt("Allow", None, "kms:Encrypt")), "MalformedPolicyDocumentException", None),
        ("nonexistent-user", policy(ok, stmt("Allow", f"arn:aws:iam::{ACCT_A}:user/ghost", "kms:Encrypt")),
         "MalformedPolicyDocumentException", INVALID_PRINCIPALS),
        ("nonexistent-user-other-account", policy(ok, stmt("Allow", f"arn:aws:iam::{ACCT_B}:user/ghost", "kms:Encrypt")),
         "MalformedPolicyDocumentException", INVALID_PRINCIPALS),
        ("nonexistent-role", policy(ok, stmt("Allow", f"arn:aws:iam::{ACCT_A}:role/ghost", "kms:Encrypt")),
         "MalformedPolicyDocumentException", INVALID_PRINCIPALS),
        ("wildcard-in-principal-arn", policy(ok, stmt("Allow", f"arn:aws:iam::{ACCT_A}:user/*", "kms:Encrypt")),
         "MalformedPolicyDocumentException", INVALID_PRINCIPALS),
        ("bad-ip-literal", policy(ok, stmt("Deny", root, "kms:Encrypt",
                                           Condition={"IpAddress": {"aws:SourceIp": "not-an-ip"}})),
         "MalformedPolicyDocumentException", None),
        ("bad-date-literal", policy(ok, stmt("Deny", root, "kms:Encrypt",
                                             Condition={"DateLessThan": {"aws:CurrentTime": "yesterday"}})),
         "MalformedPolicyDocumentException", None),
        ("for-all-values-single-valued-key", policy(ok, stmt("Allow", root, "kms:Encrypt", Condition={
            "ForAllValues:StringEquals": {"kms:CallerAccount": ACCT_A}})), "MalformedPolicyDocumentException", None),
        ("over-32-kb", policy(ok, {**stmt("Allow", root, "kms:Encrypt"), "Sid": "x" * 32_768}),
         "LimitExceededException", None),
    ]


MALFORMED = _malformed_cases()


@pytest.mark.parametrize("operation", ["PutKeyPolicy", "CreateKey"])
@pytest.mark.parametrize("document, code, message", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_policies(authz, operation, document, code, message):
    admin = authz.world.admin.kms
    if operation == "PutKeyPolicy":
        key_id = authz.ctx["default-policy-no-identity-policy"].key_id
        before = admin.get_key_policy(KeyId=key_id)["Policy"]
        with pytest.raises(ClientError) as info:
            admin.put_key_policy(KeyId=key_id, Policy=document)
        assert admin.get_key_policy(KeyId=key_id)["Policy"] == before
    else:
        with pytest.raises(ClientError) as info:
            admin.create_key(Policy=document, BypassPolicyLockoutSafetyCheck=True)
    got_code, got_message = error_of(info)
    assert got_code == code, got_message
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message is not None:
        assert got_message == message


def test_largest_policy_is_accepted(authz):
    admin = authz.world.admin.kms
    root = f"arn:aws:iam::{ACCT_A}:root"
    text = policy(stmt("Allow", root, "kms:*"), {**stmt("Allow", root, "kms:Encrypt"), "Sid": ""})
    text = text.replace('"Sid": ""', '"Sid": "' + "s" * (32_768 - len(text)) + '"')
    assert len(text.encode()) == 32_768
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.put_key_policy(KeyId=key_id, Policy=text)
    assert admin.get_key_policy(KeyId=key_id)["Policy"] == text


def test_statement_without_action_is_accepted(authz):
    """traps.md: PutKeyPolicy accepts a statement lacking Action or Resource (no effect)."""
    admin = authz.world.admin.kms
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    root = f"arn:aws:iam::{ACCT_A}:root"
    admin.put_key_policy(KeyId=key_id, Policy=policy(stmt("Allow", root, "kms:*"), stmt("Allow", root, None)))


def test_identity_policies_are_validated_by_the_cli(authz, tmp_path):
    world = authz.world
    bad = tmp_path / "bad.json"
    bad.write_text(policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*",
                           "Condition": {"StringEqualz": {"aws:username": "x"}}}))
    result = world.cli("principals", "put-policy", "--principal", world["dave"].arn, "--policy-file", str(bad),
                       check=False)
    assert result.returncode != 0 and "StringEqualz" in result.stderr
    good = tmp_path / "good.json"
    good.write_text(policy({"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}))
    result = world.cli("principals", "put-policy", "--principal", f"arn:aws:iam::{ACCT_A}:user/ghost",
                       "--policy-file", str(good), check=False)
    assert result.returncode != 0 and "ghost" in result.stderr
    listed = world.cli("principals", "list")["Principals"]
    assert {"Arn": world["dave"].arn, "Type": "user"} in listed
    assert not any(p["Arn"].endswith("/ghost") for p in listed)


# --- ReEncrypt: kms:ReEncryptFrom on the source, kms:ReEncryptTo on the destination ---------------
def test_reencrypt_needs_both_halves(authz):
    world = authz.world
    admin, alice = world.admin, world["alice"]

    def key_allowing(*actions) -> dict:
        key = admin.kms.create_key()["KeyMetadata"]
        admin.kms.put_key_policy(KeyId=key["KeyId"], Policy=policy(
            stmt("Allow", admin.root, "kms:*"), stmt("Allow", alice.arn, list(actions))))
        return key

    source, destination, both = key_allowing("kms:ReEncryptFrom"), key_allowing("kms:ReEncryptTo"), \
        key_allowing("kms:ReEncrypt*")
    blob = admin.kms.encrypt(KeyId=source["KeyId"], Plaintext=b"r", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = alice.kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"},
                               DestinationKeyId=both["Arn"], DestinationEncryptionContext={"b": "2"})
    assert out["SourceKeyId"] == source["Arn"] and out["KeyId"] == both["Arn"]
    out = alice.kms.re_encrypt(CiphertextBlob=out["CiphertextBlob"], SourceEncryptionContext={"b": "2"},
                               DestinationKeyId=both["KeyId"])  # same key, new context
    out = alice.kms.re_encrypt(CiphertextBlob=out["CiphertextBlob"], DestinationKeyId=destination["KeyId"])
    assert out["SourceKeyId"] == both["Arn"] and out["KeyId"] == destination["Arn"]

    with pytest.raises(ClientError) as info:  # the destination half is checked on the destination key
        alice.kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, DestinationKeyId=source["KeyId"])
    assert error_of(info) == ("AccessDeniedException",
                              access_denied(alice.arn, "kms:ReEncryptTo", source["Arn"], DENY_I))
    other = admin.kms.encrypt(KeyId=destination["KeyId"], Plaintext=b"r")["CiphertextBlob"]
    with pytest.raises(ClientError) as info:  # the source half, named only by the ciphertext
        alice.kms.re_encrypt(CiphertextBlob=other, DestinationKeyId=destination["KeyId"])
    assert error_of(info) == ("AccessDeniedException", UNKNOWN_KEY)
    with pytest.raises(ClientError) as info:  # the source half, named by SourceKeyId
        alice.kms.re_encrypt(CiphertextBlob=other, SourceKeyId=destination["KeyId"], DestinationKeyId=destination["KeyId"])
    assert error_of(info) == ("AccessDeniedException",
                              access_denied(alice.arn, "kms:ReEncryptFrom", destination["Arn"], DENY_I))
