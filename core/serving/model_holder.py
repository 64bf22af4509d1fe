"""The model a server scores with, swapped atomically when its alias moves (from any
process): a background thread notices the move, loads and verifies the new version, and
replaces one reference, so a request is always answered by one whole model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mlyard.core.config import logged_keys
from mlyard.core.errors import MlyardError, ObjectCorrupt
from mlyard.core.models import registry
from mlyard.core.models.loading import LoadedModel, load_model
from mlyard.core.models.model_text import ModelRefused
from mlyard.core.models.trial import Candidate, check_loads
from mlyard.core.serving.row_reader import RowReader
from mlyard.core.workspace import Workspace

log = logging.getLogger("mlyard.serve")


class ModelHolder:
    """The served model; `serving` (the model and its row reader) is replaced in one
    assignment when the alias moves."""

    def __init__(self, ws: Workspace, ref: str, poll_interval: float = 1.0) -> None:
        self.ws = ws
        self.ref = ref
        self.poll_interval = poll_interval
        # The id and segment columns are logged beside the rows, so labels join by id
        # and live figures break down by group.
        self.keys = logged_keys(ws.config)
        self.serving = self._ready(load_model(ws, ref))
        self.swaps = 0
        self.refused: set[int] = set()  # versions whose model failed its trial load
        self.also: list[Callable[[], object]] = []  # more checks on the same beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mlyard-model-watch",
                                        daemon=True)

    @property
    def current(self) -> LoadedModel:
        return self.serving[0]

    def _ready(self, model: LoadedModel) -> tuple[LoadedModel, RowReader]:
        return model, RowReader(model.spec, self.keys)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check_for_move(self) -> bool:
        """Load the version `ref` points at now, if it is not the one being served."""
        target = registry.resolve(self.ws, self.ref)
        if target.version == self.current.version.version or target.version in self.refused:
            return False
        try:
            self.ws.objects.read_bytes(target.model_hash)  # its hash first, then ...
            # ... a trial load in a child: a malformed model aborts the process loading it
            check_loads(self.ws, Candidate(self.ws.objects.path_for(target.model_hash),
                                           f"{target.model}/{target.version}",
                                           self.ws.objects.read_bytes(target.card_hash)))
            replacement = load_model(self.ws, str(target.version))
        except (ModelRefused, ObjectCorrupt) as exc:
            self.refused.add(target.version)
            log.error("%s; still serving %s/%s", exc.msg, self.current.version.model,
                      self.current.version.version)
            return False
        self.serving = self._ready(replacement)
        self.swaps += 1
        log.info("now serving %s/%s", target.model, target.version)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.check_for_move()
                for check in self.also:
                    check()
            except MlyardError as exc:  # a busy catalog or a missing alias: keep serving
                log.warning("model watch: %s", exc.msg)
            except Exception:  # anything else: keep serving, keep watching, say why
                log.exception("model watch failed; still serving %s/%s",
                              self.current.version.model, self.current.version.version)
