"""The IAM API's roles (assumed through STS within and beyond MaxSessionDuration), groups (whose
policies apply to their members), managed policy versions, AWS managed policies and the
Simulate* calls, through a running non-dev trentd per store with boto3."""

from __future__ import annotations

import json

import pytest

from .authz_world import ACCT_A, REGION, World, policy
from .test_sts import audit_events
from .test_iam import ENCRYPT_ONLY, collect, encrypt_outcome, eventually, failure, user_clients

BEYOND = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


@pytest.fixture(scope="module")
def world(authz_server) -> World:
    return World(authz_server)


@pytest.fixture(scope="module")
def iam(world):
    return world.admin.client("iam")


@pytest.fixture(scope="module")
def key_id(world) -> str:
    return world.admin.kms.create_key()["KeyMetadata"]["KeyId"]


def trust_of(*principals: str) -> str:
    return policy({"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"})


# --- roles ---------------------------------------------------------------------------------------------------
def test_role_assumed_within_and_beyond_max_session_duration(world, iam, key_id):
    key, _, _ = user_clients(world, iam, "assumer")
    user_arn = f"arn:aws:iam::{ACCT_A}:user/assumer"
    role = iam.create_role(RoleName="Worker", AssumeRolePolicyDocument=trust_of(user_arn), Description="first",
                           MaxSessionDuration=7200, Tags=[{"Key": "env", "Value": "test"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCT_A}:role/Worker" and role["RoleId"].startswith("AROA")
    assert role["MaxSessionDuration"] == 7200 and role["Tags"] == [{"Key": "env", "Value": "test"}]
    got = iam.get_role(RoleName="worker")["Role"]  # any case
    assert got["AssumeRolePolicyDocument"] == json.loads(trust_of(user_arn)) and got["Description"] == "first"
    iam.put_role_policy(RoleName="Worker", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    assert iam.get_role_policy(RoleName="Worker", PolicyName="enc")["PolicyDocument"] == json.loads(ENCRYPT_ONLY)

    sts = world.server.client("sts", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
    creds = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7200)["Credentials"]
    session_kms = world.server.client(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                                      session_token=creds["SessionToken"], region=REGION)
    assert encrypt_outcome(session_kms, key_id) == "allowed"
    # An AWS managed policy as a session policy narrows the session (ReadOnlyAccess: no Encrypt).
    narrowed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ro",
                               PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}])["Credentials"]
    narrowed_kms = world.server.client(access_key=narrowed["AccessKeyId"], secret_key=narrowed["SecretAccessKey"],
                                       session_token=narrowed["SessionToken"], region=REGION)
    assert encrypt_outcome(narrowed_kms, key_id) == "AccessDeniedException"
    assert failure(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7201) == (
        "ValidationError", BEYOND, 400)
    assert sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")["Credentials"]  # default: 3600

    iam.update_role(RoleName="Worker", MaxSessionDuration=3600)
    assert failure(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=7200) == (
        "ValidationError", BEYOND, 400)
    described = iam.update_role_description(RoleName="Worker", Description="second")["Role"]
    assert described["Description"] == "second" and described["MaxSessionDuration"] == 3600

    # A new trust policy that no longer names the user refuses it.
    iam.update_assume_role_policy(RoleName="Worker", PolicyDocument=trust_of(f"arn:aws:iam::{ACCT_A}:user/admin"))
    assert eventually(lambda: failure(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1")[0] == "AccessDenied")
    bad = policy({"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole", "Resource": "*"})
    assert failure(iam.update_assume_role_policy, RoleName="Worker", PolicyDocument=bad) == (
        "MalformedPolicyDocument", "Has prohibited field Resource", 400)

    assert failure(iam.delete_role, RoleName="Worker") == (
        "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
    iam.delete_role_policy(RoleName="Worker", PolicyName="enc")
    assert iam.list_instance_profiles_for_role(RoleName="Worker")["InstanceProfiles"] == []
    iam.delete_role(RoleName="Worker")
    assert failure(iam.get_role, RoleName="Worker") == ("NoSuchEntity", "The role with name Worker cannot be found.",
                                                        404)
    raw = world.admin.client("iam", parameter_validation=False)  # the server's own validation
    code, message, status = failure(raw.create_role, RoleName="x", AssumeRolePolicyDocument=trust_of(user_arn),
                                    MaxSessionDuration=100)
    assert (code, status) == ("ValidationError", 400) and "maxSessionDuration" in message


def test_role_id_is_one_everywhere(world, iam):
    key, _, _ = user_clients(world, iam, "id-assumer")
    trust = trust_of(f"arn:aws:iam::{ACCT_A}:user/id-assumer")
    role_id = iam.create_role(RoleName="IdRole", Path="/ids/", AssumeRolePolicyDocument=trust)["Role"]["RoleId"]
    assert role_id.startswith("AROA") and len(role_id) == 21
    assert iam.get_role(RoleName="IdRole")["Role"]["RoleId"] == role_id
    sts = world.server.client("sts", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"], region=REGION)
    out = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT_A}:role/ids/IdRole", RoleSessionName="idsess")
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{role_id}:idsess"
    creds = out["Credentials"]
    session = dict(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                   session_token=creds["SessionToken"], region=REGION)
    me = world.server.client("sts", **session).get_caller_identity()
    assert me["UserId"] == f"{role_id}:idsess"
    event = next(e for e in audit_events(world.server) if e["requestID"] == me["ResponseMetadata"]["RequestId"])
    assert event["userIdentity"]["principalId"] == f"{role_id}:idsess"
    assert event["userIdentity"]["sessionContext"]["sessionIssuer"]["principalId"] == role_id
    # A role deleted and made again with the same name is another role, with another id.
    iam.delete_role(RoleName="IdRole")
    again = iam.create_role(RoleName="IdRole", Path="/ids/", AssumeRolePolicyDocument=trust)["Role"]["RoleId"]
    assert again != role_id
    out = eventually(lambda: sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT_A}:role/ids/IdRole", RoleSessionName="s2"))
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{again}:s2"


# --- groups --------------------------------------------------------------------------------------------------
def test_group_policies_apply_to_members(world, iam, key_id):
    _, kms, _ = user_clients(world, iam, "member")
    group = iam.create_group(GroupName="Encrypters")["Group"]
    assert group["Arn"] == f"arn:aws:iam::{ACCT_A}:group/Encrypters" and group["GroupId"].startswith("AGPA")
    assert failure(iam.create_group, GroupName="encrypters")[::2] == ("EntityAlreadyExists", 409)
    iam.put_group_policy(GroupName="Encrypters", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    assert encrypt_outcome(kms, key_id) == "AccessDeniedException"
    iam.add_user_to_group(GroupName="Encrypters", UserName="member")
    assert [u["UserName"] for u in iam.get_group(GroupName="Encrypters")["Users"]] == ["member"]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="member")["Groups"]] == ["Encrypters"]
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    iam.delete_group_policy(GroupName="Encrypters", PolicyName="enc")
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "AccessDeniedException")

    managed = iam.create_policy(PolicyName="group-enc", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="Encrypters", PolicyArn=managed)
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    entities = iam.list_entities_for_policy(PolicyArn=managed)
    assert entities["PolicyGroups"] == [{"GroupName": "Encrypters", "GroupId": group["GroupId"]}]
    assert entities["PolicyUsers"] == [] and entities["PolicyRoles"] == []
    assert failure(iam.delete_user, UserName="member")[1] == "Cannot delete entity, must delete access keys first."
    assert failure(iam.delete_group, GroupName="Encrypters") == (
        "DeleteConflict", "Cannot delete entity, must remove users from group first.", 409)
    iam.remove_user_from_group(GroupName="Encrypters", UserName="member")
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "AccessDeniedException")
    assert failure(iam.delete_group, GroupName="Encrypters") == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
    iam.detach_group_policy(GroupName="Encrypters", PolicyArn=managed)
    iam.update_group(GroupName="Encrypters", NewGroupName="Renamed")
    assert iam.get_group(GroupName="Renamed")["Group"]["Arn"] == f"arn:aws:iam::{ACCT_A}:group/Renamed"
    iam.delete_group(GroupName="Renamed")
    assert failure(iam.get_group, GroupName="Renamed") == (
        "NoSuchEntity", "The group with name Renamed cannot be found.", 404)


