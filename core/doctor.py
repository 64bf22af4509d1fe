"""`mlyard doctor`: check a workspace from the catalog down, and with `repair` clean what
killed processes left behind and move aside what cannot be read.

Read-only unless asked to repair (it does not even load waiting spool segments), and even
then it never touches the user's own files: only temporary files inside `.mlyard/` that
no live process is writing (untouched for `LEFTOVER_AGE` seconds), objects no catalog row
names (as old), and spool segments that cannot be read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mlyard.core import doctor_objects
from mlyard.core.errors import MlyardError
from mlyard.core.tracking.run_queries import reconcile_crashed
from mlyard.core.workspace import Workspace
from mlyard.storage import catalog_check, spool

LEFTOVER_AGE = 600.0  # seconds a temporary file must be untouched to count as left over


@dataclass
class Finding:
    check: str  # catalog | objects | spool | leftovers | runs
    ok: bool
    detail: str


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.ok for f in self.findings)


def check(ws: Workspace, repair: bool = False, now: float | None = None) -> DoctorReport:
    """Every check, in order; with `repair`, remove leftovers and move aside bad spool
    segments (the catalog and objects are only reported: their cure is a backup)."""
    now = time.time() if now is None else now
    report = DoctorReport()
    # The spool first: opening the catalog loads it (and moves bad segments aside).
    spool_finding = _spool(ws, repair, report)
    catalog_finding = _catalog(ws)
    ok, detail = doctor_objects.check(ws, repair, LEFTOVER_AGE, report.repaired)
    report.findings += [catalog_finding, Finding("objects", ok, detail), spool_finding,
                        _leftovers(ws, repair, now, report)]
    if catalog_finding.ok and repair:
        with ws.catalog.session() as con:
            reconcile_crashed(con, ws.catalog.outcomes_dir)
        report.findings.append(Finding("runs", True, "runs whose process died are marked "
                                                     "crashed"))
    elif catalog_finding.ok:
        report.findings.append(Finding("runs", True, "runs whose process died are marked "
                                                     "crashed by `mlyard doctor --repair` "
                                                     "(and by any command that lists runs)"))
    return report


def _catalog(ws: Workspace) -> Finding:
    try:
        tables = catalog_check.check_tables(ws.catalog)
    except MlyardError as exc:
        return Finding("catalog", False, exc.msg)
    return Finding("catalog", True, f"{ws.catalog.path} opens; {tables} tables read whole")


def _spool(ws: Workspace, repair: bool, report: DoctorReport) -> Finding:
    unreadable = catalog_check.unreadable_segments(ws.catalog)
    if repair:
        for path, reason in unreadable:
            moved = spool.quarantine(path, reason)
            report.repaired.append(f"moved unreadable spool segment {path.name} to {moved}")
        unreadable = []
    if unreadable:
        path, reason = unreadable[0]
        return Finding("spool", False, f"{len(unreadable)} unreadable segments (first: "
                                       f"{path.name}: {reason}); `mlyard doctor --repair` "
                                       "moves them to spool/bad/")
    waiting = len(spool.sealed_segments(ws.catalog.spool_dir))
    set_aside = len(list((ws.catalog.spool_dir / "bad").glob("*.arrow")))
    return Finding("spool", True, f"{waiting} segments waiting, all readable" + (
        f"; {set_aside} set aside earlier in spool/bad/ (each with its .reason.json)"
        if set_aside else ""))


def _leftovers(ws: Workspace, repair: bool, now: float, report: DoctorReport) -> Finding:
    found = [p for p in _temporary_files(ws) if now - p.stat().st_mtime >= LEFTOVER_AGE]
    if repair:
        for path in found:
            path.unlink(missing_ok=True)
            report.repaired.append(f"removed leftover {path}")
        found = []
    if found:
        return Finding("leftovers", False, f"{len(found)} temporary files left by processes "
                                           f"that were killed (first: {found[0]}); "
                                           "`mlyard doctor --repair` removes them")
    return Finding("leftovers", True, "no temporary files left behind")


def _temporary_files(ws: Workspace) -> list[Path]:
    """Half-written files inside the workspace: object temps (ingest, import), partial
    spool segments, partial prediction, shadow and label files."""
    found: list[Path] = []
    if (ws.objects.root / "tmp").is_dir():
        found += [p for p in (ws.objects.root / "tmp").iterdir() if p.is_file()]
    if ws.catalog.spool_dir.is_dir():
        found += list(ws.catalog.spool_dir.glob("*" + spool.PENDING_SUFFIX))
    for logs in (ws.catalog.predictions_dir, ws.catalog.shadow_dir):
        if logs.is_dir():
            found += list(logs.glob("*/*/*.partial"))
    if ws.catalog.labels_dir.is_dir():
        found += list(ws.catalog.labels_dir.glob("*.partial"))
    return sorted(found)
