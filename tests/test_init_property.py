"""Property: whatever shape a folder of files has, `mlyard init` either writes a contract
or exits 1 with one line naming what it could not read; and the contract it writes
accepts every row of the files it was inferred from (ingest exits 0)."""

from __future__ import annotations

import contextlib
import csv
import io
import random
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import examples, mlyard

NAMES = ["nr", "zip", "id", "customer_id", "temp", "log_wage", "month", "year", "t",
         "price", "label", "y", "region", "flag", "date", "when", "x", "Amount ($)",
         "naïve", "a b", "[bold]x[/]", "0", "target"]
BOOLS = [("yes", "no"), ("1", "0"), ("Y", "N"), ("true", "false"), ("True", "False")]
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d"]
KINDS = ["unique_int", "repeated_int", "signed_int", "huge_int", "float", "one_negative",
         "unique_text", "repeated_text", "all_null", "constant", "date", "datetime", "bool",
         "mostly_numeric", "rising_period"]


def _column(kind: str, rows: int, rnd: random.Random) -> list[str]:
    """`rows` cells of one column, as text a CSV would hold."""
    if kind == "unique_int":
        start = rnd.randint(-10**6, 10**6)
        values = [str(start + 7 * i) for i in range(rows)]
        rnd.shuffle(values)
        return values
    if kind == "repeated_int":
        return [str(rnd.randint(0, 4)) for _ in range(rows)]
    if kind == "signed_int":
        return [str(rnd.randint(-50, 50)) for _ in range(rows)]
    if kind == "huge_int":
        return [str(rnd.randint(-2**62, 2**62)) for _ in range(rows)]
    if kind == "float":
        return [rnd.choice(["", f"{rnd.uniform(-1e6, 1e6):.3f}", f"{rnd.uniform(0, 1):.6g}"])
                for _ in range(rows)]
    if kind == "one_negative":
        cells = [f"{rnd.uniform(0, 40):.1f}" for _ in range(rows)]
        cells[rnd.randrange(rows)] = "-1.1"
        return cells
    if kind == "unique_text":
        return [f"k{rnd.getrandbits(40):x}{i}" for i in range(rows)]
    if kind == "repeated_text":
        return [rnd.choice(["north", "south", "NA", "", "east"]) for _ in range(rows)]
    if kind == "all_null":
        return [""] * rows
    if kind == "constant":
        return ["7"] * rows
    if kind == "date":
        pattern, start = rnd.choice(DATE_FORMATS), date(2020, 1, 1)
        return [(start + timedelta(days=rnd.randint(0, 900))).strftime(pattern)
                for _ in range(rows)]
    if kind == "datetime":
        start = datetime(2024, 3, 1)
        return [(start + timedelta(minutes=rnd.randint(0, 10**5))).strftime("%Y-%m-%d %H:%M")
                for _ in range(rows)]
    if kind == "bool":
        yes, no = rnd.choice(BOOLS)
        return [rnd.choice([yes, no]) for _ in range(rows)]
    if kind == "mostly_numeric":
        cells = [str(rnd.randint(18, 90)) for _ in range(rows)]
        if rows >= 12:
            cells[rnd.randrange(rows)] = "forty"
        return cells
    assert kind == "rising_period"
    return [str(1 + i * 3 // max(rows, 1)) for i in range(rows)]


@st.composite
def folders(draw: st.DrawFn) -> tuple[list[str], list[list[list[str]]], str | None]:
    """Header, files of rows (each file's rows), and the --target to pass (or None)."""
    width = draw(st.one_of(st.integers(1, 8), st.just(40)))
    names = list(dict.fromkeys(draw(st.sampled_from(NAMES)) if draw(st.booleans())
                               else f"c{i}" for i in range(width)))
    names += [f"d{i}" for i in range(width - len(names))]
    if draw(st.integers(0, 9)) == 0:  # now and then a header that cannot be read
        names[draw(st.integers(0, width - 1))] = draw(st.sampled_from(["", names[0]]))
    kinds = [draw(st.sampled_from(KINDS)) for _ in range(width)]
    seed = draw(st.integers(0, 2**32))
    rnd = random.Random(seed)
    files = []
    for _ in range(draw(st.integers(1, 3))):
        rows = draw(st.sampled_from([1, 2, 5, 30, 120]))
        columns = [_column(kind, rows, rnd) for kind in kinds]
        files.append([list(row) for row in zip(*columns, strict=True)])
    target = draw(st.sampled_from(names)) if draw(st.integers(0, 4)) else None
    return names, files, target


def _write(folder: Path, header: list[str], files: list[list[list[str]]]) -> list[Path]:
    paths = []
    for index, rows in enumerate(files):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        path = folder / f"part_{index}.csv"
        path.write_text(text.getvalue(), encoding="utf-8")
        paths.append(path)
    return paths


@settings(max_examples=examples(60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(folder=folders())
def test_init_never_crashes_and_never_refuses_its_own_files(
        folder: tuple[list[str], list[list[list[str]]], str | None]) -> None:
    header, files, target = folder
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        data = Path(tmp) / "data"
        data.mkdir()
        paths = _write(data, header, files)
        before = [p.read_bytes() for p in paths]
        args = ["init", "--from", "data"] + (["--target", target] if target else [])

        dry = mlyard(*args, "--dry-run")
        result = mlyard(*args)

        assert dry.exit_code == result.exit_code
        event(f"init exit {result.exit_code}" + (f": {result.stderr.split(':')[2][:30]}"
                                                 if result.exit_code else ""))
        assert result.exit_code in (0, 1, 2), result.output  # 2: a usage error
        if result.exit_code:
            message = result.stderr.strip()
            assert "\n" not in message and message.startswith("mlyard: "), message
            assert "data" in message or (target or "") in message, message
            assert not (Path(tmp) / "mlyard.toml").exists()
            return
        ingested = mlyard("ingest", "data")
        assert ingested.exit_code == 0, ingested.output + ingested.stderr
        assert [p.read_bytes() for p in paths] == before


def test_a_unique_int_column_not_named_like_an_id_is_inferred_and_flagged(
        tmp_path: Path) -> None:
    """The crash on `nr` (a person number): init writes, says so, and ingest accepts."""
    (tmp_path / "data").mkdir()
    rnd = random.Random(3)
    numbers = rnd.sample(range(10_000, 99_999), 120)
    lines = ["nr,temp,y"] + [f"{n},{rnd.uniform(0, 30):.1f},{rnd.choice(['yes', 'no'])}"
                             for n in numbers]
    lines[40] = lines[40].split(",")[0] + ",-1.1,no"
    (tmp_path / "data" / "a.csv").write_text("\n".join(lines) + "\n")
    with contextlib.chdir(tmp_path):
        result = mlyard("init", "--from", "data", "--target", "y")
        assert result.exit_code == 0, result.stderr
        assert "column 'nr' has a different whole number in every row" in result.stdout
        assert "1 negative value" in result.stdout and "no min is written" in result.stdout
        text = (tmp_path / "mlyard.toml").read_text()
        temp = text.split("[data.columns.temp]")[1].split("[")[0]
        assert "min" not in temp.replace("max_null_rate", "")
        assert mlyard("ingest", "data/a.csv").exit_code == 0
        (tmp_path / "data" / "winter.csv").write_text("nr,temp,y\n1,-8.5,yes\n2,-3,no\n")
        winter = mlyard("ingest", "data/winter.csv")
        assert winter.exit_code == 0, winter.stderr
