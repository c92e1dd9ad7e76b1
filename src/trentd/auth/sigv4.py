"""AWS Signature Version 4 verification (server side), as pure functions.

Two steps, kept separate so ``--dev`` mode can run only the first:

* :func:`parse` reads the Authorization header and the request date, checks the credential scope
  and the clock skew, and returns a :class:`Credential`. It needs no secret.
* :func:`verify` rebuilds the canonical request from the headers exactly as received and compares
  signatures in constant time. The caller looks up the secret between the two steps.

Error codes and texts follow what AWS's JSON services answer (check order included), so SDK error
handling and people's search engines behave as with AWS. Where AWS has no rule of its own
(SignedHeaders ordering, which headers besides Host must be signed) the texts copy AWS's style.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from time import time as _wall_time
from urllib.parse import quote, unquote_to_bytes

from trentd.errors import AWSError

__all__ = ["Credential", "Headers", "normalize_headers", "authorization_text", "parse", "verify", "canonical_uri",
           "canonical_query", "DEFAULT_MAX_SKEW_SECONDS"]

DEFAULT_MAX_SKEW_SECONDS = 300  # AWS KMS allows 5 minutes either way (DESIGN.md, "Auth")
ALGORITHM = "AWS4-HMAC-SHA256"
SERVICES = ("kms", "sts", "iam", "cloudtrail")
# The KMS model's region pattern; one endpoint serves every region that matches it.
_REGION_RE = re.compile(r"([a-z]+-){2,3}[0-9]+")
_AMZ_DATE_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")  # not \d: that also matches non-ASCII digits
# Each trentd service must sign the header that selects the operation, so a captured signature
# cannot be replayed against a different operation (JSON 1.1 services: X-Amz-Target; Query services:
# the form body's type).
_OPERATION_HEADER = {"kms": ("x-amz-target", "'X-Amz-Target'"), "sts": ("content-type", "'Content-Type'"),
                     "iam": ("content-type", "'Content-Type'"), "cloudtrail": ("x-amz-target", "'X-Amz-Target'")}
_UTC = timezone.utc

MSG_MISSING = "Request is missing Authentication Token"
MSG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
MSG_PAYLOAD = "The provided 'x-amz-content-sha256' header does not match what was computed."


def _clean(text: str) -> str:
    """Raw header bytes are decoded with surrogateescape (see normalize_headers); anything that is
    echoed in an error or handed on (key id, token) must be valid UTF-8, or the JSON encoder fails."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _incomplete(msg: str) -> AWSError:
    return AWSError("IncompleteSignatureException", _clean(msg))


def _invalid(msg: str) -> AWSError:
    return AWSError("InvalidSignatureException", _clean(msg))


def _must_sign(title: str) -> AWSError:
    return _invalid(f"{title} must be a 'SignedHeader' in the AWS Authorization.")


class Headers(dict):
    """Lower-cased name -> value, repeats joined with ','. Marks headers as already normalised so
    the HTTP layer can normalise once and hand the same object to parse() and verify()."""

    __slots__ = ()


