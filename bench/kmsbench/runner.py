"""Measured runs against one endpoint, and the check that keeps a misconfiguration from ever
turning into numbers."""

from __future__ import annotations

from dataclasses import dataclass

from .operations import Fixtures, Operation, signed_pool
from .signing import RawConnection
from .target import Target
from .wrkrun import RunResult, run_wrk


@dataclass(frozen=True)
class LoadSettings:
    duration: float
    threads: int
    pool_size: int


class EndpointRefused(SystemExit):
    pass


def check_pool(target: Target, operation: Operation, pool: list[bytes]) -> None:
    """Send every request of the pool once; anything but HTTP 200 aborts the benchmark with the
    endpoint's answer, since wrk would otherwise happily measure error responses."""
    with RawConnection(target.url) as connection:
        for raw in pool:
            answer = connection.send(raw)
            if answer.status != 200:
                raise EndpointRefused(
                    f"bench: {target.label} ({target.url}) answered {operation.name} ({operation.api}) with "
                    f"HTTP {answer.status}, not 200; nothing was measured. Body:\n"
                    f"{answer.body.decode(errors='replace')[:2000]}")


def measure(target: Target, operation: Operation, fixtures: Fixtures, connections: int,
            load: LoadSettings) -> RunResult:
    # Signed just before the run: signatures are dated and trentd allows 5 minutes of skew.
    pool = signed_pool(target, operation, fixtures, load.pool_size)
    check_pool(target, operation, pool)
    return run_wrk(target.url, pool, connections=connections, threads=load.threads, duration=load.duration)
