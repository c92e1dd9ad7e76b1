"""The HTTP edge's own machinery: deadlines without a timer per request, responses in one
write, and the block-buffered random bytes of the hot path."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from trentd.crypto import entropy
from trentd.http.limits import _OneWriteResponses
from trentd.pipeline.asgi import Deadlines


# --- Deadlines ----------------------------------------------------------------------------------
def test_an_await_past_its_deadline_raises_timeout_error_and_leaves_the_task_usable():
    async def scenario():
        deadlines = Deadlines()
        never = asyncio.get_running_loop().create_future()
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadlines.within(never, 0.2)
        elapsed = time.monotonic() - start
        # The task is not left cancelled: it goes on awaiting normally.
        await asyncio.sleep(0.01)
        return elapsed

    elapsed = asyncio.run(scenario())
    assert 0.2 <= elapsed < 0.2 + 0.5  # the sweep runs every timeout/4


def test_an_await_within_its_deadline_returns_its_result():
    async def scenario():
        deadlines = Deadlines()

        async def quick():
            await asyncio.sleep(0.05)
            return "done"

        results = [await deadlines.within(quick(), 1.0) for _ in range(3)]
        await asyncio.sleep(0.4)  # a sweep after the awaits ended cancels nothing
        return results

    assert asyncio.run(scenario()) == ["done"] * 3


def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    async def scenario():
        deadlines = Deadlines()
        never = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(deadlines.within(never, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_only_the_late_awaits_time_out():
    async def scenario():
        deadlines = Deadlines()
        loop = asyncio.get_running_loop()
        slow = asyncio.create_task(deadlines.within(loop.create_future(), 0.2))
        patient = asyncio.create_task(deadlines.within(asyncio.sleep(0.5, "patient"), 5))
        outcomes = await asyncio.gather(slow, patient, return_exceptions=True)
        return [type(o).__name__ if isinstance(o, BaseException) else o for o in outcomes]

    assert asyncio.run(scenario()) == ["TimeoutError", "patient"]


def test_deadlines_follow_a_new_event_loop():
    deadlines = Deadlines()
    for _ in range(2):  # a second asyncio.run: the first loop's sweep is gone with it
        async def scenario():
            with pytest.raises(TimeoutError):
                await deadlines.within(asyncio.get_running_loop().create_future(), 0.1)

        asyncio.run(asyncio.wait_for(scenario(), 2))


# --- responses in one write ---------------------------------------------------------------------
class RecordingTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_head_and_body_leave_in_one_write():
    transport = RecordingTransport()
    cycle_view = _OneWriteResponses(transport, transport.close)
    cycle_view.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == []
    cycle_view.write(b"{}")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    cycle_view.write(b"more")  # a streamed body's next chunk passes straight through
    assert transport.writes[-1] == b"more" and not cycle_view.is_closing()
    cycle_view.write(b"HTTP/1.1 200 is body text here")  # only the first status line is a head
    assert transport.writes[-1] == b"HTTP/1.1 200 is body text here" and len(transport.writes) == 3


def test_interim_100_continue_is_not_held():
    transport = RecordingTransport()
    cycle_view = _OneWriteResponses(transport, transport.close)
    cycle_view.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_closing_sends_a_held_head_first():
    transport = RecordingTransport()
    cycle_view = _OneWriteResponses(transport, transport.close)
    cycle_view.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    cycle_view.close()
    assert transport.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and transport.closed


# --- random bytes -------------------------------------------------------------------------------
def test_random_bytes_have_the_asked_length_and_never_repeat():
    draws = [entropy.random_bytes(16) for _ in range(20_000)]  # crosses many 4 KiB blocks
    assert all(len(d) == 16 for d in draws) and len(set(draws)) == len(draws)
    assert len(entropy.random_bytes(0)) == 0 and len(entropy.random_bytes(1000)) == 1000


def test_threads_draw_different_bytes():
    out: dict[str, list[bytes]] = {}

    def draw(name):
        out[name] = [entropy.random_bytes(28) for _ in range(500)]

    threads = [threading.Thread(target=draw, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(out["a"]) & set(out["b"])
