"""The model registry: versions made from runs, and aliases that point at them.

Aliases work like MLflow's current registry: `champion`, `challenger` or any name points
at one version of the project's model. Every move is recorded with who, when and why,
and `champion` can be rolled back to the version it replaced. A reference like
`models:/churn@champion`, `churn/3`, `@challenger` or `3` resolves everywhere a model is
named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlyard.core.errors import MlyardError, NotFound, UsageError
from mlyard.core.models.card import ModelCard, read_card
from mlyard.core.models.gates import is_imported
from mlyard.core.tracking import artifacts
from mlyard.core.tracking.evaluation import DEFAULT_METRIC
from mlyard.core.tracking.provenance import current_user
from mlyard.core.tracking.run_queries import stored_segments
from mlyard.core.tracking.segments import SegmentFigures
from mlyard.core.workspace import Workspace
from mlyard.storage import meta_store, models_store, runs_store
from mlyard.storage.engine import Connection
from mlyard.storage.models_store import AliasMove as AliasMove  # the UI shows these
from mlyard.storage.models_store import ModelVersion as ModelVersion

_NUMBER_RE = re.compile(r"^v?(\d+)$")
_ALIAS_RE = re.compile(r"^[A-Za-z][\w.-]*$")


@dataclass
class ModelDetail:
    version: ModelVersion
    aliases: list[str]
    metrics: dict[str, float | None]
    card: ModelCard
    segments: SegmentFigures | None = None  # holdout figures per group of each segment


def model_name(ws: Workspace) -> str:
    return ws.config.project.name


def register(ws: Workspace, run_ref: str) -> ModelVersion:
    """Make a finished training run a model version (once; again returns the same)."""
    with ws.catalog.session() as con:
        run_id = runs_store.resolve_run_id(con, run_ref, ws.project)
        hashes = runs_store.artifact_hashes(con, run_id)
        if artifacts.MODEL not in hashes or artifacts.MODEL_CARD not in hashes:
            raise UsageError(f"run {run_id[:8]} has no {artifacts.MODEL} and "
                             f"{artifacts.MODEL_CARD}; "
                             "only `mlyard train` runs can be registered")
        version = models_store.add_version(con, model_name(ws), run_id,
                                           hashes[artifacts.MODEL],
                                           hashes[artifacts.MODEL_CARD], current_user())
        meta_store.add_event(con, "model.registered", f"{version.model}/{version.version}",
                             current_user(), {"run_id": run_id})
    return version


def resolve(ws: Workspace, ref: str) -> ModelVersion:
    with ws.catalog.session() as con:
        return resolve_in(con, ws, ref)


@dataclass(frozen=True)
class VersionSummary:
    version: ModelVersion
    aliases: list[str]
    metrics: dict[str, float | None]  # holdout metrics, by full key (holdout.auc)


def list_versions(ws: Workspace) -> list[VersionSummary]:
    """Every version with its aliases and holdout metrics, oldest first."""
    with ws.catalog.session() as con:
        versions = models_store.list_versions(con, model_name(ws))
        by_version = _aliases_by_version(con, model_name(ws))
        metrics = _holdout_metrics(con, [v.run_id for v in versions])
    return [VersionSummary(v, by_version.get(v.version, []), metrics.get(v.run_id, {}))
            for v in versions]


def show(ws: Workspace, ref: str) -> ModelDetail:
    with ws.catalog.session() as con:
        version = resolve_in(con, ws, ref)
        aliases = _aliases_by_version(con, version.model).get(version.version, [])
        metrics = _holdout_metrics(con, [version.run_id]).get(version.run_id, {})
        stored = {a.name: a.blake3 for a in runs_store.list_artifacts(con, version.run_id)}
    card = read_card(ws.objects.read_bytes(version.card_hash),
                     f"{version.model}/{version.version}")
    return ModelDetail(version, aliases, metrics, card, stored_segments(ws, stored))


def set_alias(ws: Workspace, alias: str, ref: str, reason: str | None = None) -> AliasMove:
    """Point `alias` at a version, without gates (promotion to champion has its own)."""
    ws.check_writable(f"move alias {alias}")
    if not _ALIAS_RE.match(alias):
        raise UsageError(f"alias {alias!r}: use letters, digits, '.', '-' or '_', "
                         "starting with a letter")
    if alias == "champion":
        raise UsageError("champion moves only through `mlyard models promote` (gates) "
                         "or `mlyard models rollback`")
    with ws.catalog.session() as con:
        version = resolve_in(con, ws, ref)
        move = models_store.move_alias(con, version.model, alias, version.version, "set",
                                       current_user(), reason)
        log_move(con, move)
    return move


def champion(ws: Workspace) -> ModelVersion | None:
    """The version `champion` points at, if any."""
    with ws.catalog.session() as con:
        number = models_store.aliases(con, model_name(ws)).get("champion")
        return None if number is None else models_store.get_version(con, model_name(ws),
                                                                    number)


def imported(ws: Workspace, ref: str) -> bool:
    """Whether version `ref` came from another workspace (its metrics are then claims)."""
    with ws.catalog.session() as con:
        return is_imported(con, resolve_in(con, ws, ref))


def rollback(ws: Workspace, reason: str | None = None) -> AliasMove:
    """Move champion back to the version it replaced most recently (not undone already)."""
    ws.check_writable("roll back champion")
    with ws.catalog.session() as con:
        model = model_name(ws)
        stack: list[int] = []
        for move in models_store.alias_history(con, model, "champion"):
            if move.kind == "rollback":
                stack.pop()
            else:
                stack.append(move.to_version)
        if len(stack) < 2:
            raise UsageError(f"model {model!r} has no earlier champion to roll back to")
        move = models_store.move_alias(con, model, "champion", stack[-2], "rollback",
                                       current_user(), reason)
        log_move(con, move)
    return move


@dataclass(frozen=True)
class ModelsView:
    """The Models screen's table and its alias history."""

    rows: list[VersionSummary]
    history: list[AliasMove]


