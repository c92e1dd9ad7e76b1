"""Resident set size of a server's processes, found from its parent pid through /proc (Linux).

trentd with ``--workers N`` is a uvicorn parent whose workers are spawned children
(``multiprocessing.spawn``); with one worker the parent serves requests itself.
"""

from __future__ import annotations

import os


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name (field 2) may hold spaces: the parent pid follows its closing paren.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _role(pid: int, is_parent: bool) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in command:
        return "resource tracker"
    if "spawn_main" in command or "multiprocessing" in command:
        return "worker"
    return "parent" if is_parent else "child"


def server_processes(server_pid: int) -> list[dict]:
    """[{pid, role, rss_mb}] for the parent and every descendant; when there is no worker
    child, the parent is the one worker."""
    if not os.path.exists(f"/proc/{server_pid}"):
        raise SystemExit(f"bench: no process {server_pid} (--server-pid)")
    processes = [{"pid": server_pid, "role": "parent", "rss_mb": _rss_mb(server_pid)}]
    pending = _children(server_pid)
    while pending:
        pid = pending.pop()
        try:
            processes.append({"pid": pid, "role": _role(pid, False), "rss_mb": _rss_mb(pid)})
        except OSError:
            continue
        pending.extend(_children(pid))
    if not any(p["role"] == "worker" for p in processes):
        processes[0]["role"] = "parent (the worker)"
    return processes


def worker_rss(processes: list[dict]) -> list[float]:
    return [p["rss_mb"] for p in processes if p["role"] in ("worker", "parent (the worker)")]