def normalize_headers(headers: Mapping[str, str] | Iterable[tuple[bytes | str, bytes | str]]) -> Headers:
    """Accept a mapping or raw (ASGI-style) pairs. Raw bytes are decoded with surrogateescape so
    that encoding the canonical request back to UTF-8 reproduces the exact bytes on the wire."""
    if isinstance(headers, Headers):
        return headers
    out = Headers()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        name = (name.decode("latin-1") if isinstance(name, bytes) else name).lower()
        value = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        if name in out:
            # SigV4: a header sent several times is signed as its values, each trimmed, joined by
            # ',' in arrival order (inner whitespace is collapsed later, when canonicalising).
            value = f"{out[name].strip()},{value.strip()}"
        out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class Credential:
    """What the Authorization header claims. Nothing here is trusted until verify() succeeds."""

    access_key_id: str
    date: str  # YYYYMMDD from the scope
    region: str
    service: str  # 'kms', 'sts' or 'cloudtrail'
    signed_headers: tuple[str, ...]
    signature: str  # lower-case hex as sent
    amz_date: datetime  # request time, UTC
    security_token: str | None
    timestamp: str  # amz_date as YYYYMMDDTHHMMSSZ, the form used in the string to sign

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _fmt(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def _window(seconds: int) -> str:
    # AWS words its window in minutes ("5 min."); say what was actually configured.
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


# Recently parsed X-Amz-Date values: a busy client sends the same one for a whole second.
_RECENT_TIMES: dict[str, tuple[datetime, str]] = {}
# SignedHeaders lists already found canonical (clients send the same few lists over and over).
_CANONICAL_SIGNED: dict[str, tuple[str, ...]] = {}
_RECENT_MAX = 256


def _remember(cache: dict, key: str, value):
    if len(cache) >= _RECENT_MAX:
        cache.clear()
    cache[key] = value
    return value


def _request_time(h: Headers) -> tuple[datetime, str]:
    amz = h.get("x-amz-date")
    if amz is not None:
        known = _RECENT_TIMES.get(amz)
        if known is not None:
            return known
        # Hand-rolled instead of strptime: strptime costs ~10 µs, this ~1 µs.
        if _AMZ_DATE_RE.fullmatch(amz):
            try:
                t = datetime(int(amz[:4]), int(amz[4:6]), int(amz[6:8]), int(amz[9:11]),
                             int(amz[11:13]), int(amz[13:15]), tzinfo=_UTC)
                return _remember(_RECENT_TIMES, amz, (t, amz))
            except ValueError:
                pass
        bad = amz
    else:  # only the RFC 1123 Date header (rare: a few old signers)
        bad = h["date"]
        try:
            t = parsedate_to_datetime(bad)
            t = t.replace(tzinfo=_UTC) if t.tzinfo is None else t.astimezone(_UTC)
            return t, _fmt(t)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{bad}'. See http://en.wikipedia.org/wiki/ISO_8601")


def _skew_error(stamp: str, now_s: int, offset: int, window: int) -> None:
    now_t = datetime.fromtimestamp(now_s, _UTC)
    if offset < 0:
        raise _invalid(f"Signature expired: {stamp} is now earlier than "
                       f"{_fmt(now_t - timedelta(seconds=window))} ({_fmt(now_t)} - {_window(window)})")
    raise _invalid(f"Signature not yet current: {stamp} is still later than "
                   f"{_fmt(now_t + timedelta(seconds=window))} ({_fmt(now_t)} + {_window(window)})")


def authorization_text(headers) -> str:
    """The Authorization header as error messages echo it (the audit trail redacts that echo)."""
    return _clean(normalize_headers(headers).get("authorization", "")).strip()


def parse(headers, *, now: datetime | None = None, max_skew_seconds: int | None = DEFAULT_MAX_SKEW_SECONDS,
          operation_header: bool = True, services: tuple[str, ...] = SERVICES) -> Credential:
    """Check everything that needs no secret, in AWS's order; return the claimed credential.

    ``now`` must come from the real wall clock (never the service's test clock); default: time.time().
    ``max_skew_seconds=None`` skips the skew check (for callers that do not want it, e.g. frozen-time tests).
    ``operation_header=False``: the header that names the operation need not be signed, for a
    request whose signed method and path name it (the test clock, ``/_trentd/clock``, and the XKS
    proxy API).
    ``services``: the credential scope's services this listener serves (the XKS proxy listener:
    ``kms-xks-proxy`` only).
    """
    h = normalize_headers(headers)
    auth = authorization_text(h)
    if not auth:
        raise AWSError("MissingAuthenticationTokenException", MSG_MISSING)
    algorithm, _, rest = auth.partition(" ")
    if algorithm != ALGORITHM:
        if not algorithm.startswith("AWS"):  # some other scheme (Basic, Bearer): not SigV4 at all
            raise AWSError("MissingAuthenticationTokenException", MSG_MISSING)
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'.")

    # AWS splits the parameters on commas *and* whitespace ("Credential=a b" fails on 'b').
    params: dict[str, str] = {}
    for item in rest.replace(",", " ").split():
        key, eq, value = item.partition("=")
        if not eq:
            raise _incomplete(f"'{item}' not a valid key=value pair (missing equal-sign) "
                              f"in Authorization header: '{auth}'.")
        if key in params:  # ambiguous: which one was signed? refuse rather than guess
            raise _incomplete(f"Authorization header has duplicate '{key}' parameter. Authorization={auth}")
        params[key] = value
    has_date = "x-amz-date" in h or "date" in h
    if not (has_date and params.get("Credential") and params.get("Signature") and params.get("SignedHeaders")):
        missing = [f"Authorization header requires '{p}' parameter. "
                   for p in ("Credential", "Signature", "SignedHeaders") if not params.get(p)]
        if not has_date:
            missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
        raise _incomplete("".join(missing) + f"Authorization={auth}")

    raw_signed = params["SignedHeaders"]
    signed = _CANONICAL_SIGNED.get(raw_signed)
    if signed is None:
        signed = tuple(raw_signed.split(";"))
        # Canonical form is the only accepted form: a list that is not what the signer must have
        # hashed cannot verify anyway, and rejecting it early gives a clearer message.
        if raw_signed != raw_signed.lower() or "" in signed or list(signed) != sorted(set(signed)):
            raise _incomplete("SignedHeaders must be lower-case, sorted and unique, separated by ';'. "
                              f"Got '{raw_signed}'.")
        _remember(_CANONICAL_SIGNED, raw_signed, signed)
    if "host" not in signed:
        raise _must_sign("'Host' or ':authority'")
    if "x-amz-date" in h and "x-amz-date" not in signed:
        raise _must_sign("'X-Amz-Date'")
    token = h.get("x-amz-security-token")
    token = None if token is None else _clean(token)
    if token is not None and "x-amz-security-token" not in signed:
        raise _must_sign("'X-Amz-Security-Token'")

    when, stamp = _request_time(h)
    if max_skew_seconds is not None:
        # Integer seconds on the happy path; datetimes only to word an error.
        now_s = int(_wall_time() if now is None else now.replace(tzinfo=now.tzinfo or _UTC).timestamp())
        offset = int(when.timestamp()) - now_s
        if offset < -max_skew_seconds or offset > max_skew_seconds:
            _skew_error(stamp, now_s, offset, max_skew_seconds)

    cred = params["Credential"]
    # AWS's splitter drops trailing empty fields, so "AK/…/aws4_request/" still has 5 parts.
    parts = cred.rstrip("/").split("/")
    if len(parts) != 5:
        raise _incomplete(f"Credential must have exactly 5 slash-delimited elements, "
                          f"e.g. keyid/date/region/service/term, got '{cred}'")
    key_id, date, region, service, term = parts
    errors = []  # AWS reports every scope problem at once, in this order
    if not _REGION_RE.fullmatch(region):
        errors.append(f"Credential should be scoped to a valid region, not '{region}'.")
    if service not in services:
        errors.append(f"Credential should be scoped to correct service: '{services[0]}'.")
    if term != "aws4_request":
        errors.append(f"Credential should be scoped with a valid terminator: 'aws4_request', not '{term}'.")
    if date != stamp[:8]:
        errors.append(f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                      f"from HTTP: '{date}' != '{stamp[:8]}', from '{stamp}'.")
    if errors:
        raise _invalid(" ".join(errors))
    if operation_header:
        op_header, op_title = _OPERATION_HEADER[service]
        if op_header not in signed:
            raise _must_sign(op_title)
    return Credential(key_id, date, region, service, signed, params["Signature"].lower(), when, token, stamp)


# Derived signing keys, per (secret, date, region, service), kept as keyed HMAC objects: four
# HMACs saved per request (~14 µs), and a copy of a keyed object signs without releasing the GIL
# (hmac.digest() releases it on every call, which handed the GIL to the pool and audit threads
# on every request). Bounded; evicts the oldest insertion (keys roll over daily, so FIFO is as
# good as LRU here).
_KEY_CACHE: dict[tuple[str, str, str, str], "hmac.HMAC"] = {}
_KEY_CACHE_MAX = 1024


def _signing_mac(secret: str, date: str, region: str, service: str) -> "hmac.HMAC":
    ck = (secret, date, region, service)
    mac = _KEY_CACHE.get(ck)
    if mac is None:
        key = hmac.digest(("AWS4" + secret).encode(), date.encode(), "sha256")
        for part in (region, service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        mac = hmac.new(key, digestmod=hashlib.sha256)
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            try:
                del _KEY_CACHE[next(iter(_KEY_CACHE))]
            except (KeyError, StopIteration, RuntimeError):  # raced with another thread: harmless
                pass
        _KEY_CACHE[ck] = mac
    return mac


_UNRESERVED = "-_.~"  # quote() also leaves letters and digits alone: exactly RFC 3986 unreserved


def canonical_uri(path: str | bytes) -> str:
    """Non-S3 rules: remove dot segments and empty segments, then percent-encode each segment,
    '%' included. ``path`` is the raw path as sent (already percent-encoded once), so escapes are
    encoded again, which is what AWS and every SDK do for services other than S3."""
    if path == "/" or path == b"/" or not path:
        return "/"
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else path
    segments: list[bytes] = []
    for seg in raw.split(b"/"):
        if seg == b".." and segments:
            segments.pop()
        elif seg not in (b"", b".", b".."):
            segments.append(seg)
    out = "/" + "/".join(quote(s, safe=_UNRESERVED) for s in segments)
    return out + "/" if raw.endswith(b"/") and segments else out


def canonical_query(query: str | bytes) -> str:
    """Decode each name and value, re-encode with RFC 3986 rules, sort by name then value."""
    if not query:
        return ""
    raw = query.encode("utf-8", "surrogateescape") if isinstance(query, str) else query
    pairs = []
    for item in raw.split(b"&"):
        if item:
            k, _, v = item.partition(b"=")
            pairs.append((quote(unquote_to_bytes(k), safe=_UNRESERVED), quote(unquote_to_bytes(v), safe=_UNRESERVED)))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def verify(cred: Credential, *, method: str, path: str | bytes, query: str | bytes = b"", headers, body: bytes,
           secret: str) -> None:
    """Recompute the signature over the request as received; raise InvalidSignatureException on
    any difference. ``path`` and ``query`` are the raw, still-encoded forms (ASGI raw_path, query_string)."""
    h = normalize_headers(headers)
    payload = hashlib.sha256(body).hexdigest()
    claimed = h.get("x-amz-content-sha256")
    # botocore sends no such header, so the body is always hashed here; when a client does send it
    # it must be the real hash (UNSIGNED-PAYLOAD is S3-only and fails this comparison).
    if claimed is not None and claimed.strip().lower() != payload:
        raise _invalid(MSG_PAYLOAD)
    lines = [method.upper(), canonical_uri(path), canonical_query(query)]
    for name in cred.signed_headers:  # values trimmed and inner whitespace runs collapsed
        lines.append(name + ":" + " ".join(h.get(name, "").split()))
    lines += ["", ";".join(cred.signed_headers), payload]
    creq = "\n".join(lines).encode("utf-8", "surrogateescape")
    sts = f"{ALGORITHM}\n{cred.timestamp}\n{cred.scope}\n{hashlib.sha256(creq).hexdigest()}"
    mac = _signing_mac(secret, cred.date, cred.region, cred.service).copy()
    mac.update(sts.encode())
    expected = mac.hexdigest().encode()
    # Compare bytes: compare_digest refuses non-ASCII str, and a hostile header may carry any byte.
    if not hmac.compare_digest(expected, cred.signature.encode("utf-8", "surrogateescape")):
        raise _invalid(MSG_MISMATCH)
