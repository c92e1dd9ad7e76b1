"""The root key in an HSM (security.md B6, acceptance bar 7), and ``trentd root-key rotate``.

A SoftHSM2 token in a temporary directory (``SOFTHSM2_CONF`` → a config whose tokendir is that
directory) stands in for the HSM:

- keys made over the API decrypt after a restart; no ``root.key`` is written; the root-key object
  is AES-256, SENSITIVE and not EXTRACTABLE (reading CKA_VALUE fails);
- a wrong PIN, an unset PIN variable, a missing token or module → the server refuses to start;
- the token lost mid-run → 5xx (never a fallback key), and service resumes when it is back;
- ``trentd root-key rotate`` (file and PKCS#11, on a stopped server, and on a running one with
  clients hammering it) → everything still decrypts and authenticates, the old key is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from trentd.testing import softhsm
from trentd.testing.server import TrentdServer, free_port


@pytest.fixture
def token(tmp_path):
    softhsm.require_softhsm()
    return softhsm.SoftHsmToken.create(tmp_path / "hsm")


@pytest.fixture
def hsm_server(token, tmp_path):
    server = TrentdServer(dev=False, pkcs11=token, data_dir=tmp_path / "data")
    try:
        yield server.start()
    finally:
        server.cleanup()


def _trentd(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trentd", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _token_objects(token: softhsm.SoftHsmToken) -> list[dict]:
    """The token's secret keys as another process sees them, trying to read each key's value."""
    script = r"""
import json, os, sys, pkcs11
from pkcs11 import Attribute, ObjectClass
lib = pkcs11.lib(sys.argv[1])
out = []
with lib.get_token(token_label=sys.argv[2]).open(user_pin=os.environ[sys.argv[3]]) as session:
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}):
        entry = {"label": obj[Attribute.LABEL], "id": bytes(obj[Attribute.ID]).hex(),
                 "value_len": obj[Attribute.VALUE_LEN], "extractable": obj[Attribute.EXTRACTABLE],
                 "sensitive": obj[Attribute.SENSITIVE], "token": obj[Attribute.TOKEN]}
        try:
            obj[Attribute.VALUE]
            entry["value"] = "READABLE"
        except pkcs11.PKCS11Error as exc:
            entry["value"] = type(exc).__name__
        out.append(entry)
