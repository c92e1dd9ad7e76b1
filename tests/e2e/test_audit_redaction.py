"""What the audit trail must never hold, though the request carried it: a SigV4 signature echoed
by an IncompleteSignatureException, or a secret sent where the access key id belongs.

The caller's answer keeps AWS's wording (the header echoed as sent); the event built from it does
not. Outside --dev, an access key id that is not well formed (``(AKIA|ASIA)`` + 16) is recorded
as ``HIDDEN_DUE_TO_SECURITY_REASONS``; in --dev any key is accepted, so it is kept.
"""

from __future__ import annotations

import json

import pytest

from trentd.testing.server import TrentdServer

from .test_audit import event_for, failure, request_id
from .test_auth import UNRECOGNIZED, _parts, post, sign

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
REQUIRES = "Authorization header requires '{}' parameter. "
# A secret access key, as a person might paste it into the access key id's place.
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY1"


@pytest.fixture(scope="module")
def server():
    with TrentdServer(dev=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def dev_server():
    with TrentdServer() as srv:
        yield srv


@pytest.fixture(params=["secure", "dev"])
def either(request, server, dev_server):
    return server if request.param == "secure" else dev_server


def reply_event(server: TrentdServer, headers: dict) -> tuple[tuple[str, str], dict]:
    """The (code, message) the caller got, and the audit event of that request."""
    reply = post(server, headers)
    assert reply.status == 400, reply
    return (reply.json["__type"], reply.json["message"]), event_for(server, reply.headers["x-amzn-requestid"])


def no_trace(event: dict, secret: str) -> None:
    """Neither the value nor any 12-character piece of it is anywhere in the event."""
    line = json.dumps(event)
    assert not any(secret[i:i + 12] in line for i in range(len(secret) - 11)), (secret, line)


# --- signatures ---------------------------------------------------------------------------------------
NOT_KEY_VALUE = "'{item}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."


@pytest.mark.parametrize("header, message", [
    ("AWS4-HMAC-SHA256 Credential={c}, Signature={s}", REQUIRES.format("SignedHeaders") + "Authorization={auth}"),
    ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Signature={s}",
     "Authorization header has duplicate 'Signature' parameter. Authorization={auth}"),
    ("AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature {s}", NOT_KEY_VALUE.replace("{item}", "Signature")),
    ("AWS4-HMAC-SHA256 {s} Credential={c}", NOT_KEY_VALUE.replace("{item}", "{s}")),
], ids=["no-signed-headers", "duplicate", "no-equals", "bare-signature"])
def test_an_echoed_signature_never_reaches_the_audit_trail(either, header, message):
    headers = sign(either)
    parts = _parts(headers)
    signature = parts["Signature"]

    def fill(template: str, sig: str) -> str:
        auth = header.format(c=parts["Credential"], h=parts["SignedHeaders"], s=sig)
        return template.replace("{auth}", auth).replace("{s}", sig)

    headers["Authorization"] = fill("{auth}", signature)
    answer, event = reply_event(either, headers)
    # the caller's answer is AWS's, unchanged: the header echoed as sent
    assert answer == ("IncompleteSignatureException", fill(message, signature))
    # the event: the same words, the header with every signature value hidden (the credential
    # of a well-formed or --dev key and the signed headers are kept)
    assert event["errorCode"] == "IncompleteSignatureException"
    assert event["errorMessage"] == fill(message, HIDDEN)
    no_trace(event, signature)


# --- access key ids -------------------------------------------------------------------------------------
def test_a_secret_sent_as_the_access_key_id_is_hidden(server):
    error = failure(server.client(access_key=SECRET, secret_key="anything").list_keys)
    assert error.response["Error"] == {"Code": "UnrecognizedClientException", "Message": UNRECOGNIZED}
    event = event_for(server, request_id(error))
    assert event["userIdentity"] == {"type": "Unknown", "accessKeyId": HIDDEN}
    no_trace(event, SECRET)


def test_a_secret_with_slashes_in_the_credential_is_hidden_from_the_message(server):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # the slashes make 7 elements
    headers = sign(server, access_key=secret, secret="anything")
    credential = _parts(headers)["Credential"]
    answer, event = reply_event(server, headers)
    assert answer == ("IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, "
                      f"e.g. keyid/date/region/service/term, got '{credential}'")
    assert event["userIdentity"] == {"type": "Unknown"}
    assert event["errorMessage"] == ("Credential must have exactly 5 slash-delimited elements, "
                                     f"e.g. keyid/date/region/service/term, got '{HIDDEN}'")
    for piece in secret.split("/"):
        no_trace(event, piece)


def test_a_secret_in_an_echoed_header_is_hidden(server):
    headers = sign(server, access_key=SECRET, secret="anything")
    parts = _parts(headers)
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={parts['Credential']}, Signature={parts['Signature']}"
    answer, event = reply_event(server, headers)
    assert answer[1] == REQUIRES.format("SignedHeaders") + "Authorization=" + headers["Authorization"]
    no_trace(event, SECRET)
    no_trace(event, parts["Signature"])
    scope = parts["Credential"].split("/", 1)[1]
    assert f"Credential={HIDDEN}, " in event["errorMessage"] and scope not in event["errorMessage"]


def test_a_well_formed_unknown_access_key_is_kept(server):
    for key in ("AKIAZZZZZZZZZZZZZZZ1", "ASIAZZZZZZZZZZZZZZZ2"):
        error = failure(server.client(access_key=key, secret_key="anything").list_keys)
        assert event_for(server, request_id(error))["userIdentity"] == {"type": "Unknown", "accessKeyId": key}


def test_dev_mode_keeps_any_access_key(dev_server):
    # --dev accepts every key (a 12-digit one picks the account): it is recorded as sent; the
    # signature is hidden all the same
    headers = sign(dev_server, access_key="dev-key-of-a-test-suite", secret="x")
    parts = _parts(headers)
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={parts['Credential']}, Signature={parts['Signature']}"
    _, event = reply_event(dev_server, headers)
    assert event["errorMessage"] == (REQUIRES.format("SignedHeaders") +
                                     f"Authorization=AWS4-HMAC-SHA256 Credential={parts['Credential']}, "
                                     f"Signature={HIDDEN}")
    for key in ("123456789012", "dev-key-of-a-test-suite"):
        response = dev_server.client(access_key=key, secret_key="x").list_keys()
        assert event_for(dev_server, request_id(response))["userIdentity"]["accessKeyId"] == key
