"""Plain records the store reads and writes; the kms and sts layers build their answers from them.

Every record type lives here, so that the declared interface (store/interface.py) names them
without importing the SQL that reads them; the query modules re-export the ones they read.
"""

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
    key_manager: str = "CUSTOMER"  # or "AWS": an AWS managed key (keydomain/managed.py)
    # Filled from side tables when a key is read, never from the keys row (keyword-only, so the
    # positional mapping of the keys columns is unaffected), by the key loaders of kms/service.py
    # (KEY_LOADERS): the MultiRegionConfiguration of a multi-Region key (keydomain/multiregion.py)
    # and the external key of a key in an external key store (keydomain/external.py).
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


# --- key lifecycle (store/lifecycle.py) --------------------------------------------------
@dataclass
class RotationRecord:
    account: str
    region: str
    key_id: str
    enabled: bool
    period_days: int
    next_rotation: float | None
    on_demand_count: int


@dataclass
class MaterialVersion:
    account: str
    region: str
    key_id: str
    material_id: str
    seq: int
    pending: bool  # imported as NEW_KEY_MATERIAL, waiting for RotateKeyOnDemand
    present: bool  # False: imported material deleted or expired
    rotation_date: float | None
    rotation_type: str | None  # AUTOMATIC | ON_DEMAND | None (first material, pending)
    expiration_model: str | None
    valid_to: float | None
    description: str | None
    created: float


@dataclass
class DueKey:
    """A key whose automatic rotation or material expiry is due, as claimed by a job."""

    account: str
    region: str
    key_id: str
    key_state: str
    current_material: str | None
    period_days: int = 0
    material_id: str | None = None  # the expiring material (expiry job)
    pending: bool = False


# --- grants (store/grants.py) ------------------------------------------------------------
@dataclass
class GrantRecord:
    account: str
    region: str
    key_id: str
    grant_id: str
    name: str | None
    grantee: str | None
    retiring: str | None
    grantee_service: str | None
    retiring_service: str | None
    operations: list[str]
    constraints: dict | None
    issuing_account: str
    created: float


# --- custom key stores (store/keystores.py) ----------------------------------------------
@dataclass
class KeyStoreRecord:
    account: str
    region: str
    store_id: str
    name: str
    store_type: str  # EXTERNAL_KEY_STORE (the only type trentd has)
    uri_endpoint: str
    uri_path: str
    connectivity: str
    access_key_id: str
    wrapped_secret: bytes
    connection_state: str  # DISCONNECTED | CONNECTED | FAILED
    connection_error: str | None
    created: float


@dataclass
class XksBinding:
    """A KMS key's external key, and the state of the store that holds it."""

    store_id: str
    xks_key_id: str
    store: KeyStoreRecord | None


# --- STS sessions (store/sessions.py) ----------------------------------------------------
@dataclass(frozen=True)
class SessionRecord:
    access_key_id: str
    token_hash: str  # sha256 hex of the session token; the token itself is never stored
    wrapped_secret: bytes
    account: str
    principal_arn: str  # what policies see: the role (AssumeRole) or the user (GetSessionToken)
    session_arn: str  # what callers are shown: the assumed-role ARN, or the user's ARN
    kind: str  # "AssumedRole" or "SessionToken"
    session_name: str | None
    policies: str | None  # JSON list of session policy documents
    tags: str | None  # JSON object of session tags
    created: float
    expires: float


# --- trentd as an XKS proxy (store/xksproxy.py, migration 0013) ---------------------------
@dataclass(frozen=True)
class XksProxyKeystore:
    name: str
    uri_path: str
    account: str
    policy: str | None  # the secondary-authorization policy, or None (every request allowed)
    created: float


@dataclass(frozen=True)
class XksProxyCredential:
    access_key_id: str
    keystore: str
    wrapped_secret: bytes
    created: float


@dataclass(frozen=True)
class XksProxyKey:
    keystore: str
    key_id: str
    wrapped: bytes  # the AES-256 material, wrapped under the root key
    usages: tuple[str, ...]
    status: str  # ENABLED | DISABLED
    created: float


def key_arn(account: str, region: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


# --- the IAM API (store/iam.py) -------------------------------------------------------------
@dataclass
class IamEntity:
    """A user, role or group as the IAM API shows it (a row of ``principals``)."""

    arn: str
    account: str
    name: str
    kind: str  # 'user', 'role' or 'group'
    created: float
    entity_id: str | None  # None on rows made before the IAM API: derived from the ARN
    path: str = "/"
    description: str | None = None
    max_session_duration: int = 3600


@dataclass
class ManagedPolicyRecord:
    arn: str
    account: str  # 'aws' for AWS managed policies
    name: str
    document: str  # the default version's
    created: float
    policy_id: str | None
    path: str
    description: str | None
    default_version: str
    next_version: int
    updated: float | None
