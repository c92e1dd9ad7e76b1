"""The labels of an API request's metrics (trentd/http/observe.py): only names trentd knows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trentd.errors import AWSError
from trentd.http.observe import RequestLabels


class Recorder:
    def __init__(self):
        self.calls = []

    def request(self, *labels_and_seconds):
        self.calls.append(labels_and_seconds)


@pytest.fixture(scope="module")
def labels():
    return RequestLabels()


@pytest.mark.parametrize("service, operation, error, expected", [
    ("kms", "Encrypt", None, ("kms", "Encrypt", "ok")),
    ("kms", "Encrypt", AWSError("NotFoundException", "x"), ("kms", "Encrypt", "NotFoundException")),
    ("kms", None, AWSError("UnknownOperationException", "x"), ("kms", "unknown", "UnknownOperationException")),
    ("kms", "EncryptEverything", None, ("kms", "unknown", "ok")),  # never a request's own text
    ("kms", "Encrypt", AWSError("MadeUpByAHandler", "x"), ("kms", "Encrypt", "other")),
    ("sts", "GetCallerIdentity", None, ("sts", "GetCallerIdentity", "ok")),
    ("sts", "Launch<Missiles>", AWSError("InvalidAction", "x"), ("sts", "unknown", "InvalidAction")),
    # STS words the SigV4 failures its own way: counted as the caller saw them
    ("sts", None, AWSError("InvalidSignatureException", "x"), ("sts", "unknown", "SignatureDoesNotMatch")),
    ("sts", "AssumeRole", AWSError("MalformedPolicyDocumentException", "x"), ("sts", "AssumeRole",
                                                                               "MalformedPolicyDocument")),
    ("trentd", "MoveClock", None, ("unknown", "unknown", "ok")),
])
def test_labels_are_known_names_only(labels, service, operation, error, expected):
    recorder = Recorder()
    labels.count(recorder, SimpleNamespace(service=service, operation=operation), error, 0.25)
    assert recorder.calls == [(*expected, 0.25)]
