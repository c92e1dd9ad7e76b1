"""The ``pkcs11`` root-key provider: AES-256 keys generated inside an HSM, never extractable, and
every wrap and unwrap done by the HSM (AES-GCM, the same AAD and wrapped-value format as the file
provider; format byte 0x03, store/rootkey.py).

Root keys are secret-key objects labelled ``<label>-v<N>`` (``trentd-root-v1``, ``-v2`` after a
rotation…) whose ``CKA_ID`` is the 4-byte root-key id that wrapped values carry. The first is
generated at first start when the token holds none; ``trentd root-key rotate`` adds the next.

Failure handling: any PKCS#11 error marks the session broken and fails the call with
``RootKeyUnavailable`` (a retryable 5xx at the HTTP edge — there is no fallback key). The next call
reconnects (finalize and re-initialize the module, log in, find the keys again), at most once a
second while the HSM stays away, so a token that comes back is used again without a restart.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from typing import TYPE_CHECKING

from .rootkey import FORMAT_PKCS11, KEY_ID_BYTES, RootKeyError, RootKeyUnavailable, describe

if TYPE_CHECKING:  # python-pkcs11 is an optional dependency, imported when a provider is made
    from pkcs11.types import Object, Session

log = logging.getLogger("trentd.pkcs11")
RECONNECT_SECONDS = 1.0
_LIBS: dict[str, object] = {}  # one loaded module per path and process (C_Initialize once)
_LIBS_LOCK = threading.Lock()


def _pkcs11():
    try:
        import pkcs11
    except ImportError:
        raise RootKeyError("the pkcs11 root-key provider needs python-pkcs11: pip install 'trentd[pkcs11]'") from None
    return pkcs11


def _load_lib(module: str):
    pkcs11 = _pkcs11()
    with _LIBS_LOCK:
        lib = _LIBS.get(module)
        if lib is None:
            try:
                lib = _LIBS[module] = pkcs11.lib(module)
            except (pkcs11.PKCS11Error, OSError, RuntimeError) as exc:
                raise RootKeyError(f"cannot load the PKCS#11 module {module}: {exc or type(exc).__name__}") from None
        return lib


class HsmKey:
    """A root key inside the HSM, known by its id; the provider holds the session and handles."""

    def __init__(self, provider: "Pkcs11Provider", key_id: bytes, label: str):
        self.provider = provider
        self.key_id = key_id
        self.label = label

    def seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self.provider.crypt("encrypt", self.key_id, nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        return self.provider.crypt("decrypt", self.key_id, nonce, ciphertext, aad)


class Pkcs11Provider:
    name = "pkcs11"
    fmt = FORMAT_PKCS11

    def __init__(self, module: str, token: str, pin: str, *, label: str = "trentd-root", create: bool = False):
        self.module, self.token_label, self.label = module, token, label
        self._pin = pin
        self._lock = threading.RLock()  # the module is initialised without OS locking: one caller at a time
        self._session: Session | None = None
        self._handles: dict[bytes, Object] = {}
        self._labels: dict[bytes, str] = {}
        self._broken = False
        self._next_attempt = 0.0
        self._label_re = re.compile(re.escape(label) + r"-v(\d+)")
        self._lib = _load_lib(module)
        with self._lock:
            self._connect(first=True)
            if create and not self._handles:
                self._generate()

    # --- session --------------------------------------------------------------------------
    def _connect(self, first: bool = False) -> None:
        pkcs11 = _pkcs11()
        if not first:
            try:
                self._lib.reinitialize()
            except pkcs11.PKCS11Error as exc:
                raise RootKeyUnavailable(f"PKCS#11 module {self.module}: {type(exc).__name__}") from None
        self._session, self._handles, self._labels = None, {}, {}
        unavailable = RootKeyError if first else RootKeyUnavailable
        try:
            token = self._lib.get_token(token_label=self.token_label)
        except pkcs11.NoSuchToken:
            raise unavailable(f"no PKCS#11 token labelled {self.token_label!r} in {self.module}") from None
        except pkcs11.PKCS11Error as exc:
            raise unavailable(f"PKCS#11 token {self.token_label!r}: {type(exc).__name__}") from None
        try:
            self._session = token.open(user_pin=self._pin, rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange, pkcs11.PinLocked, pkcs11.PinExpired) as exc:
            raise RootKeyError(f"PKCS#11 token {self.token_label!r} refused the PIN ({type(exc).__name__})") from None
        except pkcs11.PKCS11Error as exc:
            raise unavailable(f"cannot log in to PKCS#11 token {self.token_label!r}: {type(exc).__name__}") from None
        self._find_keys()
        self._broken = False

    def _live(self) -> Session:
        """The logged-in session (``_connect`` made it; ``_ensure`` makes it again after a failure)."""
        if self._session is None:
            raise RootKeyUnavailable(f"PKCS#11 token {self.token_label!r} is unavailable")
        return self._session

    def _find_keys(self) -> None:
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType, ObjectClass

        secret_aes_keys = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        try:
            for obj in self._live().get_objects(secret_aes_keys):
                label, key_id = obj[Attribute.LABEL], bytes(obj[Attribute.ID])
                if self._label_re.fullmatch(label or "") and len(key_id) == KEY_ID_BYTES:
                    self._handles[key_id], self._labels[key_id] = obj, label
        except pkcs11.PKCS11Error as exc:
            self._broken = True
            raise RootKeyUnavailable(f"cannot list the keys of PKCS#11 token {self.token_label!r}: "
                                     f"{type(exc).__name__}") from None

    def _ensure(self) -> None:
        """Reconnect when the last call failed, at most once per RECONNECT_SECONDS."""
        if not self._broken and self._session is not None:
            return
        now = time.monotonic()
        if now < self._next_attempt:
            raise RootKeyUnavailable(f"PKCS#11 token {self.token_label!r} is unavailable")
        self._next_attempt = now + RECONNECT_SECONDS
        try:
            self._connect()
        except RootKeyError as exc:
            self._broken = True
            log.warning("PKCS#11 reconnect failed: %s", exc)
            raise RootKeyUnavailable(str(exc)) from None
        log.warning("PKCS#11 token %r reconnected", self.token_label)

    def _version(self, key_id: bytes) -> int:
        match = self._label_re.fullmatch(self._labels.get(key_id, ""))
        return int(match.group(1)) if match else 0

    # --- the provider interface (store/rootkey.py) ----------------------------------------
    def keys(self) -> list[HsmKey]:
        with self._lock:
            self._ensure()
            self._find_keys()
            ids = sorted(self._handles, key=self._version)
            return [HsmKey(self, key_id, self._labels[key_id]) for key_id in ids]

    def create_key(self) -> HsmKey:
        with self._lock:
            self._ensure()
            return self._generate()

    def _generate(self) -> HsmKey:
        pkcs11 = _pkcs11()
        from pkcs11 import Attribute, KeyType

        version = max((self._version(k) for k in self._handles), default=0) + 1
        key_id = secrets.token_bytes(KEY_ID_BYTES)
        while key_id in self._handles:
            key_id = secrets.token_bytes(KEY_ID_BYTES)
        label = f"{self.label}-v{version}"
        template = {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False,
            Attribute.SIGN: False, Attribute.VERIFY: False, Attribute.DERIVE: False,
        }
        try:
            obj = self._live().generate_key(KeyType.AES, 256, id=key_id, label=label, store=True, template=template)
        except pkcs11.PKCS11Error as exc:
            self._broken = True
            raise RootKeyError(f"cannot generate a root key in PKCS#11 token {self.token_label!r}: "
                               f"{type(exc).__name__}") from None
        self._handles[key_id], self._labels[key_id] = obj, label
        log.info("generated root key %s (%s) in PKCS#11 token %r", describe(self.name, key_id), label, self.token_label)
        return HsmKey(self, key_id, label)

    def retire(self, keep: set[bytes]) -> list[bytes]:
        """Destroy the root-key objects not in ``keep``; returns the ids destroyed."""
        pkcs11 = _pkcs11()
        with self._lock:
            self._ensure()
            self._find_keys()
            if not keep & set(self._handles):
                raise RootKeyError("refusing to destroy every root key in the token")
            removed = []
            for key_id, obj in list(self._handles.items()):
                if key_id in keep:
                    continue
                try:
                    obj.destroy()
                except pkcs11.PKCS11Error as exc:
                    raise RootKeyUnavailable(f"cannot destroy root key {describe(self.name, key_id)}: "
                                             f"{type(exc).__name__}") from None
                del self._handles[key_id]
                removed.append(key_id)
            return removed

    def crypt(self, op: str, key_id: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        pkcs11 = _pkcs11()
        from pkcs11 import Mechanism
        from pkcs11.mechanisms import GCMParams

        with self._lock:
            self._ensure()
            handle = self._handles.get(key_id)
            if handle is None:
                self._find_keys()
                handle = self._handles.get(key_id)
                if handle is None:
                    raise RootKeyError(f"PKCS#11 token {self.token_label!r} holds no root key "
                                       f"{describe(self.name, key_id)}")
            try:
                return getattr(handle, op)(data, mechanism=Mechanism.AES_GCM,
                                           mechanism_param=GCMParams(nonce, aad, 128))
            except pkcs11.PKCS11Error as exc:
                failure = type(exc).__name__
            # Either the value does not authenticate or the HSM is gone: the module does not say
            # which (SoftHSM answers a bad tag with CKR_GENERAL_ERROR). Ask it on a fresh session.
            self._broken = True
            self._next_attempt = 0.0
            try:
                self._ensure()
                return getattr(self._handles[key_id], op)(data, mechanism=Mechanism.AES_GCM,
                                                          mechanism_param=GCMParams(nonce, aad, 128))
            except KeyError:
                raise RootKeyError(f"PKCS#11 token {self.token_label!r} no longer holds root key "
                                   f"{describe(self.name, key_id)}") from None
            except pkcs11.PKCS11Error as exc:
                if op == "decrypt" and type(exc).__name__ == failure and self._session_alive():
                    raise RootKeyError("wrapped value does not unwrap under this root key") from None
                self._broken = True
                raise RootKeyUnavailable(f"PKCS#11 {op} failed: {type(exc).__name__}") from None

    def _session_alive(self) -> bool:
        pkcs11 = _pkcs11()
        try:
            self._live().generate_random(8)
            return True
        except pkcs11.PKCS11Error:
            self._broken = True
            return False

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except Exception:  # noqa: BLE001
                    pass
                self._session = None
