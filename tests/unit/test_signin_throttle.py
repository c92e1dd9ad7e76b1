"""The console's sign-in throttle over time, on a real SQLite store with a clock the test moves
(the end-to-end tests, tests/console/test_console_signin.py, cannot wait out a minute)."""

from __future__ import annotations

import pytest

from trentd.console.throttle import LIMIT, SignInThrottle
from trentd.store.sqlite import SQLiteStore


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttle(tmp_path):
    store = SQLiteStore(tmp_path / "trentd.db")
    store.migrate()
    yield SignInThrottle(store, b"k" * 32, clock=Clock())
    store.close()


def rows(throttle) -> list[tuple[str, float]]:
    with throttle.store.read() as tx:
        return tx.q("SELECT subject, failed_at FROM console_signin_failures ORDER BY failed_at").fetchall()


def fail(throttle, subjects, times: int, every: float = 1.0) -> None:
    for _ in range(times):
        throttle.failed(subjects)
        throttle.clock.now += every


def test_the_tenth_failure_in_a_minute_refuses_for_a_minute(throttle):
    subjects = throttle.subjects("AKIAEXAMPLE", "192.0.2.1")
    fail(throttle, subjects, LIMIT - 1, every=6.0)  # nine, 54 s apart end to end
    assert throttle.retry_after(subjects) == 0
    throttle.failed(subjects)  # the tenth, at +54 s
    assert throttle.retry_after(subjects) == 60
    throttle.clock.now += 59.5
    assert throttle.retry_after(subjects) == 1
    throttle.clock.now += 0.5
    assert throttle.retry_after(subjects) == 0


def test_ten_failures_spread_over_more_than_a_minute_do_not_refuse(throttle):
    subjects = throttle.subjects("AKIAEXAMPLE", "192.0.2.1")
    fail(throttle, subjects, LIMIT, every=7.0)  # 63 s from the first to the tenth
    assert throttle.retry_after(subjects) == 0


def test_either_subject_refuses_alone(throttle):
    fail(throttle, throttle.subjects("AKIAEXAMPLE", "192.0.2.1"), LIMIT)
    assert throttle.retry_after(throttle.subjects("AKIAEXAMPLE", "198.51.100.1")) > 0  # the key, elsewhere
    assert throttle.retry_after(throttle.subjects("AKIAOTHER", "192.0.2.1")) > 0  # the address, another key
    assert throttle.retry_after(throttle.subjects("AKIAOTHER", "198.51.100.1")) == 0
    assert throttle.retry_after(throttle.subjects("AKIAOTHER", None)) == 0


def test_the_store_holds_hashes_only_and_forgets_old_failures(throttle):
    subjects = throttle.subjects("AKIAEXAMPLE", "192.0.2.1")
    fail(throttle, subjects, 3)
    stored = rows(throttle)
    assert len(stored) == 6 and {s for s, _ in stored} == set(subjects)
    assert all(len(s) == 64 and "AKIA" not in s and "192.0.2" not in s for s, _ in stored)
    assert throttle.subjects("AKIAEXAMPLE", "192.0.2.1") == subjects  # the same on every call (and node)
    throttle.clock.now += 121  # past the window and the refusal it could cause
    throttle.failed(throttle.subjects("AKIANEW", None))
    assert len(rows(throttle)) == 1
