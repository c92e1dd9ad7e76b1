"""Root-key providers and the ring (store/rootkey.py, store/pkcs11.py): the wrapped-value format,
AAD binding, key ids, legacy values, on-demand reload, retirement; and the registry of wrapped
values that ``trentd root-key rotate`` rewraps (admin/root_key.py)."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trentd.store import rootkey
from trentd.store.rootkey import FileProvider, FileRootKey, RootKeyError, RootKeyRing, aad_for

SRC = Path(__file__).resolve().parents[2] / "src" / "trentd"


def test_wrapped_value_format_names_provider_and_key(tmp_path):
    ring = RootKeyRing(FileProvider(tmp_path / "root.key", create=True))
    key = (tmp_path / "root.key").read_bytes()
    assert len(key) == 32 and stat.S_IMODE((tmp_path / "root.key").stat().st_mode) == 0o600
    wrapped = ring.wrap(b"secret", aad_for("a", "b"))
    assert wrapped[0] == rootkey.FORMAT_FILE and wrapped[1:5] == FileRootKey(key).key_id == ring.current_id()
    assert len(wrapped) == rootkey.HEADER_BYTES + len(b"secret") + rootkey.TAG_BYTES
    assert AESGCM(key).decrypt(wrapped[5:17], wrapped[17:], aad_for("a", "b")) == b"secret"
    assert ring.unwrap(wrapped, aad_for("a", "b")) == b"secret"


def test_aad_binds_what_the_value_is(tmp_path):
    ring = RootKeyRing(FileProvider(tmp_path / "root.key", create=True))
    wrapped = ring.wrap(b"secret", aad_for("111122223333", "key", "material"))
    for aad in (aad_for("111122223333", "key", "materiaL"), aad_for("111122223333", "keymaterial"), b""):
        with pytest.raises(RootKeyError):
            ring.unwrap(wrapped, aad)


def test_legacy_values_without_a_key_id_still_unwrap(tmp_path):
    ring = RootKeyRing(FileProvider(tmp_path / "root.key", create=True))
    key = (tmp_path / "root.key").read_bytes()
    nonce = os.urandom(12)
    legacy = b"\x01" + nonce + AESGCM(key).encrypt(nonce, b"old", b"aad")
    assert ring.unwrap(legacy, b"aad") == b"old" and ring.wrapped_under(legacy) is None


def test_malformed_or_foreign_values_are_refused(tmp_path):
    ring = RootKeyRing(FileProvider(tmp_path / "root.key", create=True))
    wrapped = ring.wrap(b"x", b"")
    for bad in (b"", b"\x02", b"\x09" + wrapped[1:], wrapped[:20]):
        with pytest.raises(RootKeyError):
            ring.unwrap(bad, b"")
    with pytest.raises(RootKeyError, match="pkcs11 root-key provider"):
        ring.unwrap(b"\x03" + wrapped[1:], b"")
    other = bytearray(wrapped)
    other[1:5] = b"\xff\xff\xff\xff"
    with pytest.raises(RootKeyError, match="does not hold"):
        ring.unwrap(bytes(other), b"")


def test_a_new_key_in_the_file_is_found_on_demand_and_old_keys_are_kept(tmp_path):
    path = tmp_path / "root.key"
    node = RootKeyRing(FileProvider(path, create=True))  # a running node
    old_value = node.wrap(b"old", b"")
    rotator = RootKeyRing(FileProvider(path))
    new_key = rotator.provider.create_key()
    assert len(path.read_bytes()) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    new_value = rotator.wrap(b"new", b"", key=new_key)
    assert node.unwrap(new_value, b"") == b"new"  # loaded from the file on first sight
    old_id = FileRootKey(path.read_bytes()[:32]).key_id
    assert rotator.provider.retire({new_key.key_id}) == [old_id]
    assert len(path.read_bytes()) == 32
    assert node.unwrap(old_value, b"") == b"old"  # the node still holds the old key
    with pytest.raises(RootKeyError):
        RootKeyRing(FileProvider(path)).unwrap(old_value, b"")  # a restarted node does not


def test_the_current_key_follows_the_store(tmp_path):
    path = tmp_path / "root.key"
    named: list[str | None] = [None]
    ring = RootKeyRing(FileProvider(path, create=True), lambda: named[0])
    first = ring.current_id()
    second = FileProvider(path).create_key()
    rootkey_refresh = rootkey.REFRESH_SECONDS
    try:
        rootkey.REFRESH_SECONDS = 0
        assert ring.current_id() == first  # no name in the store: the newest key this node loaded
        named[0] = rootkey.describe("file", second.key_id)
        assert ring.current_id() == second.key_id  # named by the store: fetched from the file
        assert RootKeyRing(FileProvider(path)).current_id() == second.key_id  # a fresh node: the newest
        named[0] = rootkey.describe("file", first)
        assert ring.current_id() == first
        named[0] = "pkcs11:" + first.hex()
        with pytest.raises(RootKeyError, match="pkcs11"):
            ring.current()
    finally:
        rootkey.REFRESH_SECONDS = rootkey_refresh


def test_root_key_file_errors(tmp_path):
    with pytest.raises(RootKeyError, match="does not exist"):
        FileProvider(tmp_path / "missing").keys()
    for name, data in (("short", b"x" * 31), ("one", os.urandom(32))):
        (tmp_path / name).write_bytes(data)
        os.chmod(tmp_path / name, 0o600)  # others may not read a root key file (tests/e2e/test_data_dir.py)
    with pytest.raises(RootKeyError, match="32 bytes"):
        FileProvider(tmp_path / "short").keys()
    with pytest.raises(RootKeyError, match="every root key"):
        FileProvider(tmp_path / "one").retire(set())


def test_file_root_key_alone_keeps_its_api(tmp_path):
    key = FileRootKey.load_or_create(tmp_path / "root.key", create=True)
    assert FileRootKey.load(tmp_path / "root.key").key_id == key.key_id
    assert key.unwrap(key.wrap(b"v", b"a"), b"a") == b"v"
    with pytest.raises(RootKeyError):
        FileRootKey(os.urandom(32)).unwrap(key.wrap(b"v", b"a"), b"a")


# --- every wrapped value is known to the rotation ---------------------------------------------------
KNOWN_WRAP_SITES = {
    # file: what it wraps — and where admin/root_key.py rewraps it
    "kms/service.py": "key_materials.wrapped (WRAPPED_COLUMNS)",
    "auth/principals.py": "access_keys.wrapped_secret (WRAPPED_COLUMNS)",
    "store/rootkey.py": "the canary, meta root_key_canary (WRAPPED_META); stored_secret: meta audit_hmac_key "
                        "and grant_token_key (WRAPPED_META); the providers themselves",
    "admin/root_key.py": "the rewrap itself",
    "admin/transfer.py": "imported key material (key_materials) and meta transfer key (WRAPPED_META)",
    "kms/imports.py": "import tokens: handed to the client, never stored (outlive no root-key retirement)",
    "kms/keystores.py": "custom_key_stores.wrapped_secret, the XKS proxy secret (WRAPPED_COLUMNS)",
    "xksproxy/keystores.py": "xks_proxy_credentials.wrapped_secret, trentd-as-proxy credentials (WRAPPED_COLUMNS)",
    "xksproxy/keys.py": "xks_proxy_keys.wrapped, trentd-as-proxy external keys (WRAPPED_COLUMNS)",
    "xksproxy/api.py": "the deep health check's test value: wrapped and unwrapped at once, never stored",
}


def test_every_root_key_wrap_call_is_covered_by_the_rotation():
    sites = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "wrap":
                owner = ast.unparse(node.func.value)
                if "root_key" in owner or owner in ("ring", "key", "self"):
                    sites.add(str(path.relative_to(SRC)))
    unknown = sites - set(KNOWN_WRAP_SITES)
    assert not unknown, (f"{unknown} wrap values under the root key: add them to admin/root_key.py "
                         f"(WRAPPED_COLUMNS / WRAPPED_META) and to KNOWN_WRAP_SITES here")


def test_rotation_registry_matches_the_schema():
    from trentd.admin import root_key as rotation

    columns = {(c.table, c.column) for c in rotation.WRAPPED_COLUMNS}
    assert columns >= {("key_materials", "wrapped"), ("access_keys", "wrapped_secret")}
    assert set(rotation.WRAPPED_META) >= {"root_key_canary", "audit_hmac_key", "grant_token_key"}
    schema = " ".join(p.read_text() for p in (SRC / "store" / "migrations").glob("*.sql"))
    for col in rotation.WRAPPED_COLUMNS:  # every registered column exists, with its identity columns
        assert f"TABLE {col.table}" in schema, col
        for name in (col.column, *col.identity):
            assert name in schema, (col, name)


# --- the PKCS#11 provider, in a process of its own (SoftHSM reads its config once per process) -----
PKCS11_SCRIPT = r"""
import os, sys
from trentd.store.pkcs11 import Pkcs11Provider
from trentd.store.rootkey import RootKeyError, RootKeyRing, aad_for
provider = Pkcs11Provider(sys.argv[1], sys.argv[2], os.environ[sys.argv[3]], create=True)
ring = RootKeyRing(provider)
wrapped = ring.wrap(b"secret", aad_for("a", "b"))
assert wrapped[0] == 3 and len(wrapped) == 1 + 4 + 12 + 6 + 16
assert ring.unwrap(wrapped, aad_for("a", "b")) == b"secret"
for aad in (aad_for("a", "c"), b""):
    try:
        ring.unwrap(wrapped, aad)
    except RootKeyError as exc:
        assert "does not unwrap" in str(exc), exc
    else:
        raise SystemExit("AAD swap accepted")
tampered = bytearray(wrapped); tampered[-1] ^= 1
try:
    ring.unwrap(bytes(tampered), aad_for("a", "b"))
    raise SystemExit("tampered value accepted")
except RootKeyError:
    pass
second = provider.create_key()
assert [k.label for k in provider.keys()] == ["trentd-root-v1", "trentd-root-v2"]
assert ring.unwrap(ring.wrap(b"v2", b"", key=second), b"") == b"v2"
assert provider.retire({second.key_id}) and [k.label for k in provider.keys()] == ["trentd-root-v2"]
print("ok")
"""


def test_pkcs11_provider_wraps_inside_the_token(tmp_path):
    pytest.importorskip("pkcs11")
    from trentd.testing import softhsm

    if not softhsm.available():
        if os.environ.get("CI"):
            pytest.fail("CI is set and SoftHSM2 is not installed", pytrace=False)
        pytest.skip("SoftHSM2 is not installed")
    token = softhsm.SoftHsmToken.create(tmp_path)
    out = subprocess.run([sys.executable, "-c", PKCS11_SCRIPT, token.module, token.token, token.pin_env],
                         env={**os.environ, **token.env()}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
