"""The catalog side of `mlyard sync`: what a workspace holds, in a form two workspaces can
compare cheaply, and the rows that carry it from one to the other.

A run is compared by a fingerprint (its status, end, and how many rows of each kind it
owns), so a sync of 10,000 runs that changed nothing reads a few aggregates instead of
every metric point. Rows go in by `apply`, in one transaction: a sync that dies midway
leaves the catalog as it was before that transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlyard.storage.bundle_store import (
    RUN_TABLES,
    add_dataset,
    add_dataset_version,
    insert_row,
    insert_rows,
    select_rows,
)
from mlyard.storage.engine import Connection
from mlyard.storage.errors import CatalogError


@dataclass(frozen=True)
class RunEntry:
    """One run as `mlyard sync` compares it."""

    run_id: str
    status: str
    fingerprint: str  # equal on both sides when they hold the same rows
    mirrored_from: str | None  # the sync tag's value: this copy came from there
    rows: int  # its rows in every table, which is what sending it costs


def run_entries(con: Connection, sync_tag: str, id_tag: str) -> list[RunEntry]:
    """Every run with its fingerprint; `sync_tag` and `id_tag` (which each side sets on
    its own copy) are left out of the fingerprint, so the two copies of a run compare
    equal."""
    counts = " ".join(
        f"LEFT JOIN (SELECT run_id, count(*) AS n{i}, max({column}) AS m{i} FROM {table} "
        f"{'WHERE key NOT IN ($tag, $id_tag) ' if table == 'tags' else ''}GROUP BY run_id) "
        f"t{i} USING (run_id)"
        for i, (table, column) in enumerate(_COUNTED.items()))
    rows = con.execute(
        f"SELECT r.run_id, r.status, concat_ws('|', r.status, r.end_time, r.heartbeat, "
        f"{', '.join(f'coalesce(n{i}, 0), m{i}' for i in range(len(_COUNTED)))}), s.value, "
        f"{' + '.join(f'coalesce(n{i}, 0)' for i in range(len(_COUNTED)))} "
        f"FROM runs r {counts} "
        "LEFT JOIN (SELECT run_id, value FROM tags WHERE key = $tag) s USING (run_id) "
        "ORDER BY r.start_time, r.run_id", {"tag": sync_tag, "id_tag": id_tag}).fetchall()
    return [RunEntry(*row) for row in rows]


# table -> a column whose maximum changes when a row is added (with the count, enough to
# tell an updated copy from the same one)
_COUNTED = {"params": "key", "tags": "key", "metrics": "ts", "artifacts": "object_hash",
            "run_inputs": "snapshot_hash", "run_logs": "seq"}


_STREAMS = ("metrics", "run_logs")  # a run's tables without a primary key
# Membership in a list of ids, as a join: list_contains scans the list for every row.
_IN = "IN (SELECT unnest(?::VARCHAR[]))"


def model_entries(con: Connection, model: str) -> list[dict[str, Any]]:
    return select_rows(con, "SELECT * FROM model_versions WHERE model = ? ORDER BY version",
                       [model])


def dataset_entries(con: Connection) -> list[dict[str, Any]]:
    """Every dataset version's identity (its source's hash) and snapshot."""
    return select_rows(con, "SELECT dataset, seq, source_hash, snapshot_hash "
                       "FROM dataset_versions ORDER BY dataset, seq", [])


def aliases(con: Connection, model: str) -> dict[str, str]:
    """alias -> the run id of the version it points at (numbers differ between sides)."""
    return dict(con.execute("SELECT a.alias, v.run_id FROM aliases a JOIN model_versions v "
                            "ON a.model = v.model AND a.version = v.version "
                            "WHERE a.model = ? ORDER BY a.alias", [model]).fetchall())


def export_rows(con: Connection, run_ids: list[str], dataset_keys: list[tuple[str, int]],
                model_run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of these runs; the model versions of `model_run_ids`; these dataset
    versions and those the runs were trained on, with their datasets."""
    rows = {table: select_rows(con, f"SELECT * FROM {table} WHERE {column} {_IN}", [run_ids])
            for table, column in RUN_TABLES.items()}
    rows["model_versions"] = select_rows(
        con, f"SELECT * FROM model_versions WHERE run_id {_IN} ORDER BY version",
        [model_run_ids])
    wanted = set(dataset_keys) | {(r["dataset"], r["seq"]) for r in rows["run_inputs"]}
    names = sorted({name for name, _ in wanted})
    rows["datasets"] = select_rows(con, f"SELECT * FROM datasets WHERE name {_IN}",
                                   [names])
    rows["dataset_versions"] = [
        row for row in select_rows(
            con, f"SELECT * FROM dataset_versions WHERE dataset {_IN} "
            "ORDER BY dataset, seq", [names])
        if (row["dataset"], row["seq"]) in wanted]
    return rows


