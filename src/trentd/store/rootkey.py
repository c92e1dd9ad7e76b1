"""Root-key providers: everything secret in the store is wrapped under a root key.

A wrapped value is ``format (1 B) || root-key id (4 B) || nonce (12 B) || AES-256-GCM(ciphertext
|| tag)``. The format byte names the provider (``0x02`` file, ``0x03`` PKCS#11), the root-key id
names which of its keys wrapped the value, so a store can hold values wrapped under an old and a
new root key while ``trentd root-key rotate`` runs (docs/operations.md, "Root key"). The legacy
format ``0x01 || nonce || ciphertext`` (file provider, no id) is still read. The AAD names what the
value is (for key material: account, key id and material id), so a wrapped blob copied onto
another row does not unwrap.

Providers: ``file`` keeps 32 random bytes per root key in a 0600 file (one key, or during a
rotation the old and the new one, oldest first); ``pkcs11`` keeps non-extractable AES-256 keys in
an HSM and does every wrap and unwrap inside it (store/pkcs11.py). The store keeps a canary wrapped
under the root key so a node given the wrong root key refuses to start instead of failing later on
every request, and names the root key that new values are wrapped under (``ROOT_KEY_META``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .interface import Store

WRAP_VERSION = b"\x01"  # legacy file format (no root-key id); read, never written
FORMAT_LEGACY_FILE = 0x01
FORMAT_FILE = 0x02
FORMAT_PKCS11 = 0x03
PROVIDER_OF_FORMAT = {FORMAT_LEGACY_FILE: "file", FORMAT_FILE: "file", FORMAT_PKCS11: "pkcs11"}
KEY_ID_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES
CANARY_AAD = b"trentd root-key canary"
ROOT_KEY_META = "root_key_id"  # "<provider>:<hex id>": the root key new values are wrapped under
REFRESH_SECONDS = 1.0  # how stale a node's idea of ROOT_KEY_META may be (rotation waits longer)
RELOAD_SECONDS = 1.0  # at most one provider reload a second when a value names an unknown key


class RootKeyError(Exception):
    """The root key is missing, unreadable or not the one the store was written with."""


class RootKeyUnavailable(RootKeyError):
    """The root-key provider cannot be reached now (an HSM gone): a retryable 5xx, never a
    fallback key."""


def aad_for(*parts: str) -> bytes:
    """Length-prefixed so that no two different tuples give the same AAD."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def parse_wrapped(wrapped: bytes) -> tuple[int, bytes | None, bytes, bytes]:
    """(format, root-key id or None for the legacy format, nonce, ciphertext with tag)."""
    fmt = wrapped[0] if wrapped else -1
    if fmt == FORMAT_LEGACY_FILE and len(wrapped) >= 1 + NONCE_BYTES + TAG_BYTES:
        return fmt, None, wrapped[1:13], wrapped[13:]
    if fmt in (FORMAT_FILE, FORMAT_PKCS11) and len(wrapped) >= HEADER_BYTES + TAG_BYTES:
        return fmt, wrapped[1:5], wrapped[5:HEADER_BYTES], wrapped[HEADER_BYTES:]
    raise RootKeyError("unknown wrapping format")


def describe(provider: str, key_id: bytes) -> str:
    """How a root key is named in the store (``ROOT_KEY_META``), logs and command output."""
    return f"{provider}:{key_id.hex()}"


class SealingKey(Protocol):
    """One root key of a provider: AES-256-GCM under a key that never leaves it."""

    key_id: bytes

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes: ...


