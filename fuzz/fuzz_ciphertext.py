"""atheris: the ciphertext blob parser (crypto/envelope.py). Any bytes must either parse to a
header and then fail to decrypt, or raise MalformedCiphertext: nothing else (fuzz/README.md)."""

import os
import sys

import atheris

with atheris.instrument_imports():
    from trentd.crypto import envelope

BACKING_KEY = os.urandom(32)
HEADER = envelope.header_for("111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab", os.urandom(32).hex())
SEED = envelope.encrypt(HEADER, BACKING_KEY, b"seed", {"a": "b"})


def test_one_input(data: bytes) -> None:
    for blob in (data, SEED[: len(data) % (len(SEED) + 1)] + data):  # raw bytes, and a real prefix + bytes
        try:
            header = envelope.read_header(blob)
        except envelope.MalformedCiphertext:
            continue
        if not (isinstance(header, envelope.Header) and len(header.account) == 12 and header.account.isdigit()):
            raise AssertionError(f"bad header parsed: {header!r}")
        try:
            envelope.decrypt(blob, BACKING_KEY, {"a": "b"})
        except envelope.MalformedCiphertext:
            continue
        if blob != SEED:
            raise AssertionError("a blob that is not the seed decrypted")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
