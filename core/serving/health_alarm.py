"""A degraded server raises an alert: once when its prediction log stops being written
(or starts dropping rows), again only after it has recovered and failed anew.

The server's model watch calls `check` about once a second; recording goes to the catalog
in a short unit of work, which a busy catalog only postpones to the next call.
"""

from __future__ import annotations

import logging

from mlyard.core.errors import MlyardError
from mlyard.core.serving.prediction_log import PredictionLog
from mlyard.core.workspace import Workspace
from mlyard.storage import meta_store

log = logging.getLogger("mlyard.serve")


class HealthAlarm:
    def __init__(self, ws: Workspace, ref: str, predictions: PredictionLog) -> None:
        self.ws = ws
        self.ref = ref
        self.predictions = predictions
        self.raised = False  # an alert is out for the current degraded spell

    @property
    def degraded(self) -> bool:
        return self.predictions.failures > 0 or self.predictions.dropped > 0

    def check(self) -> None:
        if not self.degraded:
            self.raised = False
            return
        if self.raised:
            return
        reason = self.predictions.last_error or \
            f"{self.predictions.dropped:,} logged predictions dropped"
        try:
            with self.ws.catalog.session() as con:
                meta_store.add_event(con, "alert.server", self.ref, "mlyard serve", {
                    "severity": "error", "reason": reason,
                    "pending": self.predictions.pending,
                    "dropped": self.predictions.dropped})
        except MlyardError as exc:
            log.warning("could not record the degraded-server alert yet: %s", exc.msg)
            return
        self.raised = True
