"""One measured run: a pool of signed requests replayed by wrk, parsed into a RunResult."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("pool.lua")
RESULT_MARK = "KMSBENCH_RESULT "


@dataclass
class RunResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts
    first_failure: str  # status and body of the first non-2xx answer, for the report

    def as_dict(self) -> dict:
        return asdict(self)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("bench: wrk is not installed (Debian/Ubuntu: apt-get install -y wrk; see bench/README.md)")
    return path


def write_pool(requests: list[bytes], directory: str) -> str:
    path = os.path.join(directory, "pool.bin")
    with open(path, "wb") as out:
        for raw in requests:
            out.write(b"%d\n" % len(raw))
            out.write(raw)
    return path


def run_wrk(url: str, requests: list[bytes], *, connections: int, threads: int, duration: float,
            timeout: float = 10.0) -> RunResult:
    wrk = require_wrk()
    with tempfile.TemporaryDirectory(prefix="kmsbench-") as directory:
        pool_file = write_pool(requests, directory)
        command = [wrk, f"--connections={connections}", f"--threads={max(1, min(threads, connections))}",
                   f"--duration={max(1, math.ceil(duration))}s", f"--timeout={int(timeout)}s",
                   f"--script={LUA_SCRIPT}", url, "--", pool_file]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 60)
    for line in finished.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return _parse(json.loads(line[len(RESULT_MARK):]))
    raise RuntimeError(f"wrk printed no result (exit {finished.returncode}):\n{finished.stdout}\n{finished.stderr}")


def _parse(raw: dict) -> RunResult:
    seconds = raw["duration_us"] / 1e6
    failure = ""
    if raw["first_failure_status"]:
        failure = f"HTTP {raw['first_failure_status']}: {raw['first_failure_body']}"
    return RunResult(
        requests=raw["requests"], seconds=seconds, rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000, max_ms=raw["max_us"] / 1000,
        errors=raw["non_2xx"] + raw["socket_errors"] + raw["timeouts"], first_failure=failure)
