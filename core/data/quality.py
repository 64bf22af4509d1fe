"""Data quality of accepted data and of served traffic: what the contract would flag,
plus constant columns and repeated ids. Ingest refuses files that break the contract;
served requests and accepted files can still carry these, so they are reported (and
alerted on) rather than refused."""

from __future__ import annotations

import polars as pl

from mlyard.core.config import ColumnContract

MIN_ROWS_FOR_CONSTANT = 20  # a handful of rows being equal says nothing


def check_quality(frame: pl.DataFrame, contract: dict[str, ColumnContract],
                  columns: list[str], id_column: str | None) -> list[str]:
    """One line per finding, naming the column and what was expected."""
    findings: list[str] = []
    rows = frame.height
    if rows == 0:
        return findings
    for name in columns:
        if name not in frame.columns:
            continue
        series = frame[name]
        rule = contract.get(name)
        nulls = series.null_count()
        if rule is not None and nulls / rows > rule.max_null_rate:
            findings.append(f"column {name!r}: {nulls / rows:.1%} missing ({nulls} of {rows} "
                            f"rows); the contract allows {rule.max_null_rate:.0%}")
        if rule is not None and rule.type in ("int", "float"):
            findings.extend(_range(name, series, rule))
        if rule is not None and rule.categories is not None:
            unknown = sorted(set(series.cast(pl.String).drop_nulls().unique().to_list())
                             - set(rule.categories))
            if unknown:
                findings.append(f"column {name!r}: new categories {', '.join(unknown[:5])}; "
                                f"the contract knows {', '.join(rule.categories)}")
        if rows >= MIN_ROWS_FOR_CONSTANT and series.drop_nulls().n_unique() == 1:
            findings.append(f"column {name!r}: constant ({series.drop_nulls()[0]!r} in every "
                            "row)")
    if id_column and id_column in frame.columns:
        repeated = rows - frame[id_column].n_unique()
        if repeated:
            findings.append(f"column {id_column!r}: {repeated} repeated id(s)")
    return findings


def _range(name: str, series: pl.Series, rule: ColumnContract) -> list[str]:
    values = series.cast(pl.Float64, strict=False)
    findings = []
    if rule.min is not None:
        below = int((values < rule.min).sum())
        if below:
            findings.append(f"column {name!r}: {below} value(s) below the contract's min "
                            f"{rule.min:g}")
    if rule.max is not None:
        above = int((values > rule.max).sum())
        if above:
            findings.append(f"column {name!r}: {above} value(s) above the contract's max "
                            f"{rule.max:g}")
    return findings