# --- managed policies: versions, AWS's own ---------------------------------------------------------------------
def test_policy_versions_decide_what_applies(world, iam, key_id):
    _, kms, _ = user_clients(world, iam, "versioned")
    arn = iam.create_policy(PolicyName="versions", PolicyDocument=ENCRYPT_ONLY, Description="d",
                            Tags=[{"Key": "a", "Value": "b"}])["Policy"]["Arn"]
    iam.attach_user_policy(UserName="versioned", PolicyArn=arn)
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    deny_all = policy({"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"})
    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=deny_all)["PolicyVersion"]
    assert v2["VersionId"] == "v2" and v2["IsDefaultVersion"] is False
    assert encrypt_outcome(kms, key_id) == "allowed"  # v1 still the default
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=deny_all, SetAsDefault=True)
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["DefaultVersionId"] == "v3" and got["AttachmentCount"] == 1 and got["Tags"] == [
        {"Key": "a", "Value": "b"}]
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "AccessDeniedException")
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v3")["PolicyVersion"]
    assert version["Document"] == json.loads(deny_all) and version["IsDefaultVersion"] is True
    assert failure(iam.delete_policy_version, PolicyArn=arn, VersionId="v3") == (
        "DeleteConflict", "Cannot delete the default version of a policy.", 409)
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert eventually(lambda: encrypt_outcome(kms, key_id) == "allowed")
    iam.detach_user_policy(UserName="versioned", PolicyArn=arn)
    assert failure(iam.delete_policy, PolicyArn=arn)[::2] == ("DeleteConflict", 409)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v3")
    assert failure(iam.get_policy_version, PolicyArn=arn, VersionId="v2")[::2] == ("NoSuchEntity", 404)
    iam.delete_policy(PolicyArn=arn)


