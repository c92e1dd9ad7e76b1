"""Latency of trentd's XKS proxy listener: Encrypt and Decrypt p50/p99 at 1 and 16 connections.

Against a listener that is already running (``trentd serve --xks-proxy-port …``; a key store and
a key made with ``trentd xks keystores create`` and ``trentd xks keys create``)::

    XKS_SECRET=… python bench/xks_latency.py --endpoint https://xks.example.com:8443 \\
        --uri-path /keystores/…/kms/xks/v1 --access-key-id K7AL… --key-id bf80… [--ca ca.pem]

or ``--start`` to start a trentd of its own on free ports (a temporary data dir, SQLite), make
the key store and key, measure, and stop it::

    PYTHONPATH=src python bench/xks_latency.py --start [--workers 2]

Each connection is a thread with one keep-alive HTTPS connection (TLS handshakes are not in the
figures: AWS KMS also keeps connections open); each request is signed with botocore's SigV4Auth
(service kms-xks-proxy) before its clock starts. Encrypt carries 32 bytes of plaintext and 64 of
AAD (a data key under an encryption context, what AWS KMS sends) and asks for the integrity value;
Decrypt decrypts one such answer. Latency is from sending the request to the last byte of the
answer, at the client, on this machine. AWS KMS gives up after 250 ms (docs/xks.md).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

METADATA = {"awsPrincipalArn": "arn:aws:iam::111122223333:role/bench", "kmsOperation": "GenerateDataKey",
            "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}


class Target:
    def __init__(self, endpoint: str, uri_path: str, access_key_id: str, secret: str, key_id: str,
                 ca: str | None, server_name: str | None, region: str):
        parts = urlsplit(endpoint)
        self.host, self.port = parts.hostname or "localhost", parts.port or 443
        self.server_name = server_name or self.host
        self.uri_path, self.key_id, self.region = uri_path, key_id, region
        self.credentials = Credentials(access_key_id, secret)
        self.context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()

    def pool(self) -> urllib3.HTTPSConnectionPool:
        return urllib3.HTTPSConnectionPool(self.host, self.port, maxsize=1, ssl_context=self.context,
                                           server_hostname=self.server_name, retries=False, timeout=10)

    def signed(self, operation: str, body: dict) -> tuple[str, bytes, dict]:
        path = f"{self.uri_path}/keys/{self.key_id}/{operation}"
        data = json.dumps(body).encode()
        authority = self.server_name if self.port == 443 else f"{self.server_name}:{self.port}"
        request = AWSRequest(method="POST", url=f"https://{authority}{path}", data=data,
                             headers={"Content-Type": "application/json"})
        SigV4Auth(self.credentials, "kms-xks-proxy", self.region).add_auth(request)
        return path, data, {**dict(request.headers), "Host": authority}


def encrypt_body(n: int) -> dict:
    return {"requestMetadata": {**METADATA, "kmsRequestId": f"bench-{n}"},
            "plaintext": base64.b64encode(os.urandom(32)).decode(), "encryptionAlgorithm": "AES_GCM",
            "additionalAuthenticatedData": base64.b64encode(os.urandom(64)).decode(),
            "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}


def run(target: Target, operation: str, connections: int, requests: int, sealed: dict, aad: str) -> list[float]:
    per_thread = max(1, requests // connections)
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def worker(index: int) -> None:
        pool = target.pool()
        mine = []
        for n in range(per_thread + 5):  # the first five warm the connection and are not counted
            if operation == "encrypt":
                body = encrypt_body(n)
            else:
                body = {"requestMetadata": {**METADATA, "kmsOperation": "Decrypt", "kmsRequestId": f"bench-{n}"},
                        "encryptionAlgorithm": "AES_GCM", "additionalAuthenticatedData": aad, **sealed}
            path, data, headers = target.signed(operation, body)
            start = time.perf_counter()
            response = pool.urlopen("POST", path, body=data, headers=headers, assert_same_host=False)
            elapsed = time.perf_counter() - start
            if response.status != 200:
                failures.append(f"{response.status} {response.data[:200]!r}")
                return
            if n >= 5:
                mine.append(elapsed)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{operation}: {len(failures)} failed requests, e.g. {failures[0]}")
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(target: Target, requests: int, connection_counts: list[int]) -> list[dict]:
    pool = target.pool()
    body = encrypt_body(0)
    path, data, headers = target.signed("encrypt", body)
    answer = json.loads(pool.urlopen("POST", path, body=data, headers=headers, assert_same_host=False).data)
    sealed = {k: answer[k] for k in ("ciphertext", "initializationVector", "authenticationTag")}
    rows = []
    for connections in connection_counts:
        for operation in ("encrypt", "decrypt"):
            latencies = run(target, operation, connections, requests, sealed, body["additionalAuthenticatedData"])
            rows.append({"operation": operation.capitalize(), "connections": connections, "requests": len(latencies),
                         "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                         "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                         "mean_ms": round(statistics.fmean(latencies) * 1000, 2)})
    return rows


def started(workers: int):
    """A trentd of its own, a key store and a key: (Target, server)."""
    from trentd.testing.server import TrentdServer, free_port

    port = free_port()
    server = TrentdServer(workers=workers, extra_args=("--xks-proxy-port", str(port))).start()
    base = [sys.executable, "-m", "trentd", "xks"]
    where = ["--data-dir", str(server.data_dir)]
    store = json.loads(subprocess.check_output(base + ["keystores", "create", "--name", "bench"] + where))
    key = json.loads(subprocess.check_output(base + ["keys", "create", "--keystore", "bench"] + where))
    target = Target(f"https://127.0.0.1:{port}", store["UriPath"], store["AccessKeyId"], store["SecretAccessKey"],
                    key["KeyId"], str(server.data_dir / "xks-tls" / "ca.pem"), "localhost", "us-east-1")
    time.sleep(1.0)  # the workers' caches see the new key store within a second
    return target, server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", action="store_true", help="start a trentd of its own (temporary data dir)")
    parser.add_argument("--workers", type=int, default=1, help="with --start: trentd's --workers")
    parser.add_argument("--endpoint", help="https://host[:port] of the listener")
    parser.add_argument("--uri-path")
    parser.add_argument("--access-key-id")
    parser.add_argument("--key-id")
    parser.add_argument("--ca", help="CA bundle that signed the listener's certificate (default: the system's)")
    parser.add_argument("--server-name", help="TLS server name and Host (default: the endpoint's host)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--requests", type=int, default=2000, help="per operation and connection count")
    parser.add_argument("--connections", default="1,16")
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]
    server = None
    if args.start:
        tempfile.tempdir = tempfile.mkdtemp(prefix="xks-bench-")
        target, server = started(args.workers)
    else:
        needed = (args.endpoint, args.uri_path, args.access_key_id, args.key_id, os.environ.get("XKS_SECRET"))
        if not all(needed):
            parser.error("--endpoint, --uri-path, --access-key-id, --key-id and XKS_SECRET (or --start)")
        target = Target(args.endpoint, args.uri_path, args.access_key_id, os.environ["XKS_SECRET"], args.key_id,
                        args.ca, args.server_name, args.region)
    try:
        rows = measure(target, args.requests, counts)
    finally:
        if server is not None:
            server.cleanup()
    print(f"{'operation':<10} {'conns':>5} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for row in rows:
        print(f"{row['operation']:<10} {row['connections']:>5} {row['requests']:>8} {row['p50_ms']:>8} "
              f"{row['p99_ms']:>8} {row['mean_ms']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
