"""The KMS service core: handler registration, key resolution and authorization, key material.

The key-state rules it applies live in the key domain (keydomain/states.py); which rule an
operation follows is a column of the operation table (``key_states``).

Every operation is a plain function ``handler(svc, call, request) -> dict | None`` registered
by name with ``@operation("Encrypt")`` in its family's module; kms/operations.py makes it a row
of the operation table with every other fact about the operation. Handlers know nothing of HTTP:
the request arrives parsed and validated from the botocore model, and the answer is serialized
from the same model.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from ..auth.invocation import Invocation
from ..errors import AWSError, not_found
from ..keydomain import managed
from ..keydomain.states import KeyStateRule, require_algorithm, require_usage
from ..store.records import KeyRecord, key_arn
from ..store.changes import ChangeFeed
from ..store.reset import empty_kms_state
from ..store.rootkey import aad_for, stored_secret
from ..xks.client import XksConnector
from .authorize import denied
from .cache import CachedReads, KeyStateCache
from .context_keys import condition_context
from .grant_rules import GRANT_TOKEN_AAD, GRANT_TOKEN_META, check_grant_tokens
from .usage import UsageTracker

# Handlers by operation name, registered by their family modules with @operation; the operation
# table (kms/operations.py) makes each a row with every other fact about the operation.
HANDLERS: dict[str, Callable] = {}
# Operations that may act on another account's key named by ARN (filled from the table).
CROSS_ACCOUNT: set[str] = set()
# The key states each operation accepts, by operation name (filled from the table's key_states column).
KEY_STATES: dict[str, KeyStateRule] = {}
# Functions ``load(svc, tx, key)`` that complete a key read by live_key() from side tables: its
# MultiRegionConfiguration (kms/multiregion.py) and its external key store (kms/keystores.py,
# which also shows a key of a disconnected store as Unavailable). Each returns at once for keys
# that are not its kind.
KEY_LOADERS: list[Callable] = []

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MRK = re.compile(r"mrk-[0-9a-f]{32}")
_ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov):kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)", re.ASCII)


def operation(name: str):
    def register(handler):
        HANDLERS[name] = handler
        return handler

    return register


class MaterialCache:
    """Unwrapped backing keys by (account, key id, material id). Material never changes once
    written, so entries can never be stale; a bounded LRU keeps memory flat with many keys."""

    def __init__(self, size: int = 10_000):
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, ident: tuple) -> bytes | None:
        with self._lock:
            value = self._entries.get(ident)
            if value is not None:
                self._entries.move_to_end(ident)
            return value

    def put(self, ident: tuple, value: bytes) -> None:
        with self._lock:
            self._entries[ident] = value
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def discard(self, ident: tuple) -> None:
        """Forget material that was deleted (imported material: DeleteImportedKeyMaterial, expiry)."""
        with self._lock:
            self._entries.pop(ident, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Service:
    def __init__(self, store, root_key, clock, authorizer):
        self.store = store
        self.root_key = root_key
        self.clock = clock
        self.authorizer = authorizer
        self.materials = MaterialCache()
        # Key records, aliases and grants for the hot path (kms/cache.py); a store without a
        # change feed gets one that is never polled, so nothing is cached.
        changes = getattr(store, "changes", None) or ChangeFeed(store)
        self.cache = KeyStateCache(changes)
        self.usage = UsageTracker()  # last cryptographic use per key (GetKeyLastUsage), flushed each second
        self.xks = XksConnector()  # calls to external key store proxies (runtime.py configures it)
        changes.on_reset(self.forget_deleted_state)  # a reset made by another worker or node
        # The MAC key of grant tokens (grant_rules.make_token): one per deployment, so a token
        # made by any node or worker is accepted by all.
        self.grant_token_key = stored_secret(store, root_key, GRANT_TOKEN_META, GRANT_TOKEN_AAD)

    def reset(self) -> int:
        """--dev's reset: empty every account's KMS state (store/reset.py) and forget it here at
        once (other processes forget it when their change feed sees the reset); returns the
        number of key rows deleted."""
        with self.store.write() as tx:
            deleted = empty_kms_state(tx)
        self.forget_deleted_state()
        return deleted

    def forget_deleted_state(self) -> None:
        """After a reset: what the epoch-tagged caches do not cover. Unwrapped material of deleted
        keys must not outlive them in memory; last-use times of deleted keys have nothing to
        update (the flush would skip them anyway)."""
        self.materials.clear()
        self.usage.clear()

    def hot_reads(self) -> CachedReads:
        """The read "transaction" of the cryptographic operations: keys, aliases and grants come
        from the cache, and a store transaction opens only on a miss (kms/cache.py)."""
        return self.cache.reads(self.store)

    # --- key identifiers ------------------------------------------------------------------
    def resolve(self, tx, caller: Invocation, key_id: str, *, aliases: bool = False, action: str | None = None,
                authorize: bool = True, check_state: bool = True) -> KeyRecord:
        """Find the key a KeyId names, with AWS's error for each kind of miss, check that the
        caller may perform ``action`` (default: the operation called) on it, then that the
        operation accepts the key's state (the row's ``key_states``), in AWS's order.

        ``aliases``: whether this operation accepts alias names and alias ARNs (only the
        cryptographic operations, DescribeKey and GetPublicKey do). ``check_state=False``: the
        handler applies the same check itself later (``check_key_state``), where AWS does."""
        key = self._find(tx, caller, key_id, aliases)
        caller.resources.append(key.arn)
        if authorize:
            self.authorize(tx, caller, key, action or caller.action)
        if check_state:
            self.check_key_state(caller, key)
        return key

    @staticmethod
    def check_key_state(caller: Invocation, key: KeyRecord) -> None:
        """Refuse a key whose state the operation called does not accept, with AWS's error."""
        KEY_STATES[caller.operation].check(key)

    def authorize(self, tx, caller: Invocation, key: KeyRecord, action: str) -> None:
        # Grant tokens are checked wherever a key is authorized, so also for a Decrypt whose key
        # comes from the ciphertext rather than from a KeyId.
        check_grant_tokens(tx, self.grant_token_key, caller.grant_tokens)
        if key.key_manager == "AWS" and not managed.allows(action):
            # No policy change, state change or deletion of an AWS managed key, whatever any
            # policy or grant says; AWS's answer is the one its key policy gives.
            raise denied(caller, action, key.arn, f"because no resource-based policy allows the {action} action")
        if self.authorizer.allows_without_context(tx, caller, action, key):
            return
        self.authorizer.check_key(tx, caller, action, key, condition_context(tx, caller, action, key))

    def authorize_account(self, caller: Invocation, resource: str = "*") -> None:
        """Operations on no key (CreateKey, ListKeys, …): identity policies decide."""
        self.authorizer.check_account(caller, caller.action, resource, condition_context(None, caller, caller.action))
        if caller.operation == "CreateKey" and (caller.request or {}).get("Tags"):
            # Tags on CreateKey also need kms:TagResource in an identity policy covering every key
            # of the account and Region (KMS guide, "Controlling access to tags"); AWS's refusal
            # names no resource.
            every_key = f"arn:aws:kms:{caller.region}:{caller.account}:key/*"
            self.authorizer.check_account(caller, "kms:TagResource", every_key,
                                          condition_context(None, caller, "kms:TagResource"), shown_resource=None)

    def _find(self, tx, caller: Invocation, key_id: str, aliases: bool) -> KeyRecord:
        account, region = caller.account, caller.region
        if key_id.startswith("arn:"):
            match = _ARN.fullmatch(key_id)
            if not match:
                raise AWSError("InvalidArnException", f"Invalid arn {key_id}")
            _, arn_region, account, kind, rest = match.groups()
            if arn_region != region:
                raise not_found(f"Invalid arn {arn_region}")
            if kind == "alias" and not aliases:
                raise AWSError("InvalidArnException", "Key Aliases are not supported for this operation.")
            if account != caller.account and not self.crosses_accounts(caller.operation):
                # The same answer whether or not that key exists, before any lookup or policy.
                raise not_found(f"Key '{key_id}' does not exist")
            if kind == "alias":
                return self._by_alias(tx, caller, account, f"alias/{rest}", aliases)
            key_id = rest
        elif key_id.startswith("alias/"):
            return self._by_alias(tx, caller, account, key_id, aliases)
        if not (_UUID.fullmatch(key_id) or _MRK.fullmatch(key_id)):
            raise not_found(f"Invalid keyId '{key_id}'")
        key = self.live_key(tx, account, region, key_id)
        if key is None:
            raise not_found(f"Key '{key_arn(account, region, key_id)}' does not exist")
        return key

    @staticmethod
    def crosses_accounts(operation_name: str) -> bool:
        """Whether the operation may act on another account's key (named by ARN); an alias name or
        a bare key id always resolves in the caller's own account."""
        return operation_name in CROSS_ACCOUNT

    def _by_alias(self, tx, caller: Invocation, account: str, name: str, allowed: bool) -> KeyRecord:
        if not allowed:
            raise AWSError("InvalidArnException", "Key Aliases are not supported for this operation.")
        target = self._alias_target(tx, account, caller.region, name)
        key = self.live_key(tx, account, caller.region, target) if target else None
        if key is None:
            if target is None and account == caller.account and managed.service_of(name):
                raise managed.ManagedKeyMissing(name)  # created on first use: kms/keys.py
            raise not_found(f"Alias arn:aws:kms:{caller.region}:{account}:{name} is not found.")
        return key

    @staticmethod
    def _alias_target(tx, account: str, region: str, name: str) -> str | None:
        def load():
            alias = tx.get_alias(account, region, name)
            return alias.key_id if alias else None

        if isinstance(tx, CachedReads):
            return tx.cache.aliases.get((account, region, name), load)
        return load()

    def live_key(self, tx, account: str, region: str, key_id: str) -> KeyRecord | None:
        """A key whose deletion date has passed is gone, even before the sweeper removes it."""
        if isinstance(tx, CachedReads):
            key = tx.cache.keys.get((account, region, key_id), lambda: self._load_key(tx, account, region, key_id))
        else:
            key = self._load_key(tx, account, region, key_id)
        if key is not None and key.deletion_date is not None and key.deletion_date <= self.clock.now():
            return None
        return key

    def _load_key(self, tx, account: str, region: str, key_id: str) -> KeyRecord | None:
        key = tx.get_key(account, region, key_id)
        if key is not None:
            for load in KEY_LOADERS:
                load(self, tx, key)
        return key

    def key_for_use(self, tx, caller: Invocation, key_id: str, usage: str, operation_name: str,
                    algorithm: str | None = None, action: str | None = None) -> KeyRecord:
        """Resolve a key for a cryptographic operation and check, in AWS's order, permission,
        its state, its usage and the requested algorithm."""
        key = self.resolve(tx, caller, key_id, aliases=True, action=action)
        require_usage(key, usage, operation_name)
        if algorithm is not None:
            require_algorithm(key, algorithm)
        return key

    def principal_exists(self, tx, arn: str) -> bool:
        """Whether a principal named in a policy or grant exists (accounts and roots always do;
        --dev has no registry of principals, so every well-formed principal exists there). A
        group is never one: AWS refuses an IAM group as a key policy's or grant's principal."""
        if arn.split(":", 5)[-1].startswith("group/"):
            return False
        if self.authorizer.dev or arn.endswith(":root"):
            return True
        found = tx.get_principal(arn)
        return found is not None and found.kind != "group"

    # --- key material ---------------------------------------------------------------------
    def new_material(self, tx, account: str, key_id: str, material: bytes, material_id: str | None = None) -> str:
        """Wrap and store a backing key; returns its KeyMaterialId (64 hex): random for generated
        material, or the one given (imported material's id is derived from the material)."""
        material_id = material_id or secrets.token_hex(32)
        wrapped = self.root_key.wrap(material, aad_for(account, key_id, material_id))
        tx.insert_material(account, key_id, material_id, wrapped, self.clock.now())
        self.materials.put((account, key_id, material_id), material)
        return material_id

    def current_material(self, tx, key: KeyRecord) -> bytes:
        current = key.current_material
        material = self.material(tx, key.account, key.key_id, current) if current else None
        if material is None:
            raise AWSError("KMSInternalException", f"Key material of {key.arn} is missing.")
        return material

    def material(self, tx, account: str, key_id: str, material_id: str) -> bytes | None:
        ident = (account, key_id, material_id)
        cached = self.materials.get(ident)
        if cached is not None:
            return cached
        wrapped = tx.get_material(account, key_id, material_id)
        if wrapped is None:
            return None
        material = self.root_key.unwrap(wrapped, aad_for(*ident))
        self.materials.put(ident, material)
        return material

