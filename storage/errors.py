"""Error types shared by every layer.

They live in the lowest layer so that storage can raise them and core can extend them,
and so the CLI and the TUI can turn any of them into one clear line for the user.
"""

from __future__ import annotations

import errno
import re


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


def os_error_line(exc: OSError) -> str:
    """One line for a failed read or write: the file, what happened, what to do."""
    where = exc.filename or "the workspace"
    code = exc.errno
    if code is None:  # pyarrow and polars put it in the message: "[errno 28] ..."
        found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (f"{where}: no space left on the device; free some space (or use "
                "--workspace on another disk) and run the command again")
    if code == errno.EFBIG:
        return (f"{where}: a file grew past the largest size this process may write "
                "(ulimit -f) or the file system allows; free space or raise the limit and "
                "run the command again")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{where}: cannot write here (read-only or not yours); mlyard needs to "
                "write its workspace: fix the permissions or pass --workspace PATH")
    return f"{where}: {exc.strerror or exc}"
