"""The package as users and the build see it: one `mlyard` namespace, a CLI that starts
without the heavy libraries, and layer rules that catch a forbidden import."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlyard.core.cli.main import COMMANDS, cli
from tests.conftest import REPO

HEAVY = ["lightgbm", "sklearn", "optuna", "dask", "distributed", "starlette", "uvicorn",
         "prometheus_client", "textual", "plotext", "textual_plotext"]


def loaded_after(code: str, cwd: Path) -> list[str]:
    """The heavy libraries in sys.modules after running `code` in a fresh interpreter."""
    probe = (f"import sys\n{code}\n"
             f"print('\\n' + repr(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = eval(result.stdout.strip().splitlines()[-1])  # a repr of a list
    return loaded


def test_importing_the_cli_loads_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    assert loaded_after("import mlyard.core.cli.main", tmp_path) == []


def test_help_and_listing_runs_load_none_of_the_heavy_libraries(churn: Path) -> None:
    run = ("from mlyard.core.cli.main import cli\n"
           "for args in (['--help'], ['runs', 'list', '--json'], ['data', 'list']):\n"
           "    try:\n"
           "        cli.main(args, standalone_mode=False)\n"
           "    except SystemExit:\n"
           "        pass\n")
    assert loaded_after(run, churn) == []


def test_import_mlyard_is_the_tracking_api_and_costs_nothing_until_used(tmp_path: Path,
                                                                        ) -> None:
    code = ("import sys, mlyard\n"
            "before = 'duckdb' in sys.modules\n"
            "names = [n for n in mlyard.__all__ if not callable(getattr(mlyard, n))]\n"
            "print(before, names, issubclass(mlyard.MlyardError, Exception))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["False", "[]", "True"], result.stderr
    import mlyard

    for name in ("start_run", "log_param", "log_params", "log_metric", "log_metrics",
                 "log_artifact", "log_text", "set_tag", "lightgbm_callback",
                 "open_workspace", "MlyardError"):
        assert name in mlyard.__all__ and getattr(mlyard, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'start_runn'"):
        mlyard.start_runn  # noqa: B018


def test_log_text_stores_the_text_as_an_artifact(churn: Path) -> None:
    import mlyard
    from mlyard.core.tracking import run_queries

    with mlyard.start_run(name="notes") as run:
        mlyard.log_text("first line\nsecond line\n", "notes/summary.txt")
    ws = mlyard.open_workspace()
    detail = run_queries.show_run(ws, run.run_id)
    [artifact] = detail.artifacts
    assert artifact.name == "notes/summary.txt"
    assert artifact.size == len("first line\nsecond line\n")
    assert ws.objects.read_bytes(artifact.blake3) == b"first line\nsecond line\n"
    assert not list(ws.catalog.outcomes_dir.glob("*"))  # an ended run keeps no reserve


def test_python_dash_m_mlyard_is_the_cli(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mlyard", "--version"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("mlyard, version ")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_summary_in_help_is_the_commands_own(name: str) -> None:
    where, summary = COMMANDS[name]
    module, _, attribute = where.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert command.name == name
    if summary is None:
        assert command.hidden
    else:
        assert command.get_short_help_str(limit=120) == summary


def test_help_lists_every_command_but_the_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out.split("Commands:", 1)[1]
    names = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")
             and not line.startswith("   ")]
    assert names == sorted(name for name, (_, summary) in COMMANDS.items() if summary)
    assert "sync-agent" in COMMANDS and "sync-agent" not in names


def copy_of_the_package(tmp_path: Path) -> Path:
    """The repo's packages and pyproject.toml in a temp folder, with the installed layout
    beside them, as `make lint` builds it."""
    copy = tmp_path / "repo"
    for folder in ("core", "storage", "tui", "mlyard"):
        shutil.copytree(REPO / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    tree = copy / "build" / "tree" / "mlyard"
    tree.mkdir(parents=True)
    for name in ("__init__.py", "__main__.py", "py.typed"):
        (tree / name).symlink_to(copy / "mlyard" / name)
    for folder in ("core", "storage", "tui"):
        (tree / folder).symlink_to(copy / folder, target_is_directory=True)
    return copy


def lint_imports(copy: Path) -> subprocess.CompletedProcess[str]:
    tree = copy / "build" / "tree"
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), str(copy / "pyproject.toml"),
         "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)})


def test_the_layer_check_fails_on_a_planted_forbidden_import(tmp_path: Path) -> None:
    copy = copy_of_the_package(tmp_path)
    registry = copy / "core" / "models" / "registry.py"
    # An upward import hidden inside a function, and DuckDB reached from the UI.
    registry.write_text(registry.read_text() + "\n\ndef _sneaky() -> None:\n"
                        "    from mlyard.core.monitoring import drift_reports  # noqa: F401\n")
    screen = copy / "tui" / "screens" / "help.py"
    screen.write_text("import duckdb  # noqa: F401\n" + screen.read_text())
    result = lint_imports(copy)
    assert result.returncode != 0, result.stdout
    report = result.stdout
    assert "Rooms in core depend downward only (docs/architecture.md) BROKEN" in report
    assert "mlyard.core.models.registry -> mlyard.core.monitoring.drift_reports" in report
    assert "Only storage talks to DuckDB BROKEN" in report
    assert "No import cycles: between the rooms of core, or inside any package BROKEN" in report


def test_the_faces_and_the_click_rule_have_no_gaps(tmp_path: Path) -> None:
    """The UI reaching into the CLI, rich outside the CLI (a room no list named) and a
    face calling promotion's steps instead of its door: each is caught."""
    copy = copy_of_the_package(tmp_path)
    plant = {copy / "tui" / "screens" / "help.py": "from mlyard.core.cli import output",
             copy / "core" / "alerts" / "message.py": "import rich",
             copy / "core" / "doctor.py": "import click",
             copy / "core" / "cli" / "models.py": "from mlyard.core.models import champion"}
    for path, line in plant.items():
        path.write_text(f"{line}  # noqa: F401\n" + path.read_text())
    report = lint_imports(copy).stdout
    assert "The UI is a face beside the CLI, never over it BROKEN" in report
    assert "Only the CLI uses click and rich BROKEN" in report
    assert "mlyard.core.alerts.message -> rich" in report
    assert "mlyard.core.doctor -> click" in report
    assert "Faces use the promotion door, not its steps BROKEN" in report