print(json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", script, token.module, token.token, token.pin_env], env={
        **os.environ, **token.env()}, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def _serve_refused(token: softhsm.SoftHsmToken, data_dir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    """Start ``trentd serve`` and return once it exits; it must never answer /healthz."""
    port = str(free_port())
    proc = subprocess.Popen([sys.executable, "-m", "trentd", "serve", "--port", port, "--data-dir", str(data_dir),
                             *args], env={**os.environ, **token.env(), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                pytest.fail(f"healthz answered {resp.status} with an unusable root key")
        except OSError:
            time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
        pytest.fail("trentd did not exit")
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# --- keys under an HSM root key ------------------------------------------------------------------
def test_keys_survive_a_restart_and_no_root_key_file_is_written(hsm_server, token):
    kms = hsm_server.client()
    key_id = kms.create_key(Description="under the HSM")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hsm", EncryptionContext={"k": "v"})["CiphertextBlob"]
    hsm_server.restart()
    kms = hsm_server.client()  # the admin's secret is wrapped under the HSM key too
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})["Plaintext"] == b"hsm"
    assert not (hsm_server.data_dir / "root.key").exists()
    assert not list(hsm_server.data_dir.rglob("*.key"))


def test_the_root_key_object_is_not_extractable(hsm_server, token):
    objects = _token_objects(token)
    assert len(objects) == 1
    (root,) = objects
    assert root["label"] == "trentd-root-v1" and len(bytes.fromhex(root["id"])) == 4
    assert (root["value_len"], root["extractable"], root["sensitive"], root["token"]) == (32, False, True, True)
    assert root["value"] != "READABLE"  # AttributeSensitive: CKA_VALUE cannot be read


def test_wrapped_values_name_the_pkcs11_provider_and_key(hsm_server, token):
    import sqlite3
    from contextlib import closing

    hsm_server.client().create_key()
    root_id = _token_objects(token)[0]["id"]
    with closing(sqlite3.connect(f"file:{hsm_server.data_dir / 'trentd.db'}?mode=ro", uri=True)) as conn:
        wrapped = [bytes(w) for (w,) in conn.execute("SELECT wrapped FROM key_materials")]
        current = conn.execute("SELECT value FROM meta WHERE name = 'root_key_id'").fetchone()[0]
    assert wrapped and all(w[0] == 0x03 and w[1:5].hex() == root_id for w in wrapped)
    assert current == f"pkcs11:{root_id}"


# --- refusing to start ---------------------------------------------------------------------------
def test_wrong_pin_refuses_to_start(token, tmp_path):
    out = _serve_refused(token, tmp_path / "d", *token.args(), env={token.pin_env: "000000"})
    assert out.returncode != 0 and "refusing to start" in out.stderr and "PIN" in out.stderr, out.stderr


def test_unset_pin_variable_refuses_to_start(token, tmp_path):
    out = _serve_refused(token, tmp_path / "d", "--pkcs11-module", token.module, "--pkcs11-token", token.token,
                         "--pkcs11-pin-env", "TRENTD_TEST_NO_SUCH_PIN_VARIABLE")
    assert out.returncode != 0 and "TRENTD_TEST_NO_SUCH_PIN_VARIABLE" in out.stderr, out.stderr


def test_missing_token_or_module_refuses_to_start(token, tmp_path):
    out = _serve_refused(token, tmp_path / "d1", "--pkcs11-module", token.module, "--pkcs11-token", "no-such-token",
                         "--pkcs11-pin-env", token.pin_env)
    assert out.returncode != 0 and "no-such-token" in out.stderr, out.stderr
    out = _serve_refused(token, tmp_path / "d2", "--pkcs11-module", str(tmp_path / "missing.so"),
                         "--pkcs11-token", token.token, "--pkcs11-pin-env", token.pin_env)
    assert out.returncode != 0 and "cannot load the PKCS#11 module" in out.stderr, out.stderr


def test_an_initialised_store_with_its_root_key_gone_refuses_to_start(hsm_server, token):
    hsm_server.stop()
    shutil.rmtree(token.tokendir)
    token.tokendir.mkdir()
    fresh = softhsm.SoftHsmToken.create(token.directory, token.token)  # same label, no keys in it
    out = _serve_refused(fresh, hsm_server.data_dir, *fresh.args())
    assert out.returncode == 2 and "refusing to start" in out.stderr, out.stderr
    assert _token_objects(fresh) == [], "no new root key is generated for an initialised store"


# --- the HSM lost while serving ------------------------------------------------------------------
def test_token_lost_mid_run_gives_5xx_and_service_resumes_when_it_is_back(hsm_server, token):
    kms = hsm_server.client()
    kms.create_key()
    away = token.directory / "tokens.away"
    shutil.move(token.tokendir, away)
    try:
        for _ in range(3):  # new key material must be wrapped by the HSM: no fallback key
            with pytest.raises(ClientError) as failed:
                kms.create_key()
            assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert failed.value.response["Error"]["Code"] == "KMSInternalException"
    finally:
        shutil.move(away, token.tokendir)
    deadline = time.monotonic() + 10
    while True:
        try:
            key_id = kms.create_key()["KeyMetadata"]["KeyId"]
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"back")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"back"
    assert "reconnected" in hsm_server.logs()


# --- root-key rotation ---------------------------------------------------------------------------
def _populate(server: TrentdServer) -> tuple[list[tuple[bytes, dict]], tuple[str, str]]:
    """Keys with ciphertexts, and a second principal's access key (its secret is wrapped too)."""
    kms = server.client()
    blobs = []
    for i in range(5):
        key_id = kms.create_key(Description=f"k{i}")["KeyMetadata"]["KeyId"]
        context = {"n": str(i)}
        blobs.append((kms.encrypt(KeyId=key_id, Plaintext=b"p%d" % i, EncryptionContext=context)["CiphertextBlob"],
                      context))
    store = ["--database", server.database] if server.database else []
    root = ["--root-key-file", str(server.root_key_file)] if server.root_key_file else []
    pk = server.pkcs11.args() if server.pkcs11 else []
    env = server.pkcs11.env() if server.pkcs11 else {}
    account = "111122223333"
    common = ["--data-dir", str(server.data_dir), *store, *root, *pk]
    arn = json.loads(_trentd("principals", "create", "--account", account, "--name", "ops", *common, env=env).stdout)["Arn"]
    policy = server.data_dir.parent / f"{server.data_dir.name}-policy.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    _trentd("principals", "put-policy", "--principal", arn, "--policy-file", str(policy), *common, env=env)
    created = json.loads(_trentd("access-keys", "create", "--principal", arn, *common, env=env).stdout)
    return blobs, (created["AccessKeyId"], created["SecretAccessKey"])


