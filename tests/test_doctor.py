"""A broken workspace says what is wrong in one line, and `mlyard doctor` finds it and
cleans what killed processes left behind, never touching the user's files."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlyard.core.workspace import open_workspace
from tests.conftest import mlyard, mlyard_process


def doctor(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = mlyard("doctor", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_a_healthy_workspace_passes_every_check(churn: Path) -> None:
    code, report = doctor()
    assert code == 0 and report["healthy"]
    assert [f["check"] for f in report["findings"]] == [
        "catalog", "objects", "spool", "leftovers", "runs"]


def test_leftovers_of_killed_processes_are_found_and_repaired_when_old(churn: Path) -> None:
    ws = open_workspace()
    old = ws.objects.new_temp(".parquet")  # an ingest killed mid-write
    old.write_bytes(b"half a snapshot")
    ws.catalog.spool_dir.mkdir(parents=True, exist_ok=True)
    partial = ws.catalog.spool_dir / "metrics-1-x.partial"  # a writer killed mid-segment
    partial.write_bytes(b"half")
    fresh = ws.objects.new_temp()  # something being written right now
    an_hour_ago = time.time() - 3600
    for path in (old, partial):
        os.utime(path, (an_hour_ago, an_hour_ago))
    code, report = doctor()
    assert code == 1 and "2 temporary files" in report["findings"][3]["detail"]
    code, report = doctor("--repair")
    assert code == 0 and len(report["repaired"]) == 2
    assert not old.exists() and not partial.exists() and fresh.exists()
    assert (churn / "data" / "churn_2026_01.csv").exists()  # the user's files untouched


def test_a_tampered_object_and_a_bad_segment_are_reported(churn: Path) -> None:
    ws = open_workspace()
    [version] = [v for v in json.loads(mlyard("data", "list", "--json").stdout)][:1]
    path = ws.objects.path_for(version["snapshot_blake3"])
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"x")
    ws.catalog.spool_dir.mkdir(parents=True, exist_ok=True)
    (ws.catalog.spool_dir / "metrics-00000000000000000001-bad.arrow").write_bytes(b"junk")
    code, report = doctor()
    by_check = {f["check"]: f for f in report["findings"]}
    assert code == 1
    assert not by_check["objects"]["ok"] and version["snapshot_blake3"][:12] in \
        by_check["objects"]["detail"]
    assert not by_check["spool"]["ok"] and "metrics-00000000000000000001-bad.arrow" in \
        by_check["spool"]["detail"]


def test_a_corrupt_catalog_gets_one_line_naming_the_file_and_what_to_do(churn: Path) -> None:
    catalog = churn / ".mlyard" / "catalog.duckdb"
    data = bytearray(catalog.read_bytes())
    data[4096:] = os.urandom(len(data) - 4096)  # the header survives, the rest does not
    catalog.write_bytes(bytes(data))
    result = mlyard_process("runs", "list", cwd=churn)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(catalog) in line and "mlyard doctor" in line
    assert "Traceback" not in result.stderr
    report = mlyard_process("doctor", cwd=churn)
    assert report.returncode == 1 and "PROBLEM" in report.stdout


def test_a_read_only_workspace_gets_one_line_not_a_traceback(tmp_path: Path) -> None:
    project = tmp_path / "ro"
    shutil.copytree(Path(__file__).parent.parent / "sample_data" / "churn", project,
                    ignore=shutil.ignore_patterns(".mlyard"))
    # Root ignores file modes; an immutable folder stops root too (chattr +i).
    locked = subprocess.run(["chattr", "+i", str(project)], capture_output=True) \
        if os.geteuid() == 0 else None
    if locked is not None and locked.returncode != 0:
        pytest.skip(f"cannot make a folder read-only for root here: {locked.stderr!r}")
    if locked is None:
        os.chmod(project, 0o555)
    try:
        result = mlyard_process("ingest", "data", cwd=project)
    finally:
        if locked is not None:
            subprocess.run(["chattr", "-i", str(project)], check=True)
        os.chmod(project, 0o755)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "cannot write here" in line and ".mlyard" in line


def test_a_file_too_large_to_write_gets_one_line(churn: Path) -> None:
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    big = churn / "data" / "big.csv"
    header, *rows = (churn / "data" / "churn_2026_01.csv").read_text().splitlines()
    big.write_text("\n".join([header, *(f"{copy}-{row}" for copy in range(20)
                                          for row in rows)]) + "\n")  # its snapshot > 200 kB
    result = subprocess.run([sys.executable, "-m", "mlyard", "ingest", str(big)], cwd=churn,
                            capture_output=True, text=True, timeout=120,
                            preexec_fn=small_files)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ulimit -f" in lines[0], lines
    assert "Traceback" not in result.stderr
    assert mlyard("runs", "list").exit_code == 0  # the catalog still opens


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs (root only), else a skip: the RLIMIT_FSIZE test above covers others."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gets_one_line_and_the_catalog_opens_once_space_is_freed(churn: Path,
                                                               small_disk: Path) -> None:
    workspace = small_disk / "ws"
    env = {"MLYARD_WORKSPACE": str(workspace)}
    first = churn / "data" / "churn_2026_01.csv"
    assert mlyard_process("ingest", str(first), cwd=churn, env=env).returncode == 0
    big = churn / "big.csv"
    header, *rows = first.read_text().splitlines()
    big.write_text("\n".join([header, *(f"{copy}-{row}" for copy in range(400)
                                          for row in rows)]) + "\n")  # unique ids, ~55 MB
    result = mlyard_process("ingest", str(big), cwd=churn, env=env)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ("no space left" in lines[0] or "free disk space" in lines[0]), \
        lines
    # Space freed (here: the disk grows), the catalog opens, consistent: no half version.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    listed = mlyard_process("data", "list", "--json", cwd=churn, env=env)
    assert listed.returncode == 0, listed.stderr
    assert [v["version"] for v in json.loads(listed.stdout)] == ["churn:v1"]
    assert big.exists() and first.exists()  # the user's files untouched


def test_a_training_that_fills_the_disk_gets_one_line_and_ends_failed_with_the_reason(
        churn: Path, small_disk: Path) -> None:
    env = {"MLYARD_WORKSPACE": str(small_disk / "ws")}
    config = churn / "mlyard.toml"
    config.write_text(config.read_text().replace(  # a model of several MB, quickly
        "[train]\n", "[train]\nnum_boost_round = 1500\nearly_stopping_rounds = 100000\n"
        "params = { num_leaves = 127, min_data_in_leaf = 5 }\n", 1))
    assert mlyard_process("ingest", "data", cwd=churn, env=env).returncode == 0
    # A generous deadline: LightGBM on a machine whose cores are busy is slow.
    result = subprocess.run([sys.executable, "-m", "mlyard", "train", "-q"], cwd=churn,
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, **env})
    assert result.returncode == 1
    errors = [line for line in result.stderr.strip().splitlines()
              if not line.startswith("mlyard-flush")]  # the flusher's retry notices
    assert len(errors) == 1 and ("no space" in errors[0] or "free disk space" in errors[0]), \
        result.stderr
    assert "Traceback" not in result.stderr
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    listed = mlyard_process("runs", "list", "--json", cwd=churn, env=env)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    # The outcome went into the run's reserved block while the disk was full.
    assert run["status"] == "failed" and "No space left" in run["error"], run


END_ON_A_FULL_DISK = """
import os, sys
from pathlib import Path
import mlyard
ws = mlyard.open_workspace(Path(sys.argv[1]))
run = mlyard.start_run(name="long", workspace=ws, flush_interval=3600.0)
run.flush()  # the run is in the catalog; its points stay buffered
for step in range(20_000):
    run.log_metric("loss", 1.0 / (step + 1), step=step)
filler = Path(sys.argv[2])
try:
    with open(filler, "wb") as out:  # fill the disk
        while True:
            out.write(b"x" * (1 << 16))
except OSError:
    pass
try:
    run.end()
except mlyard.MlyardError as exc:
    print("ended:", exc)
"""


def test_a_run_whose_points_cannot_be_stored_at_the_end_is_not_recorded_finished(
        churn: Path, small_disk: Path) -> None:
    env = {"MLYARD_WORKSPACE": str(small_disk / "ws")}
    assert mlyard_process("data", "list", cwd=churn, env=env).returncode == 0
    done = subprocess.run([sys.executable, "-c", END_ON_A_FULL_DISK, str(churn),
                           str(small_disk / "filler")], cwd=churn, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    assert "ended: run " in done.stdout and "free disk space" in done.stdout, done.stderr
    (small_disk / "filler").unlink()
    listed = mlyard_process("runs", "list", "--json", cwd=churn, env=env)
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    assert run["status"] == "failed", run
    assert "20000 metric points or log lines could not be stored at the end" in run["error"]
