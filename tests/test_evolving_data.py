"""Real data changes over time: monthly batches with new levels, new classes, dates in a
pinned format, a messy first file, id and period columns, and a contract edited after
ingest. Each test asserts what the user sees: accepted or refused, the message, the
counts, the model's features."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import polars as pl
import pytest

from mlyard.core.models.loading import load_model
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, train_json
from tests.test_serve import Server, post

PLANS = ["basic", "pro", "team", "family"]


def month_file(folder: Path, month: int, rows: int = 240, *, seed: int = 0,
               kids: list[str] | None = None, plans: list[str] = PLANS,
               classes: list[str] | None = None, date_format: str = "%m/%d/%Y",
               person_offset: int = 0) -> Path:
    """One month of a panel: a person id repeated every month, a month index, a date,
    numeric and category features and a target that depends on them."""
    rng = random.Random(seed * 100 + month)
    classes = classes or ["no", "yes"]
    lines = ["person_id,month,visit_date,age,plan,has_kids,spend,outcome"]
    for i in range(rows):
        age = rng.randint(18, 80)
        plan = rng.choice(plans)
        spend = round(rng.uniform(1, 200) + (50 if plan == "team" else 0), 2)
        score = spend / 250 + (age - 18) / 124 + rng.gauss(0, 0.15)
        label = classes[min(len(classes) - 1, int(score * len(classes) / 1.6))]
        day = f"2024-{month:02d}-{(i % 12) + 1:02d}"
        date = pl.Series([day]).str.to_date().dt.strftime(date_format)[0]
        kid = (kids or ["no"])[i % len(kids or ["no"])]
        lines.append(f"{1000 + person_offset + i},{month},{date},{age},{plan},{kid},{spend},"
                     f"{label}")
    path = folder / f"2024-{month:02d}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def panel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with one month of data, `mlyard init` not yet run."""
    (tmp_path / "data").mkdir()
    month_file(tmp_path / "data", 1)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_of(project: Path) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((project / "mlyard.toml").read_text())


