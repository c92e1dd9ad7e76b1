"""atheris: JSON → input validation (protocol/: the botocore-model driven parser and validator).
Any body for any operation must parse to a dict or raise SerializationException or
ValidationException (HTTP 400, with a message): nothing else (fuzz/README.md)."""

import sys

import atheris

with atheris.instrument_imports():
    from trentd.errors import AWSError
    from trentd.protocol.model import load_service

SERVICE = load_service("kms")
OPERATIONS = sorted(SERVICE.operation_names)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    operation = SERVICE.operation(OPERATIONS[data[0] % len(OPERATIONS)])
    try:
        parsed = operation.parse(data[1:])
    except AWSError as err:
        if err.code not in ("SerializationException", "ValidationException") or err.status != 400 or not err.message:
            raise
        return
    if not isinstance(parsed, dict):
        raise AssertionError(f"{operation.name} parsed to {type(parsed)}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
