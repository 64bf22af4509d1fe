"""Error types shared by every layer.

They live in the lowest layer so that storage can raise them and core can extend them,
and so the CLI and the TUI can turn any of them into one clear line for the user.
"""

from __future__ import annotations


class MlyardError(Exception):
    """An error the user can act on: `msg` is one line naming what and where."""

    title = "mlyard error"

    def __init__(self, msg: str, title: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        if title is not None:
            self.title = title


class StoreLocked(MlyardError):
    title = "Catalog busy"


class CatalogError(MlyardError):
    title = "Catalog error"


class ObjectCorrupt(MlyardError):
    title = "Corrupt object"


class NotFound(MlyardError):
    title = "Not found"
