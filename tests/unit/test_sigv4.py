"""Differential tests for trentd.auth.sigv4: real signers (botocore, curl) sign, trentd verifies."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from trentd.auth import sigv4
from trentd.errors import AWSError

AK, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
T0 = datetime(2026, 6, 27, 14, 0, 0, tzinfo=timezone.utc)  # signing time, 20260627T140000Z
HOST = "localhost:4599"
JSON = "application/x-amz-json-1.1"
MISMATCH = ("InvalidSignatureException", sigv4.MSG_MISMATCH)


class Req:
    """A request as the server receives it: raw (bytes) header pairs in wire order."""

    def __init__(self, method, path, query, headers, body):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body

    def header(self, name):
        return next(v.decode() for k, v in self.headers if k == name.encode())

    def replace(self, name, value):
        """Change (or, with value None, drop) every copy of a header; add it if absent."""
        out = [(k, v) for k, v in self.headers if k != name.encode()]
        if value is not None:
            out.append((name.encode(), value.encode()))
        return Req(self.method, self.path, self.query, out, self.body)

    def with_auth(self, auth):
        return self.replace("authorization", auth)

    def check(self, *, secret=SECRET, now=T0, **kw):
        cred = sigv4.parse(self.headers, now=now, **kw)
        sigv4.verify(cred, method=self.method, path=self.path, query=self.query,
                     headers=self.headers, body=self.body, secret=secret)
        return cred


def sign(body=b"{}", target="TrentService.Encrypt", *, service="kms", region="us-east-1", token=None,
         when=T0, method="POST", path="/", query="", extra=(), content_type=JSON, date_header=False,
         unsigned=(), secret=SECRET) -> Req:
    """Sign with botocore exactly as the SDK would, then add what the HTTP client adds unsigned."""
    headers = []
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    if target is not None:
        headers.append(("X-Amz-Target", target))
    headers += list(extra)
    if date_header:
        headers.append(("Date", "placeholder"))  # botocore rewrites it and then signs with Date
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        req.headers[name] = value  # email.message semantics: a repeated name is appended, not replaced
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(AK, secret, token), service, region).add_auth(req)
    raw = [(k.lower().encode(), v.encode()) for k, v in req.headers.items()]
    raw += [(b"host", HOST.encode()), (b"user-agent", b"Boto3/1.44 md/x"),
            (b"accept-encoding", b"identity")]  # unsigned, added by urllib3
    raw += [(k.lower().encode(), v.encode()) for k, v in unsigned]
    return Req(method, path.encode(), query.encode(), raw, body)


def rejects(req, code, message=None, *, exact=True, **kw):
    with pytest.raises(AWSError) as ei:
        req.check(**kw)
    assert ei.value.code == code, ei.value
    assert ei.value.status == 400
    if message is not None:
        assert (ei.value.message == message) if exact else (message in ei.value.message), ei.value.message
    return ei.value


# ---------------------------------------------------------------- happy paths


def test_botocore_kms_request_verifies():
    cred = sign(b'{"KeyId":"alias/a","Plaintext":"aGk="}').check()
    assert (cred.access_key_id, cred.date, cred.region, cred.service) == (AK, "20260627", "us-east-1", "kms")
    assert cred.signed_headers == ("content-type", "host", "x-amz-date", "x-amz-target")
    assert cred.amz_date == T0 and cred.timestamp == "20260627T140000Z" and cred.security_token is None


def test_mapping_headers_any_case_verify():
    req = sign()
    as_map = {k.decode().title(): v.decode() for k, v in req.headers}
    cred = sigv4.parse(as_map, now=T0)
    sigv4.verify(cred, method="POST", path="/", query="", headers=as_map, body=req.body, secret=SECRET)


def test_normalized_headers_are_reused():
    req = sign()
    h = sigv4.normalize_headers(req.headers)
    assert sigv4.normalize_headers(h) is h
    sigv4.verify(sigv4.parse(h, now=T0), method="POST", path=b"/", headers=h, body=req.body, secret=SECRET)


def test_js_sdk_style_signed_headers():
    extra = [("amz-sdk-invocation-id", "0b5c2a4e-8f1f-4a5e-9b0e-3c0f2b1d7c11"),
             ("amz-sdk-request", "attempt=1; max=3"), ("Content-Length", "2"),
             ("x-amz-user-agent", "aws-sdk-js/3.600.0 ua/2.1 os/linux lang/js")]
    cred = sign(extra=extra).check()
    assert ";".join(cred.signed_headers) == (
        "amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target;x-amz-user-agent")


def test_terraform_style_header_with_inner_spaces():
    # "attempt=1;   max=25" style values: trimmed and inner runs collapsed on both sides
    sign(extra=[("amz-sdk-request", "  attempt=1;   max=25  ")]).check()


def test_repeated_headers_are_joined():
    req = sign(extra=[("X-Custom", "  a   b  "), ("X-Custom", "c")])
    assert [v for k, v in req.headers if k == b"x-custom"] == [b"  a   b  ", b"c"]
    assert "x-custom" in req.check().signed_headers
    # order of repeats matters: swapping them breaks the signature
    swapped = req.replace("x-custom", None)
    swapped.headers += [(b"x-custom", b"c"), (b"x-custom", b"  a   b  ")]
    rejects(swapped, *MISMATCH)


def test_security_token():
    req = sign(token="FQoGZXIvYXdzEXAMPLETOKEN==")
    cred = req.check()
    assert cred.security_token == "FQoGZXIvYXdzEXAMPLETOKEN=="
    assert "x-amz-security-token" in cred.signed_headers
    rejects(req.replace("x-amz-security-token", "FQoGZXIvYXdzOTHERTOKEN=="), *MISMATCH)


def test_sts_query_request():
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    cred = sign(body, target=None, service="sts", content_type="application/x-www-form-urlencoded; charset=utf-8").check()
    assert cred.service == "sts" and cred.signed_headers == ("content-type", "host", "x-amz-date")


def test_date_header_instead_of_x_amz_date():
    req = sign(date_header=True)
    assert not any(k == b"x-amz-date" for k, _ in req.headers)
    assert req.header("date") == "Sat, 27 Jun 2026 14:00:00 -0000"  # botocore's formatdate()
    cred = req.check()
    assert cred.timestamp == "20260627T140000Z" and "date" in cred.signed_headers


def test_signed_content_sha256_header():
    body = b'{"KeyId":"k"}'
    good = sign(body, extra=[("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest())])
    assert "x-amz-content-sha256" in good.check().signed_headers
    rejects(sign(body, extra=[("X-Amz-Content-SHA256", hashlib.sha256(b"other").hexdigest())]),
            "InvalidSignatureException", sigv4.MSG_PAYLOAD)
    rejects(sign(body, extra=[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")]),
            "InvalidSignatureException", sigv4.MSG_PAYLOAD)


def test_get_with_path_and_query():
    # non-S3 rules: dot segments and empty segments removed, each segment encoded again
    req = sign(b"", method="GET", path="/a%20b/./c//d/../e/", query="z=1&a=2&a=1&sp=x%20y&t=~")
    req.check()
    rejects(Req(req.method, b"/a%20b/c/e/x", req.query, req.headers, req.body), *MISMATCH)
    rejects(Req(req.method, req.path, b"z=1&a=2&sp=x%20y&t=~", req.headers, req.body), *MISMATCH)


@pytest.mark.parametrize("path, canon", [
    ("", "/"), ("/", "/"), ("//", "/"), ("/./", "/"), ("/a/..", "/"), ("/../a", "/a"), ("//a//b//", "/a/b/"),
    ("/a b", "/a%20b"), ("/a%20b", "/a%2520b"), ("/~x-_.y", "/~x-_.y"), ("/ሴ", "/%E1%88%B4"), (b"/\xe1\x88\xb4", "/%E1%88%B4"),
])
def test_canonical_uri(path, canon):
    assert sigv4.canonical_uri(path) == canon


@pytest.mark.parametrize("query, canon", [
    ("", ""), ("b=2&a=1", "a=1&b=2"), ("a=2&a=1", "a=1&a=2"), ("flag", "flag="), ("a=x%20y", "a=x%20y"),
    ("a=x+y", "a=x%2By"), ("a=%7e", "a=~"), ("k=%2F/", "k=%2F%2F"), ("a=1&&b=2", "a=1&b=2"),
])
def test_canonical_query(query, canon):
    assert sigv4.canonical_query(query) == canon


def test_uppercase_hex_signature_accepted():
    req = sign()
    auth = req.header("authorization")
    sig = auth.rsplit("=", 1)[1]
    req.with_auth(auth.replace(sig, sig.upper())).check()


# ---------------------------------------------------------------- any signed part changed → rejected


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda r: Req(r.method, r.path, r.query, r.headers, r.body[:-1] + bytes([r.body[-1] ^ 1])), id="body-byte"),
    pytest.param(lambda r: Req(r.method, r.path, r.query, r.headers, r.body + b" "), id="body-extended"),
    pytest.param(lambda r: r.replace("x-amz-target", "TrentService.Decrypt"), id="target"),
    pytest.param(lambda r: r.replace("content-type", "application/json"), id="content-type"),
    pytest.param(lambda r: r.replace("host", "localhost:4600"), id="host"),
    pytest.param(lambda r: r.replace("x-amz-date", "20260627T140001Z"), id="date-1s"),
    pytest.param(lambda r: Req("PUT", r.path, r.query, r.headers, r.body), id="method"),
    pytest.param(lambda r: Req(r.method, b"/x", r.query, r.headers, r.body), id="path"),
    pytest.param(lambda r: Req(r.method, r.path, b"a=1", r.headers, r.body), id="query"),
    pytest.param(lambda r: r.with_auth(r.header("authorization").replace("/us-east-1/", "/eu-west-1/")), id="region"),
    pytest.param(lambda r: r.with_auth(r.header("authorization").replace("/kms/", "/sts/")), id="service"),
    pytest.param(lambda r: r.with_auth(r.header("authorization")[:-1] + "0"
                                       if not r.header("authorization").endswith("0")
                                       else r.header("authorization")[:-1] + "1"), id="signature"),
])
def test_tampering_rejected(mutate):
    rejects(mutate(sign(b'{"KeyId":"alias/app","Plaintext":"c2VjcmV0"}')), *MISMATCH)


def test_wrong_secret_rejected():
    rejects(sign(), *MISMATCH, secret=SECRET + "x")


def test_date_changed_to_other_day_is_a_scope_error():
    rejects(sign().replace("x-amz-date", "20260628T140000Z"), "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            "'20260627' != '20260628', from '20260628T140000Z'.", now=T0 + timedelta(days=1))


# ---------------------------------------------------------------- clock skew (5 min default)


@pytest.mark.parametrize("delta", [-299, -240, 0, 240, 300, -300])
def test_skew_inside_window_accepted(delta):
    sign().check(now=T0 + timedelta(seconds=delta))


def test_signature_expired_text():
    rejects(sign(), "InvalidSignatureException",
            "Signature expired: 20260627T140000Z is now earlier than 20260627T140100Z (20260627T140600Z - 5 min.)",
            now=T0 + timedelta(minutes=6))


def test_signature_not_yet_current_text():
    rejects(sign(), "InvalidSignatureException",
            "Signature not yet current: 20260627T140000Z is still later than 20260627T135900Z (20260627T135400Z + 5 min.)",
            now=T0 - timedelta(minutes=6))


def test_skew_boundary_one_second_past():
    rejects(sign(), "InvalidSignatureException", "Signature expired:", exact=False, now=T0 + timedelta(seconds=301))
    rejects(sign(), "InvalidSignatureException", "Signature not yet current:", exact=False,
            now=T0 - timedelta(seconds=301))


def test_skew_window_is_configurable_and_worded():
    req = sign()
    req.check(now=T0 + timedelta(minutes=14), max_skew_seconds=900)
    rejects(req, "InvalidSignatureException",
            "Signature expired: 20260627T140000Z is now earlier than 20260627T141500Z (20260627T143000Z - 15 min.)",
            now=T0 + timedelta(minutes=30), max_skew_seconds=900)
    rejects(req, "InvalidSignatureException",
            "Signature expired: 20260627T140000Z is now earlier than 20260627T140030Z (20260627T140200Z - 90 sec.)",
            now=T0 + timedelta(minutes=2), max_skew_seconds=90)
    req.check(now=T0 + timedelta(days=3), max_skew_seconds=None)  # None: no skew check at all


def test_naive_now_is_utc_and_default_now_is_wall_clock():
    sign().check(now=T0.replace(tzinfo=None) + timedelta(minutes=4))
    fresh = sign(when=datetime.now(timezone.utc))
    cred = sigv4.parse(fresh.headers)  # no now: real wall clock
    assert cred.region == "us-east-1"
    rejects(sign(), "InvalidSignatureException", "Signature expired:", exact=False, now=None)


# ---------------------------------------------------------------- header errors, AWS texts

AUTH_OK = sign().header("authorization")


def test_missing_authorization():
    rejects(sign().replace("authorization", None), "MissingAuthenticationTokenException",
            "Request is missing Authentication Token")
    rejects(sign().with_auth("   "), "MissingAuthenticationTokenException")
    rejects(sign().with_auth("Bearer abc.def"), "MissingAuthenticationTokenException")


def test_unsupported_algorithm():
    rejects(sign().with_auth(AUTH_OK.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
            "IncompleteSignatureException", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.")


def test_missing_equal_sign():
    auth = "AWS4-HMAC-SHA256 FooBar, BazBurp"
    rejects(sign().with_auth(auth), "IncompleteSignatureException",
            f"'FooBar' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'.")
    # AWS also splits on whitespace: a space inside the credential breaks it the same way
    auth = AUTH_OK.replace("Credential=AKIDEXAMPLE", "Credential=AKID EXAMPLE")
    rejects(sign().with_auth(auth), "IncompleteSignatureException",
            "'EXAMPLE/20260627/us-east-1/kms/aws4_request' not a valid key=value pair", exact=False)


def test_missing_parameters_and_date():
    auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260627/us-east-1/kms/aws4_request"
    rejects(sign().with_auth(auth).replace("x-amz-date", None), "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. "
            "Authorization header requires 'SignedHeaders' parameter. "
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            f"Authorization={auth}")
    rejects(sign().with_auth("AWS4-HMAC-SHA256"), "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
            "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256")
    rejects(sign().replace("x-amz-date", None), "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            f"Authorization={AUTH_OK}")


@pytest.mark.parametrize("dup", ["Credential=AKIDEXAMPLE/20260627/us-east-1/kms/aws4_request",
                                 "SignedHeaders=host", "Signature=00"])
def test_duplicated_parameter(dup):
    key = dup.split("=")[0]
    rejects(sign().with_auth(f"{AUTH_OK}, {dup}"), "IncompleteSignatureException",
            f"Authorization header has duplicate '{key}' parameter. Authorization={AUTH_OK}, {dup}")


def test_repeated_authorization_header_rejected():
    req = sign()
    req.headers.append((b"authorization", AUTH_OK.encode()))
    rejects(req, "IncompleteSignatureException", "not a valid key=value pair", exact=False)


@pytest.mark.parametrize("signed", ["host;content-type;x-amz-date;x-amz-target",
                                    "Content-Type;host;x-amz-date;x-amz-target",
                                    "content-type;host;host;x-amz-date;x-amz-target",
                                    "content-type;;host;x-amz-date;x-amz-target"])
def test_signed_headers_must_be_canonical(signed):
    auth = AUTH_OK.replace("content-type;host;x-amz-date;x-amz-target", signed)
    rejects(sign().with_auth(auth), "IncompleteSignatureException",
            f"SignedHeaders must be lower-case, sorted and unique, separated by ';'. Got '{signed}'.")


@pytest.mark.parametrize("signed, title", [
    ("content-type;x-amz-date;x-amz-target", "'Host' or ':authority'"),
    ("content-type;host;x-amz-target", "'X-Amz-Date'"),
    ("content-type;host;x-amz-date", "'X-Amz-Target'"),
])
def test_required_signed_headers(signed, title):
    auth = AUTH_OK.replace("content-type;host;x-amz-date;x-amz-target", signed)
    rejects(sign().with_auth(auth), "InvalidSignatureException",
            f"{title} must be a 'SignedHeader' in the AWS Authorization.")


def test_target_added_after_signing_is_refused():
    # a client that did not sign X-Amz-Target could have its operation swapped by a proxy
    req = sign(target=None).replace("x-amz-target", "TrentService.ScheduleKeyDeletion")
    rejects(req, "InvalidSignatureException", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")


def test_sts_must_sign_content_type():
    req = sign(b"Action=GetCallerIdentity&Version=2011-06-15", target=None, service="sts", content_type=None)
    rejects(req.replace("content-type", "application/x-www-form-urlencoded"), "InvalidSignatureException",
            "'Content-Type' must be a 'SignedHeader' in the AWS Authorization.")


def test_unsigned_security_token_refused():
    req = sign().replace("x-amz-security-token", "FQoGZXIvYXdzTOKEN")
    rejects(req, "InvalidSignatureException",
            "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")


@pytest.mark.parametrize("value", ["2026-06-27T14:00:00Z", "20260627T140000", "20261327T140000Z", "٢٠٢٦0627T140000Z"])
def test_bad_x_amz_date(value):
    rejects(sign().replace("x-amz-date", value), "IncompleteSignatureException",
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601")


def test_bad_date_header():
    req = sign(date_header=True).replace("date", "yesterday")
    rejects(req, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got 'yesterday'.",
            exact=False)


@pytest.mark.parametrize("cred", ["AKIDEXAMPLE", "AKIDEXAMPLE/20260627/us-east-1/kms",
                                  "AKIDEXAMPLE/20260627/us-east-1/kms/aws4_request/extra"])
def test_credential_must_have_five_parts(cred):
    auth = AUTH_OK.replace("AKIDEXAMPLE/20260627/us-east-1/kms/aws4_request", cred)
    rejects(sign().with_auth(auth), "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{cred}'")


def scoped(scope):
    return sign().with_auth(AUTH_OK.replace("20260627/us-east-1/kms/aws4_request", scope))


@pytest.mark.parametrize("region", ["US-EAST-1", "useast1", "us-east", "a-b-c-d-1", "us-east-1a", "local"])
def test_invalid_region(region):
    rejects(scoped(f"20260627/{region}/kms/aws4_request"), "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{region}'.")


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-5", "xx-yy-zz-42"])
def test_valid_region_patterns(region):
    assert sigv4.parse(scoped(f"20260627/{region}/kms/aws4_request").headers, now=T0).region == region


def test_invalid_service_and_terminator():
    rejects(scoped("20260627/us-east-1/s3/aws4_request"), "InvalidSignatureException",
            "Credential should be scoped to correct service: 'kms'.")
    rejects(scoped("20260627/us-east-1/kms/aws5_request"), "InvalidSignatureException",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.")


def test_scope_date_mismatch():
    rejects(scoped("20260626/us-east-1/kms/aws4_request"), "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            "'20260626' != '20260627', from '20260627T140000Z'.")


def test_all_scope_errors_reported_together():
    rejects(scoped("foobar/wrong-region/dynamodb/aws5_request"), "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'wrong-region'. "
            "Credential should be scoped to correct service: 'kms'. "
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            "'foobar' != '20260627', from '20260627T140000Z'.")


def test_trailing_slash_in_credential_is_ignored_like_aws():
    sign().with_auth(AUTH_OK.replace("aws4_request,", "aws4_request/,")).check()


def test_non_utf8_header_bytes_give_encodable_messages():
    def raw(req, name, value: bytes):
        return Req(req.method, req.path, req.query,
                   [(k, v) for k, v in req.headers if k != name] + [(name, value)], req.body)

    bad_auth = raw(sign(), b"authorization", b"AWS4-HMAC-SHA256 Cred\xff\xfe, Signature=x")
    err = rejects(bad_auth, "IncompleteSignatureException", "not a valid key=value pair", exact=False)
    err.message.encode("utf-8")  # no lone surrogates: the JSON body can be written
    bad_date = raw(sign(), b"x-amz-date", b"2026\xff")
    rejects(bad_date, "IncompleteSignatureException", "Date must be", exact=False).message.encode("utf-8")


# ---------------------------------------------------------------- dev mode: parse without verify


def test_dev_mode_parses_without_secret():
    cred = sigv4.parse(sign().with_auth(AUTH_OK[:-64] + "0" * 64).headers, now=T0)
    assert cred.region == "us-east-1" and cred.signature == "0" * 64  # no exception: no signature check
    with pytest.raises(AWSError) as ei:
        sigv4.parse(scoped("20260627/moon/kms/aws4_request").headers, now=T0)
    assert ei.value.code == "InvalidSignatureException"


# ---------------------------------------------------------------- signing-key cache


def test_signing_key_cache_is_bounded_and_correct():
    sigv4._KEY_CACHE.clear()
    for i in range(sigv4._KEY_CACHE_MAX + 50):
        sigv4._signing_mac(f"secret{i}", "20260627", "us-east-1", "kms")
    assert len(sigv4._KEY_CACHE) == sigv4._KEY_CACHE_MAX
    sign(secret="secret0").check(secret="secret0")  # evicted entry is recomputed correctly
    rejects(sign(secret="secret1"), *MISMATCH, secret="secret2")


# ---------------------------------------------------------------- hypothesis properties

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=60)
regions = st.sampled_from(["us-east-1", "eu-west-3", "ap-northeast-2", "us-gov-east-1", "cn-north-1"])


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=2048), target=header_text, region=regions,
       offset=st.integers(-300, 300), token=st.none() | header_text.map(str.strip).filter(bool))
def test_property_botocore_always_verifies(body, target, region, offset, token):
    req = sign(body, target, region=region, token=token)
    cred = req.check(now=T0 + timedelta(seconds=offset))
    assert cred.region == region and cred.security_token == token


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_property_any_body_bit_flip_rejected(body, data):
    req = sign(body)
    i = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1:]
    rejects(Req(req.method, req.path, req.query, req.headers, flipped), *MISMATCH)


# ---------------------------------------------------------------- curl --aws-sigv4


def _capture_one_request(argv_for_port):
    """Run curl against a one-shot socket server and return the raw request bytes it sent."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(10)
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            got.append(head + b"\r\n\r\n" + rest)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        subprocess.run(argv_for_port(port), check=True, capture_output=True, timeout=20)
        thread.join(10)
    finally:
        srv.close()
    return got[0]


def _parse_raw(raw: bytes) -> Req:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ")
    path, _, query = target.partition(b"?")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines[1:])]
    return Req(method.decode(), path, query, headers, body)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed, so the curl --aws-sigv4 "
                    "differential test cannot run")
def test_curl_aws_sigv4():
    body = '{"KeyId":"alias/curl","Plaintext":"aGVsbG8="}'
    raw = _capture_one_request(lambda port: [
        "curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:kms", "--user", f"{AK}:{SECRET}",
        "-H", "X-Amz-Target: TrentService.Encrypt", "-H", f"Content-Type: {JSON}",
        "--data-binary", body, f"http://127.0.0.1:{port}/"])
    req = _parse_raw(raw)
    cred = req.check(now=None)  # curl signs with the real clock
    assert "x-amz-target" in cred.signed_headers and cred.service == "kms"
    rejects(req.replace("x-amz-target", "TrentService.Decrypt"), *MISMATCH, now=None)
    rejects(Req(req.method, req.path, req.query, req.headers, req.body.replace(b"curl", b"curk")), *MISMATCH,
            now=None)