def init(project: Path, *args: str) -> str:
    result = mlyard("init", "--from", "data", "--target", "outcome", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_yes_no_column_constant_in_the_first_file_takes_yes_later(panel: Path) -> None:
    init(panel)
    assert config_of(panel)["data"]["columns"]["has_kids"]["type"] == "bool"
    assert mlyard("ingest", "data/2024-01.csv").exit_code == 0
    (panel / "incoming").mkdir()
    later = month_file(panel / "incoming", 2, kids=["yes", "no", "yes"])
    result = mlyard("ingest", str(later))
    assert result.exit_code == 0, result.stderr
    assert "has_kids" not in result.stderr


def test_a_new_category_level_is_accepted_with_a_warning_naming_it_and_its_count(
        panel: Path) -> None:
    (panel / "data" / "2024-01.csv").unlink()
    month_file(panel / "data", 1, plans=["basic", "pro", "team"])
    init(panel)
    assert config_of(panel)["data"]["columns"]["plan"]["categories"] == ["basic", "pro", "team"]
    assert mlyard("ingest", "data").exit_code == 0
    (panel / "incoming").mkdir()
    later = month_file(panel / "incoming", 2)
    family = pl.read_csv(later)["plan"].to_list().count("family")
    result = mlyard("ingest", str(later))
    assert result.exit_code == 0, result.stderr
    assert (f"column 'plan': 1 new level not in the contract: 'family' ({family} rows); "
            "accepted") in result.stderr
    shown = mlyard("data", "show", _newest(panel))
    assert f"column 'plan': new levels not in the contract: 'family' ({family})" in shown.stdout
    diff = mlyard("data", "diff", _ref(panel, 1), _ref(panel, 2))
    assert "'family'" in diff.stdout


def test_a_closed_column_and_a_recoded_column_are_refused(panel: Path) -> None:
    init(panel)
    text = (panel / "mlyard.toml").read_text()
    (panel / "mlyard.toml").write_text(text.replace(
        'categories = ["basic", "family", "pro", "team"]',
        'categories = ["basic", "family", "pro", "team"]\nclosed = true'))
    (panel / "incoming").mkdir()
    renamed = month_file(panel / "incoming", 2, plans=["basic", "pro", "team", "premium"])
    refused = mlyard("ingest", str(renamed))
    assert refused.exit_code == 1
    assert "column 'plan' (contract type category) has" in refused.stderr
    assert "'premium'" in refused.stderr
    recoded = month_file(panel / "incoming", 3, plans=["B", "P", "T", "F"])
    (panel / "mlyard.toml").write_text(text)  # open again: most values new is a recoding
    warned = mlyard("ingest", str(recoded))  # which init's levels, read off a sample,
    assert warned.exit_code == 0, warned.stderr  # only warn about
    assert "column 'plan': 4 new levels not in the contract (100% of its values: were they " \
        "recoded?)" in warned.stderr
    (panel / "mlyard.toml").write_text(confirm(text, "plan"))  # the user's rule: refuses
    again = month_file(panel / "incoming", 4, plans=["B", "P", "T", "F"])
    refused = mlyard("ingest", str(again))
    assert refused.exit_code == 1
    assert "column 'plan': 100% of its values are levels the contract has never seen" in \
        refused.stderr and "were the values recoded?" in refused.stderr


def confirm(toml: str, *columns: str) -> str:
    """The project file with these columns' inferred rules made the user's own."""
    for column in columns:
        head = f"[data.columns.{column}]\n"
        before, rest = toml.split(head, 1)
        section, *after = rest.split("\n[", 1)
        section = section.replace("strict = false", "strict = true")
        toml = before + head + section + ("\n[" + after[0] if after else "")
    return toml


def _ref(project: Path, seq: int) -> str:
    return f"{config_of(project)['project']['name']}:v{seq}"


def _newest(project: Path) -> str:
    versions = json.loads(mlyard("data", "list", "--json").stdout)
    return versions[-1]["version"]


def test_a_class_first_seen_in_month_two_is_accepted_trained_on_and_counted_by_drift(
        panel: Path) -> None:
    four = ["a", "b", "c", "d"]
    (panel / "data" / "2024-01.csv").unlink()
    month_file(panel / "data", 1, classes=four)
    init(panel)
    assert config_of(panel)["train"]["task"] == "multiclass"
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    assert mlyard("models", "promote", "1").exit_code == 0
    (panel / "incoming").mkdir()
    five = month_file(panel / "incoming", 2, classes=[*four, "e"])
    new_rows = pl.read_csv(five)["outcome"].to_list().count("e")
    result = mlyard("ingest", str(five))
    assert result.exit_code == 0, result.stderr
    assert f"column 'outcome': 1 new class not in the contract: 'e' ({new_rows} rows)" in \
        result.stderr
    drift = mlyard("drift", "--json")
    report = json.loads(drift.stdout)
    assert report["target"]["unseen"] == {"e": new_rows}
    assert report["severity"] == "severe"
    month_two = pl.read_csv(five)
    spec = load_model(open_workspace(), "champion").spec
    with Server(panel, "champion") as server:  # the model that never saw 'e' keeps scoring
        answer = post(server, {"dataframe_records": month_two.select(
            [*spec.names, "person_id"]).to_dicts()})
    assert answer.status_code == 200, answer.text
    month_two.select("person_id", "outcome").write_csv(panel / "labels.csv")
    feedback = mlyard("feedback", "labels.csv")
    assert feedback.exit_code == 0, feedback.stderr
    assert f"labels of classes the model never saw, not scored: 'e' ({new_rows} rows)" in \
        feedback.stderr
    outcome = json.loads(mlyard("feedback", "labels.csv", "--json").stdout)
    assert outcome["unseen"] == {"e": new_rows}
    [window] = outcome["windows"]
    assert window["rows"] == 240 - new_rows
    assert window["metrics"]["unseen_class_share"] == pytest.approx(new_rows / 240)
    train_json()
    model = load_model(open_workspace(), "latest")
    assert model.spec.classes == [*four, "e"]


def test_a_binary_target_that_gains_a_third_value_is_refused_naming_it(panel: Path) -> None:
    init(panel)
    assert config_of(panel)["train"]["task"] == "binary"
    (panel / "incoming").mkdir()
    third = month_file(panel / "incoming", 2, classes=["no", "yes", "maybe"])
    result = mlyard("ingest", str(third))
    assert result.exit_code == 1
    maybes = pl.read_csv(third)["outcome"].to_list().count("maybe")
    assert (f"column 'outcome' is the binary target but has {maybes} values that are not "
            "true/false, yes/no or 1/0: row ") in result.stderr
    assert "'maybe'" in result.stderr and "missing" not in result.stderr


def test_dates_are_read_with_the_pinned_format_only(panel: Path) -> None:
    out = init(panel)
    column = config_of(panel)["data"]["columns"]["visit_date"]
    # A role gets no margin; a pinned format refuses even in an inferred contract.
    assert column == {"type": "date", "format": "%m/%d/%Y", "max_null_rate": 0, "strict": False}
    assert "'%m/%d/%Y' and '%d/%m/%Y' both fit" in out  # days 1-12 only: said out loud
    assert mlyard("ingest", "data").exit_code == 0
    snapshot = pl.read_parquet(open_workspace().objects.path_for(
        json.loads(mlyard("data", "list", "--json").stdout)[0]["snapshot_blake3"]))
    assert snapshot["visit_date"][0].isoformat() == "2024-01-01"
    assert snapshot["visit_date"][6].isoformat() == "2024-01-07"  # 01/07 is 7 January
    (panel / "incoming").mkdir()
    european = month_file(panel / "incoming", 2, date_format="%d/%m/%Y")
    ambiguous = mlyard("ingest", str(european))  # 01/02/2024 fits both ways: said so
    assert ambiguous.exit_code == 0
    assert ("column 'visit_date': every day in this file is 12 or less, so its dates also "
            "read day first ('%d/%m/%Y'); read month first as pinned") in ambiguous.stderr
    iso = month_file(panel / "incoming", 3, date_format="%Y-%m-%d")
    refused = mlyard("ingest", str(iso))
    assert refused.exit_code == 1
    assert ("column 'visit_date' (contract type date) has 240 values that are not a date in "
            "format '%m/%d/%Y': row 1: '2024-03-01'") in refused.stderr


def test_a_day_first_file_with_days_past_12_is_refused_naming_column_format_and_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    lines = ["day,amount,label"] + [f"{m:02d}/{d:02d}/2012,{d * 1.5},{d % 2}"
                                    for m in (1, 2) for d in range(1, 29)]
    (tmp_path / "data" / "us.csv").write_text("\n".join(lines) + "\n")
    assert mlyard("init", "--from", "data", "--target", "label").exit_code == 0
    assert config_of(tmp_path)["data"]["columns"]["day"]["format"] == "%m/%d/%Y"
    day_first = ["day,amount,label"] + [f"{d:02d}/03/2012,{d * 1.5},{d % 2}"
                                        for d in range(1, 29)]
    (tmp_path / "eu.csv").write_text("\n".join(day_first) + "\n")
    result = mlyard("ingest", "eu.csv")
    assert result.exit_code == 1
    assert ("column 'day' (contract type date) has 16 values that are not a date in format "
            "'%m/%d/%Y': row 13: '13/03/2012'") in result.stderr


def test_init_tells_the_truth_about_a_messy_first_file_and_dry_run_writes_nothing(
        panel: Path) -> None:
    path = panel / "data" / "2024-01.csv"
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("forty")).otherwise("age")
        .alias("age"),
        pl.when(pl.int_range(pl.len()) == 8).then(pl.lit("-5.00")).otherwise("spend")
        .alias("spend"),
        pl.when(pl.int_range(pl.len()) == 10).then(pl.lit("Premuim")).otherwise("plan")
        .alias("plan"))
    frame.write_csv(path)
    out = init(panel, "--dry-run")
    assert not (panel / "mlyard.toml").exists()
    assert ("column 'age': mostly numbers, so type = 'int', but 1 cell is not: 2024-01.csv "
            "row 5: 'forty'") in out
    assert ("column 'spend': 1 negative value in a column otherwise never below 0: 2024-01.csv "
            "row 9: '-5.00' - no min is written") in out
    assert "column 'plan': level 'Premuim' appears once (2024-01.csv row 11" in out
    table = [line.split("│") for line in out.splitlines() if line.startswith(" age ")]
    assert [cell.strip() for cell in table[0][:3]] == ["age", "int", "feature"]
    assert '[data.columns.age]\ntype = "int"' in out  # the file it would write
    assert "[data.columns.spend]\ntype = \"float\"\nmax_null_rate" in out  # no min
    init(panel)
    accepted = mlyard("ingest", "data")  # init's own file: never refused by its contract
    assert accepted.exit_code == 0, accepted.stderr
    assert "column 'age' (contract type int) has 1 value that is not a whole number: row 5: " \
        "'forty'; read as missing" in accepted.stderr


