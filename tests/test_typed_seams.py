"""What the faces receive is typed: every function the CLI and the TUI import from core,
the classes those functions take and return (and the classes inside them), and every
message of tui/messages.py. `Any`, `dict[str, Any]` and positional tuples (`tuple[A, B]`;
`tuple[A, ...]` is a sequence and fine) are untyped seams; there are none, and a new one
fails the test."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FACES = [*sorted((REPO / "tui").rglob("*.py")), *sorted((REPO / "core" / "cli").glob("*.py"))]
UNTYPED = re.compile(r"\bAny\b|(?<![\w.])tuple\[(?![^\]]*, \.\.\.\])")



def imported_from_core(path: Path) -> Iterator[object]:
    """What a face module uses from core (outside the CLI itself): names imported
    directly and attributes of core modules it imports."""
    tree = ast.parse(path.read_text())
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlyard.core") \
                and not (node.module or "").startswith("mlyard.core.cli"):
            for alias in node.names:
                try:  # a submodule (`from mlyard.core.models import bundle`)
                    found = importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    found = getattr(importlib.import_module(node.module or ""), alias.name)
                if inspect.ismodule(found):
                    modules[alias.asname or alias.name] = found.__name__
                else:
                    yield found
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            yield getattr(importlib.import_module(modules[node.value.id]), node.attr, None)


def classes_named(annotation: object, module: str) -> Iterator[type]:
    namespace = vars(importlib.import_module(module))
    for word in re.findall(r"[A-Za-z_]\w*", str(annotation)):
        found = namespace.get(word)
        if inspect.isclass(found) and found.__module__.startswith("mlyard"):
            yield found


def seams() -> set[str]:
    found: set[str] = set()
    seen: set[type] = set()

    def visit(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        fields: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            fields.update(getattr(klass, "__annotations__", {}))
        for name, annotation in fields.items():
            if name.startswith("_") or "ClassVar" in str(annotation):
                continue
            if UNTYPED.search(str(annotation)):
                found.add(f"{cls.__module__}.{cls.__qualname__}:{name}")
            for inner in classes_named(annotation, cls.__module__):
                visit(inner)

    for face in FACES:
        for used in imported_from_core(face):
            if inspect.isfunction(used):
                for name, annotation in used.__annotations__.items():
                    if UNTYPED.search(str(annotation)):
                        found.add(f"{used.__module__}.{used.__qualname__}:{name}")
                    for inner in classes_named(annotation, used.__module__):
                        visit(inner)
            elif inspect.isclass(used) and used.__module__.startswith("mlyard"):
                visit(used)
    messages = importlib.import_module("mlyard.tui.messages")
    for message in vars(messages).values():
        if inspect.isclass(message) and message.__module__ == messages.__name__:
            visit(message)
    return found


def test_no_untyped_seam_between_core_and_its_faces() -> None:
    found = seams()
    assert not found, "untyped: " + ", ".join(sorted(found))


def test_the_scan_sees_a_planted_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan reaches through a function's return type into the class's fields: an
    untyped field planted in what `diff_versions` returns is found."""
    from mlyard.core.data.versions import VersionDiff

    monkeypatch.setitem(VersionDiff.__annotations__, "changes", "dict[str, Any]")
    assert "mlyard.core.data.versions.VersionDiff:changes" in seams()
    monkeypatch.setitem(VersionDiff.__annotations__, "changes", "tuple[int, str]")
    assert "mlyard.core.data.versions.VersionDiff:changes" in seams()
