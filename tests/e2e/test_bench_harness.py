"""bench/run's requests against a real trentd in normal mode (signatures verified): if botocore,
the harness or trentd drift apart, this fails here rather than producing numbers that measure
error responses. No timing is asserted."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from botocore.credentials import Credentials  # noqa: E402

from kmsbench import memory, report  # noqa: E402
from kmsbench.operations import OPERATIONS, make_fixtures, signed_pool  # noqa: E402
from kmsbench.runner import EndpointRefused, check_pool  # noqa: E402
from kmsbench.scale import fill_keys, list_all_keys  # noqa: E402
from kmsbench.target import Target  # noqa: E402
from kmsbench.wrkrun import run_wrk  # noqa: E402

pytestmark = pytest.mark.one_store  # bench/run's requests: nothing here depends on the store

# Their requests differ only by what KMS itself randomizes (the data key), so their pools repeat.
SAME_PARAMETERS_EVERY_TIME = {"generate-data-key", "describe-key"}


def _target(server, region: str, secret: str | None = None) -> Target:
    access_key, admin_secret = server.admin_credentials()
    return Target(label="trentd", url=server.url, region=region,
                  credentials=Credentials(access_key, secret or admin_secret))


@pytest.fixture(scope="module")
def bench_target(secure_server) -> Target:
    # A region of its own: the fill and listing tests count keys, and no other test uses it.
    return _target(secure_server, "eu-west-2")


@pytest.fixture(scope="module")
def fixtures(bench_target):
    return make_fixtures(bench_target, list(OPERATIONS.values()))


def test_setup_creates_real_keys_and_ciphertexts(fixtures):
    assert set(fixtures.key_ids) == {"symmetric", "ecc-p256", "rsa-2048", "hmac-256"}
    assert fixtures.notes == []  # no placeholder: trentd answered with real keys and ciphertexts
    assert all(len(blob) > 64 for blob in fixtures.ciphertexts)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_pre_signed_request_is_accepted(bench_target, fixtures, name):
    pool = signed_pool(bench_target, OPERATIONS[name], fixtures, 4)
    if name not in SAME_PARAMETERS_EVERY_TIME:
        assert len(set(pool)) == 4  # distinct plaintexts, messages, ciphertexts: not one request replayed
    check_pool(bench_target, OPERATIONS[name], pool)  # raises unless every one gets HTTP 200


def test_a_bad_signature_stops_the_run_with_trentds_answer(secure_server, fixtures):
    wrong = _target(secure_server, "eu-west-2", secret="not-the-secret")
    pool = signed_pool(wrong, OPERATIONS["encrypt-64"], fixtures, 1)
    with pytest.raises(EndpointRefused) as refused:
        check_pool(wrong, OPERATIONS["encrypt-64"], pool)
    assert "not 200" in str(refused.value) and "Signature" in str(refused.value)


def test_fill_and_listing_follow_every_page(bench_target, fixtures):
    before = list_all_keys(bench_target, limit=3)
    fill = fill_keys(bench_target, 7, concurrency=3)
    assert (fill.created, fill.failed) == (7, 0), fill.first_failure
    after = list_all_keys(bench_target, limit=3)
    assert after.keys == before.keys + 7
    assert after.pages == -(-after.keys // 3) and len(after.page_seconds) == after.pages


def test_server_processes_are_found_from_the_parent_pid(secure_server):
    processes = memory.server_processes(secure_server.process.pid)
    assert memory.worker_rss(processes) and all(p["rss_mb"] > 0 for p in processes)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_wrk_replays_the_pool_without_errors(bench_target, fixtures):
    pool = signed_pool(bench_target, OPERATIONS["decrypt"], fixtures, 8)
    result = run_wrk(bench_target.url, pool, connections=2, threads=1, duration=1)
    assert result.requests > 0
    assert result.errors == 0, result.first_failure


def test_ab_tables_show_how_far_the_rounds_strayed():
    # A/B medians hide the rounds; the range tells a real difference from this machine's noise.
    assert report.spread([1.02, 0.94, 1.10]) == "0.94–1.10"
    assert report.spread([]) == "-"
