"""The data dir is private: the directory and every directory in it 0700, every file 0600.

It holds the SQLite store (key policies, grant ids, console session secrets), the root key, the
administrator's credentials, the audit trail and the TLS key, none of which another local user
may read. trentd creates what it writes with those modes; at each start it also tightens whatever
is looser (left by an older trentd, an operator or a restore from backup), one log line per change.
Symbolic links are neither followed nor changed: their targets are not trentd's to change.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("trentd")
DIR_MODE = 0o700
FILE_MODE = 0o600
_GROUP_OR_OTHERS = 0o077


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) if missing, and take every group and other permission away
    from it and from everything in it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for path in _entries(data_dir):
        _tighten(path)


def _entries(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    for root, dirs, files in os.walk(data_dir):  # followlinks=False
        for name in dirs + files:
            yield Path(root, name)


def _tighten(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:  # removed meanwhile (an audit file rotated by a running node)
        return
    if stat.S_ISDIR(st.st_mode):
        new = DIR_MODE
    elif stat.S_ISREG(st.st_mode):
        new = FILE_MODE
    else:  # symbolic links, sockets: nothing trentd wrote
        return
    old = stat.S_IMODE(st.st_mode)
    if not old & _GROUP_OR_OTHERS:
        return
    try:
        os.chmod(path, new)
    except OSError as exc:  # e.g. a read-only mount: say so, and let the start go on
        log.warning("cannot tighten the permissions of %s (mode %04o): %s", path, old, exc.strerror)
        return
    log.warning("tightened the permissions of %s from %04o to %04o", path, old, new)
