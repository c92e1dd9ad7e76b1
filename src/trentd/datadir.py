"""The data dir is private: the directory and trentd's directories in it 0700, trentd's files 0600.

It holds the SQLite store (key policies, grant ids, console session secrets), the root key, the
administrator's credentials, the audit trail and the TLS key, none of which another local user
may read. trentd creates what it writes with those modes; at each start it also tightens whatever
is looser (left by an older trentd, an operator or a restore from backup), one log line per change.

Only trentd's own entries are touched (``OWN_FILES``, ``OWN_DIRS`` and what those directories
hold), and the data dir itself only when it holds them or is empty: a mistyped ``--data-dir``
(a home directory, ``/proc``) must never have its modes changed. Tightening takes the group and
other bits away and keeps the owner's. Symbolic links are neither followed nor changed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("trentd")
DIR_MODE = 0o700
_GROUP_OR_OTHERS = 0o077


OWN_FILES = ("trentd.db", "trentd.db-wal", "trentd.db-shm", "trentd.db-journal", "root.key", "admin-credentials")
OWN_DIRS = ("audit", "tls")


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) if missing, and take every group and other permission away
    from it and from trentd's entries in it."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=DIR_MODE)
        return
    if not _holds_trentd(data_dir):
        return
    for path in _entries(data_dir):
        _tighten(path)


def _holds_trentd(data_dir: Path) -> bool:
    """Whether the directory is trentd's: it holds trentd's files, or nothing yet."""
    if not data_dir.is_dir():
        return False
    return any((data_dir / name).exists() for name in (*OWN_FILES, *OWN_DIRS)) or not any(data_dir.iterdir())


def _entries(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    for name in OWN_FILES:
        yield data_dir / name
    for name in OWN_DIRS:
        top = data_dir / name
        if top.is_symlink() or not top.is_dir():
            continue
        yield top
        for root, dirs, files in os.walk(top):  # followlinks=False
            for entry in dirs + files:
                yield Path(root, entry)


def _tighten(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # removed meanwhile (an audit file rotated by a running node)
        return
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):  # symbolic links, sockets: not trentd's
        return
    old = stat.S_IMODE(st.st_mode)
    if not old & _GROUP_OR_OTHERS:
        return
    new = old & ~_GROUP_OR_OTHERS  # the owner's bits stay as they are
    try:
        os.chmod(path, new)
    except OSError as exc:  # e.g. a read-only mount: say so, and let the start go on
        log.warning("cannot tighten the permissions of %s (mode %04o): %s", path, old, exc.strerror)
        return
    log.warning("tightened the permissions of %s from %04o to %04o", path, old, new)
