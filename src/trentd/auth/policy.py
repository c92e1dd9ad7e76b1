"""TEMPORARY PLACEHOLDER written by the lead so the server keeps importing while helper-7 writes
the real evaluator: helper-7 replaces this whole file. Same-account access only, as before."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    principal_arn: str
    principal_account: str
    action: str
    resource: str
    context: Mapping


@dataclass(frozen=True)
class Result:
    denied: bool
    allowed: bool
    allowed_account: bool


class Policy:
    def evaluate(self, request: Request, *, resource_policy: bool) -> Result:
        if not resource_policy:
            return Result(False, True, False)
        parts = request.resource.split(":")
        same = len(parts) > 4 and parts[4] == request.principal_account
        return Result(False, False, same)


def parse_policy(text, *, resource_policy, principal_exists=None) -> Policy:
    return Policy()


def compile_cached(text, *, resource_policy) -> Policy:
    return Policy()
