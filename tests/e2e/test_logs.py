"""trentd's output end to end: ``--log-format json`` (every line one JSON object of at most 4 KiB,
from the parent, the supervisor and every worker), the access log, and text mode as it was.

Python warnings and tracebacks are raised inside the real server processes by a
``sitecustomize`` module on their PYTHONPATH (Python imports it at start in every process,
spawned workers too): once the process's JSON logging is set up, it emits a long warning, logs an
exception with a deep stack and lets one escape a thread. trentd itself has no test-only path.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from trentd.testing.server import TrentdServer, free_port

ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ACCESS_MEMBERS = {"time", "level", "logger", "message", "process", "request_id", "service", "operation", "principal",
                  "source_ip", "status", "error_code", "duration_ms"}
LINE_MAX = 4096

HOOK = r'''
import logging, threading, time, warnings

# 200 distinct frames (Python folds a frame repeated by plain recursion into one line)
_stack = "def f0():\n    raise RuntimeError('test failure at the bottom of a deep stack')\n"
_stack += "".join(f"def f{i}():\n    f{i - 1}()\n" for i in range(1, 200))
_deep = {}
exec(compile(_stack, "deep_stack.py", "exec"), _deep)

def _fire():
    root = logging.getLogger()
    while not any(type(h).__name__ == "LineHandler" for h in root.handlers):
        time.sleep(0.02)
    warnings.warn("test warning " + "w" * 6000, UserWarning)
    try:
        _deep["f199"]()
    except RuntimeError:
        logging.getLogger("trentd.test").exception("test traceback")
    raise ValueError("test exception nobody caught")

threading.Thread(target=_fire, name="test-hook", daemon=True).start()
'''


def hooked_env(tmp: Path) -> dict[str, str]:
    (tmp / "sitecustomize.py").write_text(HOOK)
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{tmp}{os.pathsep}{path}" if path else str(tmp)}


def json_lines(server: TrentdServer) -> list[dict]:
    """Every line of the server's output, each checked: one JSON object of at most 4 KiB."""
    out = []
    for line in server.log_path.read_bytes().splitlines(keepends=True):
        assert len(line) <= LINE_MAX, f"a line of {len(line)} bytes: {line[:200]!r}"
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON: {line[:300]!r}") from None
        assert isinstance(obj, dict), line
        assert ISO_MS.fullmatch(obj["time"]) and obj["level"] and "message" in obj, obj
        out.append(obj)
    return out


