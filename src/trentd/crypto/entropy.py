"""Random bytes for the hot path: the kernel's CSPRNG, read a block at a time.

``os.urandom`` releases the GIL around each ``getrandom()``. On the event loop thread that is a
hand-over point: a pool or audit thread waiting for the GIL takes it, and the loop then waits
for it to come back. Two such calls per Encrypt were measurable under load. Reading 4 KiB at
once and handing out slices makes that one call per ~140 envelopes.

Every byte comes from ``os.urandom`` and is handed out once. The buffer is per thread, and a
forked child drops the one it inherited, so no two threads or processes hand out the same bytes.

Only for values that are public once used (the envelope's salt and nonce): the buffer holds the
bytes of calls still to come, so secrets (data keys) are drawn from ``os.urandom`` when asked for.
"""

from __future__ import annotations

import os
import threading

_BLOCK = 4096
_LARGEST = 256  # larger requests read the kernel directly


class _Buffer(threading.local):
    def __init__(self):
        self.data, self.pos = b"", 0


_buffer = _Buffer()


def _forget() -> None:
    _buffer.data, _buffer.pos = b"", 0


os.register_at_fork(after_in_child=_forget)


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the kernel's CSPRNG (os.urandom), never handed out twice."""
    if n > _LARGEST:
        return os.urandom(n)
    buffer = _buffer
    start = buffer.pos
    end = start + n
    if end > len(buffer.data):
        buffer.data, start, end = os.urandom(_BLOCK), 0, n
    buffer.pos = end
    return buffer.data[start:end]
