"""SQL for model versions, aliases and the history of alias moves."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlyard.storage.engine import Connection
from mlyard.storage.errors import NotFound

_VERSION_COLUMNS = "model, version, run_id, model_hash, card_hash, created_at, created_by"


@dataclass
class ModelVersion:
    model: str
    version: int
    run_id: str
    model_hash: str
    card_hash: str
    created_at: float
    created_by: str | None


@dataclass
class AliasMove:
    move_id: int
    model: str
    alias: str
    kind: str  # set | promote | rollback
    from_version: int | None
    to_version: int
    ts: float
    actor: str | None
    reason: str | None


def add_version(con: Connection, model: str, run_id: str, model_hash: str, card_hash: str,
                actor: str | None) -> ModelVersion:
    """The run's version of `model`, created with the next number if it has none yet."""
    row = con.execute(f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? "
                      "AND run_id = ?", [model, run_id]).fetchone()
    if row is not None:
        return ModelVersion(*row)
    (number,) = con.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions "
                            "WHERE model = ?", [model]).fetchone() or (1,)
    version = ModelVersion(model, int(number), run_id, model_hash, card_hash, time.time(), actor)
    con.execute(f"INSERT INTO model_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [version.model, version.version, version.run_id, version.model_hash,
                 version.card_hash, version.created_at, version.created_by])
    return version


def get_version(con: Connection, model: str, version: int) -> ModelVersion:
    row = con.execute(f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? "
                      "AND version = ?", [model, version]).fetchone()
    if row is None:
        raise NotFound(f"model {model!r} has no version {version}")
    return ModelVersion(*row)


def list_versions(con: Connection, model: str) -> list[ModelVersion]:
    rows = con.execute(f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? "
                       "ORDER BY version", [model]).fetchall()
    return [ModelVersion(*row) for row in rows]


def latest_version(con: Connection, model: str) -> ModelVersion:
    versions = list_versions(con, model)
    if not versions:
        raise NotFound(f"model {model!r} has no versions yet; run `mlyard train` first")
    return versions[-1]


def aliases(con: Connection, model: str) -> dict[str, int]:
    return dict(con.execute("SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias",
                            [model]).fetchall())


def move_alias(con: Connection, model: str, alias: str, version: int, kind: str,
               actor: str | None, reason: str | None) -> AliasMove:
    """Point `alias` at `version` and record the move; the caller holds the lock."""
    current = aliases(con, model).get(alias)
    now = time.time()
    con.execute("INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (model, alias) DO UPDATE "
                "SET version = excluded.version, updated_at = excluded.updated_at",
                [model, alias, version, now])
    row = con.execute(
        "INSERT INTO alias_moves (model, alias, kind, from_version, to_version, ts, actor, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING move_id",
        [model, alias, kind, current, version, now, actor, reason]).fetchone()
    return AliasMove(int(row[0]) if row else 0, model, alias, kind, current, version, now,
                     actor, reason)


def alias_history(con: Connection, model: str, alias: str | None = None) -> list[AliasMove]:
    rows = con.execute(
        "SELECT move_id, model, alias, kind, from_version, to_version, ts, actor, reason "
        "FROM alias_moves WHERE model = ? AND (? IS NULL OR alias = ?) ORDER BY move_id",
        [model, alias, alias]).fetchall()
    return [AliasMove(*row) for row in rows]


def record_inputs(con: Connection, run_id: str,
                  inputs: list[tuple[str, int, str]]) -> None:
    """The dataset versions (dataset, seq, snapshot hash) a run was trained on."""
    con.executemany("INSERT INTO run_inputs VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(run_id, *item) for item in inputs])


@dataclass(frozen=True)
class RunInput:
    """A dataset version a training run read."""

    dataset: str
    seq: int
    snapshot_hash: str

    @property
    def ref(self) -> str:
        return f"{self.dataset}:v{self.seq}"


def run_inputs(con: Connection, run_id: str) -> list[RunInput]:
    rows = con.execute("SELECT dataset, seq, snapshot_hash FROM run_inputs WHERE run_id = ? "
                       "ORDER BY dataset, seq", [run_id]).fetchall()
    return [RunInput(*row) for row in rows]
