"""The web console under /console/ (issue #11, docs/console.md): server-rendered pages that act as
the signed-in principal through the same KMS handlers, authorization and audit as the API."""

from .app import Console

__all__ = ["Console"]
