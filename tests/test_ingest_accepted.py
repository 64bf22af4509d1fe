"""Oddities that keep the data's meaning are accepted and reported as warnings; nothing is
silently turned into NaN, into a new category or into a new feature."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest

from mlyard.core.data import versions
from mlyard.core.data.ingest import ingest_file
from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard


def ingest_one(project: Path, name: str, content: bytes) -> tuple[list[str], pl.DataFrame]:
    path = project / "data" / name
    path.write_bytes(content)
    result = ingest_file(open_workspace(), path)
    assert result.created
    return result.warnings, versions.load_version(open_workspace(), result.version.ref)


def reference(good: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(good), try_parse_dates=True,
                       schema_overrides={"tenure_months": pl.Int64, "age": pl.Int64,
                                         "support_calls": pl.Int64, "churned": pl.Int64})


def test_clean_file_has_no_warnings_and_keeps_every_value(churn_project: Path,
                                                           good_csv: str) -> None:
    warnings, snapshot = ingest_one(churn_project, "good.csv", good_csv.encode())
    assert warnings == []
    assert snapshot.equals(reference(good_csv))


def test_bom_and_crlf_are_valid_csv_read_without_warnings(churn_project: Path,
                                                          good_csv: str) -> None:
    """What Excel and Python's csv module write passes `require_clean_data` as it is."""
    content = b"\xef\xbb\xbf" + good_csv.replace("\n", "\r\n").encode()
    warnings, snapshot = ingest_one(churn_project, "bom.csv", content)
    assert warnings == []
    assert snapshot.equals(reference(good_csv))


def test_reordered_columns_are_put_back_in_contract_order(churn_project: Path,
                                                          good_csv: str) -> None:
    frame = pl.read_csv(io.StringIO(good_csv), infer_schema=False)
    shuffled = frame.select(list(reversed(frame.columns))).write_csv()
    warnings, snapshot = ingest_one(churn_project, "reordered.csv", shuffled.encode())
    assert any("different order" in w for w in warnings)
    assert snapshot.columns == frame.columns
    assert snapshot.equals(reference(good_csv))


def test_extra_column_is_reported_and_never_becomes_a_feature(churn_project: Path,
                                                              good_csv: str) -> None:
    frame = pl.read_csv(io.StringIO(good_csv), infer_schema=False)
    extra = frame.with_columns(pl.lit("hello").alias("notes")).write_csv()
    warnings, snapshot = ingest_one(churn_project, "extra.csv", extra.encode())
    assert any("extra column 'notes'" in w for w in warnings)
    assert "notes" not in snapshot.columns


def test_nan_tokens_become_missing_within_the_null_bound(churn_project: Path,
                                                         good_csv: str) -> None:
    frame = pl.read_csv(io.StringIO(good_csv), infer_schema=False)
    with_nan = frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("NaN")).otherwise(pl.col("total_charges"))
        .alias("total_charges")
    ).write_csv()
    warnings, snapshot = ingest_one(churn_project, "nan.csv", with_nan.encode())
    assert any("'NaN'/'NA'-style values read as missing" in w for w in warnings)
    charges = snapshot.get_column("total_charges")
    assert charges[:3].is_null().all()
    assert not charges.is_nan().any()


def test_numbers_with_thousands_separators_are_read_as_numbers(churn_project: Path,
                                                               good_csv: str) -> None:
    frame = pl.read_csv(io.StringIO(good_csv), infer_schema=False)
    grouped = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("1,234.50"))
        .otherwise(pl.col("total_charges")).alias("total_charges")
    ).write_csv()
    warnings, snapshot = ingest_one(churn_project, "grouped.csv", grouped.encode())
    assert any("thousands separators" in w for w in warnings)
    assert snapshot.get_column("total_charges")[0] == 1234.5


def test_single_row_is_accepted(churn_project: Path, good_csv: str) -> None:
    one = "\n".join(good_csv.splitlines()[:2]) + "\n"
    warnings, snapshot = ingest_one(churn_project, "one.csv", one.encode())
    assert snapshot.height == 1 and any("single data row" in w for w in warnings)


def test_repeated_ids_keep_the_last_row(churn_project: Path, good_csv: str) -> None:
    lines = good_csv.splitlines()
    changed = lines[1].rsplit(",", 1)[0] + ",1" if lines[1].endswith(",0") else \
        lines[1].rsplit(",", 1)[0] + ",0"
    content = "\n".join([*lines, changed]) + "\n"
    warnings, snapshot = ingest_one(churn_project, "dupes.csv", content.encode())
    assert any("1 rows repeated an 'customer_id'" in w for w in warnings)
    assert snapshot.height == len(lines) - 1
    first_id = lines[1].split(",", 1)[0]
    kept = snapshot.filter(pl.col("customer_id") == first_id).get_column("churned").to_list()
    assert kept == [int(changed.rsplit(",", 1)[1])]


