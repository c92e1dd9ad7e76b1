"""atheris: the SigV4 Authorization parser (auth/sigv4.py ``parse``). Any headers must either
parse to a credential or raise an AWSError with one of the three SigV4 error codes (fuzz/README.md)."""

import sys
from datetime import datetime, timezone

import atheris

with atheris.instrument_imports():
    from trentd.auth import sigv4
    from trentd.errors import AWSError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CODES = {"MissingAuthenticationTokenException", "IncompleteSignatureException", "InvalidSignatureException"}
NAMES = [b"authorization", b"x-amz-date", b"date", b"host", b"x-amz-target", b"x-amz-security-token",
         b"content-type", b"Authorization"]
PREFIXES = [b"", b"AWS4-HMAC-SHA256 ", b"AWS4-HMAC-SHA256 Credential=AK/20260102/us-east-1/kms/aws4_request, ",
            b"AWS4-HMAC-SHA256 Credential=AK/20260102/us-east-1/kms/aws4_request, "
            b"SignedHeaders=host;x-amz-date;x-amz-target, Signature="]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = [(b"authorization", PREFIXES[fdp.ConsumeIntInRange(0, len(PREFIXES) - 1)] + fdp.ConsumeBytes(
        fdp.ConsumeIntInRange(0, 300)))]
    headers.append((b"x-amz-date" if fdp.ConsumeBool() else b"date",
                    b"20260102T030405Z" if fdp.ConsumeBool() else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))))
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = NAMES[fdp.ConsumeIntInRange(0, len(NAMES) - 1)] if fdp.ConsumeBool() else fdp.ConsumeBytes(8)
        headers.append((name, fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))))
    skew = None if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 10**7)
    try:
        cred = sigv4.parse(headers, now=NOW, max_skew_seconds=skew)
    except AWSError as err:
        if err.code not in CODES or err.status != 400:
            raise
        return
    if "host" not in cred.signed_headers:
        raise AssertionError(f"accepted without a signed host: {cred!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