class FileRootKey:
    """One 32-byte root key held in memory (the ``file`` provider's unit)."""

    name = "file"
    fmt = FORMAT_FILE

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise RootKeyError("the root key must be 32 bytes")
        self._aead = AESGCM(key)
        # A public name for the key: a truncated hash under a fixed label (it reveals nothing of it).
        self.key_id = hashlib.sha256(b"trentd root-key id\x00" + key).digest()[:KEY_ID_BYTES]

    @classmethod
    def load_or_create(cls, path: Path, create: bool) -> "FileRootKey":
        """The newest key of a root key file (created at first start)."""
        return FileProvider(path, create=create).keys()[-1]

    @classmethod
    def load(cls, path: Path) -> "FileRootKey":
        return FileProvider(path, create=False).keys()[-1]

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise RootKeyError("wrapped value does not unwrap under this root key") from None

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return bytes([self.fmt]) + self.key_id + nonce + self.seal(nonce, plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        fmt, key_id, nonce, body = parse_wrapped(wrapped)
        if PROVIDER_OF_FORMAT[fmt] != "file" or key_id not in (None, self.key_id):
            raise RootKeyError("wrapped value does not unwrap under this root key")
        return self.open(nonce, body, aad)


def check_file_mode(path: Path) -> None:
    """Refuse a root key file that others could read (PostgreSQL's rule for its key file): any
    permission for others to read, or for its group unless root owns it (Kubernetes mounts a
    secret root-owned and group-readable for the pod's group). A missing file is left to the
    caller."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IROTH:
        why = f"is readable by others (mode {mode:04o})"
    elif mode & stat.S_IRGRP and st.st_uid != 0:
        why = f"is readable by its group and not owned by root (mode {mode:04o})"
    else:
        return
    raise RootKeyError(f"root key file {path} {why}: make it readable by its owner only (chmod 600 {path}); "
                       "if others may have read it, rotate the root key (trentd root-key rotate)")


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600: a temporary file in the same directory,
    fsync, rename, fsync of the directory. A crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileProvider:
    """Root keys in a file: 32 random bytes per key, oldest first (one key except while a
    rotation runs). Generated, 0600, at first start when allowed."""

    name = "file"
    fmt = FORMAT_FILE

    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        self.path = Path(path)
        if create and not self.path.exists():
            self._create_first()

    def _create_first(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:  # O_EXCL: two processes racing at first start must not write two different keys
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())

    def _read(self) -> bytes:
        check_file_mode(self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise RootKeyError(f"root key file {self.path} does not exist") from None
        except OSError as exc:
            raise RootKeyError(f"cannot read root key file {self.path}: {exc.strerror}") from None
        if not raw or len(raw) % 32:
            raise RootKeyError(f"root key file {self.path}: the root key must be 32 bytes")
        return raw

    def keys(self) -> list[FileRootKey]:
        raw = self._read()
        return [FileRootKey(raw[i : i + 32]) for i in range(0, len(raw), 32)]

    def create_key(self) -> FileRootKey:
        """Append a new key to the file (atomically replaced); the old ones stay readable."""
        raw = self._read()
        while True:
            new = secrets.token_bytes(32)
            key = FileRootKey(new)
            if key.key_id not in {k.key_id for k in self.keys()}:
                break
        write_private_file(self.path, raw + new)
        return key

    def retire(self, keep: set[bytes]) -> list[bytes]:
        """Rewrite the file with only the keys in ``keep``; returns the ids removed."""
        raw = self._read()
        chunks = [raw[i : i + 32] for i in range(0, len(raw), 32)]
        kept = [c for c in chunks if FileRootKey(c).key_id in keep]
        if not kept:
            raise RootKeyError("refusing to remove every root key from the file")
        removed = [FileRootKey(c).key_id for c in chunks if FileRootKey(c).key_id not in keep]
        if removed:
            write_private_file(self.path, b"".join(kept))
        return removed

    def close(self) -> None:
        pass


class RootKeyRing:
    """What the rest of trentd calls ``root_key``: ``wrap`` under the current root key, ``unwrap``
    under whichever key the value names.

    The current key is the one the store names (``ROOT_KEY_META``, re-read at most once per
    ``REFRESH_SECONDS`` through ``current_source``), else the provider's newest. Keys a value names
    that this node has not loaded are fetched from the provider on demand (a file re-read, an HSM
    lookup), and a loaded key is never forgotten: during a rotation a running node holds the old
    and the new key until it is restarted."""

    def __init__(self, provider, current_source: Callable[[], str | None] | None = None):
        self.provider = provider
        self.name = provider.name
        self.fmt = provider.fmt
        self._current_source = current_source
        self._lock = threading.Lock()
        self._keys: dict[bytes, SealingKey] = {}
        self._order: list[bytes] = []  # oldest first, as the provider lists them
        self._named: bytes | None = None  # the id the store names, once read
        self._named_at = float("-inf")
        self._missing: dict[bytes, float] = {}  # ids asked for and not held: when last looked for
        self._reload()
        if not self._keys:
            raise RootKeyError(f"the {self.name} root-key provider holds no root key")

    # --- keys -----------------------------------------------------------------------------
    def _reload(self) -> None:
        keys = self.provider.keys()
        with self._lock:
            for key in keys:
                if key.key_id not in self._keys:
                    self._keys[key.key_id] = key
                    self._order.append(key.key_id)

    def key(self, key_id: bytes) -> SealingKey:
        key = self._keys.get(key_id)
        if key is None:
            now = time.monotonic()
            if now - self._missing.get(key_id, float("-inf")) >= RELOAD_SECONDS:
                if len(self._missing) > 1000:
                    self._missing.clear()
                self._missing[key_id] = now
                self._reload()
            key = self._keys.get(key_id)
            if key is None:
                raise RootKeyError(f"the value is wrapped under root key {describe(self.name, key_id)}, "
                                   f"which this node's {self.name} provider does not hold")
        return key

    def key_ids(self) -> list[bytes]:
        return list(self._order)

    def set_current(self, key_id: bytes) -> None:
        """Wrap new values under ``key_id`` from now on (the rotation command's own process)."""
        self.key(key_id)
        self._named, self._named_at = key_id, float("inf")

    def current(self) -> SealingKey:
        if self._current_source is not None and time.monotonic() - self._named_at >= REFRESH_SECONDS:
            named = self._current_source()
            if named:
                provider, _, hex_id = named.partition(":")
                if provider != self.name:
                    raise RootKeyError(f"the store's values are wrapped by the {provider} root-key provider; "
                                       f"this node is configured with {self.name}")
                self._named = bytes.fromhex(hex_id)
            self._named_at = time.monotonic()
        if self._named is not None:
            return self.key(self._named)
        return self._keys[self._order[-1]]

    def current_id(self) -> bytes:
        return self.current().key_id

    # --- wrapping -------------------------------------------------------------------------
    def wrap(self, plaintext: bytes, aad: bytes, key: SealingKey | None = None) -> bytes:
        key = key or self.current()
        nonce = secrets.token_bytes(NONCE_BYTES)
        return bytes([self.fmt]) + key.key_id + nonce + key.seal(nonce, plaintext, aad)

    def wrapped_under(self, wrapped: bytes) -> bytes | None:
        """The id of the root key that wrapped ``wrapped`` (None: the legacy format)."""
        return parse_wrapped(wrapped)[1]

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        fmt, key_id, nonce, body = parse_wrapped(wrapped)
        provider = PROVIDER_OF_FORMAT[fmt]
        if provider != self.name:
            raise RootKeyError(f"the value is wrapped by the {provider} root-key provider; "
                               f"this node is configured with {self.name}")
        if key_id is not None:
            return self.key(key_id).open(nonce, body, aad)
        for candidate in list(self._keys.values()):  # legacy: no id; a file holds one or two keys
            try:
                return candidate.open(nonce, body, aad)
            except RootKeyUnavailable:
                raise
            except RootKeyError:
                continue
        raise RootKeyError("wrapped value does not unwrap under this root key")

    def close(self) -> None:
        self.provider.close()


def make_canary(root_key) -> bytes:
    return root_key.wrap(secrets.token_bytes(16), CANARY_AAD)


def check_canary(root_key, canary: bytes) -> None:
    root_key.unwrap(canary, CANARY_AAD)


def stored_secret(store: Store, root_key, meta: str, aad: bytes) -> bytes:
    """A per-deployment random 32-byte key, kept in the store's ``meta`` row wrapped under the root
    key with ``aad`` (so every worker and node has the same one), created on first use. Its meta
    row belongs in rotation.WRAPPED_META so that a root-key rotation rewraps it."""
    with store.read() as tx:
        wrapped = tx.get_meta(meta)
    if wrapped is None:
        with store.write() as tx:
            tx.exclusive(meta)  # several nodes may start at once over one database
            wrapped = tx.get_meta(meta)  # another process may have won the race
            if wrapped is None:
                wrapped = base64.b64encode(root_key.wrap(secrets.token_bytes(32), aad)).decode()
                tx.set_meta(meta, wrapped)
    return root_key.unwrap(base64.b64decode(wrapped), aad)
