"""mlyard drift against Evidently's DataDriftPreset on the same frames, with the exact
statistic as the judge.

    .venv/bin/python bench/bench_evidently.py [--rows 100000 1000000]

Needs Evidently in its own venv (skips with a message otherwise):

    python3 -m venv bench/.evidently-venv
    bench/.evidently-venv/bin/pip install evidently==0.7.23 "pandas<3" psutil

The reference is 200,000 rows x 50 features; the current frame shifts its columns by a
spectrum of amounts (none to clearly drifted), so some decisions sit near the 0.1
threshold where the two tools can disagree. Each tool runs as its own process over the
same Parquet files: time (reading the data included; mlyard also sketches the reference,
which it normally does once at training time) and peak RSS. Per column, both decisions
are compared with the exact statistic (scipy's Wasserstein distance / reference std,
Jensen-Shannon distance on the exact shares).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "evidently"
EVIDENTLY_PYTHON = HERE / ".evidently-venv" / "bin" / "python"
FEATURES = 50
REFERENCE_ROWS = 200_000
THRESHOLD = 0.1


def make_frames(rows: int) -> tuple[Path, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    reference_path, current_path = OUT / "reference.parquet", OUT / f"current_{rows}.parquet"
    if not reference_path.exists():
        frame(REFERENCE_ROWS, 1, shifted=False).write_parquet(reference_path)
    if not current_path.exists():
        frame(rows, 2, shifted=True).write_parquet(current_path)
    return reference_path, current_path


def frame(rows: int, seed: int, shifted: bool):  # type: ignore[no-untyped-def]
    """Numeric columns shifted by 0 to 0.24 standard deviations, categorical ones tilted
    by 0 to 24%: a spectrum across the threshold."""
    import polars as pl

    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for index in range(FEATURES // 2):
        amount = index * 0.01 if shifted else 0.0
        if index % 2:
            columns[f"num_{index}"] = rng.normal(amount, 1.0, rows)
        else:  # a long tail: lognormal with a few far outliers
            values = rng.lognormal(0.0, 0.8, rows) + amount
            values[rng.integers(0, rows, rows // 2000)] *= 50
            columns[f"num_{index}"] = values
    for index in range(FEATURES // 2):
        size = 4 + index % 12
        shares = np.arange(1, size + 1, dtype=float)[::-1]
        shares /= shares.sum()
        tilt = index * 0.01 if shifted else 0.0
        moved = shares * (1 - tilt) + np.eye(size)[-1] * tilt
        names = np.array([f"c{i}" for i in range(size)])
        columns[f"cat_{index}"] = rng.choice(names, rows, p=moved / moved.sum())
    return pl.DataFrame(columns)


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_mlyard(reference_path: Path, current_path: Path) -> dict[str, object]:
    import polars as pl

    from mlyard.core.models.features import Feature, FeatureSpec
    from mlyard.core.models.sketch import sketch_frame
    from mlyard.core.monitoring.drift_reports import compare

    started = time.perf_counter()
    reference = pl.read_parquet(reference_path)
    kinds = {n: "numeric" if n.startswith("num_") else "categorical" for n in reference.columns}
    sketch = {"features": sketch_frame(reference, kinds)}
    del reference
    sketched = time.perf_counter()
    spec = FeatureSpec([Feature(n, "float" if n.startswith("num_") else "category")
                        for n in kinds], "y", "int", None, {})
    columns = compare(sketch, pl.read_parquet(current_path), spec, {})
    done = time.perf_counter()
    return {"seconds": round(done - started, 2), "sketch_seconds": round(sketched - started, 2),
            "compare_seconds": round(done - sketched, 2), "peak_rss_mb": peak_rss_mb(),
            "columns": {c.column: {"method": c.method, "value": c.statistic,
                                   "drifted": c.drifted} for c in columns}}


def run_evidently(reference_path: Path, current_path: Path) -> dict[str, object]:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    result = Report([DataDriftPreset()]).run(current, reference).dict()
    done = time.perf_counter()
    columns = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        method, value = config["method"], float(metric["value"])
        p_value = "p_value" in method.lower() or "test" in method.lower()
        drifted = value < config["threshold"] if p_value else value >= config["threshold"]
        columns[config["column"]] = {"method": method, "value": value, "drifted": drifted}
    return {"seconds": round(done - started, 2), "peak_rss_mb": peak_rss_mb(),
            "columns": columns}


def exact(reference_path: Path, current_path: Path) -> dict[str, float]:
    import polars as pl
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    reference, current = pl.read_parquet(reference_path), pl.read_parquet(current_path)
    figures = {}
    for name in reference.columns:
        ref, cur = reference[name], current[name]
        if name.startswith("num_"):
            raw = ref.to_numpy()
            figures[name] = float(stats.wasserstein_distance(raw, cur.to_numpy()) / raw.std())
        else:
            levels = sorted(set(ref.unique()) | set(cur.unique()))
            ref_counts = ref.value_counts().to_dict(as_series=False)
            cur_counts = cur.value_counts().to_dict(as_series=False)
            share = dict(zip(ref_counts[name], ref_counts["count"], strict=True))
            later = dict(zip(cur_counts[name], cur_counts["count"], strict=True))
            p = np.array([share.get(v, 0) for v in levels], dtype=float)
            q = np.array([later.get(v, 0) for v in levels], dtype=float)
            figures[name] = float(jensenshannon(p / p.sum(), q / q.sum()))
    return figures


def child(side: str, rows: int) -> dict[str, object]:
    python = str(EVIDENTLY_PYTHON) if side == "evidently" else sys.executable
    done = subprocess.run([python, __file__, "--side", side, "--rows", str(rows)],
                          check=True, capture_output=True, text=True, cwd=HERE.parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_sides(rows: int) -> dict[str, object]:
    reference_path, current_path = make_frames(rows)
    ours, theirs = child("mlyard", rows), child("evidently", rows)
    truth = exact(reference_path, current_path)
    agree, disagreements = 0, []
    for name, figure in truth.items():
        mine, other = ours["columns"][name], theirs["columns"][name]  # type: ignore[index]
        if mine["drifted"] == other["drifted"]:
            agree += 1
            continue
        right = "mlyard" if mine["drifted"] == (figure > THRESHOLD) else "evidently"
        disagreements.append({"column": name, "exact": round(figure, 4),
                              "mlyard": round(mine["value"], 4),
                              "evidently": round(other["value"], 4), "right": right})
    return {"benchmark": "drift vs evidently", "rows": rows, "features": FEATURES,
            "reference_rows": REFERENCE_ROWS,
            "mlyard": {k: v for k, v in ours.items() if k != "columns"},
            "evidently": {k: v for k, v in theirs.items() if k != "columns"},
            "decisions_agree": agree, "disagreements": disagreements,
            "drifted": {"mlyard": sum(c["drifted"] for c in ours["columns"].values()),  # type: ignore[union-attr]
                        "evidently": sum(c["drifted"] for c in theirs["columns"].values()),  # type: ignore[union-attr]
                        "exact": sum(f > THRESHOLD for f in truth.values())}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--side", choices=["mlyard", "evidently"])
    args = parser.parse_args()
    if args.side:
        reference_path = OUT / "reference.parquet"
        current_path = OUT / f"current_{args.rows[0]}.parquet"
        run = run_mlyard if args.side == "mlyard" else run_evidently
        print(json.dumps(run(reference_path, current_path)))
        return
    if not EVIDENTLY_PYTHON.exists():
        print(f"skipped: {EVIDENTLY_PYTHON} not found; create it as this file's docstring "
              "says to compare with Evidently")
        return
    for rows in args.rows:
        print(json.dumps(compare_sides(rows)))


if __name__ == "__main__":
    main()
