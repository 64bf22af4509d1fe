"""Judging a version by the promotion gates and moving `champion` to it, in one unit of
work under the catalog lock.

These are the steps of promotion; callers outside the engine use the door in
core/automation/promotion.py, which gathers what the gates judge first (an import-linter
contract keeps the faces off this module).
"""

from __future__ import annotations

from mlyard.core.errors import MlyardError
from mlyard.core.models.gates import Evidence, GateResult, evaluate_gates
from mlyard.core.models.registry import AliasMove, ModelVersion, log_move, resolve_in
from mlyard.core.tracking.provenance import current_user
from mlyard.core.workspace import Workspace
from mlyard.storage import models_store


class GatesFailed(MlyardError):
    title = "Promotion refused"

    def __init__(self, msg: str, results: list[GateResult]) -> None:
        super().__init__(msg)
        self.results = results


def judge(ws: Workspace, ref: str, evidence: Evidence) -> tuple[ModelVersion, list[GateResult]]:
    """Every gate for version `ref`, without moving anything."""
    with ws.catalog.session() as con:
        version = resolve_in(con, ws, ref)
        return version, evaluate_gates(con, ws.config.gates, version, evidence)


def move_if_passed(ws: Workspace, ref: str, evidence: Evidence, reason: str | None = None,
                   force: bool = False) -> tuple[AliasMove, list[GateResult]]:
    """Make a version champion if every gate passes (or `force`), in one unit of work.

    Gates and the move share one transaction under the catalog lock, so two promotions
    racing from two processes leave one consistent champion, each judged against the
    champion it would replace (a head-to-head scored against another champion fails).

    Raises:
        GatesFailed: a gate failed; nothing moved. Its `results` hold the whole table.
    """
    with ws.catalog.session() as con:
        version = resolve_in(con, ws, ref)
        results = evaluate_gates(con, ws.config.gates, version, evidence)
        failed = [r for r in results if not r.passed]
        if failed and not force:
            raise GatesFailed(f"{version.model}/{version.version} not promoted: " + "; ".join(
                f"gate {r.gate} failed ({r.detail})" for r in failed), results)
        note = reason or ("forced past failed gates" if failed else None)
        move = models_store.move_alias(con, version.model, "champion", version.version,
                                       "promote", current_user(), note)
        log_move(con, move)
    return move, results
