"""Which ASGI server gives trentd a header deadline without costing throughput?
(docs/operations.md, "Limits and deadlines": the numbers quoted there come from this script.)

For each server that is installed — uvicorn with httptools as shipped, uvicorn with trentd's
guarded protocol (http/limits.py), granian, hypercorn — it serves one small ASGI app that reads a
JSON body and answers, pinned to CPU 0, and measures:

- throughput: ``wrk`` (pinned to CPU 1) POSTs a 120-byte body over 64 keep-alive connections;
- the header deadline: a client sends a request head one byte every 0.5 s; when is it cut off?
- idle: a client connects and sends nothing; when is it cut off?

With ``--trentd`` it serves trentd itself (``--dev``, one worker) under uvicorn with the guarded
protocol and under granian (``trentd.http.factory:app_from_env``), and wrk sends a SigV4-signed
Encrypt on a cached key instead — the question being whether the switch would buy throughput.

Run: ``python bench/edge_servers.py [--seconds 10] [--rounds 3] [--trentd]`` (needs ``wrk``; granian and hypercorn are
measured when importable). Numbers are only comparable within one run: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = b'{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","n":%d}' % len(body)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/x-amz-json-1.1"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
'''

WRK_LUA = '''
wrk.method = "POST"
wrk.body = '{"KeyId":"alias/bench","Plaintext":"aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=","EncryptionContext":{"purpose":"bench"}}   '
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "TrentService.Encrypt"
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def servers(port: int, header_timeout: int) -> dict[str, list[str]]:
    py = sys.executable
    out = {
        "uvicorn-httptools": [py, "-m", "uvicorn", "benchapp:app", "--port", str(port), "--http", "httptools",
                              "--loop", "uvloop", "--log-level", "warning", "--no-access-log"],
        "uvicorn-trentd-guarded": [py, "-m", "uvicorn", "benchapp:app", "--port", str(port), "--http",
                                   "trentd.http.limits:GuardedHttpToolsProtocol", "--loop", "uvloop",
                                   "--log-level", "warning", "--no-access-log"],
    }
    if shutil.which("granian") or _importable("granian"):
        out["granian"] = [py, "-m", "granian", "--interface", "asgi", "--port", str(port), "--no-ws",
                          "--http", "1", "--loop", "uvloop", "--http1-header-read-timeout", str(header_timeout * 1000),
                          "--log-level", "warning", "benchapp:app"]
    if _importable("hypercorn"):
        out["hypercorn"] = [py, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--read-timeout",
                            str(header_timeout), "--log-level", "warning", "benchapp:app"]
    return out


def _importable(name: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True).returncode == 0


def wait_up(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def wrk(port: int, seconds: int, lua: Path) -> dict:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", "-s", str(lua),
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"req_per_s": round(rps), "p99_ms": round(float(p99.group(1)) * scale, 2)}


def cut_off_after(port: int, trickle: bool, limit: float) -> float | None:
    """Seconds until the server closes a trickling (or idle) client; None if it never did."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.5)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 10_000
    start, i = time.monotonic(), 0
    try:
        while time.monotonic() - start < limit:
            if trickle:
                sock.sendall(head[i : i + 1])
                i += 1
            try:
                if sock.recv(4096) == b"":
                    return round(time.monotonic() - start, 1)
                return round(time.monotonic() - start, 1)  # an error answer, then close
            except (TimeoutError, socket.timeout):
                continue
    except (BrokenPipeError, ConnectionResetError):
        return round(time.monotonic() - start, 1)
    finally:
        sock.close()
    return None


def signed_encrypt_lua(port: int, key_id: str) -> str:
    """A wrk script POSTing one botocore-signed Encrypt (valid for the 5-minute skew window)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"KeyId": key_id, "Plaintext": "aGVsbG8gd29ybGQ=", "EncryptionContext": {"p": "bench"}})
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body.encode(), headers={
        "X-Amz-Target": "TrentService.Encrypt", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("000000000000", "dev"), "kms", "us-east-1").add_auth(request)
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers.items()]
    return "\n".join(lines) + "\n"


def bench_trentd(args) -> int:
    import boto3

    results: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name in ("uvicorn-trentd-guarded", "granian"):
            port, data = free_port(), Path(tempfile.mkdtemp(prefix="trentd-bench-data-"))
            settings = {"data_dir": str(data), "dev": True, "port": port}
            env = dict(os.environ, TRENTD_SETTINGS_JSON=json.dumps(settings))
            serve = [sys.executable, "-m", "trentd", "serve", "--dev", "--port", str(port), "--data-dir", str(data)]
            if name == "granian":
                subprocess.run(serve[:3] + ["migrate", "--data-dir", str(data)], check=True, capture_output=True)
                # first start (root key, canary, admin) the way serve does it, then granian serves the factory
                subprocess.run([sys.executable, "-c", "from trentd.runtime import Settings, open_runtime;"
                                f"open_runtime(Settings(data_dir={str(data)!r}, dev=True), announce=lambda t: None)"],
                               check=True)
                serve = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--port", str(port),
                         "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning",
                         "trentd.http.factory:app_from_env"]
            proc = subprocess.Popen(["taskset", "-c", "0", *serve], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                wait_up(port)
                time.sleep(1)
                kms = boto3.client("kms", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                                   aws_access_key_id="000000000000", aws_secret_access_key="dev")
                key_id = kms.create_key()["KeyMetadata"]["KeyId"]
                lua = data / "encrypt.lua"
                lua.write_text(signed_encrypt_lua(port, key_id))
                wrk(port, 2, lua)
                result = wrk(port, args.seconds, lua)
                results.setdefault(name, []).append(result)
                print(name, result, flush=True)
            finally:
                proc.terminate()
                proc.wait(10)
                shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--header-timeout", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--trentd", action="store_true", help="serve trentd itself, wrk a signed Encrypt")
    parser.add_argument("--only", nargs="*", help="server names to measure (default: all installed)")
    args = parser.parse_args()
    if args.trentd:
        return bench_trentd(args)
    work = Path(tempfile.mkdtemp(prefix="trentd-bench-"))
    (work / "benchapp.py").write_text(APP)
    lua = work / "post.lua"
    lua.write_text(WRK_LUA)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(work), str(Path(__file__).resolve().parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")]),
               TRENTD_HTTP_LIMITS=json.dumps({"header_timeout": args.header_timeout}))
    results: dict[str, list[dict]] = {}
    for _, (name, cmd) in [(r, item) for r in range(args.rounds)
                           for item in servers(free_port(), args.header_timeout).items()
                           if not args.only or item[0] in args.only]:
        port = int(cmd[cmd.index("--port") + 1]) if "--port" in cmd else int(cmd[cmd.index("--bind") + 1].split(":")[1])
        proc = subprocess.Popen(["taskset", "-c", "0", *cmd], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(port)
            wrk(port, 2, lua)  # warm-up
            result = wrk(port, args.seconds, lua)
            limit = args.header_timeout * 3
            result["trickling_head_cut_after_s"] = cut_off_after(port, True, limit)
            result["idle_cut_after_s"] = cut_off_after(port, False, limit)
            results.setdefault(name, []).append(result)
            print(name, result, flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
