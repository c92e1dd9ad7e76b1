"""What a request carried that its audit event must not hold: SigV4 signatures, and secrets sent
where an access key id belongs.

Applied when the event is built (events.build_event), so every sink — the files, stdout, the
central trail — gets the same redacted event; the caller's answer keeps AWS's wording.

- **Signatures.** Some SigV4 errors echo the Authorization header (auth/sigv4.py: a missing or
  duplicated parameter, a parameter without '='); the echo keeps the algorithm, the credential
  and the signed headers, and every other value (``Signature=…``, unknown parameters, bare
  tokens that may be pieces of a signature) becomes HIDDEN. A ``Signature=``/``X-Amz-Signature=``
  anywhere else in a message is hidden too.
- **Access key ids.** Outside --dev, an access key id that is not well formed
  (``(AKIA|ASIA)`` + 16) is recorded as HIDDEN, as AWS records a mistyped user name at console
  sign-in: a person who pasted the secret into the key id's place must not find it in the trail.
  A well-formed unknown key is kept (AWS records it). In --dev any key is accepted and is kept.
"""

from __future__ import annotations

import re

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
_ACCESS_KEY_ID = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")
_TOKEN = re.compile(r"[^\s,]+")  # how sigv4.parse splits the header: on commas and whitespace
_PARAMETERS = frozenset({"Credential", "SignedHeaders", "Signature"})  # names, kept when written bare
_SIGNATURE = re.compile(r"((?:X-Amz-)?Signature=)[^\s,&']+", re.IGNORECASE)
# The echoes of auth/sigv4.py that quote a piece of the header rather than all of it.
_BARE_ITEM = re.compile(r"^'(.*?)'( not a valid key=value pair)", re.DOTALL)
_CREDENTIAL_ECHO = re.compile(r"(slash-delimited elements, e\.g\. keyid/date/region/service/term, got ')(.*)'$",
                              re.DOTALL)


def access_key_id(value: str, dev: bool) -> str:
    """The access key id as the audit trail may show it."""
    return value if dev or _ACCESS_KEY_ID.fullmatch(value) else HIDDEN


def credential(value: str, dev: bool) -> str:
    """A ``Credential=`` value: kept when its access key id is; else all of it is hidden (a secret
    with '/' in it spreads over several elements)."""
    key = value.split("/", 1)[0]
    return value if access_key_id(key, dev) == key else HIDDEN


def _token(token: str, dev: bool) -> str:
    name, eq, value = token.partition("=")
    if not eq:
        return token if token in _PARAMETERS else HIDDEN
    if name == "Credential":
        return f"{name}={credential(value, dev)}"
    if name == "SignedHeaders":
        return token
    return f"{name}={HIDDEN}"


def authorization(header: str, dev: bool) -> str:
    """The Authorization header with only the algorithm, credential and signed headers left."""
    algorithm, space, rest = header.partition(" ")
    return algorithm + space + _TOKEN.sub(lambda m: _token(m.group(0), dev), rest)


def error_message(message: str, header: str, dev: bool) -> str:
    """``message`` without the signature, or a secret, that it echoes from ``header`` (the
    Authorization header as sigv4 echoes it: sigv4.authorization_text)."""
    if header and header in message:
        message = message.replace(header, authorization(header, dev))
    message = _BARE_ITEM.sub(lambda m: f"'{_token(m.group(1), dev)}'{m.group(2)}", message, count=1)
    message = _CREDENTIAL_ECHO.sub(lambda m: f"{m.group(1)}{credential(m.group(2), dev)}'", message)
    return _SIGNATURE.sub(lambda m: m.group(1) + HIDDEN, message)