def test_ids_and_periods_are_found_and_kept_out_of_the_features(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rng = random.Random(3)
    lines = ["row_key,person,month_index,x1,x2,y"]
    for month in range(1, 13):  # one file: a person each month, rows in time order
        for person in range(80):
            x1 = rng.uniform(0, 10)
            lines.append(f"r{month}-{person},{5000 + person},{month},{x1:.3f},"
                         f"{rng.uniform(0, 1):.3f},{x1 * 2 + month:.3f}")
    (tmp_path / "data" / "panel.csv").write_text("\n".join(lines) + "\n")
    out = mlyard("init", "--from", "data", "--target", "y").stdout
    data = config_of(tmp_path)["data"]
    assert data["id_column"] == "row_key"
    assert data["time_column"] == "month_index"
    assert data["exclude"] == ["person"]
    assert "one row per 'person' per 'month_index' value" in (tmp_path / "mlyard.toml") \
        .read_text()
    assert "month_index" in out and "time" in out
    assert mlyard("ingest", "data").exit_code == 0
    train_json()
    model = load_model(open_workspace(), "latest")
    assert model.spec.names == ["x1", "x2"]


def test_train_warns_when_dated_data_has_no_time_column(panel: Path) -> None:
    init(panel)
    text = (panel / "mlyard.toml").read_text()
    (panel / "mlyard.toml").write_text(text.replace('time_column = "visit_date"',
                                                    "# no time column"))
    assert mlyard("ingest", "data").exit_code == 0
    result = mlyard("train")
    assert result.exit_code == 0, result.stderr
    assert ("warning: column 'visit_date' looks like time but [data] time_column is not set"
            in result.stderr)
    toml = panel / "mlyard.toml"
    toml.write_text(toml.read_text().replace('[data.columns.plan]\ntype = "category"',
                                             '[data.columns.plan]\ntype = "string"')
                    .replace('categories = ["basic"', '# categories = ["basic"'))
    assert mlyard("ingest", "data").exit_code == 0  # re-checked: plan is text now
    assert "warning: text column 'plan' is not used as features" in mlyard("train").stderr


def test_a_contract_edit_takes_effect_on_the_same_bytes(panel: Path) -> None:
    init(panel)
    assert mlyard("ingest", "data").exit_code == 0
    again = mlyard("ingest", "data")
    assert "already" in again.stdout and "re-checked" not in again.stdout
    toml = panel / "mlyard.toml"
    text = toml.read_text()
    # A wider bound: the same bytes pass and clean the same; the version records it.
    toml.write_text(text.replace("[data.columns.spend]\ntype = \"float\"\nmin = 0",
                                 "[data.columns.spend]\ntype = \"float\"\nmin = -1"))
    warned = mlyard("train")
    assert "checked against an older contract" in warned.stderr
    rechecked = mlyard("ingest", "data")
    assert rechecked.exit_code == 0
    assert "already" in rechecked.stdout and "re-checked against the changed contract" in \
        rechecked.stdout
    assert len(json.loads(mlyard("data", "list", "--json").stdout)) == 1
    assert "older contract" not in mlyard("train").stderr
    # A type change cleans differently: a new version of the same bytes.
    toml.write_text(text.replace('[data.columns.age]\ntype = "int"',
                                 '[data.columns.age]\ntype = "float"'))
    changed = mlyard("ingest", "data")
    assert changed.exit_code == 0 and "-> " in changed.stdout
    versions = json.loads(mlyard("data", "list", "--json").stdout)
    assert [v["schema"]["age"] for v in versions] == ["int", "float"]
    # A tighter bound refuses the stored bytes; recheck says which and exits 1.
    toml.write_text(confirm(text, "spend").replace(
        "[data.columns.spend]\ntype = \"float\"\nmin = 0",
        "[data.columns.spend]\ntype = \"float\"\nmin = 0\nmax = 10"))
    recheck = mlyard("data", "recheck", "--json")
    assert recheck.exit_code == 1
    outcomes = json.loads(recheck.stdout)
    assert [o["outcome"] for o in outcomes] == ["refused", "refused"]
    assert "values above the contract's max 10 (row 1: " in outcomes[0]["detail"]


def test_one_report_names_every_problem_in_the_file(panel: Path) -> None:
    init(panel)
    toml = panel / "mlyard.toml"
    toml.write_text(confirm(toml.read_text(), "age", "spend"))
    path = panel / "data" / "2024-01.csv"
    frame = pl.read_csv(path, infer_schema=False)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([3, 50, 200])).then(pl.lit("old"))
        .otherwise("age").alias("age"),
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("-1")).otherwise("spend")
        .alias("spend"))
    (panel / "bad.csv").write_text(bad.write_csv())
    result = mlyard("ingest", "bad.csv")
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert "\n" not in message
    assert "2 problems: column 'age' (contract type int) has 3 values that are not a whole " \
        "number: row 4: 'old', row 51: 'old', row 201: 'old'; column 'spend' has 1 value " \
        "below the contract's min 0 (row 8: '-1')" in message


