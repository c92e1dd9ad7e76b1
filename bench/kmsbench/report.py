"""Tables on stdout and the --json document."""

from __future__ import annotations

import json
import statistics


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  ".join(value.rjust(width) if i else value.ljust(width) for i, (value, width) in enumerate(zip(row, widths))))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def run_rows(results: list[dict]) -> list[list]:
    return [[r["op"], r["conns"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"]] for r in results]


RUN_HEADER = ["operation", "conns", "req/s", "p50 ms", "p99 ms", "errors"]


def print_failures(results: list[dict]) -> None:
    for r in results:
        if r.get("first_failure"):
            print(f"  {r['op']} @ {r['conns']} conns, first non-2xx: {r['first_failure'][:300]}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(ratios: list[float]) -> str:
    """The lowest and highest per-round ratio: how far one round can stray on this machine."""
    return f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "-"


def write_json(path: str | None, document: dict) -> None:
    if not path:
        return
    with open(path, "w") as out:
        json.dump(document, out, indent=2)
    print(f"\nwrote {path}")
