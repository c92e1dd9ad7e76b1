"""Per-request CPU cost of trentd's ASGI app without a network: where the time of one call goes.

Opens a throwaway data dir in normal mode (signatures verified), creates a key, then sends the
same botocore-signed Encrypt 64 B through ``TrentApp`` directly, ``--concurrency`` at a time, and
prints µs per request (wall and CPU of all threads). Switches take parts away to measure them:

    .venv/bin/python bench/app_cost.py                      # the whole app, audit on
    .venv/bin/python bench/app_cost.py --no-audit-sink      # the event is built, not written
    .venv/bin/python bench/app_cost.py --stub-handler       # Encrypt replaced by a constant answer
    .venv/bin/python bench/app_cost.py --profile            # cProfile of the run, by total time
    .venv/bin/python bench/app_cost.py --profile --sort cumulative --top 80
    .venv/bin/python bench/app_cost.py --operation Decrypt  # or GenerateDataKey
    .venv/bin/python bench/app_cost.py --access-log 2>/dev/null  # --log-format json with its access log
    .venv/bin/python bench/app_cost.py --metrics            # counted as with --metrics-port
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import configparser
import cProfile
import dataclasses
import os
import pstats
import tempfile
import time

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from trentd import logs
from trentd.http.app import TrentApp
from trentd.kms import api
from trentd.runtime import Settings, open_runtime


def signed(credentials, target: str, body: bytes) -> list[tuple[bytes, bytes]]:
    request = AWSRequest("POST", "http://127.0.0.1:4599/", data=body, headers={
        "X-Amz-Target": "TrentService." + target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(credentials, "kms", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), v.encode() if isinstance(v, str) else v) for k, v in request.headers.items()]
    return headers + [(b"host", b"127.0.0.1:4599"), (b"content-length", str(len(body)).encode())]


async def call(app, headers, body: bytes) -> list[dict]:
    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 1), "scheme": "http"}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def start(app) -> tuple[asyncio.Queue, asyncio.Task]:
    """Run the app's lifespan startup (background jobs, the cache epoch poller)."""
    queue: asyncio.Queue = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})

    async def send(message):
        pass

    lifespan = asyncio.get_running_loop().create_task(app({"type": "lifespan"}, queue.get, send))
    await asyncio.sleep(0.5)
    return queue, lifespan


async def main(args) -> None:
    data_dir = tempfile.mkdtemp(prefix="trentd-app-cost-")
    if args.metrics:  # as `trentd serve --metrics-port` does before anything imports prometheus_client
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="trentd-app-cost-metrics-")
    # The port only switches the counting on: no listener runs here (it is not part of a request).
    settings = Settings(data_dir=data_dir, metrics_port=9 if args.metrics else None)
    if args.access_log:  # as `serve --log-format json` (its access log on): lines go to stderr
        logs.setup("json", "info")
        settings.log_format, settings.access_log = "json", True
    runtime = open_runtime(settings, announce=lambda text: None)
    app = TrentApp(runtime)
    profile = configparser.ConfigParser()
    profile.read(f"{data_dir}/admin-credentials")
    credentials = Credentials(profile["default"]["aws_access_key_id"], profile["default"]["aws_secret_access_key"])
    lifespan_queue, lifespan = await start(app)
    created = await call(app, signed(credentials, "CreateKey", b"{}"), b"{}")
    key_id = orjson.loads(created[1]["body"])["KeyMetadata"]["KeyId"]
    encrypt_body = orjson.dumps({"KeyId": key_id, "Plaintext": base64.b64encode(b"x" * 64).decode()})
    bodies = {"Encrypt": encrypt_body, "GenerateDataKey": orjson.dumps({"KeyId": key_id, "KeySpec": "AES_256"})}
    if args.operation == "Decrypt":
        encrypted = await call(app, signed(credentials, "Encrypt", encrypt_body), encrypt_body)
        blob = orjson.loads(encrypted[1]["body"])["CiphertextBlob"]
        bodies["Decrypt"] = orjson.dumps({"CiphertextBlob": blob})
    body = bodies[args.operation]
    headers = signed(credentials, args.operation, body)
    if args.no_audit_sink:
        async def written(event, loop=None):
            return True
        app.audit.sink.record = written
    if args.stub_handler:
        if args.operation != "Encrypt":
            raise SystemExit("--stub-handler replaces Encrypt only")
        answer = {"CiphertextBlob": b"x" * 150, "KeyId": f"arn:aws:kms:us-east-1:000000000000:key/{key_id}",
                  "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        api.OPERATIONS["Encrypt"] = dataclasses.replace(api.OPERATIONS["Encrypt"],
                                                        handler=lambda svc, caller, request: answer)
    first = await call(app, headers, body)
    assert first[0]["status"] == 200, first
    profiler = cProfile.Profile() if args.profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for _ in range(args.requests // args.concurrency):
        await asyncio.gather(*(call(app, headers, body) for _ in range(args.concurrency)))
    if profiler:
        profiler.disable()
    n = args.requests // args.concurrency * args.concurrency
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{n / wall:,.0f} req/s; {wall / n * 1e6:.0f} µs wall, {cpu / n * 1e6:.0f} µs CPU (all threads) per request")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    await lifespan_queue.put({"type": "lifespan.shutdown"})
    await lifespan


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--operation", choices=("Encrypt", "Decrypt", "GenerateDataKey"), default="Encrypt",
                        help="the call measured (Encrypt: 64 bytes)")
    parser.add_argument("--no-audit-sink", action="store_true")
    parser.add_argument("--stub-handler", action="store_true")
    parser.add_argument("--access-log", action="store_true", help="JSON logs with the access log (stderr)")
    parser.add_argument("--metrics", action="store_true", help="count every request as --metrics-port does")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile order: tottime, cumulative, ... (with --profile)")
    parser.add_argument("--top", type=int, default=40, help="functions printed (with --profile)")
    asyncio.run(main(parser.parse_args()))
