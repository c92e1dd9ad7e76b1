"""Prometheus metrics (``--metrics-port``; docs/operations.md "Metrics") through a running trentd.

A ``--workers 2`` server with metrics on gets a short load (CreateKey and Encrypt over several
connections, a DescribeKey failing with a known error, a forged X-Amz-Target, STS
GetCallerIdentity and a forged STS Action, health and readiness checks); one scrape of its
listener must then show the sums over both workers: as many requests per operation and outcome
as were sent, the forged names as ``unknown``, nothing of the request (key id, ARN, account) as
a label, and ``promtool check metrics`` content with the text. Killing a worker keeps its counts
and takes its connections out of the gauge. With metrics off nothing listens, no metrics
directory is made, and no process imports prometheus_client (Python's own import trace,
PYTHONPROFILEIMPORTTIME, shows it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from trentd.testing.postgres import ThrowawayCluster, ThrowawayDatabase, require_cluster_tools
from trentd.testing.server import TrentdServer, free_port

from ..helpers import break_audit_dir
from .test_protocol import exchange, send

ACCOUNT = "314159265358"
ENCRYPTS = 12
CLIENTS = 4  # separate connection pools, so that both workers take a share
FORGED = "TrentService.ForgedOperation"
FORGED_STS = "ForgedStsAction"


def scrape(port: int, path: str = "/metrics") -> tuple[int, str, str]:
    """(status, content type, body) of a GET on the metrics listener."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def kms_request(server: TrentdServer, target: str, body: dict):
    """A signed KMS request, whatever the answer (send() refuses a 500)."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=server.url + "/", data=data,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(ACCOUNT, "dev-secret"), "kms", "us-east-1").add_auth(request)
    return exchange(server.url, "POST", dict(request.headers), data)


def sts_action(server: TrentdServer, action: str):
    """A signed STS Query request for ``action`` (the dev server trusts any secret)."""
    body = f"Action={action}&Version=2011-06-15".encode()
    request = AWSRequest(method="POST", url=server.url + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(ACCOUNT, "dev-secret"), "sts", "us-east-1").add_auth(request)
    return exchange(server.url, "POST", dict(request.headers), body)


def samples(text: str) -> dict[tuple, float]:
    """Every sample of a scrape: (name, sorted label pairs) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def total(found: dict, name: str, **labels) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, pairs), v in found.items() if n == name and want <= set(pairs))


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def workers(server: TrentdServer) -> list[int]:
    """uvicorn's worker processes (spawned by multiprocessing; not its resource tracker)."""
    out = []
    for pid in children(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(pid)
    return sorted(out)


def socket_owners(pids: list[int]) -> dict[str, int]:
    """Socket inode -> the pid (of ``pids``) holding it, from /proc/PID/fd."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = pid
    return owners


def tcp_table() -> list[list[str]]:
    """The rows of /proc/net/tcp and tcp6, split into fields (1: local, 2: remote, 3: state, 9: inode)."""
    return [line.split() for table in ("/proc/net/tcp", "/proc/net/tcp6")
            for line in Path(table).read_text().splitlines()[1:]]


def listening_ports(pids: list[int]) -> set[int]:
    """TCP ports on which any of ``pids`` listens (from /proc: their socket inodes)."""
    inodes = set(socket_owners(pids))
    ports = set()
    for fields in tcp_table():
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture(scope="module")
def metrics_server():
    port = free_port()
    server = TrentdServer(workers=2, extra_args=("--metrics-port", str(port)),
                          env={"PYTHONPROFILEIMPORTTIME": "1"})
    with server:
        server.metrics_port = port
        yield server


@pytest.fixture(scope="module")
def load(metrics_server):
    """The short load, once per module: what was sent, to compare with the scrape."""
    clients = [metrics_server.client(access_key=ACCOUNT, secret_key="unused-in-dev-mode") for _ in range(CLIENTS)]
    key = clients[0].create_key(Description="metrics test")["KeyMetadata"]
    for n in range(ENCRYPTS):
        clients[n % CLIENTS].encrypt(KeyId=key["KeyId"], Plaintext=b"secret value %d" % n)
    with pytest.raises(ClientError) as excinfo:
        clients[1].describe_key(KeyId="alias/metrics-no-such-alias")
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"
    forged = send(metrics_server, FORGED, account=ACCOUNT)
    assert forged.status == 400 and forged.error[1] == "UnknownOperationException"
    sts = metrics_server.client("sts", access_key=ACCOUNT, secret_key="unused-in-dev-mode")
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    forged = sts_action(metrics_server, FORGED_STS)
    assert forged.status == 400 and b"<Code>InvalidAction</Code>" in forged.body, forged
    for path in ("/healthz", "/readyz", "/healthz", "/readyz"):
        with urllib.request.urlopen(metrics_server.url + path, timeout=10) as resp:
            assert resp.status == 200
    # The background jobs run once a second in each worker: wait for two runs in all.
    deadline = time.monotonic() + 10
    while total(samples(scrape(metrics_server.metrics_port)[2]), "trentd_background_job_runs_total",
                job="keys.sweep_deletions") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    return key


def test_one_scrape_sums_every_worker(metrics_server, load):
    assert len(workers(metrics_server)) == 2
    status, content_type, text = scrape(metrics_server.metrics_port)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    found = samples(text)
    requests = "trentd_requests_total"
    assert value(found, requests, service="kms", operation="Encrypt", outcome="ok") == ENCRYPTS
    assert value(found, requests, service="kms", operation="CreateKey", outcome="ok") == 1
    assert value(found, requests, service="kms", operation="DescribeKey", outcome="NotFoundException") == 1
    assert value(found, requests, service="kms", operation="unknown", outcome="UnknownOperationException") == 1
    assert value(found, requests, service="sts", operation="GetCallerIdentity", outcome="ok") == 1
    assert value(found, requests, service="sts", operation="unknown", outcome="InvalidAction") == 1
    # Health and readiness checks and scrapes are not API requests: these are all of them.
    assert total(found, requests) == ENCRYPTS + 5
    assert value(found, "trentd_request_duration_seconds_count", service="kms", operation="Encrypt") == ENCRYPTS
    assert value(found, "trentd_request_duration_seconds_sum", service="kms", operation="Encrypt") > 0
    # Every API request was audited, in batches; health and readiness checks were not.
    assert value(found, "trentd_audit_batch_events_sum") == ENCRYPTS + 5
    assert value(found, "trentd_audit_batches_total") == value(found, "trentd_audit_batch_events_count") >= 1
    assert value(found, "trentd_audit_write_seconds_count") == value(found, "trentd_audit_batches_total")
    assert value(found, "trentd_audit_write_failures_total") == 0
    assert value(found, "trentd_store_call_duration_seconds_count", engine="sqlite", mode="write") >= 1
    assert value(found, "trentd_store_errors_total", engine="sqlite") == 0
    assert value(found, "trentd_cache_hits_total", cache="keys") >= 1
    assert value(found, "trentd_cache_misses_total", cache="keys") >= 1
    assert value(found, "trentd_background_job_runs_total", job="keys.sweep_deletions") >= 2
    assert value(found, "trentd_background_job_failures_total", job="keys.sweep_deletions") == 0
    assert value(found, "trentd_connections_evicted_total") == 0
    with socket.create_connection(("127.0.0.1", metrics_server.port)):  # one more open connection
        assert eventually(lambda: value(samples(scrape(metrics_server.metrics_port)[2]), "trentd_connections_open")
                          >= 1)
    versions = [dict(pairs)["version"] for (n, pairs), v in found.items() if n == "trentd_build_info" and v == 1]
    assert len(versions) == 1 and versions[0]


def test_no_request_value_becomes_a_label(metrics_server, load):
    text = scrape(metrics_server.metrics_port)[2]
    for secret in (load["KeyId"], load["Arn"], ACCOUNT, "ForgedOperation", FORGED_STS, "metrics-no-such-alias"):
        assert secret not in text
    labels = {pairs for (_, pairs) in samples(text)}
    operations = {v for pairs in labels for k, v in pairs if k == "operation"}
    assert operations == {"CreateKey", "Encrypt", "DescribeKey", "GetCallerIdentity", "unknown"}


def test_promtool_accepts_the_scrape(metrics_server, load):
    text = scrape(metrics_server.metrics_port)[2]
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_only_metrics_is_served_there(metrics_server):
    assert scrape(metrics_server.metrics_port, "/")[0] == 404
    assert scrape(metrics_server.metrics_port, "/healthz")[0] == 404


def test_prometheus_client_is_imported_when_metrics_are_on(metrics_server, load):
    """The positive control of the import trace the metrics-off test reads."""
    assert re.search(r"import time:.*\| +prometheus_client$", metrics_server.logs(), re.MULTILINE)


def test_a_killed_worker_keeps_its_counts_and_loses_its_gauges():
    """Idle connections spread over two workers; the one holding most is killed. Its requests stay
    counted, its connections leave the gauge (and its live-gauge file goes), and uvicorn's
    replacement counts from there."""
    port = free_port()
    with TrentdServer(workers=2, extra_args=("--metrics-port", str(port), "--header-timeout", "120")) as server:
        directory = Path(server.data_dir) / "metrics"
        key = send(server, "TrentService.CreateKey", account=ACCOUNT).json["KeyMetadata"]["KeyId"]
        encrypt = {"KeyId": key, "Plaintext": "eA=="}
        for _ in range(ENCRYPTS):
            assert send(server, "TrentService.Encrypt", encrypt, account=ACCOUNT).status == 200
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(8)]
        try:
            assert eventually(lambda: value(samples(scrape(port)[2]), "trentd_connections_open") == len(idle))
            owners = connection_owners(workers(server), [s.getsockname()[1] for s in idle])
            victim = max(set(owners.values()), key=list(owners.values()).count)
            held = list(owners.values()).count(victim)
            assert (directory / f"gauge_livesum_{victim}.db").exists()
            os.kill(victim, signal.SIGKILL)
            # uvicorn's supervisor notices and starts another worker
            assert eventually(lambda: len(workers(server)) == 2 and victim not in workers(server), 30)
            found = samples(scrape(port)[2])
            assert value(found, "trentd_connections_open") == len(idle) - held
            assert not (directory / f"gauge_livesum_{victim}.db").exists()
            encrypts = dict(service="kms", operation="Encrypt", outcome="ok")
            assert value(found, "trentd_requests_total", **encrypts) == ENCRYPTS
            assert send(server, "TrentService.Encrypt", encrypt, account=ACCOUNT).status == 200
            assert value(samples(scrape(port)[2]), "trentd_requests_total", **encrypts) == ENCRYPTS + 1
        finally:
            for sock in idle:
                sock.close()


def eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def connection_owners(pids: list[int], client_ports: list[int]) -> dict[int, int]:
    """client port -> the pid holding the server side of that connection (from /proc)."""
    owner_of_inode = socket_owners(pids)
    out = {}
    for fields in tcp_table():
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if remote_port in client_ports and fields[9] in owner_of_inode:
            out[remote_port] = owner_of_inode[fields[9]]
    assert sorted(out) == sorted(client_ports), out
    return out


def test_metrics_off_nothing_listens_and_nothing_is_imported():
    with TrentdServer(workers=2, env={"PYTHONPROFILEIMPORTTIME": "1"}) as server:
        kms = server.client(access_key=ACCOUNT, secret_key="unused-in-dev-mode")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=key, Plaintext=b"x")
        processes = [server.process.pid, *workers(server)]
        assert len(processes) == 3
        assert listening_ports(processes) == {server.port}
        assert not (Path(server.data_dir) / "metrics").exists()
        trace = server.logs()
    assert re.search(r"import time:.*\| +trentd\.http\.app$", trace, re.MULTILINE)  # the trace works
    assert "prometheus_client" not in trace


def test_one_process_on_postgres_counts_its_engine():
    """Without --workers the serving process holds the listener itself; the store's engine is a label."""
    port = free_port()
    with TrentdServer(store="postgres", extra_args=("--metrics-port", str(port))) as server:
        kms = server.client(access_key=ACCOUNT, secret_key="unused-in-dev-mode")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=key, Plaintext=b"x")
        found = samples(scrape(port)[2])
    assert value(found, "trentd_requests_total", service="kms", operation="Encrypt", outcome="ok") == 1
    assert value(found, "trentd_store_call_duration_seconds_count", engine="postgres", mode="write") >= 1
    assert value(found, "trentd_store_errors_total", engine="postgres") == 0
    assert total(found, "trentd_store_call_duration_seconds_count", engine="sqlite") == 0


