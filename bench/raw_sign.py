"""The ceiling for trentd's Sign RSA-2048: how many RSASSA-PSS SHA-256 signatures per second
``cryptography`` alone makes on this machine, in 1 and 2 threads and 1 and 2 processes.

Same key size, padding (PSS, MGF1-SHA-256, salt = digest length, as trentd's crypto/rsa_ecc.py)
and message size (64 random bytes, MessageType RAW) as bench/run's sign-rsa. cryptography
releases the GIL while OpenSSL signs, so threads should scale like processes; both are shown.
The issue's target: trentd's Sign RSA-2048 req/s at 64 connections with --workers 2 is at least
80% of the best 2-way figure here, measured on the same machine in the same session.

Run: ``python bench/raw_sign.py [--seconds 5] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)


def _sign_for(seconds: float) -> int:
    """Signatures made in ``seconds`` by the calling thread (its own key: no shared state)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = os.urandom(64)
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        key.sign(message, PSS, hashes.SHA256())
        count += 1
    return count


def in_threads(workers: int, seconds: float) -> float:
    counts = [0] * workers

    def work(index: int) -> None:
        counts[index] = _sign_for(seconds)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def in_processes(workers: int, seconds: float) -> float:
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(_sign_for, [seconds] * workers)) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description="RSA-2048 PSS SHA-256 signatures per second with cryptography alone")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    results = {}
    for label, measure, workers in [("1 thread", in_threads, 1), ("2 threads", in_threads, 2),
                                    ("1 process", in_processes, 1), ("2 processes", in_processes, 2)]:
        results[label] = measure(workers, args.seconds)
        print(f"{label:<12} {results[label]:>8,.0f} signatures/s", flush=True)
    best_two = max(results["2 threads"], results["2 processes"])
    print(f"80% of the best 2-way figure: {0.8 * best_two:,.0f}/s (the Sign RSA-2048 target for trentd --workers 2)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"signatures_per_second": results, "target_80pct": 0.8 * best_two}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