def wait_for(read, predicate, timeout: float = 10.0):
    """``read()`` until ``predicate`` holds of it (the access log and the hook write from threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if predicate(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def request_id(response_or_error) -> str:
    if isinstance(response_or_error, ClientError):
        return response_or_error.response["ResponseMetadata"]["RequestId"]
    return response_or_error["ResponseMetadata"]["RequestId"]


def access_line(lines: list[dict], rid: str) -> dict:
    found = [line for line in lines if line.get("request_id") == rid]
    assert len(found) == 1, f"{len(found)} access lines for {rid}"
    return found[0]


# --- json, two workers ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def json_run(tmp_path_factory):
    """A --dev --workers 2 --log-format json server, some requests, then SIGTERM: its whole output."""
    server = TrentdServer(workers=2, extra_args=("--log-format", "json"),
                          env=hooked_env(tmp_path_factory.mktemp("hook")))
    with server:
        kms = server.client(access_key="111122223333", secret_key="unused")
        key = kms.create_key()["KeyMetadata"]
        calls = {"encrypt": kms.encrypt(KeyId=key["KeyId"], Plaintext=b"log me not")}
        with pytest.raises(ClientError) as missing:
            kms.describe_key(KeyId="alias/no-such-alias")
        calls["missing"] = missing.value
        calls["sts"] = server.client("sts", access_key="111122223333", secret_key="unused").get_caller_identity()
        # every process has logged its hook's lines (the uncaught exception last) and every request its line
        wait_for(lambda: json_lines(server),
                 lambda lines: len({l["process"] for l in lines if l["message"].startswith("uncaught")}) == 3
                 and all(any(l.get("request_id") == request_id(c) for l in lines) for c in calls.values()))
        parent = server.process.pid
        server.stop()  # SIGTERM: the supervisor's and workers' shutdown lines
        yield {"lines": json_lines(server), "calls": calls, "parent": parent, "key": key}


def test_every_line_is_json_from_start_to_shutdown(json_run):
    lines, parent = json_run["lines"], json_run["parent"]
    messages = [(l["process"], l["logger"], l["message"]) for l in lines]
    banner = [l for l in lines if "--dev mode" in l["message"]]
    assert len(banner) == 1 and banner[0]["level"] == "WARNING" and banner[0]["logger"] == "trentd"
    assert banner[0]["process"] == parent and "Never expose this to a network" in banner[0]["message"]
    first = [m for p, n, m in messages if m.startswith("trentd: first start.")]
    assert len(first) == 1 and "The secret is not printed" in first[0]
    assert (parent, "uvicorn.error", f"Started parent process [{parent}]") in messages
    assert any(p == parent and m.startswith("Uvicorn running on http://127.0.0.1:") for p, _, m in messages)
    workers = {p for p, _, m in messages if m == "Application startup complete."}
    assert len(workers) == 2 and parent not in workers
    for worker in workers:
        assert (worker, "uvicorn.error", f"Started server process [{worker}]") in messages
        assert (worker, "uvicorn.error", f"Finished server process [{worker}]") in messages
        assert (parent, "uvicorn.error", f"Waiting for child process [{worker}]") in messages
    assert (parent, "uvicorn.error", "Received SIGTERM, exiting.") in messages
    assert messages[-1] == (parent, "uvicorn.error", f"Stopping parent process [{parent}]")
    assert not [l for l in lines if l["logger"] == "uvicorn.access"]  # trentd's own access log instead


def test_request_lines_carry_every_member(json_run):
    lines, calls, key = json_run["lines"], json_run["calls"], json_run["key"]
    encrypt = access_line(lines, request_id(calls["encrypt"]))
    assert set(encrypt) == ACCESS_MEMBERS
    assert encrypt["level"] == "INFO" and encrypt["logger"] == "trentd.access" and encrypt["message"] == "request"
    assert encrypt["service"] == "kms" and encrypt["operation"] == "Encrypt" and encrypt["status"] == 200
    assert encrypt["principal"] == "arn:aws:iam::111122223333:user/admin" and encrypt["source_ip"] == "127.0.0.1"
    assert encrypt["error_code"] is None and isinstance(encrypt["duration_ms"], float) and encrypt["duration_ms"] > 0
    missing = access_line(lines, request_id(calls["missing"]))
    assert (missing["operation"], missing["status"], missing["error_code"]) == ("DescribeKey", 400, "NotFoundException")
    sts = access_line(lines, request_id(calls["sts"]))
    assert (sts["service"], sts["operation"], sts["status"], sts["error_code"]) == ("sts", "GetCallerIdentity", 200, None)
    assert key["KeyId"] not in json.dumps(lines[-1])  # parameters are not logged, only names


def test_warnings_and_tracebacks_are_json_lines_of_4k_at_most(json_run):
    lines, parent = json_run["lines"], json_run["parent"]
    processes = {l["process"] for l in lines if l["message"] == "Application startup complete."} | {parent}
    warned = [l for l in lines if l["logger"] == "py.warnings"]
    assert {l["process"] for l in warned} == processes
    for line in warned:  # cut to fit, its start kept
        assert line["level"] == "WARNING" and "UserWarning: test warning www" in line["message"]
        assert line["message"].endswith("…") and 3900 < len(line["message"].encode()) < LINE_MAX  # (json_lines: ≤ 4 KiB)
    logged = [l for l in lines if l["message"] == "test traceback"]
    assert {l["process"] for l in logged} == processes
    for line in logged:  # a deep stack: its start and its end (the exception) kept
        assert line["level"] == "ERROR" and line["logger"] == "trentd.test"
        assert line["exc_info"].startswith("Traceback (most recent call last):") and "…" in line["exc_info"]
        assert line["exc_info"].endswith("RuntimeError: test failure at the bottom of a deep stack")
    uncaught = [l for l in lines if l["message"] == "uncaught exception in thread test-hook"]
    assert {l["process"] for l in uncaught} == processes
    for line in uncaught:
        assert line["level"] == "CRITICAL" and line["exc_info"].endswith("ValueError: test exception nobody caught")


# --- text, and the access log switch ----------------------------------------------------------------
def test_text_mode_is_unchanged_and_has_no_access_log():
    with TrentdServer() as server:
        kms = server.client(access_key="111122223333", secret_key="unused")
        rid = request_id(kms.list_keys())
        server.stop()
        text = server.logs()
    assert "* trentd is running in --dev mode: ANY access key is accepted and      *\n" in text
    assert re.search(r"^INFO:     Uvicorn running on http://127\.0\.0\.1:\d+", text, re.MULTILINE)
    assert rid not in text and "request_id=" not in text
    assert not any(line.startswith("{") for line in text.splitlines())


def test_access_log_in_text_mode():
    with TrentdServer(extra_args=("--access-log",)) as server:
        kms = server.client(access_key="111122223333", secret_key="unused")
        rid = request_id(kms.list_keys())
        with pytest.raises(ClientError) as missing:
            kms.describe_key(KeyId="alias/no-such-alias")
        failed = request_id(missing.value)
        text = wait_for(server.logs, lambda t: failed in t)
    line = re.search(rf"^\S+ \S+ INFO trentd\.access: request_id={rid} (.*)$", text, re.MULTILINE)
    assert line, text
    assert re.fullmatch(r"service=kms operation=ListKeys principal=arn:aws:iam::111122223333:user/admin "
                        r"source_ip=127\.0\.0\.1 status=200 error_code=- duration_ms=\d+\.\d+", line.group(1))
    assert re.search(rf"trentd\.access: request_id={failed} service=kms operation=DescribeKey .* status=400 "
                     r"error_code=NotFoundException ", text)


def test_json_without_access_log():
    with TrentdServer(extra_args=("--log-format", "json", "--no-access-log")) as server:
        kms = server.client(access_key="111122223333", secret_key="unused")
        kms.list_keys()
        server.stop()
        lines = json_lines(server)
    assert lines and not [l for l in lines if l["logger"] == "trentd.access"]


def test_json_never_prints_the_secret_even_on_a_terminal(tmp_path):
    """On a terminal the first-start notice shows the administrator's secret (text mode); JSON is
    for a collector, so there it names the file only."""
    data_dir, port = tmp_path / "data", free_port()
    primary, replica = pty.openpty()
    args = [sys.executable, "-m", "trentd", "serve", "--log-format", "json", "--port", str(port),
            "--data-dir", str(data_dir)]
    process = subprocess.Popen(args, stdout=replica, stderr=replica, stdin=subprocess.DEVNULL)
    os.close(replica)
    output = b""
    try:
        deadline = time.monotonic() + 30
        while b"Uvicorn running" not in output and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.5)[0]:
                try:
                    output += os.read(primary, 65536)
                except OSError:  # EIO: the server exited (the assertions below say why)
                    break
    finally:
        process.terminate()
        process.wait(10)
        os.close(primary)
    secret = (data_dir / "admin-credentials").read_text().split("aws_secret_access_key = ")[1].strip()
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    first = [l for l in lines if l["message"].startswith("trentd: first start.")]
    assert len(first) == 1 and str(data_dir / "admin-credentials") in first[0]["message"]
    assert secret not in output.decode()


def test_refusals_and_option_warnings_are_json_lines_too(tmp_path):
    env = {**os.environ, "TRENTD_PORT": "tcp://10.0.0.1:4599"}  # a Kubernetes service link: a warning
    result = subprocess.run([sys.executable, "-m", "trentd", "serve", "--log-format", "json", "--data-dir",
                             str(tmp_path / "d"), "--tls-cert", "server.pem"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("WARNING", "trentd", ("trentd: ignoring TRENTD_PORT=tcp://10.0.0.1:4599 (a service link Kubernetes "
                               "injects, not a trentd setting)")),
        ("ERROR", "trentd", "trentd: --tls-cert and --tls-key go together")]


def test_workers_sharing_one_pipe_never_interleave(tmp_path):
    """Two workers write their access lines to one pipe at once: each line arrives whole."""
    from concurrent.futures import ThreadPoolExecutor

    server = TrentdServer(workers=2, extra_args=("--log-format", "json"))
    args = server.serve_args()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    chunks: list[bytes] = []
    reader = ThreadPoolExecutor(1).submit(lambda: chunks.extend(iter(lambda: process.stdout.read(65536), b"")))
    try:
        server.process = process
        wait_for(lambda: b"".join(chunks), lambda out: out.count(b"Application startup complete") == 2, 30)
        kms = server.client(access_key="111122223333", secret_key="unused")
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: request_id(kms.list_keys()), range(200)))
        wait_for(lambda: b"".join(chunks), lambda out: all(i.encode() in out for i in ids))
    finally:
        server.stop()
        reader.result(10)
        server.cleanup()
    lines = b"".join(chunks).splitlines(keepends=True)
    parsed = [json.loads(line) for line in lines]  # a line split by another would not parse
    assert all(len(line) <= LINE_MAX for line in lines)
    access = [line for line in parsed if line["logger"] == "trentd.access"]
    assert sorted(line["request_id"] for line in access) == sorted(ids)
    assert len({line["process"] for line in access}) == 2  # both workers wrote