@pytest.mark.parametrize("case", ["api-port", "port-in-use"])
def test_a_metrics_port_that_cannot_be_used_refuses_to_start(case, tmp_path):
    api = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        metrics_port = api if case == "api-port" else busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "trentd", "serve", "--dev", "--data-dir", str(tmp_path / "d"),
                               "--port", str(api), "--metrics-port", str(metrics_port)],
                              capture_output=True, text=True, timeout=60)
    if case == "api-port":
        assert done.returncode == 2, done.stderr
        assert "trentd: --metrics-port must be a port from 1 to 65535 other than --port" in done.stderr
    else:  # said before the store is made, as for the API's port (exit 1: it may be free later)
        assert done.returncode == 1, done.stderr
        assert f"trentd: cannot listen on 127.0.0.1:{metrics_port}: address already in use" in done.stderr
    assert not (tmp_path / "d" / "trentd.db").exists()


def test_audit_failures_and_evictions_are_counted():
    """An audit directory that cannot be written (fail-closed: 500) and idle connections closed
    to make room at --limit-concurrency show in their counters."""
    port = free_port()
    args = ("--metrics-port", str(port), "--limit-concurrency", "3", "--header-timeout", "60")
    with TrentdServer(extra_args=args) as server:
        key = send(server, "TrentService.CreateKey", account=ACCOUNT).json["KeyMetadata"]["KeyId"]
        encrypt = {"KeyId": key, "Plaintext": "eA=="}
        moved = break_audit_dir(server)
        refused = kms_request(server, "TrentService.Encrypt", encrypt)  # a 500: not through send()
        assert refused.status == 500 and refused.error[1] == "KMSInternalException"
        (server.data_dir / "audit").unlink()  # writable again: the next request recovers
        assert send(server, "TrentService.Encrypt", encrypt, account=ACCOUNT).status == 200
        assert moved.is_dir()
        # uvicorn counts a new connection itself: at --limit-concurrency 3 the third of these
        # silent connections, and each one after it, closes the oldest idle one.
        silent = []
        try:
            for _ in range(5):
                silent.append(socket.create_connection(("127.0.0.1", server.port)))
                time.sleep(0.3)
            found = samples(scrape(port)[2])
        finally:
            for sock in silent:
                sock.close()
    assert value(found, "trentd_connections_evicted_total") == 3
    assert value(found, "trentd_audit_write_failures_total") >= 1
    assert value(found, "trentd_requests_total", service="kms", operation="Encrypt",
                 outcome="KMSInternalException") == 1
    assert value(found, "trentd_requests_total", service="kms", operation="Encrypt", outcome="ok") == 1


