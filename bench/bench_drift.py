"""Drift of 1,000,000 rows x 50 features against a stored reference sketch.

    .venv/bin/python -m bench.bench_drift [--rows 1000000]

The reference is 200,000 rows; half the features numeric (normal, gamma, Poisson), half
categorical (8 to 40 categories); the current data shifts a fifth of them. Timed, as the
median of 3 runs: the sketch of the reference (once, at training time), the comparison
of the current frame already in memory, and the comparison including reading the
current data from its Parquet snapshot. For scale, a naive pass with scipy on the raw
reference (ks_2samp or chi-square per column) on the same data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import psutil

from mlyard.core.models.features import Feature, FeatureSpec
from mlyard.core.models.sketch import sketch_frame
from mlyard.core.monitoring.drift_reports import compare

OUT = Path(__file__).parent / "out" / "drift"
FEATURES = 50


def make_frame(rows: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for index in range(FEATURES // 2):
        shift = shifted and index % 5 == 0
        kind = index % 3
        if kind == 0:
            columns[f"num_{index}"] = rng.normal(0.5 if shift else 0.0, 1.0, rows)
        elif kind == 1:
            columns[f"num_{index}"] = rng.gamma(2.0, 3.0 if shift else 2.0, rows)
        else:
            columns[f"num_{index}"] = rng.poisson(3.0 if shift else 2.0, rows).astype(float)
    for index in range(FEATURES // 2):
        size = 8 + index
        shares = np.arange(1, size + 1, dtype=float)[::-1]
        if shifted and index % 5 == 0:
            shares = shares[::-1]
        names = np.array([f"c{i}" for i in range(size)])
        columns[f"cat_{index}"] = rng.choice(names, rows, p=shares / shares.sum())
    return pl.DataFrame(columns)


def timed(action, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def naive_scipy(reference: pl.DataFrame, current: pl.DataFrame) -> None:
    from scipy import stats

    for name in reference.columns:
        if name.startswith("num_"):
            stats.ks_2samp(reference[name].to_numpy(), current[name].to_numpy())
        else:
            ref = reference[name].value_counts()
            cur = current[name].value_counts()
            joined = ref.join(cur, on=name, how="full", coalesce=True).fill_null(0)
            observed = joined[:, 2].to_numpy()
            expected = joined[:, 1].to_numpy() / joined[:, 1].sum() * observed.sum()
            stats.chisquare(observed, np.maximum(expected, 1e-9))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    reference = make_frame(200_000, 1, shifted=False)
    current = make_frame(args.rows, 2, shifted=True)
    snapshot = OUT / "current.parquet"
    current.write_parquet(snapshot)
    spec = FeatureSpec([Feature(n, "float" if n.startswith("num_") else "category")
                        for n in reference.columns], "y", "int", None, {})
    kinds = {n: "numeric" if n.startswith("num_") else "categorical" for n in reference.columns}
    sketch_s = timed(lambda: sketch_frame(reference, kinds), repeats=1)
    sketch = {"features": sketch_frame(reference, kinds)}
    sketch_bytes = len(json.dumps(sketch))
    compare_s = timed(lambda: compare(sketch, current, spec, {}))
    with_read_s = timed(lambda: compare(sketch, pl.read_parquet(snapshot), spec, {}))
    drifted = [c.column for c in compare(sketch, current, spec, {}) if c.drifted]
    naive_s = timed(lambda: naive_scipy(reference, current), repeats=1)
    print(json.dumps({
        "benchmark": "drift", "rows": args.rows, "features": FEATURES,
        "reference_rows": reference.height, "sketch_s": round(sketch_s, 2),
        "sketch_kb": round(sketch_bytes / 1024), "compare_s": round(compare_s, 2),
        "compare_with_parquet_read_s": round(with_read_s, 2),
        "drifted": len(drifted), "drifted_expected": 10,
        "naive_scipy_s": round(naive_s, 2),
        "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20),
    }))


if __name__ == "__main__":
    main()
