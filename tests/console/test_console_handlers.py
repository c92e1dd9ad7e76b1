"""The web console over HTTP, against a real trentd (not --dev), on both stores: sign-in, sessions,
CSRF, headers, authorization as the signed-in principal, the pages and their forms, and audit.

Browser-level behaviour (a real Chromium) is in test_console_browser.py.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import requests

from trentd.testing.server import TrentdServer

from ..e2e.authz_world import access_denied, DENY_I, policy
from .client import ConsoleClient, alerts, audit_events, key_id_from, textarea

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
BAD_CREDENTIALS = "The access key ID or secret access key is not correct."
KMS_ALL = policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
AUDIT_READER = policy({"Effect": "Allow", "Action": ["kms:*", "trentd:ReadAudit"], "Resource": "*"})


def create_key(console: ConsoleClient, **fields) -> str:
    form = {"key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS",
            "description": "", "tags": "", "alias": "", **fields}
    response = console.post("/console/keys/new", form)
    assert response.status_code == 303, alerts(response)
    return key_id_from(response)


# --- entry, sign-in, cookies, headers ------------------------------------------------------------
def test_console_entry_redirects(console):
    assert console.get("/console").headers["location"] == "/console/"
    assert console.get("/console/").headers["location"] == "/console/signin"
    response = console.get("/console/keys")
    assert response.status_code == 303 and response.headers["location"].startswith("/console/signin")


def test_sign_in_sets_a_strict_session_cookie(console, console_server):
    console.get("/console/signin")
    response = console.post("/console/signin", {"access_key_id": console_server.admin_credentials()[0],
                                                "secret_access_key": console_server.admin_credentials()[1],
                                                "region": "us-east-1"})
    assert response.status_code == 303 and response.headers["location"] == "/console/keys"
    cookie = response.headers["set-cookie"]
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    name, value = name_value.split("=", 1)
    assert name == "trentd_console"
    assert len(value) >= 43  # 256 random bits, base64url
    assert set(attributes) == {"Path=/console/", "HttpOnly", "SameSite=Strict"}  # no Secure over plain HTTP
    page = console.get("/console/keys")
    assert page.status_code == 200
    assert value not in page.text  # the session id never reaches a page


def test_security_headers_on_every_console_response(admin_console):
    for path in ("/console", "/console/signin", "/console/keys", "/console/nope", "/console/static/console.css",
                 "/console/static/console.js", "/console/static/missing.css"):
        response = admin_console.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp, path
    page = admin_console.get("/console/keys").text
    assert "<script>" not in page and "<script src=\"/console/static/console.js\"" in page
    assert " on" + "click=" not in page and "style=" not in page  # nothing inline for the CSP to block


@pytest.mark.parametrize("which", ["wrong secret", "unknown key id", "empty"])
def test_bad_credentials_get_one_generic_message(console, console_server, which):
    access_key, secret = console_server.admin_credentials()
    form = {"wrong secret": (access_key, secret[:-1] + ("x" if secret[-1] != "x" else "y")),
            "unknown key id": ("AKIA" + "Z" * 16, secret), "empty": ("", "")}[which]
    console.get("/console/signin")
    response = console.post("/console/signin", {"access_key_id": form[0], "secret_access_key": form[1],
                                                "region": "us-east-1"})
    assert response.status_code == 400
    assert alerts(response) == [BAD_CREDENTIALS]
    assert "set-cookie" not in response.headers
    assert secret not in response.text


def test_a_secret_typed_as_the_access_key_id_is_hidden_in_the_audit_trail(console, console_server):
    # A person who pastes the secret into the access key field: AWS records a mistyped user name
    # at sign-in as HIDDEN_DUE_TO_SECURITY_REASONS, and so does trentd, for the key and the name.
    secret = console_server.admin_credentials()[1]
    console.get("/console/signin")  # the form, with its CSRF token
    response = console.post("/console/signin", {"access_key_id": secret, "secret_access_key": secret,
                                                "region": "us-east-1"})
    assert response.status_code == 400 and alerts(response) == [BAD_CREDENTIALS]
    failed = [e for e in audit_events(console_server) if e["eventName"] == "ConsoleLogin" and e.get("errorMessage")]
    assert failed[-1]["userIdentity"] == {"type": "Unknown", "accessKeyId": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                          "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    assert failed[-1]["responseElements"] == {"ConsoleLogin": "Failure"}
    assert not any(secret[:12] in json.dumps(e) for e in audit_events(console_server))
    # a well-formed access key id that does not exist is recorded as typed
    console.get("/console/signin")
    console.post("/console/signin", {"access_key_id": "AKIA" + "Q" * 16, "secret_access_key": "x",
                                     "region": "us-east-1"})
    failed = [e for e in audit_events(console_server) if e["eventName"] == "ConsoleLogin" and e.get("errorMessage")]
    assert failed[-1]["userIdentity"] == {"type": "Unknown", "accessKeyId": "AKIA" + "Q" * 16}


def test_sign_in_refuses_a_bad_region(console, console_server):
    access_key, secret = console_server.admin_credentials()
    console.get("/console/signin")
    response = console.post("/console/signin", {"access_key_id": access_key, "secret_access_key": secret,
                                                "region": "moon-base"})
    assert response.status_code == 400 and "valid Region" in response.text
    assert 'aria-describedby="region-error"' in response.text


def test_a_forged_cookie_is_no_session(console):
    console.http.cookies.set("trentd_console", "A" * 43, path="/console/")
    response = console.get("/console/keys")
    assert response.status_code == 303 and "session-ended" in response.headers["location"]


def test_sign_out_ends_the_session(admin_console):
    cookie = admin_console.http.cookies.get("trentd_console")
    response = admin_console.post("/console/signout", {})
    assert response.status_code == 303 and response.headers["location"] == "/console/signin?msg=signed-out"
    assert "Max-Age=0" in response.headers["set-cookie"]
    replay = requests.get(admin_console.url("/console/keys"), cookies={"trentd_console": cookie},
                          allow_redirects=False, timeout=10)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/console/signin")


def test_a_deleted_access_key_ends_its_console_sessions(console_server, world):
    user = world.make_users([(console_server.account, f"leaver-{uuid.uuid4().hex[:8]}", KMS_ALL)])
    user = next(iter(user.values()))
    client = ConsoleClient(console_server)
    client.sign_in(user.access_key, user.secret)
    assert client.get("/console/keys").status_code == 200
    world.cli("access-keys", "delete", "--access-key-id", user.access_key)
    time.sleep(1.2)  # the authenticator caches a lookup for one second
    response = client.get("/console/keys")
    assert response.status_code == 303 and response.headers["location"] == "/console/signin?msg=session-ended"


# --- CSRF and same-origin ---------------------------------------------------------------------------
@pytest.mark.parametrize("attack", ["no token", "wrong token", "other origin", "no origin", "other referer"])
def test_csrf_and_cross_origin_posts_are_refused(admin_console, attack):
    key_id = create_key(admin_console, description="csrf target")
    admin_console.get(f"/console/keys/{key_id}")
    kwargs = {
        "no token": dict(csrf=""),
        "wrong token": dict(csrf="x" * 43),
        "other origin": dict(origin="https://evil.example"),
        "no origin": dict(origin=None),
        "other referer": dict(origin=None, headers={"Referer": "https://evil.example/console/keys"}),
    }[attack]
    response = admin_console.post(f"/console/keys/{key_id}/disable", {}, **kwargs)
    assert response.status_code == 403
    assert alerts(response)
    assert "Enabled" in admin_console.get(f"/console/keys/{key_id}").text  # nothing happened


def test_a_same_origin_referer_without_origin_is_accepted(admin_console):
    key_id = create_key(admin_console)
    admin_console.get(f"/console/keys/{key_id}")
    response = admin_console.post(f"/console/keys/{key_id}/disable", {}, origin=None,
                                  headers={"Referer": admin_console.url(f"/console/keys/{key_id}")})
    assert response.status_code == 303


def test_another_sessions_token_is_refused(admin_console, console_server):
    other = ConsoleClient(console_server)
    other.sign_in_as_admin()
    key_id = create_key(admin_console)
    response = admin_console.post(f"/console/keys/{key_id}/disable", {}, csrf=other.csrf)
    assert response.status_code == 403


def test_form_size_and_type_are_limited(admin_console):
    big = admin_console.post("/console/keys/new", {"description": "x" * (300 * 1024)})
    assert big.status_code == 413
    response = admin_console.http.post(admin_console.url("/console/keys/new"), data=b"{}",
                                       headers={"Origin": admin_console.base, "Content-Type": "application/json"},
                                       allow_redirects=False, timeout=10)
    assert response.status_code == 415


# --- authorization as the signed-in principal ---------------------------------------------------
def test_a_principal_without_rights_sees_access_denied(console_server, world, admin_console):
    key_id = create_key(admin_console, description="not yours")
    name = f"nobody-{uuid.uuid4().hex[:8]}"
    user = world.make_users([(console_server.account, name, None)])[name]
    client = ConsoleClient(console_server)
    client.sign_in(user.access_key, user.secret)

    keys = client.get("/console/keys")
    assert keys.status_code == 403
    assert alerts(keys) == ["AccessDeniedException: " + access_denied(
        user.arn, "kms:ListKeys", "*", DENY_I)]
    detail = client.get(f"/console/keys/{key_id}")
    assert detail.status_code == 403
    assert "is not authorized to perform: kms:DescribeKey" in alerts(detail)[0]
    created = client.post("/console/keys/new", {"key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT",
                                                 "origin": "AWS_KMS"})
    assert created.status_code == 403 and "kms:CreateKey" in alerts(created)[0]
    action = client.post(f"/console/keys/{key_id}/disable", {})
    assert action.status_code == 403 and "kms:DisableKey" in alerts(action)[0]
    audit = client.get("/console/audit")
    assert audit.status_code == 403
    assert alerts(audit) == ["AccessDeniedException: " + access_denied(
        user.arn, "trentd:ReadAudit", f"arn:aws:trentd:us-east-1:{console_server.account}:audit", DENY_I)]
    assert "Enabled" in admin_console.get(f"/console/keys/{key_id}").text


def test_audit_page_needs_read_audit_and_shows_only_the_readers_account(console_server, world):
    other_account = "444455556666"
    names = {f"kmsonly-{uuid.uuid4().hex[:6]}": KMS_ALL, f"auditor-{uuid.uuid4().hex[:6]}": AUDIT_READER}
    users = world.make_users([(console_server.account, n, p) for n, p in names.items()]
                             + [(other_account, "outsider-" + uuid.uuid4().hex[:6], AUDIT_READER)])
    kms_only, auditor, outsider = users.values()
    for user in users.values():
        user.kms.create_key(Description=f"made by {user.name}")

    client = ConsoleClient(console_server)
    client.sign_in(kms_only.access_key, kms_only.secret)
    assert client.get("/console/audit").status_code == 403

    client = ConsoleClient(console_server)
    client.sign_in(auditor.access_key, auditor.secret)
    page = client.get("/console/audit?principal=" + requests.utils.quote(auditor.arn))
    assert page.status_code == 200
    assert "CreateKey" in page.text and auditor.arn in page.text
    assert outsider.arn not in client.get("/console/audit").text  # another account's events stay hidden

    client = ConsoleClient(console_server)
    client.sign_in(outsider.access_key, outsider.secret)
    page = client.get("/console/audit").text
    assert outsider.arn in page and auditor.arn not in page


# --- pages and forms ------------------------------------------------------------------------------
def test_keys_list_filters_sorts_and_pages(console_server):
    region = "eu-west-3"  # a Region of this test's own: only its keys are listed
    kms = console_server.client(region=region)
    made = []
    for n in range(23):
        made.append(kms.create_key(Description=f"bulk key {n:02d}")["KeyMetadata"]["KeyId"])
    for n in range(3):
        kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description=f"mac key {n}")
    kms.disable_key(KeyId=made[0])
    kms.disable_key(KeyId=made[1])
    kms.create_alias(AliasName="alias/findme-console", TargetKeyId=made[5])

    client = ConsoleClient(console_server)
    client.sign_in(*console_server.admin_credentials(), region=region)

    def rows(path: str) -> list[str]:
        response = client.get(path)
        assert response.status_code == 200
        return re.findall(r'<th scope="row"><a href="/console/keys/([0-9a-f-]+)"', response.text)

    first, second = rows("/console/keys"), rows("/console/keys?page=2")
    assert len(first) == 20 and len(second) == 6 and not set(first) & set(second)
    assert len(rows("/console/keys?spec=HMAC_256")) == 3
    assert sorted(rows("/console/keys?state=Disabled")) == sorted(made[:2])
    assert rows("/console/keys?q=findme") == [made[5]]
    assert rows("/console/keys?q=BULK+KEY+07") == [made[7]]
    assert len(rows("/console/keys?usage=GENERATE_VERIFY_MAC&state=Enabled")) == 3
    by_description = rows("/console/keys?sort=description&order=asc&q=bulk")
    assert by_description[:3] == made[:3]
    assert rows("/console/keys?sort=description&order=desc&q=bulk")[:2] == [made[22], made[21]]
    assert 'aria-sort="ascending"' in client.get("/console/keys?sort=description&order=asc").text


def test_an_invalid_policy_shows_the_error_and_keeps_the_text(admin_console):
    key_id = create_key(admin_console)
    typed = '{"Version": "2012-10-17", "Statement": [ {"Effect": "Allow", "Principal": oops} ]}'
    response = admin_console.post(f"/console/keys/{key_id}/policy", {"policy": typed})
    assert response.status_code == 400
    assert textarea(response, "policy") == typed
    error = re.search(r'<p class="field-error" id="policy-error" role="alert">(.*?)</p>', response.text, re.DOTALL)
    assert error and error.group(1).startswith("MalformedPolicyDocumentException")
    assert 'aria-describedby="policy-error"' in response.text

    unknown = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                          "Resource": "*", "Principal": {"AWS": "arn:aws:iam::111122223333:user/ghost"}}]})
    response = admin_console.post(f"/console/keys/{key_id}/policy", {"policy": unknown})
    assert response.status_code == 400 and textarea(response, "policy") == unknown
    assert "MalformedPolicyDocumentException" in alerts(response)[0]


def test_a_valid_policy_is_saved(admin_console, console_server):
    key_id = create_key(admin_console)
    document = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "console", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
         "Principal": {"AWS": f"arn:aws:iam::{console_server.account}:root"}}]})
    response = admin_console.post(f"/console/keys/{key_id}/policy", {"policy": document})
    assert response.status_code == 303 and response.headers["location"].endswith("msg=policy-saved")
    page = admin_console.get(response.headers["location"])
    assert json.loads(textarea(page, "policy")) == json.loads(document)
    assert alerts(page) == ["The key policy was saved."]


def test_key_lifecycle_and_rotation(admin_console, console_server):
    key_id = create_key(admin_console, description="lifecycle", tags="team=crypto\nenv=test", alias="lifecycle-" +
                        uuid.uuid4().hex[:6])
    page = admin_console.get(f"/console/keys/{key_id}")
    assert "team" in page.text and "crypto" in page.text and "alias/lifecycle-" in page.text
    kms = console_server.client()

    def post(action: str, **form) -> requests.Response:
        return admin_console.post(f"/console/keys/{key_id}/{action}", form)

    assert post("disable").status_code == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    assert post("enable").status_code == 303
    assert post("rotate").status_code == 303
    assert len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    assert post("enable-rotation", period="180").status_code == 303
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 180
    page = admin_console.get(f"/console/keys/{key_id}")
    assert 'id="rotation-status">Enabled' in page.text and "ON_DEMAND" in page.text
    assert post("disable-rotation").status_code == 303
    bad = post("enable-rotation", period="12")
    assert bad.status_code == 400 and 'aria-describedby="period-error"' in bad.text

    short = post("schedule-deletion", window="6")
    assert short.status_code == 400 and "from 7 to 30" in short.text
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert post("schedule-deletion", window="7").status_code == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert post("cancel-deletion").status_code == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    refused = post("rotate")  # a disabled key does not rotate: the error is on the page
    assert refused.status_code == 400 and alerts(refused)[0].startswith("DisabledException: ")


def test_grants_are_listed_and_revoked(admin_console, console_server):
    key_id = create_key(admin_console)
    kms = console_server.client()
    grant = kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{console_server.account}:user/admin",
                             Operations=["Encrypt"], Name="console-test")
    page = admin_console.get(f"/console/keys/{key_id}")
    assert "console-test" in page.text and grant["GrantId"] in page.text
    response = admin_console.post(f"/console/keys/{key_id}/revoke-grant", {"grant_id": grant["GrantId"]})
    assert response.status_code == 303
    assert kms.list_grants(KeyId=key_id)["Grants"] == []


def test_create_key_with_every_option(admin_console, console_server):
    key_id = create_key(admin_console, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY", multi_region="on",
                        description="an ecc key")
    meta = console_server.client().describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"], meta["MultiRegion"]) == ("ECC_NIST_P256", "SIGN_VERIFY", True)
    external = create_key(admin_console, origin="EXTERNAL")
    assert console_server.client().describe_key(KeyId=external)["KeyMetadata"]["KeyState"] == "PendingImport"
    bad = admin_console.post("/console/keys/new", {"key_spec": "HMAC_256", "key_usage": "ENCRYPT_DECRYPT",
                                                   "origin": "AWS_KMS", "description": "kept text"})
    assert bad.status_code == 400 and alerts(bad)[0].startswith("ValidationException")
    assert 'value="kept text"' in bad.text
    tags = admin_console.post("/console/keys/new", {"key_spec": "SYMMETRIC_DEFAULT", "tags": "no equals sign"})
    assert tags.status_code == 400 and 'aria-describedby="tags-error"' in tags.text
    specs = re.findall(r'<option value="([A-Z0-9_]+)" data-usages=', admin_console.get("/console/keys/new").text)
    from trentd.crypto.specs import KEY_SPECS

    assert specs == [name for name, spec in KEY_SPECS.items() if spec.supported]


def test_aliases_page(admin_console):
    key_id = create_key(admin_console)
    name = "alias/console-" + uuid.uuid4().hex[:8]
    response = admin_console.post("/console/aliases", {"alias_name": name, "target_key": key_id})
    assert response.status_code == 303
    page = admin_console.get("/console/aliases")
    assert name in page.text and key_id in page.text
    duplicate = admin_console.post("/console/aliases", {"alias_name": name, "target_key": key_id})
    assert duplicate.status_code == 400 and "AlreadyExistsException" in alerts(duplicate)[0]
    assert admin_console.post("/console/aliases/delete", {"alias_name": name}).status_code == 303
    assert name not in admin_console.get("/console/aliases").text


def test_tools_encrypt_decrypt_sign_verify(admin_console):
    key_id = create_key(admin_console)
    encrypted = admin_console.post("/console/tools", {"operation": "Encrypt", "key_id": key_id,
                                                      "text": "hello console", "context": '{"purpose": "test"}'})
    assert encrypted.status_code == 200
    ciphertext = textarea(encrypted, "result-value")
    assert "hello console" not in ciphertext
    decrypted = admin_console.post("/console/tools", {"operation": "Decrypt", "blob": ciphertext,
                                                      "context": '{"purpose": "test"}'})
    assert textarea(decrypted, "result-value") == "hello console"
    wrong = admin_console.post("/console/tools", {"operation": "Decrypt", "blob": ciphertext})
    assert wrong.status_code == 400 and "InvalidCiphertextException" in alerts(wrong)[0]
    not_b64 = admin_console.post("/console/tools", {"operation": "Decrypt", "blob": "***"})
    assert not_b64.status_code == 400 and "must be base64" in not_b64.text

    signer = create_key(admin_console, key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
    signed = admin_console.post("/console/tools", {"operation": "Sign", "key_id": signer, "text": "msg",
                                                   "algorithm": "ECDSA_SHA_256"})
    signature = textarea(signed, "result-value")
    valid = admin_console.post("/console/tools", {"operation": "Verify", "key_id": signer, "text": "msg",
                                                  "signature": signature, "algorithm": "ECDSA_SHA_256"})
    assert "Valid: the signature matches" in textarea(valid, "result-value")
    invalid = admin_console.post("/console/tools", {"operation": "Verify", "key_id": signer, "text": "other",
                                                    "signature": signature, "algorithm": "ECDSA_SHA_256"})
    assert "Not valid" in textarea(invalid, "result-value")


def test_region_switch(admin_console, console_server):
    kms = console_server.client(region="ap-south-2")
    key_id = kms.create_key(Description="in ap-south-2")["KeyMetadata"]["KeyId"]
    assert key_id not in admin_console.get("/console/keys").text
    response = admin_console.post("/console/region", {"region": "ap-south-2"})
    assert response.status_code == 303
    page = admin_console.get("/console/keys")
    assert key_id in page.text and "Keys in ap-south-2" in page.text
    assert admin_console.post("/console/region", {"region": "nowhere"}).status_code == 400


# --- audit ---------------------------------------------------------------------------------------
def test_console_calls_are_audited_like_api_calls(admin_console, console_server):
    key_id = create_key(admin_console, description="audited")
    api_key = console_server.client().create_key(Description="via the api")["KeyMetadata"]["KeyId"]
    events = audit_events(console_server)
    by_console = next(e for e in events if e["eventName"] == "CreateKey"
                      and (e.get("responseElements") or {}).get("keyMetadata", {}).get("keyId") == key_id)
    by_api = next(e for e in events if e["eventName"] == "CreateKey"
                  and (e.get("responseElements") or {}).get("keyMetadata", {}).get("keyId") == api_key)
    assert by_console["userAgent"] == "trentd-console"
    assert by_console["userIdentity"] == by_api["userIdentity"]
    assert list(by_console) == list(by_api)  # the same members, in the same order
    assert by_console["requestParameters"]["description"] == "audited"
    logins = [e for e in events if e["eventName"] == "ConsoleLogin"]
    assert logins and logins[-1]["eventSource"] == "signin.amazonaws.com"
    assert logins[-1]["responseElements"] == {"ConsoleLogin": "Success"}

    page = admin_console.get(f"/console/audit?key={key_id}")
    assert page.status_code == 200
    assert "CreateKey" in page.text and "trentd-console" in page.text


def test_audit_page_filters_and_pages(admin_console, console_server):
    key_id = create_key(admin_console)
    kms = console_server.client()
    for _ in range(55):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with pytest.raises(Exception):
        kms.decrypt(CiphertextBlob=b"\x01" * 60)
    page = admin_console.get(f"/console/audit?key={key_id}&operation=Encrypt")
    assert page.status_code == 200
    assert "56 events" not in page.text and "55 events, page 1 of 2" in page.text
    assert len(re.findall(r'<td class="event-name">Encrypt', page.text)) == 50
    second = admin_console.get(f"/console/audit?key={key_id}&operation=Encrypt&page=2")
    assert len(re.findall(r'<td class="event-name">Encrypt', second.text)) == 5
    errors = admin_console.get("/console/audit?error=on&operation=Decrypt&since=5m")
    assert "InvalidCiphertextException" in errors.text
    writes = admin_console.get(f"/console/audit?key={key_id}&writes=on").text
    assert "CreateKey" in writes and '<td class="event-name">Encrypt' not in writes
    times = re.findall(r'<th scope="row" class="nowrap">(\d{4}-[^<]+)</th>', admin_console.get("/console/audit").text)
    assert len(times) == 50
    assert times == sorted(times, reverse=True)  # newest first
    bad = admin_console.get("/console/audit?since=yesterday-ish")
    assert bad.status_code == 400 and 'aria-describedby="filter-error"' in bad.text


# --- off switch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["flag", "environment"])
def test_no_console_gives_404(how):
    options = {"flag": dict(extra_args=("--no-console",)), "environment": dict(env={"TRENTD_NO_CONSOLE": "1"})}[how]
    with TrentdServer(**options) as server:
        for path in ("/console", "/console/", "/console/signin", "/console/static/console.css"):
            assert requests.get(server.url + path, allow_redirects=False, timeout=10).status_code == 404, path
        server.client().list_keys()  # the API still answers


def test_dev_mode_signs_in_by_account_id():
    with TrentdServer(dev=True) as server:
        client = ConsoleClient(server)
        page = client.get("/console/signin")
        assert 'name="account"' in page.text and "secret_access_key" not in page.text
        bad = client.post("/console/signin", {"account": "12345", "region": "us-east-1"})
        assert bad.status_code == 400 and 'aria-describedby="account-error"' in bad.text
        assert client.post("/console/signin", {"account": "222233334444", "region": "eu-west-1"}).status_code == 303
        page = client.get("/console/keys")
        assert "arn:aws:iam::222233334444:user/admin" in page.text and "Keys in eu-west-1" in page.text
        key_id = create_key(client, description="dev key")
        meta = server.client(access_key="222233334444", secret_key="dev", region="eu-west-1").describe_key(KeyId=key_id)["KeyMetadata"]
        assert meta["Description"] == "dev key"


def test_the_cookie_is_secure_over_https():
    with TrentdServer(dev=False, tls="self-signed") as server:
        client = ConsoleClient(server)
        client.http.verify = str(server.ca_bundle)
        client.http.trust_env = False  # else REQUESTS_CA_BUNDLE, when set, wins over verify
        form = client.get("/console/signin")
        assert "; Secure" in form.headers["set-cookie"]  # the sign-in form's cookie (its CSRF token)
        response = client.post("/console/signin", {"access_key_id": server.admin_credentials()[0],
                                                   "secret_access_key": server.admin_credentials()[1],
                                                   "region": "us-east-1"})
        assert response.status_code == 303
        assert "; Secure" in response.headers["set-cookie"]
