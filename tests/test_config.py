"""mlyard.toml errors name the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlyard.core.config import load_config
from mlyard.core.errors import ConfigError
from mlyard.core.workspace import find_config, open_workspace
from tests.conftest import mlyard


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlyard.toml"
    path.write_text(text)
    return path


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "x"\n[data\ntarget = "y"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in err.value.msg and "line 3" in err.value.msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[data]\ntragte = "y"\n', "[data] has unknown key `tragte`"),
        ('[alerts]\nwebhooks = ["hooks.example.com/x"]\n',
         "key alerts.webhooks[0]: expected an http:// or https:// URL"),
        ('[alerts]\ncommand = "notify-send \'unclosed"\n', "key alerts.command: No closing"),
        ('[alerts]\ncooldown = "soon"\n', "key alerts.cooldown: interval 'soon'"),
        ('[alerts]\nkinds = ["drfit"]\n', "expected one of drift, quality, refused"),
        ('[alerts]\nretries = -1\n', "key alerts.retries: expected 0 or more"),
        ("[train]\nseed = \"forty\"\n", "key train.seed: Expected `int`, got `str`"),
        ('[train]\ntask = "ranking"\n', "expected one of binary, multiclass, regression"),
        ("[train]\nvalid_fraction = 1.5\n", "key train.valid_fraction"),
        ('[data.columns.age]\ntype = "integer"\n', "key data.columns.age.type"),
        ('[data.columns.age]\ntype = "int"\nmax_null_rate = 3\n', "expected a share from 0"),
        ('[data.columns.age]\ntype = "int"\ncategories = ["a"]\n', "only category columns"),
        ('[data.columns.plan]\ntype = "category"\nclosed = true\n',
         "key data.columns.plan.closed: a closed column needs its categories listed"),
        ('[data.columns.age]\ntype = "int"\nformat = "%Y"\n',
         "key data.columns.age.format: only date and datetime columns have a format"),
        ("[data]\nmax_new_level_share = 0\n", "key data.max_new_level_share"),
        ('[monitor.columns.age]\nmethod = "kl"\n',
         "key monitor.columns.age.method"),
        ('[monitor.columns.age]\nmethod = "kl"\n', "expected one of ks, wasserstein"),
        ("[monitor]\ndrift_share = 2\n", "key monitor.drift_share: expected 0 to 1"),
        ('[automation]\non_new_data = "deploy"\n', "expected one of ingest, train, promote"),
        ("[automation]\nsettle_seconds = -1\n", "key automation.settle_seconds"),
        ('[[schedule]]\nname = "x"\n', "set exactly one of `cron` or `every`"),
        ('[compute]\nengine = "spark"\n', "key compute.engine"),
        ("[gates]\nno_severe_drift = 1\n", "key gates.no_severe_drift: expected true or"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in err.value.msg
    assert err.value.msg.startswith(str(path))


def test_empty_file_is_a_working_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.train.seed == 42 and config.data.watch == ["data"]


def test_cli_reports_bad_config_in_one_line_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "[train]\nseed = 'x'\n")
    monkeypatch.chdir(tmp_path)
    result = mlyard("runs", "list")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "key train.seed" in result.stderr


def test_config_is_found_by_walking_up(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) == path


def test_workspace_location_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "")
    assert open_workspace(tmp_path).root == (tmp_path / ".mlyard").resolve()
    monkeypatch.setenv("MLYARD_WORKSPACE", str(tmp_path / "from-env"))
    assert open_workspace(tmp_path).root == (tmp_path / "from-env").resolve()
    explicit = open_workspace(tmp_path, workspace=tmp_path / "explicit")
    assert explicit.root == (tmp_path / "explicit").resolve()
    assert (tmp_path / "explicit" / "catalog.duckdb").exists()


def test_no_project_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = mlyard("data", "list")
    assert result.exit_code == 1
    assert "no mlyard.toml" in result.stderr and "mlyard init" in result.stderr
