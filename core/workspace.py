"""Finding a project and opening its workspace.

A project is a folder with `mlyard.toml`, found by walking up from the current directory
like git finds `.git`. Its workspace (catalog, objects, spool, quarantine) is `.mlyard/`
beside it unless `--workspace` or `MLYARD_WORKSPACE` points elsewhere.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from mlyard.core.config import Config, load_config
from mlyard.core.errors import ReadOnly, WorkspaceNotFound
from mlyard.storage import meta_store
from mlyard.storage.catalog import Catalog
from mlyard.storage.objects import ObjectStore

CONFIG_NAME = "mlyard.toml"
WORKSPACE_DIR = ".mlyard"


@dataclass
class Workspace:
    project_dir: Path
    config_path: Path
    config: Config
    root: Path
    catalog: Catalog
    objects: ObjectStore
    read_only: bool = False  # see check_writable

    def check_writable(self, doing: str) -> None:
        """Refuse `doing` in a read-only workspace. Every door that changes something
        calls this, so no screen, key, button or palette command can go round it."""
        if self.read_only:
            raise ReadOnly(f"read-only: cannot {doing}; this mlyard was opened read-only "
                           "(`mlyard tui --web` needs --allow-actions and a --token for "
                           "changes)")

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def project(self) -> str:
        return self.config.project.name


def find_config(start: Path) -> Path:
    """The nearest `mlyard.toml` at or above `start`."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise WorkspaceNotFound(
        f"no {CONFIG_NAME} in {start} or any parent folder; run `mlyard init` to create one"
    )


def open_workspace(
    start: Path | None = None, workspace: Path | None = None, config_path: Path | None = None,
    register: bool = True, stranger: bool = False,
) -> Workspace:
    """Open the project around `start` (default: the current directory).

    `workspace` beats `MLYARD_WORKSPACE` (not for a stranger), which beats `.mlyard/`
    beside the config.
    `register=False` leaves the catalog unopened (for `mlyard doctor`, which must start
    even when the catalog cannot be opened). `stranger=True` for another workspace (a
    sync's remote): its catalog is opened as a stranger's file (storage/stranger.py).
    """
    path = config_path or find_config(start or Path.cwd())
    config = load_config(path)
    # MLYARD_WORKSPACE says where *this* project keeps its workspace, never another's.
    env_root = None if stranger else os.environ.get("MLYARD_WORKSPACE")
    root = workspace or (Path(env_root) if env_root else path.parent / WORKSPACE_DIR)
    root = root.resolve()
    ws = Workspace(
        project_dir=path.parent,
        config_path=path,
        config=config,
        root=root,
        catalog=Catalog(root, stranger=stranger),
        objects=ObjectStore(root / "objects"),
    )
    if register:
        _register_project(ws)
    return ws


_opened: dict[tuple[int, str, int, int, str], Workspace] = {}
_opened_guard = threading.Lock()


def project_workspace(start: Path | None = None) -> Workspace:
    """The workspace of the project around `start` (default: the current directory),
    opened and registered once per process: registering is a unit of work on the catalog,
    and paying it for every `mlyard.start_run()` made creating runs the README's way a
    third as fast as a workspace passed in. Opened again when the project, its config
    file or MLYARD_WORKSPACE changes, and in a forked child."""
    path = find_config(start or Path.cwd())
    stat = path.stat()
    key = (os.getpid(), str(path), stat.st_mtime_ns, stat.st_size,
           os.environ.get("MLYARD_WORKSPACE", ""))
    with _opened_guard:
        ws = _opened.get(key)
        if ws is None:
            ws = open_workspace(config_path=path)
            _opened.clear()  # one project at a time: the newest is the one in use
            _opened[key] = ws
        return ws


def _register_project(ws: Workspace) -> None:
    with ws.catalog.session() as con:
        meta_store.register_project(con, ws.project)
