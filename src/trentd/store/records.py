"""Plain records the store reads and writes; the kms layer builds its answers from them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KeyRecord:
    account: str
    region: str
    key_id: str
    created: float
    description: str
    key_spec: str
    key_usage: str
    origin: str
    key_state: str
    deletion_date: float | None
    multi_region: bool
    policy: str
    current_material: str | None
    key_manager: str = "CUSTOMER"  # or "AWS": an AWS managed key (kms/managed.py)
    # Filled by the kms layer from side tables, never from the keys row (keyword-only, so the
    # positional mapping of the keys columns is unaffected): the MultiRegionConfiguration of a
    # multi-Region key (kms/multiregion.py) and the external key of a key in an external key
    # store (kms/keystores.py).
    multi_region_config: dict | None = field(default=None, kw_only=True, repr=False, compare=False)
    xks: object | None = field(default=None, kw_only=True, repr=False, compare=False)

    @property
    def arn(self) -> str:
        return key_arn(self.account, self.region, self.key_id)

    @property
    def enabled(self) -> bool:
        return self.key_state == "Enabled"


@dataclass
class AliasRecord:
    account: str
    region: str
    name: str
    key_id: str
    created: float
    updated: float

    @property
    def arn(self) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:{self.name}"


@dataclass
class PrincipalRecord:
    arn: str
    account: str
    name: str
    kind: str
    created: float


def key_arn(account: str, region: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"