def apply(con: Connection, rows: dict[str, list[dict[str, Any]]], replace: list[str],
          model: str, project: str, tags: dict[str, str], owner_tags: tuple[str, str],
          version_artifacts: dict[str, str]) -> dict[str, Any]:
    """Add what `export_rows` gave, as this catalog's: runs under `project`, model versions
    under `model` with this catalog's next numbers, dataset versions matched by their
    source's hash (or numbered next). Runs in `replace` are copies from the same place
    that changed there: their rows are swapped for the new ones. `tags` go on every run;
    among them `owner_tags`, the sender's location and identity, which every copy keeps.

    Returns what was added: runs, model versions (`model/N` with the source's number)
    and dataset versions.

    Raises CatalogError, before writing anything, when a row would touch a run of this
    catalog that is not a copy from the sender (by its identity), or belongs to no run sent,
    or a model version's objects are not its run's (`version_artifacts`: a version's
    column -> the run artifact it must equal, the model and its card).
    """
    _check_ownership(con, rows, replace, owner_tags, tags)
    _check_models_are_their_runs(con, rows, version_artifacts)
    # Rows with a key are written over (DuckDB refuses a key deleted and inserted again in
    # one transaction); the streams without one are deleted and written again.
    for table in _STREAMS if replace else ():
        con.execute(f"DELETE FROM {table} WHERE run_id {_IN}", [replace])
    for dataset in rows["datasets"]:
        add_dataset(con, dataset)
    renumbered, new = {}, []
    for version in rows["dataset_versions"]:
        seq, added_now = add_dataset_version(con, version)
        renumbered[(version["dataset"], version["seq"])] = seq
        if added_now:
            new.append(f"{version['dataset']}:v{seq}")
    for table in RUN_TABLES:
        insert_rows(con, table, [
            {**row, "project": project} if table == "runs" else
            {**row, "seq": renumbered[(row["dataset"], row["seq"])]} if table == "run_inputs"
            else row for row in rows[table]], replace=table not in _STREAMS)
    con.execute("INSERT INTO tags SELECT r.run_id, t.key, t.value "
                "FROM (SELECT unnest(?::VARCHAR[]) AS run_id) r, "
                "(SELECT unnest(?::VARCHAR[]) AS key, unnest(?::VARCHAR[]) AS value) t "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                [[run["run_id"] for run in rows["runs"]], list(tags), list(tags.values())])
    added = []
    for version in rows["model_versions"]:
        if con.execute("SELECT 1 FROM model_versions WHERE model = ? AND run_id = ?",
                       [model, version["run_id"]]).fetchone():
            continue
        (number,) = con.execute("SELECT coalesce(max(version), 0) + 1 FROM model_versions "
                                "WHERE model = ?", [model]).fetchone() or (1,)
        insert_row(con, "model_versions", {**version, "model": model, "version": number})
        added.append((f"{version['model']}/{version['version']}", f"{model}/{number}"))
    return {"runs": [run["run_id"] for run in rows["runs"]], "model_versions": added,
            "dataset_versions": new}


def _check_models_are_their_runs(con: Connection, rows: dict[str, list[dict[str, Any]]],
                                 version_artifacts: dict[str, str]) -> None:
    """A model version is the model its run trained, with the card its run wrote (the
    run's artifacts, here or sent with it): a version pinned to a run with another model
    (a useless model borrowing a good run's metrics) or another card (classes swapped, so
    the same trees read inverted) is refused by name."""
    names = list(version_artifacts.values())
    runs = [str(v.get("run_id")) for v in rows["model_versions"]]
    logged = {(str(run_id), str(name)): digest for run_id, name, digest in con.execute(
        f"SELECT run_id, name, object_hash FROM artifacts WHERE name {_IN} AND run_id {_IN}",
        [names, runs]).fetchall()}
    logged.update({(str(a.get("run_id")), str(a.get("name"))): a.get("object_hash")
                   for a in rows["artifacts"]})
    for version in rows["model_versions"]:
        run_id = str(version.get("run_id"))
        for column, name in version_artifacts.items():
            if logged.get((run_id, name)) != version.get(column):
                raise CatalogError(
                    f"model version {version.get('model')}/{version.get('version')} is not "
                    f"the model its run {run_id[:8]} trained (the run's {name} differs); "
                    "refused")


def _check_ownership(con: Connection, rows: dict[str, list[dict[str, Any]]],
                     replace: list[str], owner_tags: tuple[str, str],
                     sender: dict[str, str]) -> None:
    """Sync only adds runs, or updates copies made from the same sender (known by its
    identity; a copy from before identities, by its location): never this catalog's
    own runs, nor another remote's copies."""
    location_tag, id_tag = owner_tags
    sent, updating = {str(run["run_id"]) for run in rows["runs"]}, set(replace)
    here = {run_id: (location, identity) for run_id, location, identity in con.execute(
        "SELECT r.run_id, l.value, i.value FROM runs r "
        "LEFT JOIN tags l ON l.run_id = r.run_id AND l.key = ? "
        f"LEFT JOIN tags i ON i.run_id = r.run_id AND i.key = ? WHERE r.run_id {_IN}",
        [location_tag, id_tag, sorted(sent)]).fetchall()}
    for run_id, (location, identity) in sorted(here.items()):
        if run_id not in updating or location is None:
            raise CatalogError(f"run {run_id} is already here and is not a copy from "
                               "elsewhere; a sync never writes into it")
        same = identity == sender[id_tag] if identity else location == sender[location_tag]
        if not same:
            raise CatalogError(f"run {run_id} here is a copy from {location}, not from "
                               f"{sender[location_tag]}; only a sync with that workspace "
                               "updates it")
    for table in RUN_TABLES:
        for row in rows[table]:
            if row.get("run_id") not in sent:
                raise CatalogError(f"a row of {table} names run {str(row.get('run_id'))[:12]!r}"
                                   ", which was not sent with it")
    known = sent | {run_id for (run_id,) in con.execute(
        f"SELECT run_id FROM runs WHERE run_id {_IN}",
        [[str(v.get("run_id")) for v in rows["model_versions"]]]).fetchall()}
    for version in rows["model_versions"]:
        if version.get("run_id") not in known:
            raise CatalogError(f"model version {version.get('model')}/{version.get('version')}"
                               f" names run {str(version.get('run_id'))[:12]!r}, which is "
                               "neither here nor sent")