def test_aws_managed_policies(world, iam):
    listed = {p["PolicyName"]: p for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert set(listed) == {"AdministratorAccess", "ReadOnlyAccess", "AWSKeyManagementServicePowerUser"}
    admin = iam.get_policy_version(PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess",
                                   VersionId="v1")["PolicyVersion"]["Document"]
    assert admin == {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    _, kms, _ = user_clients(world, iam, "readonly")
    iam.attach_user_policy(UserName="readonly", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert eventually(lambda: _lists_keys(kms))
    assert failure(kms.create_key)[0] == "AccessDeniedException"
    code, _, status = failure(iam.delete_policy, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert (code, status) == ("AccessDenied", 403)
    assert failure(iam.attach_user_policy, UserName="readonly",
                   PolicyArn="arn:aws:iam::aws:policy/NoSuchThing") == (
        "NoSuchEntity", "Policy arn:aws:iam::aws:policy/NoSuchThing does not exist or is not attachable.", 404)


def _lists_keys(kms) -> bool:
    try:
        kms.list_keys()
        return True
    except Exception:
        return False


def test_a_group_is_no_principal_of_a_key_policy_or_grant(world, iam):
    group_arn = iam.create_group(GroupName="NoPrincipal")["Group"]["Arn"]
    kms = world.admin.kms
    root = f"arn:aws:iam::{ACCT_A}:root"
    naming = lambda arn: policy({"Effect": "Allow", "Principal": {"AWS": [root, arn]}, "Action": "kms:*",  # noqa: E731
                                 "Resource": "*"})
    invalid = ("MalformedPolicyDocumentException", "Policy contains a statement with one or more invalid principals.",
               400)
    assert failure(kms.create_key, Policy=naming(group_arn)) == invalid
    key_id = kms.create_key(Policy=naming(root))["KeyMetadata"]["KeyId"]
    assert failure(kms.put_key_policy, KeyId=key_id, PolicyName="default", Policy=naming(group_arn)) == invalid
    assert json.loads(kms.get_key_policy(KeyId=key_id)["Policy"]) == json.loads(naming(root))  # unchanged
    assert failure(kms.create_grant, KeyId=key_id, GranteePrincipal=group_arn, Operations=["Encrypt"]) == (
        "ValidationException", f"Invalid granteePrincipal: {group_arn} is not a valid principal.", 400)
    assert failure(kms.create_grant, KeyId=key_id, GranteePrincipal=root, RetiringPrincipal=group_arn,
                   Operations=["Encrypt"]) == (
        "ValidationException", f"Invalid retiringPrincipal: {group_arn} is not a valid principal.", 400)
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    # A user of the same name is a principal.
    iam.create_user(UserName="NoPrincipal")
    assert kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{ACCT_A}:user/NoPrincipal",
                            Operations=["Encrypt"])["GrantId"]


def test_entities_for_policy_filtered(iam):
    arn = iam.create_policy(PolicyName="efp", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
    trust = trust_of(f"arn:aws:iam::{ACCT_A}:root")
    ids = {}
    for kind, name, path in [("user", "efp-u1", "/team/a/"), ("user", "efp-u2", "/other/"), ("role", "efp-r", "/team/"),
                             ("group", "efp-g", "/team/a/b/")]:
        if kind == "user":
            ids[name] = iam.create_user(UserName=name, Path=path)["User"]["UserId"]
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        elif kind == "role":
            ids[name] = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["RoleId"]
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        else:
            ids[name] = iam.create_group(GroupName=name, Path=path)["Group"]["GroupId"]
            iam.attach_group_policy(GroupName=name, PolicyArn=arn)

    def listed(**kwargs) -> tuple[list, list, list]:
        out = iam.list_entities_for_policy(PolicyArn=arn, **kwargs)
        return ([u["UserName"] for u in out["PolicyUsers"]], [r["RoleName"] for r in out["PolicyRoles"]],
                [g["GroupName"] for g in out["PolicyGroups"]])

    everything = iam.list_entities_for_policy(PolicyArn=arn)
    assert everything["PolicyUsers"] == [{"UserName": "efp-u1", "UserId": ids["efp-u1"]},
                                         {"UserName": "efp-u2", "UserId": ids["efp-u2"]}]
    assert everything["PolicyRoles"] == [{"RoleName": "efp-r", "RoleId": ids["efp-r"]}]
    assert everything["PolicyGroups"] == [{"GroupName": "efp-g", "GroupId": ids["efp-g"]}]
    assert listed(PathPrefix="/team/") == (["efp-u1"], ["efp-r"], ["efp-g"])
    assert listed(PathPrefix="/team/a/") == (["efp-u1"], [], ["efp-g"])
    assert listed(PathPrefix="/nowhere/") == ([], [], [])
    assert listed(EntityFilter="User") == (["efp-u1", "efp-u2"], [], [])
    assert listed(EntityFilter="Group", PathPrefix="/team/") == ([], [], ["efp-g"])
    assert listed(EntityFilter="LocalManagedPolicy") == ([], [], [])  # a policy is attached to no policy
    assert listed(PolicyUsageFilter="PermissionsPolicy") == (["efp-u1", "efp-u2"], ["efp-r"], ["efp-g"])
    assert listed(PolicyUsageFilter="PermissionsBoundary") == ([], [], [])  # trentd has no boundaries
    paged = iam.list_entities_for_policy(PolicyArn=arn, PathPrefix="/team/", MaxItems=2)
    assert paged["IsTruncated"] is True
    rest = iam.list_entities_for_policy(PolicyArn=arn, PathPrefix="/team/", Marker=paged["Marker"])
    assert rest["IsTruncated"] is False
    assert sum(len(page[m]) for page in (paged, rest) for m in ("PolicyUsers", "PolicyRoles", "PolicyGroups")) == 3


def test_service_specific_credentials_of_all_users(world, iam):
    assert iam.list_service_specific_credentials(AllUsers=True)["ServiceSpecificCredentials"] == []
    assert iam.list_service_specific_credentials(AllUsers=True, ServiceName="codecommit.amazonaws.com")[
        "ServiceSpecificCredentials"] == []
    assert failure(iam.list_service_specific_credentials, AllUsers=True, UserName="admin") == (
        "ValidationError", "AllUsers cannot be specified together with UserName.", 400)
    # AllUsers needs the action on every user (user/*); the caller's own listing needs it on itself.
    _, _, own_iam = user_clients(world, iam, "ssc-self")
    iam.put_user_policy(UserName="ssc-self", PolicyName="own", PolicyDocument=policy(
        {"Effect": "Allow", "Action": "iam:ListServiceSpecificCredentials",
         "Resource": f"arn:aws:iam::{ACCT_A}:user/ssc-self"}))
    assert eventually(lambda: own_iam.list_service_specific_credentials()["ServiceSpecificCredentials"] == [])
    code, message, status = failure(own_iam.list_service_specific_credentials, AllUsers=True)
    assert (code, status) == ("AccessDenied", 403) and "user/*" in message


# --- simulation ------------------------------------------------------------------------------------------------
def test_simulate_with_the_evaluator(iam):
    document = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*",
                       "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
                      {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"})
    out = iam.simulate_custom_policy(
        PolicyInputList=[document], ActionNames=["kms:Encrypt", "kms:ScheduleKeyDeletion", "iam:CreateUser"],
        ContextEntries=[{"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": ["eu-west-1"],
                         "ContextKeyType": "string"}])
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        ("kms:Encrypt", "allowed"), ("kms:ScheduleKeyDeletion", "explicitDeny"), ("iam:CreateUser", "implicitDeny")]
    other_region = iam.simulate_custom_policy(PolicyInputList=[document], ActionNames=["kms:Encrypt"])
    assert other_region["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"  # the condition fails
    iam.create_user(UserName="simulated")
    iam.put_user_policy(UserName="simulated", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    out = iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCT_A}:user/simulated",
                                        ActionNames=["kms:Encrypt", "kms:Decrypt"],
                                        ResourceArns=["arn:aws:kms:us-east-1:111122223333:key/k"])
    assert [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        ("kms:Encrypt", "arn:aws:kms:us-east-1:111122223333:key/k", "allowed"),
        ("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/k", "implicitDeny")]
    assert failure(iam.simulate_principal_policy, PolicySourceArn=f"arn:aws:iam::{ACCT_A}:user/nobody",
                   ActionNames=["kms:Encrypt"]) == ("NoSuchEntity", "The user with name nobody cannot be found.", 404)
    assert failure(iam.simulate_custom_policy, PolicyInputList=["{bad"], ActionNames=["kms:Encrypt"])[::2] == (
        "MalformedPolicyDocument", 400)


SIMULATED = """{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "kms:*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
    {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}
  ]
}"""


def test_simulate_reports_matched_statements_and_missing_context(iam):
    allow_end = len('     "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}')
    allow = {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none",
             "StartPosition": {"Line": 4, "Column": 5}, "EndPosition": {"Line": 5, "Column": allow_end}}
    deny = {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none",
            "StartPosition": {"Line": 6, "Column": 5},
            "EndPosition": {"Line": 6, "Column": len('    {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", '
                                                     '"Resource": "*"}')}}
    region = [{"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": ["eu-west-1"], "ContextKeyType": "string"}]
    actions = ["kms:Encrypt", "kms:ScheduleKeyDeletion", "iam:CreateUser"]

    def shown(**kwargs):
        out = iam.simulate_custom_policy(PolicyInputList=[SIMULATED], ActionNames=actions, **kwargs)
        return [(r["EvalDecision"], r["MatchedStatements"], r["MissingContextValues"])
                for r in out["EvaluationResults"]]

    assert shown(ContextEntries=region) == [("allowed", [allow], []), ("explicitDeny", [deny], []),
                                            ("implicitDeny", [], [])]
    # Without the Region the Allow's condition cannot hold: the key it lacked is named.
    assert shown() == [("implicitDeny", [], ["aws:RequestedRegion"]),
                       ("explicitDeny", [deny], ["aws:RequestedRegion"]), ("implicitDeny", [], [])]

    # A principal's policies: each deciding statement names its policy and the policy's kind.
    iam.create_user(UserName="sim-sources")
    iam.put_user_policy(UserName="sim-sources", PolicyName="enc", PolicyDocument=ENCRYPT_ONLY)
    iam.create_group(GroupName="sim-group")
    iam.add_user_to_group(GroupName="sim-group", UserName="sim-sources")
    iam.put_group_policy(GroupName="sim-group", PolicyName="group-enc", PolicyDocument=ENCRYPT_ONLY)
    mine = iam.create_policy(PolicyName="sim-managed", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
    iam.attach_user_policy(UserName="sim-sources", PolicyArn=mine)
    iam.attach_user_policy(UserName="sim-sources", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    out = iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCT_A}:user/sim-sources",
                                        ActionNames=["kms:Encrypt"], PolicyInputList=[SIMULATED],
                                        ContextEntries=region)["EvaluationResults"][0]
    assert out["EvalDecision"] == "allowed" and out["MissingContextValues"] == []
    assert sorted((m["SourcePolicyId"], m["SourcePolicyType"]) for m in out["MatchedStatements"]) == [
        ("AdministratorAccess", "aws-managed"), ("PolicyInputList.1", "none"), ("enc", "user"),
        ("group-enc", "group"), ("sim-managed", "user-managed")]
    one_line = next(m for m in out["MatchedStatements"] if m["SourcePolicyId"] == "enc")
    assert one_line["StartPosition"]["Line"] == one_line["EndPosition"]["Line"] == 1


# --- paging of the role and group lists ---------------------------------------------------------------------------
def test_paging_of_role_and_group_lists(iam):
    trust = trust_of(f"arn:aws:iam::{ACCT_A}:root")
    arns = [iam.create_policy(PolicyName=f"rg-page{i}", PolicyDocument=ENCRYPT_ONLY)["Policy"]["Arn"]
            for i in range(3)]
    iam.create_group(GroupName="rg-pages")
    for i in range(3):
        iam.create_role(RoleName=f"rpager{i}", Path="/rpaging/", AssumeRolePolicyDocument=trust,
                        Tags=[{"Key": f"k{j}", "Value": "v"} for j in range(3)])
        iam.put_role_policy(RoleName="rpager0", PolicyName=f"p{i}", PolicyDocument=ENCRYPT_ONLY)
        iam.put_group_policy(GroupName="rg-pages", PolicyName=f"p{i}", PolicyDocument=ENCRYPT_ONLY)
        iam.attach_role_policy(RoleName="rpager0", PolicyArn=arns[i])
        iam.attach_group_policy(GroupName="rg-pages", PolicyArn=arns[i])
        iam.attach_role_policy(RoleName=f"rpager{i}", PolicyArn=arns[0])
    expected = [
        (iam.list_roles, "Roles", {"PathPrefix": "/rpaging/"}, 3),
        (iam.list_role_tags, "Tags", {"RoleName": "rpager1"}, 3),
        (iam.list_role_policies, "PolicyNames", {"RoleName": "rpager0"}, 3),
        (iam.list_attached_role_policies, "AttachedPolicies", {"RoleName": "rpager0"}, 3),
        (iam.list_group_policies, "PolicyNames", {"GroupName": "rg-pages"}, 3),
        (iam.list_attached_group_policies, "AttachedPolicies", {"GroupName": "rg-pages"}, 3),
        (iam.list_entities_for_policy, "PolicyRoles", {"PolicyArn": arns[0], "EntityFilter": "Role"}, 3),
        (iam.list_instance_profiles_for_role, "InstanceProfiles", {"RoleName": "rpager0"}, 0),
    ]
    for call, member, kwargs, count in expected:
        whole = call(**kwargs)[member]
        assert len(whole) == count, (call, whole)
        assert collect(call, member, **kwargs) == whole
    assert failure(iam.attach_role_policy, RoleName="rpager0", PolicyArn="arn:aws:iam::111122223333:policy/none")[
        ::2] == ("NoSuchEntity", 404)
