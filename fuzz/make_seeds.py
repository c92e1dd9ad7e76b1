"""Write seed corpora for the atheris harnesses into fuzz/corpus/<target>/ (fuzz/README.md):
a real ciphertext blob, real SigV4 Authorization headers signed by botocore, and request bodies
botocore serializes for every KMS operation."""

import json
import os
import sys
from datetime import datetime
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from trentd.crypto import envelope
from trentd.protocol.model import load_service

OUT = Path(__file__).resolve().parent / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def main() -> int:
    header = envelope.header_for("111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab", os.urandom(32).hex())
    write("ciphertext", "blob", envelope.encrypt(header, os.urandom(32), b"seed", {"a": "b"}))
    write("ciphertext", "blob-no-context", envelope.encrypt(header, os.urandom(32), b"", None))

    for i, (region, service) in enumerate([("us-east-1", "kms"), ("eu-west-3", "sts")]):
        request = AWSRequest(method="POST", url="http://127.0.0.1:4599/", data=b"{}", headers={
            "X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials("AKIDEXAMPLE", "secret", "token" if i else None), service, region).add_auth(request)
        auth = request.headers["Authorization"].encode()
        write("authorization", f"signed-{service}", b"\x00" + auth[:300])

    service = load_service("kms")
    names = sorted(service.operation_names)
    samples = {"KeyId": "alias/a", "Plaintext": "QQ==", "CiphertextBlob": "QQ==", "Limit": 5, "Policy": "{}",
               "EncryptionContext": {"a": "b"}, "GrantTokens": ["t"], "Tags": [{"TagKey": "a", "TagValue": "b"}],
               "KeySpec": "AES_256", "NumberOfBytes": 32, "Description": "d", "AliasName": "alias/x"}
    for index, name in enumerate(names):
        body = json.dumps(samples).encode()
        write("request", name, bytes([index]) + body)
    print(f"seeds in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
