"""Typed errors raised by the engine; each carries one line the user can act on."""

from __future__ import annotations

from mlyard.storage.errors import (
    CatalogError,
    MlyardError,
    NotFound,
    ObjectCorrupt,
    StoreLocked,
    os_error_line,
)

__all__ = [
    "CatalogError",
    "ConfigError",
    "IngestRefused",
    "MlyardError",
    "NotFound",
    "ObjectCorrupt",
    "ReadOnly",
    "StoreLocked",
    "TrackingError",
    "UsageError",
    "WorkspaceNotFound",
    "os_error_line",
]


class ConfigError(MlyardError):
    title = "Bad configuration"


class WorkspaceNotFound(MlyardError):
    title = "No mlyard project"


class IngestRefused(MlyardError):
    """A file failed validation; it was quarantined and nothing was added."""

    title = "File refused"


class TrackingError(MlyardError):
    title = "Tracking error"


class UsageError(MlyardError):
    title = "Usage error"


class ReadOnly(MlyardError):
    """A change asked of a workspace opened read-only (`mlyard tui --read-only`, and
    every browser session of `mlyard tui --web` without --allow-actions)."""

    title = "Read-only"
