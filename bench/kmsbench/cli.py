"""bench/run: argument parsing and the three modes (one endpoint, A/B, scale). See bench/README.md."""

from __future__ import annotations

import argparse
import os
import platform
import time

from . import memory, report
from .operations import Fixtures, Operation, make_fixtures, parse_ops
from .runner import LoadSettings, measure
from .scale import fill_keys, list_all_keys
from .target import Target, resolve_credentials
from .wrkrun import require_wrk


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run", description="SigV4-signed KMS load against an endpoint (trentd, moto_server, the echo app).")
    parser.add_argument("--endpoint", required=True, help="URL of the endpoint (A in an A/B run)")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    _credential_options(parser, "")
    parser.add_argument("--ops", default="all", help="comma-separated operations, or 'all' (default)")
    parser.add_argument("--conns", default="1,16,64", help="comma-separated connection counts (default 1,16,64)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run, whole (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads, at most one per connection (default 2)")
    parser.add_argument("--pool-size", type=int, default=64, help="distinct signed requests per operation (default 64)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--server-pid", type=int, help="pid of the server's parent process: report RSS per worker")

    ab = parser.add_argument_group("A/B mode: alternate two endpoints, report B/A per operation")
    ab.add_argument("--b-endpoint", metavar="URL", help="endpoint B; enables the A/B mode")
    _credential_options(ab, "b-", "(default: A's)")
    ab.add_argument("--rounds", type=int, default=3, help="A B rounds per operation and connection count (default 3)")
    ab.add_argument("--labels", help="names of A and B in the report, e.g. moto,trentd (default A,B; "
                    "in the other modes, one name for the endpoint)")

    scale = parser.add_argument_group("scale mode")
    scale.add_argument("--scale", type=int, metavar="N",
                       help="fill the account/region to N keys between two measurements, then page ListKeys")
    scale.add_argument("--fill-concurrency", type=int, default=64, help="concurrent CreateKey calls (default 64)")
    scale.add_argument("--list-limit", type=int, default=1000, help="ListKeys page size (default 1000)")
    return parser


def _credential_options(group, prefix: str, suffix: str = "") -> None:
    group.add_argument(f"--{prefix}access-key", help=f"access key id {suffix}")
    group.add_argument(f"--{prefix}secret-key", help=f"secret access key {suffix}")
    group.add_argument(f"--{prefix}profile", help=f"profile of the shared credentials {suffix}")
    group.add_argument(f"--{prefix}credentials-file", metavar="FILE",
                       help=f"shared-credentials file, e.g. DATA_DIR/admin-credentials of trentd {suffix}")


def _target(args, prefix: str, label: str, url: str, inherit: Target | None = None) -> Target:
    values = {name: getattr(args, f"{prefix}{name}") for name in ("access_key", "secret_key", "profile", "credentials_file")}
    if inherit is not None and not any(values.values()):
        credentials, source = inherit.credentials, f"same as {inherit.label}"
    else:
        credentials, source = resolve_credentials(**values)
    target = Target(label=label, url=url, region=args.region, credentials=credentials)
    print(f"{label}: {url}  region {args.region}  access key {credentials.access_key} ({source})")
    return target


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _setup(target: Target, operations: list[Operation]) -> Fixtures:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        fixtures = make_fixtures(target, operations)
    except (BotoCoreError, ClientError) as exc:  # wrong credentials, region or URL: say so, measure nothing
        hint = ""
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "LimitExceededException":
            # A store filled by --scale has no room for the bench's own keys in that region.
            hint = "\nbench: the region is at its key quota (filled by --scale?): give --region another region"
        raise SystemExit(f"bench: setting up keys on {target.label} ({target.url}) failed: {exc}{hint}") from None
    print(f"{target.label}: keys {fixtures.key_ids}")
    for note in fixtures.notes:
        print(f"{target.label}: note: {note}")
    return fixtures


