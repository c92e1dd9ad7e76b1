"""The operation table's facts agree with what AWS states in botocore's KMS model."""

from __future__ import annotations

import re
from collections import Counter

import botocore.session

from trentd.kms.api import OPERATIONS
from trentd.kms.service import CrossAccount

MODEL = botocore.session.get_session().get_service_model("kms")


def documented_cross_account_use(name: str) -> str | None:
    """AWS's sentence in the operation's reference: "Cross-account use: Yes|No|...", tags stripped."""
    text = re.sub(r"<[^>]+>", "", MODEL.operation_model(name).documentation)
    match = re.search(r"Cross-account use:\s*(\w+)", text)
    return match.group(1) if match else None


def test_cross_account_column_agrees_with_the_model():
    for name, row in OPERATIONS.items():
        said = documented_cross_account_use(name)
        members = set(MODEL.operation_model(name).input_shape.members)
        if row.cross_account is CrossAccount.YES:
            assert said == "Yes", name
        else:
            assert said != "Yes", name
            names_a_key = bool(members & {"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"})
            assert (row.cross_account is CrossAccount.NO) == names_a_key, name


def test_every_operation_has_a_row_and_the_three_values_count_as_aws_documents():
    assert set(OPERATIONS) == set(MODEL.operation_names)
    counts = Counter(row.cross_account for row in OPERATIONS.values())
    assert counts == {CrossAccount.YES: 21, CrossAccount.NO: 24, CrossAccount.NO_KEY: 11}
    assert OPERATIONS["ListRetirableGrants"].cross_account is CrossAccount.NO_KEY
    assert OPERATIONS["ReplicateKey"].cross_account is CrossAccount.NO
    assert OPERATIONS["Decrypt"].cross_account is CrossAccount.YES
