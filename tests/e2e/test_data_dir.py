"""The data dir is private: made 0700 with every file in it 0600, loose modes tightened at start
(one log line each), and a root key file that others could read refused (docs/operations.md,
"Data dir permissions").

Tests run as root here, so "group-readable, owned by root" is the allowed case; the group rule is
tested with a file handed to uid 65534.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from trentd.testing.server import TrentdServer, write_root_key

TIGHTENED = re.compile(r"tightened the permissions of (\S+) from ([0-7]{4}) to ([0-7]{4})$", re.MULTILINE)
NOBODY = 65534


def modes(directory: Path) -> dict[str, int]:
    """Every entry under ``directory`` (and the directory itself, as "."): its permission bits."""
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def exercise(server: TrentdServer) -> None:
    """A key and a few calls: the audit file, and SQLite's -wal and -shm, exist afterwards."""
    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"p")["CiphertextBlob"])


def test_a_new_data_dir_is_private(tmp_path, store_kind):
    data_dir = tmp_path / "data"  # not there yet: trentd makes it
    root_key = write_root_key(tmp_path / "supplied.key") if store_kind == "postgres" else None
    with TrentdServer(dev=False, data_dir=data_dir, store=store_kind, root_key_file=root_key,
                      tls="self-signed") as server:
        exercise(server)
        found = modes(data_dir)
    expected = {"admin-credentials", "audit", "tls", "tls/ca.pem", "tls/server.pem", "tls/server-key.pem"}
    if store_kind == "sqlite":
        expected |= {"trentd.db", "trentd.db-wal", "trentd.db-shm", "root.key"}
    assert expected <= set(found), sorted(found)
    assert any(name.startswith("audit/") and name.endswith(".jsonl") for name in found), sorted(found)
    for name, mode in found.items():
        is_dir = (data_dir / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))


def test_a_loose_data_dir_is_tightened_at_start_with_one_line_per_change(tmp_path):
    data_dir = tmp_path / "data"
    server = TrentdServer(dev=False, data_dir=data_dir)
    try:
        server.start()
        exercise(server)
        server.stop()
        loosened = {}
        for name, mode in modes(data_dir).items():
            path = data_dir / name
            # root.key: 0640 owned by root is allowed (0644 is refused: the test below), then tightened.
            new = 0o755 if path.is_dir() else 0o640 if name == "root.key" else 0o644
            os.chmod(path, new)
            loosened[str(path.resolve())] = (f"{new:04o}", "0700" if path.is_dir() else "0600")
        notes = data_dir / "notes"  # not trentd's: left as the operator made it
        notes.mkdir(mode=0o755)
        (notes / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(notes / "run.sh", 0o755)
        server.log_path.write_text("")
        server.start()
        exercise(server)
        lines = TIGHTENED.findall(server.logs())
        assert sorted(path for path, _, _ in lines) == sorted(loosened)  # one line per change, no more
        assert {path: (old, new) for path, old, new in lines} == loosened
        for name, mode in modes(data_dir).items():
            if name.startswith("notes"):
                assert mode == 0o755, (name, oct(mode))
            else:
                assert mode == (0o700 if (data_dir / name).is_dir() else 0o600), (name, oct(mode))
        server.restart()  # nothing left to tighten: nothing logged
        assert len(TIGHTENED.findall(server.logs())) == len(lines)
    finally:
        server.cleanup()


def refused_start(server: TrentdServer) -> subprocess.CompletedProcess:
    return subprocess.run(server.serve_args(), capture_output=True, text=True, timeout=20, env=server.process_env())


@pytest.mark.parametrize("mode, owner, why", [
    (0o644, None, "is readable by others (mode 0644)"),
    (0o604, None, "is readable by others (mode 0604)"),
    (0o640, NOBODY, "is readable by its group and not owned by root (mode 0640)"),
])
def test_a_root_key_file_others_can_read_is_refused(tmp_path, mode, owner, why):
    key_file = write_root_key(tmp_path / "root.key")
    os.chmod(key_file, mode)
    if owner is not None:
        os.chown(key_file, owner, -1)
    server = TrentdServer(dev=False, data_dir=tmp_path / "data", root_key_file=key_file)
    result = refused_start(server)
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        f"trentd: refusing to start: root key file {key_file} {why}: make it readable by its owner only "
        f"(chmod 600 {key_file}); if others may have read it, rotate the root key (trentd root-key rotate)"
    ], result.stderr
    assert not (tmp_path / "data" / "trentd.db").exists()  # refused before the store is opened


def test_a_group_readable_root_key_owned_by_root_is_accepted(tmp_path):
    key_file = write_root_key(tmp_path / "root.key")
    os.chmod(key_file, 0o640)  # as Kubernetes mounts a secret with defaultMode 0640
    assert key_file.stat().st_uid == 0
    with TrentdServer(dev=False, data_dir=tmp_path / "data", root_key_file=key_file) as server:
        exercise(server)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o640  # outside the data dir: only read, never changed


def test_the_data_dirs_own_root_key_follows_the_same_rule(tmp_path):
    server = TrentdServer(dev=False, data_dir=tmp_path / "data")
    try:
        server.start()
        server.stop()
        key_file = server.data_dir / "root.key"
        os.chmod(key_file, 0o644)
        result = refused_start(server)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"trentd: refusing to start: root key file {key_file} is readable by "
                                        f"others (mode 0644)"), result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o644  # refused, not silently tightened
    finally:
        server.cleanup()


def test_a_directory_that_is_not_trentds_is_never_changed(tmp_path):
    """A mistyped --data-dir (a home directory, /proc): trentd changes no mode in it, its own or
    its entries', even when the start then fails."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "tool").write_text("#!/bin/sh\n")
    (home / "notes.txt").write_text("mine\n")
    os.chmod(home, 0o755)
    os.chmod(home / "bin", 0o755)
    os.chmod(home / "bin" / "tool", 0o755)
    os.chmod(home / "notes.txt", 0o644)
    before = modes(home)
    result = subprocess.run([sys.executable, "-m", "trentd", "principals", "list", "--data-dir", str(home)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no trentd store" in result.stderr
    assert modes(home) == before
