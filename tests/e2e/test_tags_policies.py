"""Tags (TagResource, UntagResource, ListResourceTags) and key policies (GetKeyPolicy,
ListKeyPolicies, PutKeyPolicy) over HTTP."""

from __future__ import annotations

import json

import pytest

from ..helpers import fails, key_arn

REGION = "us-east-1"
MISSING = "00000000-0000-4000-8000-000000000000"
POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, ' \
         '"Action": "kms:*", "Resource": "*"}]}'
# grants everything to one IAM user only: any other caller locks itself out
LOCKOUT = '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{account}:user/nobody"}, ' \
          '"Action": "kms:*", "Resource": "*"}]}'


def tags(*pairs) -> list[dict]:
    return [{"TagKey": k, "TagValue": v} for k, v in pairs]


def tag_dict(kms, key_id) -> dict[str, str]:
    resp = kms.list_resource_tags(KeyId=key_id)
    assert resp["Truncated"] is False
    return {t["TagKey"]: t["TagValue"] for t in resp["Tags"]}


def many(n: int, prefix: str = "k") -> list[dict]:
    return tags(*((f"{prefix}{i:02}", str(i)) for i in range(n)))


# --- Tags -----------------------------------------------------------------------------------
def test_tag_overwrite_and_untag(kms, account, key_id):
    assert tag_dict(kms, key_id) == {}
    kms.tag_resource(KeyId=key_id, Tags=tags(("env", "dev"), ("team", "crypto"), ("empty", "")))
    kms.tag_resource(KeyId=key_arn(account, key_id), Tags=tags(("env", "prod")))
    assert tag_dict(kms, key_id) == {"env": "prod", "team": "crypto", "empty": ""}
    kms.untag_resource(KeyId=key_id, TagKeys=["team", "never-set"])
    assert tag_dict(kms, key_arn(account, key_id)) == {"env": "prod", "empty": ""}


def test_tags_are_per_key(kms, key_id):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=key_id, Tags=tags(("a", "1")))
    assert tag_dict(kms, other) == {}


def test_fifty_tags_fit_and_overwrites_do_not_count(kms, key_id):
    kms.tag_resource(KeyId=key_id, Tags=many(50))
    kms.tag_resource(KeyId=key_id, Tags=tags(("k00", "changed")))
    assert len(tag_dict(kms, key_id)) == 50 and tag_dict(kms, key_id)["k00"] == "changed"
    assert fails(kms.tag_resource, KeyId=key_id, Tags=tags(("k50", "x"))) == ("TagException", "Too many tags")
    assert "k50" not in tag_dict(kms, key_id)


def test_too_many_tags_in_one_request(kms, key_id):
    kms.tag_resource(KeyId=key_id, Tags=many(45, "old"))
    assert fails(kms.tag_resource, KeyId=key_id, Tags=many(6)) == ("TagException", "Too many tags")
    assert fails(kms.tag_resource, KeyId=key_id, Tags=many(51)) == ("TagException", "Too many tags")
    assert len(tag_dict(kms, key_id)) == 45


@pytest.mark.parametrize("bad, message", [
    (many(51), "Too many tags"),
    (tags(("aws:name", "x")), "Tags beginning with aws: are reserved"),
    (tags(("ok", "1"), ("AWS:Name", "x")), "Tags beginning with aws: are reserved"),
    (tags(("Aws:", "x")), "Tags beginning with aws: are reserved"),
    (tags(("aWs:cost", "x")), "Tags beginning with aws: are reserved"),
    (tags(("dup", "1"), ("dup", "2")), "Duplicate tag keys"),
])
@pytest.mark.parametrize("op", ["tag_resource", "create_key"])
def test_tag_exceptions(kms, key_id, op, bad, message):
    call = (lambda: kms.tag_resource(KeyId=key_id, Tags=bad)) if op == "tag_resource" else \
        (lambda: kms.create_key(Tags=bad))
    assert fails(call) == ("TagException", message)
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
    assert tag_dict(kms, key_id) == {}


