"""A world of principals for the authorization tests: one non-dev trentd per store, principals
in several accounts made with the admin CLI (``trentd principals …``, ``trentd access-keys …``),
and boto3 clients per principal.

The admin CLI must reach the store the server uses: over PostgreSQL it gets the server's
``--database`` DSN and ``--root-key-file`` (without them it would quietly initialise a separate
SQLite store in the data dir).

Identity policies are cached by the server for about a second (kms/authorize.py), so a test never
changes the identity policy of a principal that has already made a request: each principal's
policy is put once, before its first call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trentd.testing.server import TrentdServer

ACCT_A = "111122223333"  # the server's own account: its bootstrap administrator lives here
ACCT_B = "444455556666"
ACCT_C = "777788889999"
REGION = "us-east-1"
TRENTD = Path(sys.executable).with_name("trentd")

# AccessDenied reasons (security.md B2)
DENY_R = "resource"  # no resource-based policy allows
DENY_I = "identity"  # key policy delegates (or cross-account), no identity-based policy allows
XDENY_R = "explicit-resource"
XDENY_I = "explicit-identity"
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
UNKNOWN_KEY = ("The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
               "or you are not allowed to access.")


def access_denied(principal_arn: str, action: str, resource: str, why: str) -> str:
    """AWS's AccessDenied text for each evaluation path."""
    reason = {
        DENY_R: f"because no resource-based policy allows the {action} action",
        DENY_I: f"because no identity-based policy allows the {action} action",
        XDENY_R: "with an explicit deny in a resource-based policy",
        XDENY_I: "with an explicit deny in an identity-based policy",
    }[why]
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}"


def policy(*statements: dict, **top) -> str:
    return json.dumps({"Version": "2012-10-17", **top, "Statement": list(statements)})


@dataclass
class Principal:
    server: TrentdServer
    arn: str
    access_key: str
    secret: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    @property
    def name(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    @property
    def root(self) -> str:
        return f"arn:aws:iam::{self.account}:root"

    def client(self, service: str = "kms", **config):
        return self.server.client(service, access_key=self.access_key, secret_key=self.secret, region=REGION,
                                  **config)

    @property
    def kms(self):
        client = self.__dict__.get("_kms")
        if client is None:
            client = self.__dict__["_kms"] = self.client()
        return client


class World:
    """One server and its principals. ``admin`` is the bootstrap administrator of account A
    (allow-all identity policy)."""

    def __init__(self, server: TrentdServer):
        self.server = server
        access_key, secret = server.admin_credentials()
        self.admin = Principal(server, f"arn:aws:iam::{server.account}:user/admin", access_key, secret)
        self.users: dict[str, Principal] = {}
        self.userids: dict[str, str] = {}  # UserId as GetCallerIdentity shows it

    # --- the admin CLI --------------------------------------------------------------------
    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.server.data_dir)]
        if self.server.database:
            args += ["--database", self.server.database, "--root-key-file", str(self.server.root_key_file)]
        return args

    def cli(self, *args: str, check: bool = True) -> dict | subprocess.CompletedProcess:
        result = subprocess.run([str(TRENTD), *args, *self.store_args()], capture_output=True, text=True,
                                timeout=120)
        if not check:
            return result
        assert result.returncode == 0, f"trentd {' '.join(args)}: {result.stderr}"
        return json.loads(result.stdout)

    def _make(self, account: str, name: str, identity_policy: str | None) -> Principal:
        arn = self.cli("principals", "create", "--account", account, "--name", name)["Arn"]
        assert arn == f"arn:aws:iam::{account}:user/{name}"
        keys = self.cli("access-keys", "create", "--principal", arn)
        assert keys["Principal"] == arn
        if identity_policy is not None:
            self.put_policy(arn, identity_policy)
        return Principal(self.server, arn, keys["AccessKeyId"], keys["SecretAccessKey"])

    def put_policy(self, arn: str, document: str, name: str = "inline") -> None:
        path = self.server.data_dir.parent / f"{self.server.data_dir.name}-{arn.rsplit('/', 1)[1]}-{name}.json"
        path.write_text(document)
        try:
            out = self.cli("principals", "put-policy", "--principal", arn, "--policy-file", str(path),
                           "--policy-name", name)
        finally:
            path.unlink(missing_ok=True)
        assert out == {"Arn": arn, "PolicyName": name}

    def make_users(self, specs: list[tuple[str, str, str | None]]) -> dict[str, Principal]:
        """Create (account, name, identity policy or None) principals, a few at a time."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            made = list(pool.map(lambda spec: self._make(*spec), specs))
        for spec, principal in zip(specs, made):
            self.users[spec[1]] = principal
        return {spec[1]: p for spec, p in zip(specs, made)}

    def __getitem__(self, name: str) -> Principal:
        return self.admin if name == "admin" else self.users[name]

