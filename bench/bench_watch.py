"""A burst of 1,000 files into a folder watched by `mlyard daemon`.

    .venv/bin/python -m bench.bench_watch [--files 1000]

The daemon runs as its own process with `on_new_data = "promote"`, a 0.5 s settle time
and a 5 s debounce. The six churn sample batches (21,600 rows) are cut into 1,000 CSV
files written as fast as Python can; each is written under a `.part` name and renamed,
as uploaders do. Reported: the time until every file is a dataset version, files/s,
how many retrains the burst caused (the point: one), and the time to the promoted model.

Beside it, in the same run, the floor: a plain loop over the same files doing the least
an ingest can (polars `read_csv`, `write_parquet`, one DuckDB insert per file into one
open catalog), and the ratio of the daemon's files/s to it; and where a file's time goes
inside mlyard, piece by piece: the same files ingested in this process on one thread
under cProfile, each piece's cumulative milliseconds per file (cProfile's own overhead
included, so read them as shares).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import psutil

from mlyard.core.automation import jobs
from mlyard.core.data import lookahead, versions
from mlyard.core.data.ingest import ingest_files
from mlyard.core.workspace import open_workspace

HERE = Path(__file__).parent
OUT = HERE / "out" / "watch"
REPO = HERE.parent
SAMPLE = REPO / "sample_data" / "churn"


def build_project(name: str = "project", on_new_data: str = "promote") -> Path:
    project = OUT / name
    shutil.rmtree(project, ignore_errors=True)
    (project / "incoming").mkdir(parents=True)
    config = (SAMPLE / "mlyard.toml").read_text()
    config = config.replace('watch = ["data"]', 'watch = ["incoming"]')
    # Small slices have noisier null rates than whole batches; the burst is about volume.
    config = re.sub(r"max_null_rate = [0-9.]+", "max_null_rate = 1", config)
    config = config.replace("[train]\n", "[train]\nnum_boost_round = 100\n")
    config += ('\n[automation]\nsettle_seconds = 0.5\ndebounce_seconds = 5\n'
               f'on_new_data = "{on_new_data}"\n')
    (project / "mlyard.toml").write_text(config)
    return project


def slices(count: int) -> list[str]:
    header = ""
    rows: list[str] = []
    for path in sorted((SAMPLE / "data").glob("*.csv")):
        header, *lines = path.read_text().splitlines()
        rows.extend(lines)
    size = len(rows) // count
    return ["\n".join([header, *rows[i * size:(i + 1) * size]]) + "\n" for i in range(count)]


def plain_loop(texts: list[str]) -> float:
    """Files/s of the minimum per file, on the same texts (written first, not timed)."""
    folder = OUT / "plain"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    paths = []
    for index, text in enumerate(texts):
        path = folder / "in" / f"slice-{index:05d}.csv"
        path.write_text(text)
        paths.append(path)
    con = duckdb.connect(str(folder / "catalog.duckdb"))
    con.execute("CREATE TABLE versions (seq INTEGER, source VARCHAR, rows BIGINT)")
    started = time.perf_counter()
    for seq, path in enumerate(paths):
        frame = pl.read_csv(path)
        frame.write_parquet(folder / "out" / f"{seq}.parquet")
        con.execute("INSERT INTO versions VALUES (?, ?, ?)", [seq, str(path), frame.height])
    elapsed = time.perf_counter() - started
    con.close()
    return len(paths) / elapsed


# (label, file name ending, function name) of the pieces of a file's ingest
PIECES = [("hash the source", "storage/objects.py", "hash_file"),
          ("sniff the file", "core/data/sniff.py", "sniff"),
          ("read and check, small files together", "core/data/small_files.py", "group"),
          ("check: the file's end", "core/data/contract.py", "finish"),
          ("snapshots written and made durable", "core/data/snapshot.py", "store_all_held"),
          ("  of which fsync", "~", "<built-in method posix.fsync>"),
          ("profile, small files together", "core/data/profile.py", "profile_frames"),
          ("catalog units of work", "storage/catalog.py", "session"),
          ("check and store, whole", "core/data/ingest.py", "_check_and_store_many")]


def pieces(texts: list[str]) -> dict[str, float]:
    """Milliseconds per file of each piece, the same files ingested here on one thread."""
    project = build_project("pieces")
    for index, text in enumerate(texts):
        (project / "incoming" / f"slice-{index:05d}.csv").write_text(text)
    paths = sorted((project / "incoming").glob("*.csv"))
    ws = open_workspace(project)
    workers, lookahead.WORKERS = lookahead.WORKERS, 1  # every piece on this thread
    profiler = cProfile.Profile()
    started = time.perf_counter()
    try:
        profiler.enable()
        outcomes = list(ingest_files(ws, paths))
        profiler.disable()
    finally:
        lookahead.WORKERS = workers
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    per_file = {"whole ingest, under cProfile": elapsed * 1000 / len(outcomes)}
    for label, ending, name in PIECES:
        seconds = sum(entry[3] for (file, _, function), entry in stats.items()
                      if file.endswith(ending) and function == name)
        per_file[label] = seconds * 1000 / len(outcomes)
    return {label: round(ms, 2) for label, ms in per_file.items()}


ROUNDS = 3  # interleaved rounds of the daemon against the plain loop


def burst(project: Path, texts: list[str], wait_for_promotion: bool) -> dict[str, object]:
    """Write the files into a watched folder of `mlyard daemon` and time their ingest."""
    daemon = subprocess.Popen([sys.executable, "-m", "mlyard", "daemon"], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ws = open_workspace(project)
    promoted = 0.0
    try:
        time.sleep(2.0)  # the daemon is up and watching
        started = time.perf_counter()
        started_at = time.time()
        for index, text in enumerate(texts):
            part = project / "incoming" / f"slice-{index:05d}.csv.part"
            part.write_text(text)
            part.rename(part.with_suffix(""))
        written = time.perf_counter() - started
        peak_rss = 0
        while _versions(ws) < len(texts):
            peak_rss = max(peak_rss, psutil.Process(daemon.pid).memory_info().rss)
            time.sleep(0.5)
        if wait_for_promotion:
            while not any(j.step == "promote" and j.status != "running"
                          for j in jobs.list_jobs(ws, 10_000)):
                time.sleep(0.5)
            promoted = time.perf_counter() - started
            time.sleep(8.0)  # longer than the debounce: would a second retrain follow?
        history = jobs.list_jobs(ws, 10_000)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    ingests = sorted((j for j in history if j.step == "ingest"), key=lambda j: j.started_at)
    # Every file is a version once the last ingest job has ended (its versions are
    # committed before it ends): timed from its end rather than by the half-second poll.
    ingested = max(j.ended_at or 0.0 for j in ingests) - started_at
    # From the first ingest job's start to the last one's end: without the settle time
    # and the writing of the burst.
    ingesting = (ingests[-1].ended_at or 0.0) - ingests[0].started_at
    trains = [j for j in history if j.step == "train"]
    return {"rows": sum(v.rows for v in versions.list_versions(ws)),
            "write_s": round(written, 2), "all_ingested_s": round(ingested, 1),
            "files_per_s": round(len(texts) / ingested, 1),
            "ingest_jobs_s": round(ingesting, 1),
            "files_per_s_in_jobs": round(len(texts) / ingesting, 1),
            "ingest_jobs": len(ingests),
            "retrains": len(trains), "retrain_status": [j.status for j in trains],
            "promoted_after_s": round(promoted, 1),
            "daemon_peak_rss_mb": round(peak_rss / 2**20)}


def interleaved(texts: list[str]) -> dict[str, object]:
    """The daemon (ingest only) and the plain loop, alternating, ROUNDS times: the
    machine's speed wanders (the loop alone measured 184 to 328 files/s within an hour),
    so each ratio is taken within a round and the median reported."""
    rounds = []
    for index in range(ROUNDS):
        order = ["loop", "daemon"] if index % 2 == 0 else ["daemon", "loop"]
        measured: dict[str, object] = {}
        for name in order:
            if name == "loop":
                measured["loop"] = plain_loop(texts)
            else:
                measured["daemon"] = burst(build_project("round", "ingest"), texts, False)
        daemon = measured["daemon"]
        assert isinstance(daemon, dict) and isinstance(measured["loop"], float)
        rounds.append({"plain_loop_files_per_s": round(measured["loop"], 1),
                       "daemon_files_per_s": daemon["files_per_s"],
                       "daemon_files_per_s_in_jobs": daemon["files_per_s_in_jobs"],
                       "ratio": round(daemon["files_per_s"] / measured["loop"], 2),
                       "ratio_in_jobs": round(daemon["files_per_s_in_jobs"] /
                                              measured["loop"], 2)})
    return {"rounds": rounds,
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "median_ratio_in_jobs": statistics.median(r["ratio_in_jobs"] for r in rounds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    texts = slices(args.files)
    result = burst(build_project(), texts, wait_for_promotion=True)
    floor = plain_loop(texts)
    print(json.dumps({
        "benchmark": "watch", "files": args.files, **result,
        "plain_loop_files_per_s": round(floor, 1),
        "ratio_to_plain_loop": round(float(result["files_per_s"]) / floor, 2),  # type: ignore[arg-type]
        "ratio_in_jobs_to_plain_loop": round(
            float(result["files_per_s_in_jobs"]) / floor, 2),  # type: ignore[arg-type]
        "plain_loop_ms_per_file": round(1000 / floor, 2),
        "mlyard_ms_per_file_by_piece": pieces(texts),
        "interleaved": interleaved(texts),
    }))


def _versions(ws) -> int:  # type: ignore[no-untyped-def]
    """How many versions exist, cheaply: the poll must not slow what it measures (listing
    them all decodes every profile, seconds of the daemon's lock at 1,000 versions)."""
    with ws.catalog.session() as con:
        return int(con.execute("SELECT count(*) FROM dataset_versions").fetchone()[0])


if __name__ == "__main__":
    main()
