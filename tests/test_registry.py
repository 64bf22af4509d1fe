"""Model versions, aliases, gates, `mlyard check`, promotion and rollback."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mlyard.core.models import registry
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, python_process, train_json


def set_gates(project: Path, gates: str) -> None:
    config = project / "mlyard.toml"
    text = config.read_text().split("[gates]")[0]
    config.write_text(text + "[gates]\n" + textwrap.dedent(gates))


def champion() -> int | None:
    versions = json.loads(mlyard("models", "list", "--json").stdout)
    return next((v["version"] for v in versions if "champion" in v["aliases"]), None)


def test_check_passes_fails_and_reports_with_exit_codes(churn: Path) -> None:
    train_json()
    set_gates(churn, "min_auc = 0.6\nmax_log_loss = 0.9\n")
    passing = mlyard("check", "--report", "report.md")
    assert passing.exit_code == 0, passing.stdout
    report = (churn / "report.md").read_text()
    assert "churn/1 passed" in report and "| min_auc | ✅ pass |" in report
    set_gates(churn, "min_auc = 0.99\n")
    failing = mlyard("check", "latest", "--report", "report.md", "--json")
    assert failing.exit_code == 1
    gates = json.loads(failing.stdout)["gates"]
    assert gates[0]["gate"] == "min_auc" and not gates[0]["passed"]
    assert gates[0]["threshold"] == 0.99 and 0.6 < gates[0]["value"] < 0.99
    assert "| min_auc | ❌ fail |" in (churn / "report.md").read_text()
    usage = mlyard("check", "churn/x")
    assert usage.exit_code == 2 and "not a version number" in usage.stderr
    missing = mlyard("check", "7")
    assert missing.exit_code == 1 and "has no version 7" in missing.stderr


def test_unknown_gate_is_a_config_error(churn: Path) -> None:
    set_gates(churn, "minimum_auc = 0.8\n")
    result = mlyard("check")
    assert result.exit_code == 1 and "[gates] has unknown key `minimum_auc`" in result.stderr


@pytest.mark.slow  # trains several models in processes of their own
def test_promote_runs_the_gates_and_rollback_restores_the_previous_champion(
    churn: Path,
) -> None:
    set_gates(churn, "min_auc = 0.6\nmax_regression_vs_champion = 0.0\n")
    first = train_json("--param", "num_leaves=15")
    worse = train_json("--param", "num_leaves=2", "--param", "learning_rate=0.01")
    assert first["metrics"]["auc"] > worse["metrics"]["auc"]
    assert mlyard("models", "promote", "1").exit_code == 0
    refused = mlyard("models", "promote", "2")
    assert refused.exit_code == 1
    assert "gate max_regression_vs_champion failed" in refused.stderr
    assert "vs champion v1" in refused.stderr and champion() == 1
    forced = mlyard("models", "promote", "2", "--force", "--reason", "shadow test")
    assert forced.exit_code == 0 and champion() == 2
    assert mlyard("models", "rollback", "--reason", "worse online").exit_code == 0
    assert champion() == 1
    history = json.loads(mlyard("models", "history", "--alias", "champion", "--json").stdout)
    assert [(m["kind"], m["from_version"], m["to_version"]) for m in history] == [
        ("promote", None, 1), ("promote", 1, 2), ("rollback", 2, 1)]
    assert history[1]["reason"] == "shadow test" and history[2]["actor"]
    nothing_left = mlyard("models", "rollback")
    assert nothing_left.exit_code == 2 and "no earlier champion" in nothing_left.stderr


def test_aliases_and_references_resolve_everywhere(churn: Path) -> None:
    train_json()
    train_json("--seed", "3")
    assert mlyard("models", "alias", "challenger", "2").exit_code == 0
    assert mlyard("models", "promote", "models:/churn/1").exit_code == 0
    ws = open_workspace()
    for ref, expected in [("models:/churn@champion", 1), ("churn@challenger", 2),
                          ("@challenger", 2), ("champion", 1), ("churn/2", 2), ("v1", 1),
                          ("latest", 2)]:
        assert registry.resolve(ws, ref).version == expected, ref
    shown = json.loads(mlyard("models", "show", "churn@challenger", "--json").stdout)
    assert shown["aliases"] == ["challenger"] and shown["card"]["task"] == "binary"
    other = mlyard("models", "show", "models:/fraud@champion")
    assert other.exit_code == 1 and "not in this project" in other.stderr
    direct = mlyard("models", "alias", "champion", "2")
    assert direct.exit_code == 2 and "models promote" in direct.stderr
    bad = mlyard("models", "alias", "9lives", "2")
    assert bad.exit_code == 2 and "starting with a letter" in bad.stderr


def test_registering_a_plain_tracked_run_is_refused(churn: Path) -> None:
    from mlyard.core.tracking import active_run

    with active_run.start_run(name="notebook") as run:
        active_run.log_metric("auc", 0.9)
    result = mlyard("models", "register", run.run_id)
    assert result.exit_code == 2 and "only `mlyard train` runs can be registered" in result.stderr


PROMOTER = textwrap.dedent("""
    import sys
    from mlyard.core.automation import promotion
    from mlyard.core.workspace import open_workspace
    ws = open_workspace()
    for _ in range(15):
        promotion.promote(ws, sys.argv[1], reason="race")
""")


@pytest.mark.slow  # trains and checks in several processes
def test_concurrent_promotes_leave_one_consistent_champion(churn: Path) -> None:
    set_gates(churn, "min_auc = 0.5\n")
    train_json()
    train_json("--seed", "5")
    racers = [python_process(PROMOTER, churn, version) for version in ("1", "2")]
    for racer in racers:
        _, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
    history = registry.history(open_workspace(), "champion")
    assert len(history) == 30
    for earlier, later in zip(history, history[1:], strict=False):
        assert later.from_version == earlier.to_version
    assert champion() == history[-1].to_version