def _environment(args) -> dict:
    return {"host": platform.node(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "duration": args.duration,
            "threads": args.threads, "pool_size": args.pool_size}


def run_matrix(target: Target, fixtures: Fixtures, operations: list[Operation], connections: list[int],
               load: LoadSettings) -> list[dict]:
    results = []
    for operation in operations:
        for conns in connections:
            result = measure(target, operation, fixtures, conns, load)
            row = {"op": operation.name, "conns": conns, **result.as_dict()}
            print(f"  {target.label} {operation.name:<18} {conns:>3} conns: {result.rps:>9,.0f} req/s  "
                  f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  errors {result.errors}", flush=True)
            results.append(row)
    return results


def _rss(args, when: str) -> list[dict] | None:
    if not args.server_pid:
        return None
    processes = memory.server_processes(args.server_pid)
    rows = [[p["pid"], p["role"], p["rss_mb"]] for p in processes]
    report.print_table(f"RSS {when} (MB)", ["pid", "role", "RSS MB"], rows)
    return processes


def _single_label(args) -> str:
    return args.labels.split(",")[0] if args.labels else "endpoint"


def single_mode(args, operations, connections, load) -> dict:
    target = _target(args, "", _single_label(args), args.endpoint)
    fixtures = _setup(target, operations)
    rss_before = _rss(args, "before")
    results = run_matrix(target, fixtures, operations, connections, load)
    report.print_table(f"{target.label} ({target.url})", report.RUN_HEADER, report.run_rows(results))
    report.print_failures(results)
    return {"mode": "single", "endpoint": target.url, "label": target.label, "results": results,
            "rss_before": rss_before, "rss_after": _rss(args, "after")}


def ab_mode(args, operations, connections, load) -> dict:
    labels = ((args.labels or "A,B").split(",") + ["B"])[:2]
    if labels[0] == labels[1]:
        raise SystemExit("bench: --labels needs two different names")
    target_a = _target(args, "", labels[0], args.endpoint)
    target_b = _target(args, "b_", labels[1], args.b_endpoint, inherit=target_a)
    fixtures = {target_a.label: _setup(target_a, operations), target_b.label: _setup(target_b, operations)}
    cells = []
    for operation in operations:
        for conns in connections:
            rounds = []
            for number in range(args.rounds):  # A B A B …: both see the same drift of a noisy machine
                pair = {t.label: measure(t, operation, fixtures[t.label], conns, load).as_dict() for t in (target_a, target_b)}
                rounds.append(pair)
                print(f"  {operation.name:<18} {conns:>3} conns round {number + 1}: "
                      + "  ".join(f"{label} {pair[label]['rps']:,.0f} req/s" for label in labels), flush=True)
            cells.append(_ab_cell(operation.name, conns, rounds, labels))
    header = ["operation", "conns", f"{labels[0]} req/s", f"{labels[1]} req/s", f"{labels[1]}/{labels[0]}",
              "rounds' range", f"{labels[0]} p99", f"{labels[1]} p99", "errors"]
    rows = [[c["op"], c["conns"], c["a_rps"], c["b_rps"], c["ratio"], report.spread(c["ratios"]), c["a_p99_ms"],
             c["b_p99_ms"], c["errors"]] for c in cells]
    report.print_table(f"A/B: {labels[1]}/{labels[0]} = median over {args.rounds} rounds of the per-round ratio of req/s "
                       "(a range that spans 1.00: no difference beyond the noise)", header, rows)
    return {"mode": "ab", "a": {"label": labels[0], "endpoint": target_a.url},
            "b": {"label": labels[1], "endpoint": target_b.url}, "cells": cells}


def _ab_cell(name: str, conns: int, rounds: list[dict], labels: list[str]) -> dict:
    a, b = labels
    ratios = [r[b]["rps"] / r[a]["rps"] if r[a]["rps"] else float("nan") for r in rounds]
    return {"op": name, "conns": conns, "ratio": report.median(ratios), "ratios": ratios,
            "a_rps": report.median([r[a]["rps"] for r in rounds]), "b_rps": report.median([r[b]["rps"] for r in rounds]),
            "a_p99_ms": report.median([r[a]["p99_ms"] for r in rounds]),
            "b_p99_ms": report.median([r[b]["p99_ms"] for r in rounds]),
            "errors": sum(r[a]["errors"] + r[b]["errors"] for r in rounds), "rounds": rounds}


def scale_mode(args, operations, connections, load) -> dict:
    target = _target(args, "", _single_label(args), args.endpoint)
    fixtures = _setup(target, operations)
    rss_before = _rss(args, "before the fill")
    print(f"\nbefore the fill: {target.label}")
    before = run_matrix(target, fixtures, operations, connections, load)
    existing = list_all_keys(target, args.list_limit).keys
    print(f"\nfilling to {args.scale:,} keys: {existing:,} exist, creating {max(0, args.scale - existing):,} "
          f"over {args.fill_concurrency} connections", flush=True)
    fill = fill_keys(target, args.scale - existing, args.fill_concurrency)
    rate = fill.created / fill.seconds if fill.seconds else 0.0
    print(f"created {fill.created:,} keys in {fill.seconds:.1f} s ({rate:,.0f}/s), {fill.retried} retried "
          f"(5xx or dropped connection), {fill.failed} refused"
          + (f"; first failure: {fill.first_failure}" if fill.first_failure else ""))
    rss_filled = _rss(args, "after the fill")
    print(f"\nafter the fill: the same operations on the same keys")
    after = run_matrix(target, fixtures, operations, connections, load)
    listing = list_all_keys(target, args.list_limit)
    rss_after = _rss(args, "after the runs and the listing")
    _print_scale(target, before, after, existing, listing, args.list_limit)
    return {"mode": "scale", "endpoint": target.url, "keys_before": existing, "keys": listing.keys, "before": before, "after": after,
            "fill": {**fill.__dict__, "per_second": rate},
            "list_keys": {"limit": args.list_limit, "pages": listing.pages, "keys": listing.keys,
                          "p50_ms": _percentile(listing.page_seconds, 50) * 1000,
                          "p99_ms": _percentile(listing.page_seconds, 99) * 1000,
                          "page_ms": [s * 1000 for s in listing.page_seconds]},
            "rss_before": rss_before, "rss_after_fill": rss_filled, "rss_after": rss_after}


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _print_scale(target, before, after, keys_before, listing, limit) -> None:
    rows = [[b["op"], b["conns"], b["rps"], a["rps"], a["rps"] / b["rps"] if b["rps"] else float("nan"),
             b["p99_ms"], a["p99_ms"], b["errors"] + a["errors"]] for b, a in zip(before, after)]
    report.print_table(f"{target.label}: {keys_before:,} keys (before the fill) vs {listing.keys:,} keys (after)",
                       ["operation", "conns", "req/s before", "req/s after", "after/before", "p99 before", "p99 after",
                        "errors"], rows)
    report.print_table(f"ListKeys, Limit {limit}, {listing.pages} pages following Marker",
                       ["keys", "pages", "p50 ms", "p99 ms", "max ms"],
                       [[listing.keys, listing.pages, _percentile(listing.page_seconds, 50) * 1000,
                         _percentile(listing.page_seconds, 99) * 1000, max(listing.page_seconds) * 1000]])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.b_endpoint and args.scale:
        raise SystemExit("bench: --scale and --b-endpoint are separate modes")
    require_wrk()
    operations, connections = parse_ops(args.ops), _int_list(args.conns)
    load = LoadSettings(duration=args.duration, threads=args.threads, pool_size=args.pool_size)
    environment = _environment(args)
    if args.b_endpoint:
        document = ab_mode(args, operations, connections, load)
    elif args.scale:
        document = scale_mode(args, operations, connections, load)
    else:
        document = single_mode(args, operations, connections, load)
    report.write_json(args.json, {"environment": environment, **document})
    return 0
