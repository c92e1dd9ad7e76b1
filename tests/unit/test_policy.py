"""The IAM policy language (trentd.auth.policy / conditions): operators, absent keys, case rules,
wildcards, ARNs, IPs, dates, variables, principals, malformed documents, KMS guide examples, and
hypothesis properties (a Deny or a removed Allow never grants; evaluation never raises)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trentd.auth.conditions import glob
from trentd.auth.policy import Request, compile_cached, parse_policy
from trentd.errors import AWSError
from trentd.keydomain.policy import default_policy

ACCT, OTHER = "111122223333", "444455556666"
ALICE, ALICE_CASED = f"arn:aws:iam::{ACCT}:user/alice", f"arn:aws:iam::{ACCT}:user/Alice"
ROOT = f"arn:aws:iam::{ACCT}:root"
ROLE = f"arn:aws:iam::{ACCT}:role/RoleForExampleApp"
BOB = f"arn:aws:iam::{OTHER}:user/bob"
KEY = f"arn:aws:kms:us-west-2:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
T, F = True, False  # keeps the tables below readable at a glance
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def req(context=None, action="kms:Encrypt", principal=ALICE, account=ACCT, resource=KEY) -> Request:
    return Request(principal, account, action, resource, context or {})


def doc(*statements, version="2012-10-17") -> str:
    statements = list(statements)
    return json.dumps({"Version": version, "Statement": statements} if version else {"Statement": statements})


def stmt(effect="Allow", **elements) -> dict:
    return {"Effect": effect, "Action": "kms:*", "Resource": "*", **elements}


def identity(*statements, **kw):
    return parse_policy(doc(*statements, **kw), resource_policy=False)


def keypolicy(*statements, exists=None):
    return parse_policy(doc(*statements), resource_policy=True, principal_exists=exists)


def allows(condition: dict, context: dict | None, **kw) -> bool:
    return identity(stmt(Condition=condition), **kw).evaluate(req(context), resource_policy=False).allowed


def denies(condition: dict, context: dict | None) -> bool:
    return identity(stmt("Deny", Condition=condition)).evaluate(req(context), resource_policy=False).denied


def result(policy, **kw):
    r = policy.evaluate(req(**kw), resource_policy=True)
    return r.denied, r.allowed, r.allowed_account


# --- every operator, matching and not ------------------------------------------------------
# (operator, policy value, request value, expected). The LONG_ARN pair is the IAM guide's example: ArnLike
# matches the colon-separated parts one by one, StringLike does not.
LONG_ARN = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
OPERATOR_CASES = [
    ("StringEquals", "ExampleApp", "ExampleApp", T), ("StringEquals", "ExampleApp", "exampleapp", F),
    ("StringNotEquals", "ExampleApp", "Other", T), ("StringNotEquals", "ExampleApp", "ExampleApp", F),
    ("StringEqualsIgnoreCase", "ExampleApp", "EXAMPLEAPP", T), ("StringEqualsIgnoreCase", "a", "b", F),
    ("StringNotEqualsIgnoreCase", "App", "APP", F), ("StringNotEqualsIgnoreCase", "a", "b", T),
    ("StringLike", "Ex*App", "ExampleApp", T), ("StringLike", "Ex?mple*", "Example", T),
    ("StringLike", "Ex*App", "exampleapp", F), ("StringNotLike", "Ex*", "ExampleApp", F),
    ("StringNotLike", "Ex*", "Other", T), ("StringEquals", True, "true", T), ("StringEquals", 10, 10, T),
    ("NumericEquals", "10", 10, T), ("NumericEquals", 10, "10.0", T), ("NumericEquals", "0.1", 0.1, T),
    ("NumericEquals", "10", 11, F), ("NumericNotEquals", "10", 11, T), ("NumericNotEquals", "10", 10, F),
    ("NumericLessThan", "10", 9, T), ("NumericLessThan", "10", 10, F), ("NumericLessThanEquals", "10", 10, T),
    ("NumericLessThanEquals", "10", 11, F), ("NumericGreaterThan", "10", 11, T), ("NumericGreaterThan", "10", 10, F),
    ("NumericGreaterThanEquals", "10", 10, T), ("NumericGreaterThanEquals", "10", 9.5, F),
    ("DateEquals", "2024-05-01T12:00:00Z", NOW, T), ("DateEquals", "2024-05-01T12:00Z", NOW + timedelta(1), F),
    ("DateNotEquals", "2024-05-01T12:00:00Z", NOW, F), ("DateNotEquals", "2024-05-01", NOW, T),
    ("DateLessThan", "2025-01-01T00:00:00Z", NOW, T), ("DateLessThan", "2020-01-01", NOW, F),
    ("DateLessThanEquals", str(int(NOW.timestamp())), NOW, T), ("DateLessThanEquals", "2024-05-01T11:59Z", NOW, F),
    ("DateGreaterThan", "2024-05-01T13:00:00+02:00", NOW, T), ("DateGreaterThan", "2024-05-01T12:00:00Z", NOW, F),
    ("DateGreaterThanEquals", 1714564800, NOW, T), ("DateGreaterThanEquals", "2024-05-01T12:00:00.5Z", NOW, F),
    ("DateLessThan", "2025-01-01T00:00:00Z", "2024-05-01T12:00:00Z", T), ("DateEquals", 1714564800, 1714564800, T),
    ("Bool", "true", True, T), ("Bool", True, "true", T), ("Bool", "false", True, F), ("Bool", "FALSE", False, T),
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", b"BinaryValueInBase64", T),
    ("BinaryEquals", "QmluYXJ5VmFsdWVJbkJhc2U2NA==", b"other", F), ("IpAddress", "203.0.113.0/24", "203.0.113.7", T),
    ("IpAddress", "203.0.113.0/24", "203.0.114.7", F), ("IpAddress", "203.0.113.7", "203.0.113.7", T),
    ("IpAddress", "203.0.113.7", "203.0.113.8", F),
    ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678::1", T),
    ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5679::1", F),
    ("IpAddress", "203.0.113.0/24", "::ffff:203.0.113.7", T), ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", T),
    ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", F), ("ArnEquals", ROLE, ROLE, T),
    ("ArnEquals", ROLE, ROLE.lower(), F), ("ArnLike", f"arn:aws:iam::{ACCT}:role/*", ROLE, T),
    ("ArnLike", "arn:aws:iam::*:role/Role*", ROLE, T), ("ArnLike", f"arn:aws:iam::{ACCT}:user/*", ROLE, F),
    ("ArnLike", "*", ROLE, T), ("ArnNotEquals", ROLE, ALICE, T), ("ArnNotLike", "arn:aws:iam::*:role/*", ROLE, F),
    ("ArnLike", "arn:aws:someservice:*:111122223333:finance/*", LONG_ARN, F),
    ("StringLike", "arn:aws:someservice:*:111122223333:finance/*", LONG_ARN, T),
    ("ArnLike", "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b:c", T),
]


@pytest.mark.parametrize("op,policy_value,request_value,expected", OPERATOR_CASES)
def test_operator(op, policy_value, request_value, expected):
    condition = {op: {"aws:testkey": policy_value}}
    assert allows(condition, {"aws:testkey": request_value}) is expected
    assert denies(condition, {"aws:testkey": request_value}) is expected


ABSENT_CASES = [  # (operator, policy value, outcome when the key is absent)
    ("StringEquals", "x", F), ("StringNotEquals", "x", T), ("StringLike", "*", F), ("StringNotLike", "x", T),
    ("StringEqualsIgnoreCase", "x", F), ("StringNotEqualsIgnoreCase", "x", T), ("NumericEquals", "1", F),
    ("NumericNotEquals", "1", T), ("NumericLessThan", "1", F), ("DateEquals", "2024-01-01", F),
    ("DateNotEquals", "2024-01-01", T), ("Bool", "true", F), ("BinaryEquals", "eA==", F),
    ("IpAddress", "10.0.0.0/8", F), ("NotIpAddress", "10.0.0.0/8", T), ("ArnEquals", ROLE, F), ("ArnLike", "*", F),
    ("ArnNotEquals", ROLE, T), ("ArnNotLike", ROLE, T), ("StringEqualsIfExists", "x", T),
    ("StringNotEqualsIfExists", "x", T), ("NumericLessThanIfExists", "1", T), ("BoolIfExists", "true", T),
    ("ArnLikeIfExists", ROLE, T), ("Null", "true", T), ("Null", "false", F), ("Null", True, T),
    ("ForAnyValue:StringEquals", "x", F), ("ForAnyValue:StringNotEquals", "x", F),
    ("ForAllValues:StringEquals", "x", T), ("ForAllValues:StringNotLike", "x", T),
    ("ForAnyValue:StringEqualsIfExists", "x", T),
]


@pytest.mark.parametrize("op,value,expected", ABSENT_CASES)
@pytest.mark.parametrize("absent", [None, {"aws:tagkeys": None}, {"aws:tagkeys": []}], ids=["missing", "none", "empty"])
def test_absent_key(op, value, expected, absent):
    assert allows({op: {"aws:TagKeys": value}}, absent) is expected
    assert denies({op: {"aws:TagKeys": value}}, absent) is expected


# (operator, policy values, request list, expected): the IAM guide's ForAllValues:StringNotLike table, and
# lists without a qualifier (positive: some value matches; negated: none does)
SET_CASES = [
    ("ForAnyValue:StringEquals", ["a", "b"], ["b", "z"], T), ("ForAnyValue:StringEquals", ["a"], ["y", "z"], F),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], T), ("ForAllValues:StringEquals", ["a"], ["a", "z"], F),
    ("ForAllValues:StringNotLike", "key1*", ["key1:legal"], F),
    ("ForAllValues:StringNotLike", "key1*", ["key2:audit"], T), ("ForAnyValue:StringNotEquals", ["a"], ["a", "z"], T),
    ("ForAllValues:StringLike", ["Post*", "Msg"], ["PostX", "Msg"], T), ("StringEquals", "a", ["z", "a"], T),
    ("StringNotEquals", "a", ["z", "a"], F), ("StringNotEquals", "a", ["y", "z"], T),
]


@pytest.mark.parametrize("op,values,request_values,expected", SET_CASES)
def test_set_operators(op, values, request_values, expected):
    assert allows({op: {"aws:tagkeys": values}}, {"aws:tagkeys": request_values}) is expected


def test_logic_and_or_nor():
    both = {"StringEquals": {"kms:EncryptionContext:Department": "IT", "kms:EncryptionContext:Project": "Alpha"}}
    ctx = {"kms:encryptioncontext:department": "IT", "kms:encryptioncontext:project": "Alpha"}
    assert allows(both, ctx) and not allows(both, {"kms:encryptioncontext:department": "IT"})
    two_ops = {"StringEquals": {"aws:a": "1"}, "StringLike": {"aws:b": "x*"}}
    assert allows(two_ops, {"aws:a": "1", "aws:b": "xy"}) and not allows(two_ops, {"aws:a": "1", "aws:b": "y"})
    assert allows({"StringEquals": {"aws:a": ["1", "2"]}}, {"aws:a": "2"})  # values OR
    assert not allows({"StringNotEquals": {"aws:a": ["1", "2"]}}, {"aws:a": "2"})  # negated: NOR
    assert allows({"StringNotEquals": {"aws:a": ["1", "2"]}}, {"aws:a": "3"})


UNCOMPARABLE = [  # request values that cannot be compared: an Allow must not apply, a Deny must
    ("NumericEquals", "1", "abc"), ("NumericNotEquals", "1", "abc"), ("NumericLessThan", "1", float("nan")),
    ("NumericEquals", "1", True), ("DateLessThan", "2024-01-01", "yesterday"), ("DateNotEquals", "2024", [1, "x"]),
    ("Bool", "true", "yes"), ("IpAddress", "10.0.0.0/8", "10.0.0.300"), ("NotIpAddress", "10.0.0.0/8", "bogus"),
    ("BinaryEquals", "eA==", "!!"), ("StringEquals", "x", {"a": 1}), ("StringNotLike", "x*", object()),
    ("ForAllValues:NumericEquals", "1", ["1", "zz"]), ("ForAnyValue:NumericNotEquals", "1", ["zz"]),
]


@pytest.mark.parametrize("op,policy_value,request_value", UNCOMPARABLE)
def test_uncomparable_values_fail_closed(op, policy_value, request_value):
    assert not allows({op: {"aws:k": policy_value}}, {"aws:k": request_value})
    assert denies({op: {"aws:k": policy_value}}, {"aws:k": request_value})


# --- case rules and wildcards ----------------------------------------------------------------
def test_case_rules():
    ec = {"kms:encryptioncontext:appname": "ExampleApp"}  # the kms layer lower-cases the key part
    assert allows({"stringequals": {"KMS:EncryptionContext:AppName": "ExampleApp"}}, ec)
    assert not allows({"StringEquals": {"kms:EncryptionContext:AppName": "exampleapp"}}, ec)
    p = identity(stmt(Action="KMS:encrypt", Resource=KEY))
    assert p.evaluate(req(action="kms:Encrypt"), resource_policy=False).allowed
    assert not p.evaluate(req(resource=KEY.upper()), resource_policy=False).allowed  # resources are case-sensitive


@pytest.mark.parametrize("pattern,value,expected", [
    ("a.b", "axb", False), ("a.b", "a.b", True), ("(a|b)", "a", False), ("(a|b)", "(a|b)", True),
    ("[ab]", "a", False), ("a+", "aa", False), ("^a$", "^a$", True), ("a\\d", "a\\d", True), ("a\\d", "a1", False),
    ("*", "", True), ("*", "line1\nline2", True), ("a?c", "a\nc", True), ("a?c", "ac", False), ("a*", "ba", False),
    ("${*}", "*", True), ("${*}", "x", False), ("a${?}", "a?", True), ("a${?}", "ab", False), ("${$}x", "$x", True),
])
def test_like_wildcards_are_literal_except_star_and_question(pattern, value, expected):
    assert allows({"StringLike": {"aws:k": pattern}}, {"aws:k": value}) is expected


@settings(max_examples=1000, deadline=None)
@given(st.text("ab*?.", max_size=8), st.text("ab.*?\n", max_size=10), st.booleans())
def test_glob_agrees_with_a_regex_reference(pattern, value, exact):
    segments = ((pattern[:2], exact), (pattern[2:], False))  # exact text: '*' and '?' are literal
    rx = "".join(re.escape(c) if (i < 2 and exact) or c not in "*?" else ".*" if c == "*" else "."
                 for i, c in enumerate(pattern))
    assert glob(segments).fullmatch(value) is (re.fullmatch(rx, value, re.DOTALL) is not None)


def test_hostile_wildcards_cannot_stall_evaluation():  # a backtracking regex would take hours here
    start = time.perf_counter()
    assert not allows({"StringLike": {"aws:k": "*a" * 40 + "*b"}}, {"aws:k": "a" * 20_000})
    assert not allows({"ArnLike": {"aws:k": "arn:*:*:*:*:" + "*a" * 40 + "*b"}}, {"aws:k": "arn:a:b:c:d:" + "a" * 9000})
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("actions,action,expected", [
    ("kms:*", "kms:Decrypt", True), ("kms:Gen*", "kms:GenerateDataKeyPair", True), ("kms:?ncrypt", "kms:Encrypt", True),
    ("kms:ReEncrypt*", "kms:ReEncryptFrom", True), (["kms:Encrypt", "kms:Decrypt"], "kms:Sign", False),
    ("*", "kms:Sign", True), ("kms:En.rypt", "kms:Encrypt", False), ("s3:*", "kms:Encrypt", False),
])
def test_action_and_not_action(actions, action, expected):
    p = identity(stmt(Action=actions))
    assert p.evaluate(req(action=action), resource_policy=False).allowed is expected
    q = identity({"Effect": "Allow", "NotAction": actions, "Resource": "*"})
    assert q.evaluate(req(action=action), resource_policy=False).allowed is not expected


def test_resource_and_not_resource():
    p = identity(stmt(Resource=f"arn:aws:kms:*:{ACCT}:key/*"))
    assert p.evaluate(req(), resource_policy=False).allowed
    assert not p.evaluate(req(resource="*"), resource_policy=False).allowed
    q = identity({"Effect": "Deny", "Action": "kms:*", "NotResource": f"arn:aws:kms:us-west-2:{ACCT}:key/*"})
    assert not q.evaluate(req(), resource_policy=False).denied
    assert q.evaluate(req(resource=f"arn:aws:kms:eu-west-1:{ACCT}:key/x"), resource_policy=False).denied


# --- policy variables ------------------------------------------------------------------------
def test_policy_variables():
    mine, user = {"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}, "kms:encryptioncontext:user"
    literal = {user: "${aws:username}"}
    assert allows(mine, {user: "alice"}) and not allows(mine, {user: "bob"}) and not allows(mine, literal)
    assert allows(mine, literal, version="2008-10-17")  # no variables before 2012-10-17, nor without a Version
    assert not allows(mine, {user: "alice"}, version="2008-10-17") and allows(mine, literal, version=None)
    account = {"StringEquals": {"kms:CallerAccount": "${aws:PrincipalAccount}"}}
    assert allows(account, {"kms:calleraccount": ACCT}) and not allows(account, {"kms:calleraccount": OTHER})
    userid = {"StringLike": {"aws:k": "home/${aws:userid}/*"}}
    assert allows(userid, {"aws:userid": "AIDAEXAMPLE", "aws:k": "home/AIDAEXAMPLE/x"})
    # a variable without a value voids the statement, Allow and Deny alike (IAM)
    assert not allows(userid, {"aws:k": "home//x"})
    assert not denies({"StringNotEquals": {"aws:k": "${aws:userid}"}}, {"aws:k": "x"})
    assert allows({"StringEquals": {"aws:k": "${aws:userid, 'anonymous'}"}}, {"aws:k": "anonymous"})
    # a variable's value is literal text, never a wildcard; multi-valued keys are not variables
    assert not allows({"StringLike": {"aws:k": "${aws:tag}"}}, {"aws:tag": "a*", "aws:k": "abc"})
    assert not allows({"StringEquals": {"aws:k": "${aws:list}"}}, {"aws:list": ["a"], "aws:k": "a"})
    res = identity(stmt(Resource=f"arn:aws:kms:*:{ACCT}:alias/${{aws:username}}-*"))
    alias = f"arn:aws:kms:us-west-2:{ACCT}:alias/"
    assert res.evaluate(req(resource=alias + "alice-app"), resource_policy=False).allowed
    assert not res.evaluate(req(principal=ROLE, resource=alias + "-app"), resource_policy=False).allowed  # no username
    assert allows({"Bool": {"aws:SecureTransport": "${aws:flag}"}}, {"aws:flag": "true", "aws:securetransport": True})
    assert denies({"Bool": {"aws:SecureTransport": "${aws:flag}"}}, {"aws:flag": "maybe", "aws:securetransport": True})


# --- principals: direct, account delegation, NotPrincipal, explicit deny ------------------------
def test_default_key_policy_delegates_to_the_account():
    p = compile_cached(default_policy(ACCT), resource_policy=True)
    assert result(p) == (False, False, True)
    assert result(p, principal=ROOT) == (False, True, True)
    assert result(p, principal=BOB, account=OTHER) == (False, False, False)


NONE = (False, False, False)


@pytest.mark.parametrize("principal,caller,account,expected", [
    ("*", ALICE, ACCT, (False, True, False)), ({"AWS": "*"}, BOB, OTHER, (False, True, False)),
    ({"AWS": ALICE}, ALICE, ACCT, (False, True, False)), ({"AWS": [ALICE]}, ROLE, ACCT, NONE),
    ({"AWS": ACCT}, ALICE, ACCT, (False, False, True)), ({"AWS": f"arn:aws:iam::{OTHER}:root"}, ALICE, ACCT, NONE),
    ({"Service": "ec2.amazonaws.com"}, ALICE, ACCT, NONE), ({"AWS": ALICE_CASED}, ALICE, ACCT, NONE),
    ({"AWS": f"arn:aws:sts::{ACCT}:assumed-role/RoleForExampleApp/s1"}, ROLE, ACCT, NONE),
])
def test_allow_principals_match_exactly(principal, caller, account, expected):
    assert result(keypolicy(stmt(Principal=principal)), principal=caller, account=account) == expected


@pytest.mark.parametrize("principal,caller,denied", [
    ({"AWS": ALICE}, ALICE, True), ({"AWS": ALICE_CASED}, ALICE, True), ({"AWS": ACCT}, ALICE, True),
    ({"AWS": f"arn:aws:sts::{ACCT}:assumed-role/roleforexampleapp/s1"}, ROLE, True), ({"AWS": ROLE}, ALICE, False),
    ({"Service": "ec2.amazonaws.com"}, ALICE, False),
])
def test_deny_principals_match_broadly(principal, caller, denied):
    p = keypolicy(stmt(Principal={"AWS": "*"}), stmt("Deny", Principal=principal))
    assert result(p, principal=caller)[0] is denied


def test_explicit_deny_wins_and_not_principal():
    p = keypolicy(stmt(Principal={"AWS": ALICE}), stmt("Deny", Principal={"AWS": ALICE}, Action="kms:Decrypt"))
    assert result(p) == (False, True, False) and result(p, action="kms:Decrypt") == (True, True, False)
    deny_others = keypolicy(stmt(Principal="*"), {**stmt("Deny"), "NotPrincipal": {"AWS": [ALICE, ROOT]}})
    assert result(deny_others)[0] is False and result(deny_others, principal=ROLE)[0] is True
    only_arn = keypolicy({**stmt("Deny"), "NotPrincipal": {"AWS": ALICE}})
    assert result(only_arn)[0] is True  # the account is not exempt, so neither is alice
    allow_others = keypolicy({**stmt(), "NotPrincipal": {"AWS": ALICE}})
    assert result(allow_others) == NONE and result(allow_others, principal=ROLE) == (False, True, False)
    assert result(allow_others, principal=BOB, account=OTHER) == (False, True, False)
    not_account = keypolicy({**stmt(), "NotPrincipal": {"AWS": ACCT}})
    assert result(not_account, principal=ROLE) == NONE  # an Allow exempts a caller whose account is listed


def test_statements_without_action_or_resource_have_no_effect():
    p = keypolicy({"Effect": "Deny", "Principal": "*", "Action": "kms:*"}, {"Effect": "Allow", "Principal": "*"})
    assert result(p) == NONE


# --- malformed documents ---------------------------------------------------------------------
S = {"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*"}
K, I = True, False  # key (resource) policy / identity policy


def with_(**elements) -> str:
    return doc({**S, **elements})


def without(name) -> str:
    return doc({k: v for k, v in S.items() if k != name})


def cond(condition) -> str:
    return with_(Condition=condition)


OVERLY_EC = ("OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued "
             "condition key matches requests without the specified encryption context or with an unspecified "
             "encryption context. To fix, remove ForAllValues.")
MALFORMED = [
    ("{", K, "Syntax errors in policy."), ("[]", K, "The policy must be a JSON object."),
    ('{"Statement": [], "Statement": []}', K, "Policy contains a duplicate element: Statement."),
    ('{"Statement": {"Effect": "Allow", "Effect": "Deny"}}', K, "Policy contains a duplicate element: Effect."),
    ('{"Statement": [], "Nope": 1}', K, "Policy contains an unsupported element: Nope."),
    ('{"Version": "2012-10-18", "Statement": []}', K, "Policy has an invalid Version: '2012-10-18'."),
    ('{"Version": "2012-10-17"}', K, "Policy is missing required element - Statement."),
    (with_(Nope=1), K, "Policy statement contains an unsupported element: Nope."),
    (without("Effect"), K, "Missing required field Effect"),
    (with_(Effect="allow"), K, "Policy statement has an invalid Effect: 'allow'. Use Allow or Deny."),
    (with_(NotAction="kms:Sign"), K, "Policy statement cannot contain both Action and NotAction."),
    (with_(NotPrincipal="*"), K, "Policy statement cannot contain both Principal and NotPrincipal."),
    (with_(NotResource="*"), K, "Policy statement cannot contain both Resource and NotResource."),
    (without("Principal"), K, "Policy contains a statement with no principal."),
    (doc(S), I, "Policy document should not specify a principal."),
    (doc({"Effect": "Allow", "Resource": "*"}), I, "Policy statement must contain actions."),
    (doc({"Effect": "Allow", "Action": "kms:*"}), I, "Policy statement must contain resources."),
    (doc({"Effect": "Allow", "Action": "kms:*", "Resource": "key"}), I, 'Resource key must be in ARN format or "*".'),
    (with_(Action=[]), K, "Policy statement must contain actions."),
    (with_(Resource=[]), K, "Policy statement must contain resources."),
    (with_(Action="Encrypt"), K, "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (with_(Action="kms:a:b"), K, "Actions/Condition can contain only one colon."),
    (doc({**S, "Sid": "a"}, {**S, "Sid": "a"}), K, "Statement IDs (SID) in a single policy must be unique."),
    (with_(Principal={"AWS": f"arn:aws:iam::{ACCT}:user/*"}), K,
     "Policy contains a statement with one or more invalid principals."),
    (with_(Principal={"AWS": "AIDACKCEVSQ6C2EXAMPLE"}), K, "one or more invalid principals."),
    (with_(Principal={"CanonicalUser": "abc"}), K, "one or more invalid principals."),
    (with_(Principal={"AWS": []}), K, "one or more invalid principals."),
    (with_(Principal={"AWS": f"arn:aws:iam::{ACCT}:user/ghost"}), K, "one or more invalid principals."),
    (with_(Principal={"AWS": f"arn:aws:sts::{ACCT}:assumed-role/ghost/s"}), K, "one or more invalid principals."),
    (cond({"StringEqualz": {"aws:k": "v"}}), K, "Invalid condition operator: StringEqualz."),
    (cond({"NullIfExists": {"aws:k": "true"}}), K, "Invalid condition operator: NullIfExists."),
    (cond({"ForSomeValues:StringEquals": {"aws:k": "v"}}), K, "Invalid condition operator"),
    (cond({"StringEquals": {"k": "v"}}), K, "Actions/Conditions must be prefaced by a vendor"),
    (cond({"StringEquals": {"aws:k": []}}), K, "Condition StringEquals has an invalid value for aws:k: []."),
    (cond({"StringEquals": {"aws:k": None}}), K, "Condition StringEquals has an invalid value"),
    (cond({"NumericEquals": {"aws:k": "ten"}}), K, "Condition NumericEquals requires a number, not 'ten'."),
    (cond({"NumericEquals": {"aws:k": "${aws:n}"}}), K, "requires a number"),
    (cond({"Bool": {"aws:k": "yes"}}), K, "Condition Bool requires true or false, not 'yes'."),
    (cond({"Bool": {"aws:k": 1}}), K, "Condition Bool requires true or false"),
    (cond({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}), K, "requires an IP address or CIDR block"),
    (cond({"DateLessThan": {"aws:CurrentTime": "2024-13-01"}}), K, "requires an ISO 8601 date or epoch time"),
    (cond({"BinaryEquals": {"aws:k": "not base64!"}}), K, "requires a base64-encoded value"),
    (cond({"ArnLike": {"aws:SourceArn": "arn:aws:s3"}}), K, "Condition ArnLike requires an ARN"),
    (cond({"ForAllValues:StringEquals": {"kms:EncryptionContext:Department": "IT"}}), K, OVERLY_EC),
    (cond({"ForAllValues:StringEquals": {"aws:RequestTag/Env": "x"}}), K, "OverlyPermissiveCondition:RequestTag: "),
    (cond({"ForAllValues:StringEquals": {"kms:CallerAccount": ACCT}}), K,
     "OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued condition key"),
]


@pytest.mark.parametrize("text,resource_policy,message", MALFORMED)
def test_malformed(text, resource_policy, message):
    with pytest.raises(AWSError) as info:
        parse_policy(text, resource_policy=resource_policy, principal_exists=lambda arn: "ghost" not in arn)
    assert info.value.code == "MalformedPolicyDocumentException" and message in info.value.message


def test_valid_principals_and_versions_accepted():
    ok = [ACCT, ROOT, ALICE, ROLE, f"arn:aws:iam::{ACCT}:role/path/to/R", f"arn:aws:sts::{ACCT}:assumed-role/R/session",
          f"arn:aws:sts::{ACCT}:federated-user/bob"]
    keypolicy(stmt(Principal={"AWS": ok, "Service": "ec2.amazonaws.com", "Federated": "cognito-identity.amazonaws.com"},
                   Sid="valid"))
    asked = []
    keypolicy(stmt(Principal={"AWS": [ALICE, f"arn:aws:sts::{ACCT}:assumed-role/R/s", ACCT]}),
              exists=lambda arn: asked.append(arn) or True)
    assert asked == [ALICE, f"arn:aws:iam::{ACCT}:role/R"]  # accounts always exist
    for version in ("2008-10-17", None):
        identity(stmt(), version=version)
    assert parse_policy('{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}', resource_policy=False)
    assert keypolicy({"Sid": "", **stmt(Principal="*")}, {"Sid": "", **stmt(Principal="*")})  # empty Sids may repeat


# --- examples from the KMS developer guide ("conditions-kms") --------------------------------
def guide(statement: dict, context: dict, action="kms:GenerateDataKey") -> tuple[bool, bool]:
    r = keypolicy({"Principal": {"AWS": ROLE}, "Resource": "*", "Action": action, **statement}).evaluate(
        req(context, action=action, principal=ROLE), resource_policy=True)
    return r.denied, r.allowed


def test_kms_guide_examples():
    app_keys = {"StringEquals": {"kms:EncryptionContext:AppName": "ExampleApp"},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["AppName"]}}
    app = {"Effect": "Allow", "Condition": app_keys}
    ec = {"kms:encryptioncontext:appname": "ExampleApp"}
    assert guide(app, {**ec, "kms:encryptioncontextkeys": ["AppName"]}) == (False, True)
    assert guide(app, {**ec, "kms:encryptioncontextkeys": ["AppName", "x"]}) == (False, False)
    assert guide(app, {}) == (False, False)  # ForAllValues alone would pass; the EncryptionContext condition fails
    any_key = {"Effect": "Allow", "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}}}
    assert guide(any_key, {"kms:encryptioncontextkeys": ["AppName", "Project"]})[1]
    assert not guide(any_key, {"kms:encryptioncontextkeys": ["appname"]})[1] and not guide(any_key, {})[1]
    need_ec = {"Effect": "Allow", "Condition": {"Null": {"kms:EncryptionContextKeys": False}}}
    assert guide(need_ec, {"kms:encryptioncontextkeys": ["a"]})[1] and not guide(need_ec, {})[1]
    stages = {"kms:EncryptionContext:Stage": ["Restricted", "Production"]}
    stage = {"Effect": "Deny", "Condition": {"StringEquals": stages}}
    assert guide(stage, {"kms:encryptioncontext:stage": "Production"})[0]
    assert not guide(stage, {"kms:encryptioncontext:stage": "Test"})[0]
    ebs = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
           "Condition": {"StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": "ec2.us-west-2.amazonaws.com"}}}
    assert not guide(ebs, {"kms:calleraccount": ACCT})[1]  # no AWS service behind trentd: ViaService is absent
    assert guide(ebs, {"kms:calleraccount": ACCT, "kms:viaservice": "ec2.us-west-2.amazonaws.com"})[1]
    algo = {"Effect": "Deny", "Condition": {"StringNotEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}}
    assert guide(algo, {"kms:encryptionalgorithm": "SYMMETRIC_DEFAULT"}, action="kms:Encrypt")[0]
    assert not guide(algo, {"kms:encryptionalgorithm": "RSAES_OAEP_SHA_256"}, action="kms:Encrypt")[0]
    bypass = {"Effect": "Allow", "Condition": {"Null": {"kms:BypassPolicyLockoutSafetyCheck": True}}}
    assert guide(bypass, {}, action="kms:PutKeyPolicy")[1]
    assert not guide(bypass, {"kms:bypasspolicylockoutsafetycheck": True}, action="kms:PutKeyPolicy")[1]
    ranges = ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]
    ip = {"Effect": "Allow", "Condition": {"IpAddress": {"aws:SourceIp": ranges}}}
    assert guide(ip, {"aws:sourceip": "203.0.113.9"})[1] and guide(ip, {"aws:sourceip": "2001:db8:1234:5678::9"})[1]
    assert not guide(ip, {"aws:sourceip": "192.0.2.1"})[1] and not guide(ip, {})[1]


def test_default_policy_evaluates_in_microseconds():
    p, r = compile_cached(default_policy(ACCT), resource_policy=True), req()
    start = time.perf_counter()
    for _ in range(20_000):
        p.evaluate(r, resource_policy=True)
    per_call = (time.perf_counter() - start) / 20_000
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} µs per evaluation"
    assert compile_cached(default_policy(ACCT), resource_policy=True) is p


# --- properties ------------------------------------------------------------------------------
KEYS = ["aws:k", "aws:tagkeys", "aws:v"]
CONDITIONS = [{op: {"aws:k": value}} for op, value, _, _ in OPERATOR_CASES[::3]] + [
    {op: {"aws:tagkeys": value}} for op, value, _ in ABSENT_CASES] + [
    {"StringLike": {"aws:k": "${aws:v}*"}}, {"ArnLike": {"aws:k": "arn:aws:iam::${aws:v}:role/*"}},
    {"Bool": {"aws:k": "${aws:v}"}}, {"ForAllValues:StringEquals": {"aws:tagkeys": "${aws:v}"}}]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8)
           | st.datetimes() | st.sampled_from(["203.0.113.7", "ExampleApp", "2024-05-01", "10", "true", ROLE, ACCT]))
ANY_VALUE = st.recursive(SCALARS, lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=2), v),
                         max_leaves=6)
CONTEXTS = st.dictionaries(st.sampled_from(KEYS), ANY_VALUE, max_size=3)
PRINCIPALS = st.sampled_from(["*", {"AWS": ACCT}, {"AWS": ALICE}, {"AWS": ROLE}, {"AWS": f"arn:aws:iam::{OTHER}:root"}])


def _statement(effect, principal, action, conditions) -> dict:
    merged = {op: keys for c in conditions for op, keys in c.items()}
    return {"Effect": effect, "Principal": principal, "Action": action, "Resource": "*",
            **({"Condition": merged} if merged else {})}


STATEMENTS = st.builds(_statement, st.sampled_from(["Allow", "Deny"]), PRINCIPALS,
                       st.sampled_from(["kms:*", "kms:Sign"]), st.lists(st.sampled_from(CONDITIONS), max_size=2))
CALLERS = st.sampled_from([(ALICE, ACCT), (ROLE, ACCT), (BOB, OTHER)])


def granted(statements, caller, context) -> bool:
    r = keypolicy(*statements).evaluate(req(context, principal=caller[0], account=caller[1]), resource_policy=True)
    return not r.denied and (r.allowed or r.allowed_account)


@PROPS
@given(st.lists(STATEMENTS, max_size=4), STATEMENTS, CALLERS, CONTEXTS)
def test_adding_a_deny_never_grants(statements, extra, caller, context):
    if granted(statements + [{**extra, "Effect": "Deny"}], caller, context):
        assert granted(statements, caller, context)


@PROPS
@given(st.lists(STATEMENTS, min_size=1, max_size=4), st.data(), CALLERS, CONTEXTS)
def test_removing_an_allow_never_grants(statements, data, caller, context):
    allows_at = [i for i, s in enumerate(statements) if s["Effect"] == "Allow"]
    if allows_at:
        i = data.draw(st.sampled_from(allows_at))
        if granted(statements[:i] + statements[i + 1:], caller, context):
            assert granted(statements, caller, context)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(CONDITIONS), CONTEXTS, st.sampled_from(["Allow", "Deny"]))
def test_evaluation_never_raises(condition, context, effect):
    r = identity(stmt(effect, Condition=condition)).evaluate(req(context), resource_policy=False)
    assert r.denied in (True, False) and r.allowed in (True, False)


@PROPS
@given(st.text(max_size=6), st.text(max_size=6) | st.lists(st.text(max_size=3), min_size=1, max_size=3))
def test_positive_and_negated_operators_are_complements(policy_value, request_value):
    ctx = {"aws:k": request_value}
    for positive, negated in (("StringEquals", "StringNotEquals"), ("StringLike", "StringNotLike")):
        assert allows({positive: {"aws:k": policy_value}}, ctx) != allows({negated: {"aws:k": policy_value}}, ctx)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
                           lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=3), v, max_size=2))
OPERATOR_NAMES = st.sampled_from(["StringEquals", "ForAllValues:ArnLike", "NumericLessThanIfExists", "Null", "Bool",
                                  "IpAddress", "DateEquals", "BinaryEquals", "ForAnyValue:StringNotLike", "Nope"])


@PROPS
@given(st.dictionaries(OPERATOR_NAMES, st.dictionaries(st.sampled_from(["aws:k", "k", "kms:EncryptionContext:x"]),
                                                       JSON_VALUES, max_size=2), max_size=2), CONTEXTS)
def test_parsing_only_ever_raises_malformed(condition, context):
    try:
        policy = identity(stmt(Condition=condition))
    except AWSError as err:
        assert err.code == "MalformedPolicyDocumentException"
    else:
        policy.evaluate(req(context), resource_policy=False)
