"""One reader for CSV: ingest, init, `mlyard predict` and the server's text/csv body give the
same bytes the same answer in the same words. A cut-off last row, a repeated header name
and a foreign encoding are refused by all three; a byte-order mark, CRLF line ends and a
pandas row index are read by all three (the index dropped with a note)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import mlyard
from tests.test_serve import Server, post, trained  # noqa: F401  # the module's project


def _cut_last_row(text: str) -> bytes:
    return text.rstrip("\n").rsplit(",", 3)[0].encode() + b"\n"


def _repeat_header(text: str) -> bytes:
    header, rest = text.split("\n", 1)
    names = header.split(",")
    names[3] = names[1]
    return (",".join(names) + "\n" + rest).encode()


REFUSED: dict[str, tuple[Callable[[str], bytes], str]] = {
    "a short last row": (_cut_last_row, "cut off mid-row at line 41"),
    "a duplicated header": (_repeat_header, "duplicate column name"),
    "UTF-16 with a BOM": (lambda text: text.encode("utf-16"), "UTF-16 encoded"),
    "UTF-16 without a BOM": (lambda text: text.encode("utf-16-le"), "UTF-16 encoded"),
    "latin-1": (lambda text: text.replace("north", "n\u00f6rth").encode("latin-1"),
                "not UTF-8 (invalid byte at offset"),
    "gzip": (lambda text: gzip.compress(text.encode()), "the bytes are gzip-compressed"),
}


@pytest.fixture
def batch_text(trained: Path) -> str:  # noqa: F811
    frame = pl.read_csv(trained / "data" / "churn_2026_01.csv", infer_schema=False).head(40)
    return frame.write_csv()


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_each_reader_refuses_the_same_bytes_with_the_same_words(
        trained: Path, batch_text: str, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    make, reason = REFUSED[case]
    monkeypatch.chdir(trained)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(make(batch_text))

    ingested = mlyard("ingest", str(bad))
    predicted = mlyard("predict", "champion", str(bad), "-o", str(tmp_path / "out.parquet"))
    with Server(trained, "champion") as server:
        served = post(server, bad.read_bytes(), "text/csv")
    monkeypatch.chdir(tmp_path)  # a new project started from the same file
    initialised = mlyard("init", "--from", str(tmp_path), "--target", "churned", "--dry-run")

    for result in (ingested, predicted, initialised):
        message = result.stderr.strip()
        assert result.exit_code == 1 and "\n" not in message, message
        assert f"{bad}: {reason}" in message, message
    assert served.status_code == 400, served.text
    assert f"body: {reason}" in served.json()["message"]
    assert not (tmp_path / "out.parquet").exists()


ACCEPTED: dict[str, Callable[[str], bytes]] = {
    "a BOM and CRLF": lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode(),
    "a pandas index": lambda text: "\n".join(
        ["," + line if i == 0 else f"{i - 1},{line}"
         for i, line in enumerate(text.rstrip("\n").split("\n"))]).encode() + b"\n",
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_each_reader_reads_the_same_bytes_to_the_same_predictions(
        trained: Path, batch_text: str, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.chdir(trained)
    plain, odd = tmp_path / "plain.csv", tmp_path / "odd.csv"
    plain.write_text(batch_text)
    odd.write_bytes(ACCEPTED[case](batch_text))

    outputs = []
    for source in (plain, odd):
        out = tmp_path / f"{source.stem}.parquet"
        result = mlyard("predict", "champion", str(source), "-o", str(out))
        assert result.exit_code == 0, result.stderr
        outputs.append((result, pl.read_parquet(out)))
    with Server(trained, "champion") as server:
        served = [post(server, source.read_bytes(), "text/csv") for source in (plain, odd)]

    (_, want), (odd_result, got) = outputs
    assert got.columns == want.columns  # the index is not a column of the output
    assert got.equals(want)
    assert [r.status_code for r in served] == [200, 200], served[1].text
    assert served[1].json() == served[0].json()
    if case == "a pandas index":
        assert "a row index (as pandas' to_csv writes), dropped" in odd_result.stderr
        ingested = mlyard("ingest", "--json", str(odd))
        assert ingested.exit_code == 0, ingested.stderr
        [item] = json.loads(ingested.stdout)
        assert any("row index" in w for w in item["warnings"]), item
