"""Grant constraints with case-colliding context keys, and grant tokens checked whole
(kms/grant_rules.py; end to end in tests/e2e/test_grants.py)."""

from __future__ import annotations

import base64
import os
import secrets
import string

import pytest

from trentd.errors import AWSError
from trentd.kms.grant_rules import at_least_as_strict, constraints_hold, fold_context, make_token, token_grant_id

KEY = os.urandom(32)
ALPHABET = string.ascii_letters + string.digits + "-_"
COLLIDING = ({"TENANT": "t2", "tenant": "t1"}, {"tenant": "t1", "TENANT": "t2"})


def test_fold_context_names_the_colliding_keys():
    assert fold_context({"A": "1", "a": "2", "b": "3"}) == ({"a": "2", "b": "3"}, frozenset({"a"}))
    assert fold_context(None) == ({}, frozenset())


@pytest.mark.parametrize("constraint", ["EncryptionContextEquals", "EncryptionContextSubset"])
@pytest.mark.parametrize("context", COLLIDING)
def test_a_colliding_request_key_satisfies_no_constraint(constraint, context):
    assert constraints_hold({constraint: {"tenant": "t1"}}, {"tenant": "t1"})
    assert not constraints_hold({constraint: {"tenant": "t1"}}, context)
    assert not constraints_hold({constraint: {"tenant": "t2"}}, context)


def test_subset_ignores_collisions_on_keys_it_does_not_name():
    assert constraints_hold({"EncryptionContextSubset": {"tenant": "t1"}}, {"tenant": "t1", "A": "1", "a": "2"})
    assert not constraints_hold({"EncryptionContextEquals": {"tenant": "t1", "a": "2"}},
                                {"tenant": "t1", "A": "1", "a": "2"})


@pytest.mark.parametrize("constraint", ["EncryptionContextEquals", "EncryptionContextSubset"])
@pytest.mark.parametrize("context", COLLIDING + ({"tenant": "t1"}, {"tenant": "t2"}))
def test_colliding_constraint_keys_allow_nothing(constraint, context):
    assert not constraints_hold({constraint: {"tenant": "t1", "TENANT": "t2"}}, context)


@pytest.mark.parametrize("parent, child", [
    ({"EncryptionContextEquals": COLLIDING[0]}, {"EncryptionContextEquals": COLLIDING[0]}),
    ({"EncryptionContextEquals": COLLIDING[0]}, {"EncryptionContextEquals": COLLIDING[1]}),
    ({"EncryptionContextSubset": COLLIDING[0]}, {"EncryptionContextSubset": COLLIDING[0]}),
    ({"EncryptionContextSubset": {"tenant": "t1"}}, {"EncryptionContextSubset": COLLIDING[0]}),
    ({"EncryptionContextSubset": {"tenant": "t1"}}, {"EncryptionContextEquals": COLLIDING[1]}),
])
def test_ambiguous_constraints_are_never_as_strict(parent, child):
    assert not at_least_as_strict(parent, child)


def test_a_token_names_its_grant():
    grant_id = secrets.token_hex(32)
    first, second = make_token(KEY, grant_id), make_token(KEY, grant_id)
    assert first != second and token_grant_id(KEY, first) == token_grant_id(KEY, second) == grant_id


def _refused(key: bytes, token: str) -> bool:
    try:
        token_grant_id(key, token)
    except AWSError as err:
        assert (err.code, err.message, err.status) == ("InvalidGrantTokenException", "The grant token is invalid.", 400)
        return True
    return False


def test_every_one_character_change_is_refused():
    token = make_token(KEY, secrets.token_hex(32))
    for at, char in enumerate(token):
        for other in (ALPHABET[(ALPHABET.index(char) + 1) % 64], "=", "!", "é"):
            assert _refused(KEY, token[:at] + other + token[at + 1:]), (at, other)
    for changed in (token + "A", token + "=", token[:-1], " " + token, token + "\n", ""):
        assert _refused(KEY, changed), changed


def test_tokens_of_another_deployment_or_the_old_format_are_refused():
    grant_id = secrets.token_hex(32)
    assert _refused(os.urandom(32), make_token(KEY, grant_id))
    v1 = base64.urlsafe_b64encode(b"\x01" + bytes.fromhex(grant_id) + os.urandom(16)).decode().rstrip("=")
    assert _refused(KEY, v1)
