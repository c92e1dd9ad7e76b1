"""Hypothesis properties for the three parsers that read attacker-controlled bytes (security.md
Part C, acceptance bar 12; the atheris harnesses in fuzz/ drive the same targets for longer):

- the ciphertext blob parser (crypto/envelope.py): any bytes, and any mutation of a real blob,
  raise nothing but ``MalformedCiphertext``;
- the Authorization parser (auth/sigv4.py ``parse``): any headers raise nothing but ``AWSError``;
- the request validator: the cases tests/unit/test_protocol.py does not generate — hostile raw
  JSON text (literals ``json.dumps`` never writes) inside the operation's real members.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone
from pathlib import Path

import botocore.session
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trentd.auth import sigv4
from trentd.crypto import envelope
from trentd.errors import AWSError
from trentd.protocol.model import load_service

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
BACKING_KEY = os.urandom(32)
HEADER = envelope.header_for("111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab", os.urandom(32).hex())
BLOB = envelope.encrypt(HEADER, BACKING_KEY, b"plaintext", {"purpose": "fuzz"})


# --- ciphertext blobs ------------------------------------------------------------------------------
def _blob_only_malformed(blob: bytes, context) -> None:
    try:
        header = envelope.read_header(blob)
    except envelope.MalformedCiphertext:
        return
    assert isinstance(header, envelope.Header) and header.account.isdigit() and len(header.account) == 12
    try:
        envelope.decrypt(blob, BACKING_KEY, context)
    except envelope.MalformedCiphertext:
        pass


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=400))
@example(b"")
@example(b"\x01" + b"1" * 12 + b"\x00")
@example(b"\x01" + b"1" * 12 + b"\xff" + b"a" * 200)
def test_random_bytes_are_only_ever_malformed_ciphertext(blob):
    _blob_only_malformed(blob, None)


@settings(max_examples=1000, deadline=None)
@given(st.data())
def test_mutated_blobs_never_decrypt_and_raise_only_malformed_ciphertext(data):
    blob = bytearray(BLOB)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "extend":
        blob += data.draw(st.binary(min_size=1, max_size=32))
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    context = data.draw(st.sampled_from([{"purpose": "fuzz"}, None, {"purpose": "fuzZ"}]))
    try:
        plaintext = envelope.decrypt(bytes(blob), BACKING_KEY, context)
    except envelope.MalformedCiphertext:
        return
    raise AssertionError(f"a {kind} of the blob decrypted to {plaintext!r}")


# --- the Authorization header ----------------------------------------------------------------------
FRAGMENTS = st.sampled_from([
    "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1", "Basic", " ", ",", ", ", "=", "/", ";",
    "Credential=", "SignedHeaders=", "Signature=", "AKIDEXAMPLE/20260102/us-east-1/kms/aws4_request",
    "AK/20260102/us-east-1/sts/aws4_request", "a/b/c/d/e/f", "host;x-amz-date;x-amz-target",
    "content-type;host;x-amz-date", "HOST;X-AMZ-DATE", "host;host", "deadbeef" * 8, "\x00", "\udcff", "é",
])
AUTHORIZATION = st.lists(FRAGMENTS | st.text(max_size=12), max_size=12).map("".join)
DATES = st.sampled_from(["20260102T030405Z", "20260102T030405", "99999999T999999Z", "00010101T000000Z",
                         "Fri, 02 Jan 2026 03:04:05 GMT", "Fri, 99 Jan 10000 03:04:05 GMT", ""]) | st.text(max_size=20)
HEADER_NAMES = st.sampled_from(["authorization", "x-amz-date", "date", "host", "x-amz-target",
                                "x-amz-security-token", "content-type", "Authorization", "X-Amz-Date"])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(authorization=AUTHORIZATION, date=DATES,
       extra=st.lists(st.tuples(HEADER_NAMES | st.text(max_size=8), st.text(max_size=40)), max_size=6),
       skew=st.none() | st.integers(0, 10**6))
@example(authorization="AWS4-HMAC-SHA256 Credential=AK/20260102/us-east-1/kms/aws4_request, "
                       "SignedHeaders=host;x-amz-date;x-amz-target, Signature=ab", date="20260102T030405Z",
         extra=[("host", "h"), ("x-amz-target", "TrentService.ListKeys")], skew=300)
def test_authorization_parser_raises_only_aws_errors(authorization, date, extra, skew):
    headers = [("authorization", authorization), ("x-amz-date" if date[:1].isdigit() else "date", date), *extra]
    raw = [(n.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for n, v in headers]
    for form in (headers, raw):
        try:
            cred = sigv4.parse(form, now=NOW, max_skew_seconds=skew)
        except AWSError as err:
            assert err.code in ("MissingAuthenticationTokenException", "IncompleteSignatureException",
                                "InvalidSignatureException") and err.status == 400, err
        else:
            assert isinstance(cred, sigv4.Credential) and "host" in cred.signed_headers


# --- the request validator: hostile raw JSON inside real members -------------------------------------
SERVICE = load_service("kms")
BOTO_MODEL = botocore.session.get_session().get_service_model("kms")
OPERATIONS = ["Encrypt", "Decrypt", "CreateKey", "GenerateDataKey", "CreateGrant", "PutKeyPolicy", "TagResource",
              "ReEncrypt", "Sign", "ListAliases", "ScheduleKeyDeletion", "GenerateMac", "DeriveSharedSecret"]
HOSTILE_LITERALS = st.sampled_from([
    "NaN", "-Infinity", "Infinity", "1e999999", "-0", "1" * 5000, "0x10", "01", "1.", ".5", "+1", "true ", "nul",
    '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\x00"', '"\\x41"', '"\\"', '"a\nb"', '"\xff"', "[", "{", "]",
    '"' + "a" * 70000 + '"', "[" * 200 + "]" * 200, '{"":' * 60 + "1" + "}" * 60, "[1,]", '{"a":1,}', "''",
    '"QQ=="', '"QQ"', '"Q Q=="', '"@@@@"', "[{}]", '{"TagKey": "a"}', "4096", "-1", "2147483648",
])


@st.composite
def hostile_bodies(draw):
    op = draw(st.sampled_from(OPERATIONS))
    names = list(BOTO_MODEL.operation_model(op).input_shape.members)
    pairs = draw(st.lists(st.tuples(st.sampled_from(names), HOSTILE_LITERALS), min_size=1, max_size=4))
    prefix = draw(st.sampled_from(["", "\ufeff", " ", "\t\n"]))
    body = prefix + "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"
    return op, body.encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_bodies())
def test_hostile_json_inside_real_members_raises_only_modelled_errors(case):
    op, body = case
    try:
        assert isinstance(SERVICE.operation(op).parse(body), dict)
    except AWSError as err:
        assert err.code in ("SerializationException", "ValidationException") and err.status == 400 and err.message


def test_the_seed_script_still_runs(tmp_path, monkeypatch):
    """fuzz/make_seeds.py (not run by CI otherwise) keeps up with the code it seeds: it once
    stopped starting when envelope.encrypt came to take header bytes."""
    path = Path(__file__).resolve().parents[2] / "fuzz" / "make_seeds.py"
    spec = importlib.util.spec_from_file_location("make_seeds", path)
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    monkeypatch.setattr(seeds, "OUT", tmp_path)
    assert seeds.main() == 0
    assert {p.name for p in tmp_path.iterdir()} == {"ciphertext", "authorization", "request"}
    blob = (tmp_path / "ciphertext" / "blob").read_bytes()
    assert envelope.read_header(blob).account == "111122223333"
