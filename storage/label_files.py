"""Labels that arrived after their predictions (`mlyard feedback`), kept as they came,
one Parquet file per delivery under `.mlyard/logs/labels/`, so any later comparison (a
shadow's against its champion) can join them again without asking for the file twice.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlyard.storage import prediction_files
from mlyard.storage.regular_files import regular


def keep(root: Path, labels: pa.Table) -> Path:
    """Write one delivery of labels (an id column and a label column) whole."""
    return prediction_files.write_whole(root, labels)


def deliveries(root: Path, skip: Path | None = None) -> list[pa.Table]:
    """Every delivery but `skip`, oldest first; each keeps its own column types."""
    if not root.is_dir():
        return []
    return [pq.ParquetFile(path).read()  # read_table would load pandas (0.3 s)
            for path in regular(sorted(root.glob("*" + prediction_files.SUFFIX)))
            if path != skip]
