"""Labels that arrived after their predictions (`mlyard feedback`), kept as they came,
one Parquet file per delivery under `.mlyard/logs/labels/`, so any later comparison (a
shadow's against its champion) can join them again without asking for the file twice.

Every reader wants the newest label per id, so once there are a few deliveries `fold`
replaces them with one file of exactly that: ten deliveries of 1,000,000 labels took
2.5 s to read and reduce at each `feedback`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from mlyard.storage import prediction_files
from mlyard.storage.regular_files import regular

FOLDED = "folded"  # the end of a folded file's name
LOCK = "folding.lock"


def keep(root: Path, labels: pa.Table) -> Path:
    """Write one delivery of labels (an id column and a label column) whole."""
    return prediction_files.write_whole(root, labels)


def paths(root: Path, having: tuple[str, ...]) -> list[Path]:
    """Every delivery that has the columns `having`, oldest first."""
    if not root.is_dir():
        return []
    return [path for path in regular(sorted(root.glob("*" + prediction_files.SUFFIX)))
            if set(having) <= set(pq.read_schema(path).names)]


def fold(root: Path, labels: pa.Table, sources: list[Path]) -> bool:
    """Replace `sources` by one file holding `labels` (what reading them gives), named
    to sort just before the newest of them, so deliveries kept since still come after.
    Written whole before any source goes: a fold cut short leaves sources beside it,
    which read the same. One at a time; a source already gone (another fold) stops it."""
    try:
        with FileLock(root / LOCK, timeout=0):
            if not sources or not all(path.exists() for path in sources):
                return False
            prediction_files.write_whole(root, labels, name=f"{max(sources).stem}-{FOLDED}")
            for path in sources:
                path.unlink(missing_ok=True)
            return True
    except Timeout:
        return False


def deliveries(root: Path, skip: Path | None = None) -> list[pa.Table]:
    """Every delivery but `skip`, oldest first; each keeps its own column types."""
    if not root.is_dir():
        return []
    return [pq.ParquetFile(path).read()  # read_table would load pandas (0.3 s)
            for path in regular(sorted(root.glob("*" + prediction_files.SUFFIX)))
            if path != skip]
