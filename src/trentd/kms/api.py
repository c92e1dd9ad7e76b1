"""The operation table: importing each family's module registers its operations."""

from __future__ import annotations

from . import agreement, aliases, datakeys, encryption, grants, keys, mac, policies, signing, tags  # noqa: F401
from .service import OPERATIONS

__all__ = ["OPERATIONS", "run_background_jobs"]


def run_background_jobs(svc) -> None:
    """Work the service clock makes due: today, deleting keys whose window has passed."""
    keys.sweep_deletions(svc)
