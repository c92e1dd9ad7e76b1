"""The operation table: importing each family's module registers its operations."""

from __future__ import annotations

from . import aliases, encryption, keys, policies, tags  # noqa: F401  (registration)
from .service import OPERATIONS

__all__ = ["OPERATIONS", "run_background_jobs"]


def run_background_jobs(svc) -> None:
    """Work the service clock makes due: today, deleting keys whose window has passed."""
    keys.sweep_deletions(svc)