def test_aws_lookalike_keys_are_allowed(kms, key_id):
    kms.tag_resource(KeyId=key_id, Tags=tags(("awsome", "1"), ("x:aws:y", "2"), ("aws", "3")))
    assert tag_dict(kms, key_id) == {"awsome": "1", "x:aws:y": "2", "aws": "3"}


@pytest.mark.parametrize("bad, path, value, phrase", [
    (tags(("k" * 129, "v")), "tags.1.member.tagKey", "k" * 129, "Member must have length less than or equal to 128"),
    (tags(("ok", "v"), ("", "v")), "tags.2.member.tagKey", "", "Member must have length greater than or equal to 1"),
    (tags(("ok", "v" * 257)), "tags.1.member.tagValue", "v" * 257,
     "Member must have length less than or equal to 256"),
])
def test_tag_length_validation(raw_kms, key_id, bad, path, value, phrase):
    assert fails(raw_kms.tag_resource, KeyId=key_id, Tags=bad) == (
        "ValidationException",
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: {phrase}")
    assert tag_dict(raw_kms, key_id) == {}


def test_longest_tag_key_and_value_are_accepted(kms, key_id):
    kms.tag_resource(KeyId=key_id, Tags=tags(("k" * 128, "v" * 256)))
    assert tag_dict(kms, key_id) == {"k" * 128: "v" * 256}


def test_list_resource_tags_pagination(kms, key_id):
    kms.tag_resource(KeyId=key_id, Tags=many(5))
    pages = [kms.list_resource_tags(KeyId=key_id, Limit=2)]
    while pages[-1]["Truncated"]:
        pages.append(kms.list_resource_tags(KeyId=key_id, Limit=2, Marker=pages[-1]["NextMarker"]))
    assert "NextMarker" not in pages[-1]
    assert [[t["TagKey"] for t in p["Tags"]] for p in pages] == [["k00", "k01"], ["k02", "k03"], ["k04"]]
    assert [p["Truncated"] for p in pages] == [True, True, False]
    assert fails(kms.list_resource_tags, KeyId=key_id, Marker="!!!") == ("InvalidMarkerException", "Invalid marker")


@pytest.mark.parametrize("limit, phrase", [(0, "greater than or equal to 1"), (51, "less than or equal to 50")])
def test_list_resource_tags_limit_validation(raw_kms, key_id, limit, phrase):
    assert fails(raw_kms.list_resource_tags, KeyId=key_id, Limit=limit) == (
        "ValidationException",
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
        f"Member must have value {phrase}")


@pytest.mark.parametrize("op, kwargs", [("tag_resource", {"Tags": tags(("new", "1"))}),
                                        ("untag_resource", {"TagKeys": ["old"]})])
def test_tags_of_a_key_pending_deletion_are_frozen(kms, account, key_id, op, kwargs):
    kms.tag_resource(KeyId=key_id, Tags=tags(("old", "1")))
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert fails(getattr(kms, op), KeyId=key_id, **kwargs) == (
        "KMSInvalidStateException", f"{key_arn(account, key_id)} is pending deletion.")
    assert tag_dict(kms, key_id) == {"old": "1"}


@pytest.mark.parametrize("op, kwargs", [("tag_resource", {"Tags": tags(("a", "1"))}),
                                        ("untag_resource", {"TagKeys": ["a"]}), ("list_resource_tags", {})])
def test_tag_operations_on_unknown_key(kms, account, op, kwargs):
    assert fails(getattr(kms, op), KeyId=MISSING, **kwargs) == (
        "NotFoundException", f"Key '{key_arn(account, MISSING)}' does not exist")


# --- Key policies ---------------------------------------------------------------------------
def test_list_key_policies(kms, key_id):
    resp = kms.list_key_policies(KeyId=key_id)
    assert (resp["PolicyNames"], resp["Truncated"], "NextMarker" in resp) == (["default"], False, False)


@pytest.mark.parametrize("policy", [
    POLICY,
    json.dumps(json.loads(POLICY), indent=4),
    '{\t"Statement" :[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Sid":"caf\u00e9 \u00ff"}]\r\n}',
])
def test_put_key_policy_round_trip_is_verbatim(kms, account, key_id, policy):
    kms.put_key_policy(KeyId=key_arn(account, key_id), PolicyName="default", Policy=policy)
    got = kms.get_key_policy(KeyId=key_id, PolicyName="default")
    assert (got["Policy"], got["PolicyName"]) == (policy, "default")
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == policy  # PolicyName defaults to "default"


def test_policy_can_be_changed_while_pending_deletion(kms, key_id):
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=POLICY)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == POLICY