def models_view(ws: Workspace) -> ModelsView:
    return ModelsView(list_versions(ws), history(ws))


def history(ws: Workspace, alias: str | None = None) -> list[AliasMove]:
    with ws.catalog.session() as con:
        return models_store.alias_history(con, model_name(ws), alias)


def resolve_in(con: Connection, ws: Workspace, ref: str) -> ModelVersion:
    model = model_name(ws)
    text = ref.strip().removeprefix("models:/")
    named, alias, number = None, None, None
    if "@" in text:
        named, alias = text.split("@", 1)
    elif "/" in text:
        named, number = text.rsplit("/", 1)
    elif _NUMBER_RE.match(text):
        number = text
    else:
        alias = text
    if named and named != model:
        raise NotFound(f"model {named!r} is not in this project (its model is {model!r})")
    if alias == "latest":
        return models_store.latest_version(con, model)
    if alias is not None:
        if not _ALIAS_RE.match(alias):
            raise UsageError(f"model reference {ref!r}: expected 3, churn/3, @champion, "
                             "churn@champion or models:/churn@champion")
        found = models_store.aliases(con, model).get(alias)
        if found is None:
            raise NotFound(f"model {model!r} has no alias {alias!r}")
        return models_store.get_version(con, model, found)
    match = _NUMBER_RE.match(number or "")
    if not match:
        raise UsageError(f"model reference {ref!r}: {number!r} is not a version number")
    return models_store.get_version(con, model, int(match.group(1)))


def _aliases_by_version(con: Connection, model: str) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for alias, number in models_store.aliases(con, model).items():
        grouped.setdefault(number, []).append(alias)
    return grouped


def _holdout_metrics(con: Connection,
                     run_ids: list[str]) -> dict[str, dict[str, float | None]]:
    return {run_id: {k: v for k, v in metrics.items() if k.startswith("holdout.")}
            for run_id, metrics in runs_store.latest_metrics_for(con, run_ids).items()}


def primary_metric(ws: Workspace) -> str:
    """The holdout metric that ranks this project's models."""
    return ws.config.train.metric or DEFAULT_METRIC[ws.config.train.task]


def log_move(con: Connection, move: AliasMove) -> None:
    meta_store.add_event(con, f"alias.{move.kind}", f"{move.model}@{move.alias}", move.actor,
                         {"from": move.from_version, "to": move.to_version,
                          "reason": move.reason})


def run_id_for(ws: Workspace, ref: str) -> str:
    """A run reference (`latest`, an id prefix, a name), or else the run of a model
    reference (`churn/3`, `churn@champion`, `champion`)."""
    try:
        with ws.catalog.session() as con:
            return runs_store.resolve_run_id(con, ref, ws.project)
    except NotFound as not_a_run:
        try:
            return resolve(ws, ref).run_id
        except MlyardError:
            raise NotFound(f"{not_a_run.msg}, nor a model version") from None