def test_a_category_column_without_levels_is_open(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlyard.toml").write_text(
        '[data]\ntarget = "y"\n[data.columns.city]\ntype = "category"\n'
        '[data.columns.y]\ntype = "int"\n')
    (tmp_path / "a.csv").write_text("city,y\nParis,1\nLima,0\n")
    result = mlyard("ingest", "a.csv")
    assert result.exit_code == 0, result.stderr
    assert "city" not in result.stderr


def test_data_diff_compares_every_level_not_the_top_ten(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    levels = [f"shop{i:02d}" for i in range(15)]

    def batch(name: str, weights: list[int], extra: str | None = None) -> None:
        rows = [f"{level},{i % 2}" for level, weight in zip(levels, weights, strict=True)
                for i in range(weight)]
        rows += [f"{extra},1"] * 7 if extra else []
        (tmp_path / name).write_text("shop,y\n" + "\n".join(rows) + "\n")

    batch("a.csv", list(range(30, 15, -1)))  # shop00 most common ... shop14 least
    batch("b.csv", list(range(16, 31)), extra="shop99")  # the ranking reversed, one new
    (tmp_path / "mlyard.toml").write_text(
        '[data]\ntarget = "y"\n[data.columns.shop]\ntype = "category"\n'
        f"categories = {json.dumps(levels)}\n[data.columns.y]\ntype = \"int\"\n")
    assert mlyard("ingest", "a.csv", "b.csv").exit_code == 0
    diff = json.loads(mlyard("data", "diff", "v1", "v2", "--json").stdout)
    shop = diff["columns"]["shop"]
    assert shop["levels_compared"] == "all"
    assert shop["levels_added"] == {"shop99": 7} and shop["levels_removed"] == {}
    text = mlyard("data", "diff", "v1", "v2").stdout
    assert "added: shop99 (7)" in text and "removed" not in text