def _check_everything(server: TrentdServer, blobs, ops_key) -> None:
    kms = server.client()
    for i, (blob, context) in enumerate(blobs):
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"p%d" % i
    ops = server.client(access_key=ops_key[0], secret_key=ops_key[1], region="us-east-1")
    assert ops.list_keys()["Keys"] == []  # authenticated: its secret unwraps under the new root key
    new_key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=new_key, Plaintext=b"n")["CiphertextBlob"])["Plaintext"] == b"n"


def _rotate(server: TrentdServer, *extra: str) -> dict:
    args = ["root-key", "rotate", "--data-dir", str(server.data_dir), *extra]
    if server.database:
        args += ["--database", server.database]
    if server.root_key_file:
        args += ["--root-key-file", str(server.root_key_file)]
    if server.pkcs11:
        args += server.pkcs11.args()
    out = _trentd(*args, env=server.pkcs11.env() if server.pkcs11 else None)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_rotate_the_file_root_key_on_a_stopped_server(store_kind, tmp_path):
    (tmp_path / "data").mkdir()
    server = TrentdServer(dev=False, store=store_kind, data_dir=tmp_path / "data")
    try:
        server.start()
        blobs, ops_key = _populate(server)
        key_file = server.root_key_file or server.data_dir / "root.key"
        old = key_file.read_bytes()
        server.stop()
        result = _rotate(server, "--grace", "0")
        assert result["Provider"] == "file" and result["Retired"] == result["PreviousRootKeys"]
        assert result["Rewrapped"]["key_materials"] >= 5 and result["Rewrapped"]["access_keys"] == 2
        assert result["Rewrapped"]["meta"] == 3  # the canary, the audit HMAC key and the grant-token key
        new = key_file.read_bytes()
        assert len(new) == 32 and new != old and oct(key_file.stat().st_mode & 0o777) == "0o600"
        server.start()
        _check_everything(server, blobs, ops_key)
        key_file.write_bytes(old)  # the retired key no longer opens the store
        server.stop()
        with pytest.raises(RuntimeError, match="refusing to start"):
            server.start()
    finally:
        server.cleanup()


def test_rotate_the_pkcs11_root_key_on_a_stopped_server(hsm_server, token):
    blobs, ops_key = _populate(hsm_server)
    (before,) = _token_objects(token)
    hsm_server.stop()
    result = _rotate(hsm_server, "--grace", "0")
    assert result["Provider"] == "pkcs11" and result["PreviousRootKeys"] == [f"pkcs11:{before['id']}"]
    (after,) = _token_objects(token)  # the old object is destroyed
    assert after["label"] == "trentd-root-v2" and after["id"] != before["id"]
    assert (after["extractable"], after["sensitive"], after["value"] != "READABLE") == (False, True, True)
    assert result["NewRootKey"] == f"pkcs11:{after['id']}"
    hsm_server.start()
    _check_everything(hsm_server, blobs, ops_key)


@pytest.mark.parametrize("provider", ["file", "pkcs11"])
def test_rotate_while_serving_without_errors(provider, tmp_path):
    token = None
    if provider == "pkcs11":
        softhsm.require_softhsm()
        token = softhsm.SoftHsmToken.create(tmp_path / "hsm")
    server = TrentdServer(dev=False, pkcs11=token, data_dir=tmp_path / "data")
    try:
        server.start()
        blobs, ops_key = _populate(server)
        errors: list[str] = []
        made: list[tuple[str, bytes]] = []
        stop = threading.Event()

        def load():
            kms = server.client()
            while not stop.is_set():
                try:
                    key_id = kms.create_key()["KeyMetadata"]["KeyId"]  # wraps new material
                    made.append((key_id, kms.encrypt(KeyId=key_id, Plaintext=b"live")["CiphertextBlob"]))
                    blob, context = blobs[len(made) % len(blobs)]
                    kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc))

        thread = threading.Thread(target=load)
        thread.start()
        try:
            time.sleep(0.5)
            result = _rotate(server, "--grace", "2")
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join(30)
        assert errors == []
        assert made and result["Rewrapped"]["key_materials"] >= 5
        server.restart()  # the node now holds only the new root key
        kms = server.client()
        for _, blob in made:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"live"
        _check_everything(server, blobs, ops_key)
    finally:
        server.cleanup()
