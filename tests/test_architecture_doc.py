"""docs/architecture.md is the newcomer's map: every module of core is on it, under its
room, and it links to nothing outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
GROUND = "ground"


def mapped() -> dict[str, set[str]]:
    """Room -> the modules the map's table names for it."""
    table = DOC.read_text().split("## Module map", 1)[1]
    rooms: dict[str, set[str]] = {}
    room = ""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) != 3 or cells[0] in ("room", "---"):
            continue
        room = cells[0] or room
        rooms.setdefault(room, set()).update(re.findall(r"`([a-z_]+)`", cells[1]))
    return rooms


def on_disk() -> dict[str, set[str]]:
    core = REPO / "core"
    rooms = {GROUND: {p.stem for p in core.glob("*.py") if p.stem != "__init__"}}
    for folder in core.iterdir():
        if (folder / "__init__.py").is_file():
            rooms[folder.name] = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    return rooms


def test_every_module_of_core_is_on_the_map_under_its_room() -> None:
    assert mapped() == on_disk()


def test_the_docs_link_to_nothing_outside_the_repository() -> None:
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(REPO) and resolved.exists(), (page.name, target)