@pytest.mark.parametrize("document, message", [
    ("{", "Syntax errors in policy."),
    ("not json", "Syntax errors in policy."),
    ("[]", "The policy must be a JSON object."),
    ('{"Version": "2012-10-17"}', "Policy is missing required element - Statement."),
    ('{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}',
     "Policy statement has an invalid Effect: 'Maybe'. Use Allow or Deny."),
    (LOCKOUT, "The new key policy will not allow you to update the key policy in the future."),
])
def test_malformed_policy_is_refused(kms, account, key_id, document, message):
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    document = document.replace("{account}", account)
    assert fails(kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=document) == (
        "MalformedPolicyDocumentException", message)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == before
    assert f"arn:aws:iam::{account}:root" in before


def test_lockout_check_can_be_bypassed(kms, account, key_id):
    policy = LOCKOUT.replace("{account}", account)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy, BypassPolicyLockoutSafetyCheck=True)
    code, message = fails(kms.get_key_policy, KeyId=key_id, PolicyName="default")  # locked out indeed
    assert code == "AccessDeniedException"
    assert message.startswith(f"User: arn:aws:iam::{account}:")
    assert message.endswith(f"is not authorized to perform: kms:GetKeyPolicy on resource: {key_arn(account, key_id)} "
                            "because no resource-based policy allows the kms:GetKeyPolicy action")


def test_principals_must_exist_outside_dev_mode(secure_server):
    kms = secure_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = LOCKOUT.replace("{account}", "000000000000")
    assert fails(kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=policy,
                 BypassPolicyLockoutSafetyCheck=True) == (
        "MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals.")
    assert fails(kms.create_key, Policy=policy, BypassPolicyLockoutSafetyCheck=True)[0] == \
        "MalformedPolicyDocumentException"
    assert "user/nobody" not in kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]


def padded_policy(size: int) -> str:
    """A valid policy of exactly ``size`` UTF-8 bytes."""
    policy = POLICY[:-1] + ', "Id": "'
    return policy + "x" * (size - len(policy) - 2) + '"}'


def test_policy_size_limit_is_32768_bytes(kms, key_id):
    largest = padded_policy(32_768)
    assert len(largest.encode()) == 32_768 and json.loads(largest)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=largest)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == largest
    assert fails(kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=padded_policy(32_769)) == (
        "LimitExceededException", "Policy exceeds the maximum size of 32768 bytes.")
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == largest
    assert fails(kms.create_key, Policy=padded_policy(32_769))[0] == "LimitExceededException"


def test_policy_characters_outside_latin1_fail_validation(raw_kms, key_id):
    policy = POLICY.replace("kms:*", "kms:\u20ac")
    assert fails(raw_kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=policy) == (
        "ValidationException",
        f"1 validation error detected: Value '{policy}' at 'policy' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")


@pytest.mark.parametrize("op, kwargs", [("get_key_policy", {"PolicyName": "default"}), ("list_key_policies", {}),
                                        ("put_key_policy", {"PolicyName": "default", "Policy": POLICY})])
def test_policy_operations_refuse_aliases_and_unknown_keys(kms, account, key_id, op, kwargs):
    kms.create_alias(AliasName="alias/p", TargetKeyId=key_id)
    assert fails(getattr(kms, op), KeyId="alias/p", **kwargs) == (
        "InvalidArnException", "Key Aliases are not supported for this operation.")
    assert fails(getattr(kms, op), KeyId=MISSING, **kwargs) == (
        "NotFoundException", f"Key '{key_arn(account, MISSING)}' does not exist")


def test_aws_ram_policy_is_absent(kms, key_id):
    assert fails(kms.get_key_policy, KeyId=key_id, PolicyName="AWS_RAM") == (
        "NotFoundException", "No such policy exists: AWS_RAM")
