"""Helper functions shared by the test packages (fixtures stay in the conftest files).

- ``fails(call, **kwargs)``: run a call that must raise a botocore ClientError; its (code, message).
- ``error_of(excinfo)``: (code, message) of the ClientError in a ``pytest.raises`` result.
- ``code_of(exc)``: (code, HTTP status) of a ClientError.
- ``new_account()``: a random 12-digit account id (in --dev an access key id picks the account).
- ``key_arn(account, key_id)``: a KMS key's ARN (Region us-east-1 unless given).
- ``server_now(server)``: the service clock of a server started with the test clock.
- ``user_aliases(kms)``: ListAliases without the predefined ``alias/aws/*`` entries.
- ``break_audit_dir(server)``: make the server's audit log unwritable.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer

REGION = "us-east-1"


def error_of(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """(error code, message) of a botocore ClientError."""
    err = excinfo.value
    assert isinstance(err, ClientError), err
    return err.response["Error"]["Code"], err.response["Error"].get("Message", "")


def fails(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str]:
    """Run ``call(**kwargs)``, which must fail with a ClientError: its (code, message)."""
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    return error_of(excinfo)


def code_of(exc: ClientError) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore ClientError."""
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def new_account() -> str:
    return "".join(random.choice("0123456789") for _ in range(12))


def key_arn(account: str, key_id: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def server_now(server: TrentdServer) -> float:
    """The service clock; moving it by zero also runs the background jobs once."""
    return server.move_clock(advance_seconds=0)["now"]


def user_aliases(kms, **kwargs) -> list[dict]:
    """ListAliases without the predefined ``alias/aws/*`` entries that every account lists (AWS
    managed keys, tests/e2e/test_managed_keys.py): what tests about the caller's own aliases check."""
    return [a for a in kms.list_aliases(**kwargs)["Aliases"] if not a["AliasName"].startswith("alias/aws/")]


def break_audit_dir(server: TrentdServer) -> Path:
    """Make the audit log unwritable. Root ignores permissions, so: move the audit directory away
    (the server notices its file is gone before the next batch) and put a plain file where the
    directory must be re-created. Unlinking that file makes the log writable again."""
    audit = server.data_dir / "audit"
    moved = server.data_dir / "audit.moved"
    audit.rename(moved)
    audit.write_text("not a directory")
    return moved
