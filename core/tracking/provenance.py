"""What a run needs recorded to be reproduced: code version, packages and platform."""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import blake3

# On a run copied from another workspace by `mlyard sync`: where it came from. Such a copy
# is the other side's to update, and its process is the other machine's to watch.
SYNCED_TAG = "mlyard.synced_from"
# ... and that workspace's identity (its catalog's random id): only it updates the copy.
SYNCED_ID_TAG = "mlyard.synced_from_id"

PACKAGES = ["mlyard", "lightgbm", "polars", "duckdb", "numpy", "pyarrow", "scikit-learn"]


def current_user() -> str:
    """Who is acting, for run records and the registry's event log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def environment() -> dict[str, Any]:
    """Python, key package versions and the platform."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": sys.version.split()[0], "packages": versions,
            "platform": platform.platform(), "machine": platform.machine()}


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit and a hash of uncommitted changes, or None outside a git repository."""
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    diff = _git(folder, "diff", "HEAD", "--binary") or ""
    return {"commit": commit.strip(), "dirty": bool(diff),
            "diff_blake3": blake3.blake3(diff.encode()).hexdigest() if diff else None}


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None