def test_same_bytes_twice_give_the_same_version(churn_project: Path, good_csv: str) -> None:
    (churn_project / "data" / "a.csv").write_text(good_csv)
    (churn_project / "data" / "copy.csv").write_text(good_csv)
    first = json.loads(mlyard("ingest", "--json", "data/a.csv").stdout)
    second = json.loads(mlyard("ingest", "--json", "data/copy.csv").stdout)
    assert first[0]["version"] == second[0]["version"] == "churn:v1"
    assert second[0]["status"] == "unchanged"
    assert len(json.loads(mlyard("data", "list", "--json").stdout)) == 1


def test_parquet_input_gives_the_same_rows_as_csv(churn_project: Path, good_csv: str) -> None:
    buffer = io.BytesIO()
    reference(good_csv).write_parquet(buffer)
    warnings, snapshot = ingest_one(churn_project, "batch.parquet", buffer.getvalue())
    assert warnings == []
    assert snapshot.equals(reference(good_csv))


def test_first_file_defines_the_contract_when_the_config_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, good_csv: str
) -> None:
    (tmp_path / "mlyard.toml").write_text('[data]\ntarget = "churned"\nid_column = "customer_id"\n')
    (tmp_path / "first.csv").write_text(good_csv)
    (tmp_path / "second.csv").write_text(good_csv.replace(",north,", ",nowhere,"))
    monkeypatch.chdir(tmp_path)
    assert mlyard("ingest", "first.csv").exit_code == 0
    second = mlyard("ingest", "second.csv")
    nowhere = good_csv.count(",north,")
    assert second.exit_code == 0, second.stderr
    assert (f"column 'region': 1 new level not in the contract: 'nowhere' ({nowhere} rows)"
            in second.stderr)


@pytest.mark.parametrize("name", ["*.csv", "sales[2024].csv", "b?.csv", "*.parquet"])
def test_a_file_name_with_pattern_characters_is_that_file_alone(churn_project: Path,
                                                                good_csv: str,
                                                                name: str) -> None:
    lines = good_csv.splitlines(keepends=True)
    (churn_project / "data" / "other.csv").write_text(lines[0] + "".join(lines[1:4]))
    (churn_project / "data" / "other.parquet").write_bytes(b"")  # never read
    content = good_csv.encode()
    if name.endswith(".parquet"):
        buffer = io.BytesIO()
        reference(good_csv).write_parquet(buffer)
        content = buffer.getvalue()
    _, snapshot = ingest_one(churn_project, name, content)
    assert snapshot.equals(reference(good_csv))  # its rows, and no other file's


def test_a_burst_of_files_in_one_command_is_one_version_each_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, good_csv: str
) -> None:
    """Files ingested together share their catalog work; what each becomes is as if it
    came alone: versions in file order, the same bytes twice one version, a refused file
    quarantined between accepted ones, and the first file's contract for the rest."""
    (tmp_path / "mlyard.toml").write_text('[project]\nname = "churn"\n[data]\n'
                                          'target = "churned"\nid_column = "customer_id"\n')
    header, *lines = good_csv.splitlines()
    rows = [line for line in lines if ",," not in line]  # the first file allows no gaps
    folder = tmp_path / "burst"
    folder.mkdir()
    slices = [rows[i:i + 3] for i in range(0, 30, 3)]
    for index, part in enumerate(slices):
        (folder / f"part-{index:02d}.csv").write_text("\n".join([header, *part]) + "\n")
    (folder / "part-03.csv").write_text((folder / "part-01.csv").read_text())  # again
    # The inferred contract is advice (a bad value warns), but a missing column cannot
    # be read as the contract's: refused.
    age = header.split(",").index("age")
    (folder / "part-05.csv").write_text("\n".join(
        ",".join(cells[:age] + cells[age + 1:]) for cells in
        (line.split(",") for line in [header, rows[0]])) + "\n")
    monkeypatch.chdir(tmp_path)
    result = mlyard("ingest", "--json", "burst")
    assert result.exit_code == 1
    outcomes = {Path(o["path"]).name: o for o in json.loads(result.stdout)}
    assert [(name, o["status"], o.get("version")) for name, o in sorted(outcomes.items())] == [
        ("part-00.csv", "ingested", "churn:v1"), ("part-01.csv", "ingested", "churn:v2"),
        ("part-02.csv", "ingested", "churn:v3"), ("part-03.csv", "unchanged", "churn:v2"),
        ("part-04.csv", "ingested", "churn:v4"), ("part-05.csv", "refused", None),
        ("part-06.csv", "ingested", "churn:v5"), ("part-07.csv", "ingested", "churn:v6"),
        ("part-08.csv", "ingested", "churn:v7"), ("part-09.csv", "ingested", "churn:v8")]
    assert "missing column 'age'" in outcomes["part-05.csv"]["reason"]
    assert len(list((tmp_path / ".mlyard" / "quarantine").glob("*part-05.csv"))) == 1
    listed = json.loads(mlyard("data", "list", "--json").stdout)
    assert [v["rows"] for v in listed] == [3] * 8
    ws = open_workspace()
    with ws.catalog.session() as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM events GROUP BY ALL").fetchall())
        # Every version was checked against the contract the first file defined.
        contracts = con.execute("SELECT count(DISTINCT contract_hash) FROM dataset_versions"
                                ).fetchone()
    assert kinds == {"dataset.version": 8, "alert.refused": 1}
    assert contracts == (1,)
