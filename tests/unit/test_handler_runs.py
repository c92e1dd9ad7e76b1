"""One handler run per call, plus at most one retry with fresh reads (kms/api.py run)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trentd.auth.identity import Caller
from trentd.auth.invocation import Invocation
from trentd.errors import AWSError
from trentd.inline import MustOffload, on_event_loop, offload_point
from trentd.kms import api, lastusage
from trentd.kms.cache import EpochCache

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def make_call():
    caller = Caller(account="111122223333", region="us-east-1", principal_arn="arn:aws:iam::111122223333:user/a",
                    access_key_id="AKIA", request_id="req-1")
    return Invocation(caller, "Encrypt", {"KeyId": KEY})


class Handler:
    """Reads one cached entry (a hit after the first load), then answers from ``outcomes``."""

    def __init__(self, *outcomes, reads_cache=True):
        self.outcomes = list(outcomes)
        self.runs = []  # per completed or failed run: whether the entry came from the cache
        self.loads = 0
        self.reads_cache = reads_cache
        self.cache = EpochCache(SimpleNamespace(epoch=lambda: 1))
        self.cache.get(("key",), self._load)  # warm: later reads are hits

    def _load(self):
        offload_point()  # a store read
        self.loads += 1
        return "record"

    def __call__(self, svc, call, request):
        loads = self.loads
        if self.reads_cache:
            self.cache.get(("key",), self._load)
        call.resources.append(KEY)
        self.runs.append(self.loads == loads)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, AWSError):
            raise outcome
        return outcome


def test_an_error_of_an_operation_without_cached_state_runs_once():
    handler = Handler(AWSError("NotFoundException", "gone"))
    with pytest.raises(AWSError):
        api.run(handler, False, None, make_call(), {})
    assert handler.runs == [True]


def test_a_stale_error_on_cached_state_is_retried_once_with_fresh_reads():
    handler = Handler(AWSError("DisabledException", "stale"), {"KeyId": KEY})
    call = make_call()
    assert api.run(handler, True, None, call, {}) == {"KeyId": KEY}
    assert handler.runs == [True, False]  # the retry read the store
    assert call.resources == [KEY]  # touched keys recorded once


def test_the_retry_fails_too_the_error_is_answered_after_two_runs():
    handler = Handler(*(AWSError("AccessDeniedException", "no") for _ in range(2)))
    with pytest.raises(AWSError) as info:
        api.run(handler, True, None, make_call(), {})
    assert info.value.code == "AccessDeniedException" and len(handler.runs) == 2


@pytest.mark.parametrize("code", ["ValidationException", "InvalidKeyUsageException", "IncorrectKeyException"])
def test_errors_stale_state_cannot_cause_are_not_retried(code):
    handler = Handler(AWSError(code, "x"))
    with pytest.raises(AWSError):
        api.run(handler, True, None, make_call(), {})
    assert len(handler.runs) == 1


def test_no_retry_when_nothing_came_from_the_cache():
    handler = Handler(AWSError("NotFoundException", "gone"), reads_cache=False)
    with pytest.raises(AWSError):
        api.run(handler, True, None, make_call(), {})
    assert len(handler.runs) == 1


def test_on_the_event_loop_only_the_retry_moves_to_the_pool():
    handler = Handler(AWSError("KMSInvalidStateException", "stale"), {"KeyId": KEY})
    call = make_call()
    with pytest.raises(api.RetryFresh), on_event_loop():
        api.run(handler, True, None, call, {})
    assert isinstance(api.RetryFresh(), MustOffload)
    assert api.retry_fresh(handler, None, call, {}) == {"KeyId": KEY}
    assert handler.runs == [True, False] and call.resources == [KEY]


def test_a_retried_call_records_its_last_use_once():
    usage = []
    svc = SimpleNamespace(clock=SimpleNamespace(now=lambda: 5.0),
                          usage=SimpleNamespace(record=lambda ident, entry: usage.append((ident, entry))))
    handler = Handler(AWSError("DisabledException", "stale"), {"KeyId": KEY})
    api.run(lastusage._tracking("Encrypt", handler), True, svc, make_call(), {})
    assert usage == [(("111122223333", "us-east-1", KEY.rsplit("/", 1)[1]), ("Encrypt", 5.0, "req-1"))]