@pytest.fixture(scope="module")
def own_cluster():
    """A PostgreSQL cluster of this module's own, to stop."""
    require_cluster_tools()
    with ThrowawayCluster() as cluster:
        yield cluster


def test_a_database_outage_shows_in_store_errors(own_cluster):
    """PostgreSQL stopped: the refused call is counted with its retryable error, the failed
    transactions under the engine, the background jobs' failed runs by job."""
    database = ThrowawayDatabase(own_cluster.dsn)
    port = free_port()
    server = TrentdServer(database=database.dsn, extra_args=("--metrics-port", str(port)))
    try:
        server.start()
        key = send(server, "TrentService.CreateKey", account=ACCOUNT).json["KeyMetadata"]["KeyId"]
        own_cluster.stop()
        try:
            refused = kms_request(server, "TrentService.DescribeKey", {"KeyId": key})  # once: no SDK retries
            assert refused.status == 500 and refused.error[1] == "DependencyTimeoutException", refused
            assert eventually(lambda: value(samples(scrape(port)[2]), "trentd_background_job_failures_total",
                                            job="keys.sweep_deletions") >= 1)
            found = samples(scrape(port)[2])
        finally:
            own_cluster.start()
    finally:
        server.cleanup()
        database.drop()
    assert value(found, "trentd_requests_total", service="kms", operation="DescribeKey",
                 outcome="DependencyTimeoutException") == 1
    assert value(found, "trentd_store_errors_total", engine="postgres") >= 1
    assert value(found, "trentd_store_errors_total", engine="postgres") <= value(
        found, "trentd_store_call_duration_seconds_count", engine="postgres", mode="read") + value(
        found, "trentd_store_call_duration_seconds_count", engine="postgres", mode="write")


def test_central_trail_lag_is_a_gauge(metrics_server, load):
    """The age of the oldest audit event not yet copied to the central trail (docs/audit.md): after
    the load every worker's copy has caught up (its lag is read at most a second old)."""
    deadline = time.monotonic() + 10
    while True:
        found = samples(scrape(metrics_server.metrics_port)[2])
        assert ("trentd_audit_central_lag_seconds", ()) in found, sorted(n for n, _ in found)
        if value(found, "trentd_audit_central_lag_seconds") < 1.0:
            break
        assert time.monotonic() < deadline, value(found, "trentd_audit_central_lag_seconds")
        time.sleep(0.2)
