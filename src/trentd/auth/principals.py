"""Principals (IAM users and roles), their access keys, and the first-start administrator.

SigV4 is symmetric, so trentd must hold each secret access key itself: secrets are stored
wrapped under the root key (AAD binds the access key id) and never written anywhere in clear,
except once into the administrator's 0600 credentials file at first start.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import time
from pathlib import Path

from ..store.records import PrincipalRecord
from .identity import new_unique_id
from ..store.rootkey import aad_for

ADMIN_NAME = "admin"
ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_ALNUM = string.ascii_uppercase + string.digits


class PrincipalError(ValueError):
    pass


def principal_arn(account: str, name: str, kind: str = "user") -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"


def _secret_aad(access_key_id: str) -> bytes:
    return aad_for("access-key", access_key_id)


def create_principal(tx, account: str, name: str, kind: str = "user", *, derived_id: bool = False) -> PrincipalRecord:
    """A user or role with a new random unique id (as the IAM API's); ``derived_id``: none stored,
    so its id is the one derived from its ARN (auth/identity.py user_id), the id --dev's callers
    have without reading the store."""
    if not re.fullmatch(r"\d{12}", account):
        raise PrincipalError(f"account must be 12 digits, not {account!r}")
    if not _NAME.fullmatch(name):
        raise PrincipalError(f"invalid principal name {name!r}")
    if kind not in ("user", "role"):
        raise PrincipalError("type must be user or role")
    record = PrincipalRecord(principal_arn(account, name, kind), account, name, kind, time.time())
    if tx.get_principal(record.arn):
        raise PrincipalError(f"principal {record.arn} already exists")
    tx.insert_principal(record, None if derived_id else new_unique_id(kind))
    return record


def create_access_key(tx, root_key, arn: str) -> tuple[str, str]:
    if tx.get_principal(arn) is None:
        raise PrincipalError(f"no such principal: {arn}")
    access_key_id = "AKIA" + "".join(secrets.choice(_ALNUM) for _ in range(16))
    secret = secrets.token_urlsafe(30)  # 40 characters, like AWS's
    tx.insert_access_key(access_key_id, arn, root_key.wrap(secret.encode(), _secret_aad(access_key_id)), time.time())
    return access_key_id, secret


def wrap_secret(root_key, access_key_id: str, secret: str) -> bytes:
    """A secret access key as stored: long-term keys here, temporary ones in sts_sessions."""
    return root_key.wrap(secret.encode(), _secret_aad(access_key_id))


def unwrap_secret(root_key, access_key_id: str, wrapped: bytes) -> str:
    return root_key.unwrap(wrapped, _secret_aad(access_key_id)).decode()


def bootstrap_admin(tx, root_key, account: str) -> tuple[str, str, str]:
    """Create the administrator (allow-all identity policy): (arn, access key id, secret)."""
    admin = create_principal(tx, account, ADMIN_NAME, derived_id=True)  # --dev's callers act as it
    tx.put_identity_policy(admin.arn, "AdministratorAccess", ALLOW_ALL)
    access_key_id, secret = create_access_key(tx, root_key, admin.arn)
    return admin.arn, access_key_id, secret


def write_credentials_file(path: Path, access_key_id: str, secret: str) -> None:
    """AWS shared-credentials format, profile ``default``, mode 0600 from the first byte."""
    text = f"[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
