"""The IAM API's shared rules without a server: ids, paths, paging markers, URL-encoded documents,
and the operation table against botocore's IAM model."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from trentd.auth.policy import checked_identity_policy
from trentd.errors import AWSError
from trentd.iam import common
from trentd.iam.operations import OPERATIONS
from trentd.protocol.model import load_service
from trentd.protocol.redaction import RULES


def test_entity_ids_have_aws_prefixes_and_are_stable():
    for kind, prefix in common.KIND_PREFIX.items():
        arn = f"arn:aws:iam::111122223333:{kind}/x"
        made = common.entity_id(kind, arn)
        assert re.fullmatch(prefix + r"[A-Z0-9]{17}", made), made
        assert common.entity_id(kind, arn) == made
        assert common.entity_id(kind, arn + "y") != made


def test_paths():
    assert common.checked_path(None) == "/"
    assert common.checked_path("/a/b/") == "/a/b/"
    for bad in ("a/", "/a"):
        with pytest.raises(AWSError) as info:
            common.checked_path(bad)
        assert info.value.code == "ValidationError"
    assert common.entity_arn("111122223333", "user", "bob", "/a/") == "arn:aws:iam::111122223333:user/a/bob"


def test_paging_walks_every_item_once():
    items = list(range(7))
    seen, marker = [], None
    while True:
        out = common.page(items, {"MaxItems": 3, **({"Marker": marker} if marker else {})}, "Items")
        seen += out["Items"]
        if not out["IsTruncated"]:
            assert "Marker" not in out
            break
        marker = out["Marker"]
    assert seen == items
    with pytest.raises(AWSError) as info:
        common.page(items, {"Marker": "garbage"}, "Items")
    assert info.value.code == "InvalidInput"


def test_documents_are_url_encoded_json():
    document = json.dumps({"Statement": [{"Condition": {"StringEquals": {"k": "a b+c&d/é"}}}]})
    wire = common.encoded(document)
    assert "+" not in wire and " " not in wire and "%20" in wire
    assert urllib.parse.unquote(wire) == document


def test_malformed_identity_policy_is_iams_error():
    with pytest.raises(AWSError) as info:
        checked_identity_policy('{"Statement": 1}')
    assert info.value.code == "MalformedPolicyDocument"


def test_every_row_is_an_operation_of_the_model():
    model = load_service("iam")
    assert all(model.operation(name) is not None for name in OPERATIONS)
    assert all(row.action == f"iam:{name}" for name, row in OPERATIONS.items())
    reads = {name for name, row in OPERATIONS.items() if row.audit.read_only}
    assert "GetUser" in reads and "SimulateCustomPolicy" in reads and "CreateUser" not in reads


def test_audit_never_shows_iam_secrets():
    """IAM's request members are an allow-list: no password, private key or secret is logged, and
    no answer is shown (CreateAccessKey's SecretAccessKey)."""
    rules = RULES["iam"]
    secrets = {"Password", "NewPassword", "OldPassword", "SecretAccessKey", "PrivateKey", "SSHPublicKeyBody",
               "CertificateBody", "AuthenticationCode1", "AuthenticationCode2", "SAMLMetadataDocument"}
    assert not secrets & rules.logged and not rules.hashed
    assert all(not row.audit.response_members for row in OPERATIONS.values())
    view = load_service("iam").operation("CreateLoginProfile").audit
    assert view.parameters({"UserName": "u", "Password": "hunter2"}) == {"userName": "u"}
