"""A file read and checked the way ingest would, with nothing stored: what `mlyard drift
--file` compares, so a new batch can be judged before it joins the project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mlyard.core.data.contract import ContractChecker
from mlyard.core.data.reader import columns_of, read_batches
from mlyard.core.data.sniff import sniff
from mlyard.core.data.versions import current_contract
from mlyard.core.errors import IngestRefused, UsageError
from mlyard.core.workspace import Workspace


@dataclass(frozen=True)
class CheckedFile:
    rows: pl.DataFrame  # typed and cleaned as ingest would store them
    warnings: list[str]  # what ingest would warn about


def read_checked(ws: Workspace, path: Path) -> CheckedFile:
    """Raises IngestRefused naming every problem, as ingest would (the file is only read:
    it is neither quarantined nor changed); the target may be missing, as in rows whose
    labels are not known yet."""
    contract = current_contract(ws)
    if not contract:
        raise UsageError(f"{path}: the project has no contract yet to read it by; ingest "
                         "data (or write [data.columns]) first")
    sniffed = sniff(path)
    columns = columns_of(sniffed)
    if ws.config.data.target not in columns:  # new rows whose labels come later
        contract = {name: rule for name, rule in contract.items()
                    if name != ws.config.data.target}
    checker = ContractChecker(contract, ws.config.data, ws.config.train.task, sniffed,
                              columns)
    parts = [typed for batch in read_batches(sniffed)
             if (typed := checker.check(batch)) is not None]
    warnings = checker.finish()
    if not parts or not sum(part.height for part in parts):
        raise IngestRefused(f"{path}: has no data rows")
    return CheckedFile(pl.concat(parts), sniffed.warnings + warnings)
