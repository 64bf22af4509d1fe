"""mlyard's public tracking API, named like MLflow's:

    import mlyard

    with mlyard.start_run(name="baseline", params={"num_leaves": 31}):
        booster = lgb.train(params, train_set, callbacks=[mlyard.lightgbm_callback()])
        mlyard.log_metric("holdout.auc", auc)

The engine lives in `mlyard.core`, the catalog in `mlyard.storage` and the terminal UI in
`mlyard.tui`. Names here resolve on first use, so `mlyard --help` (which imports this
package first) does not pay for pyarrow and DuckDB.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlyard.core.errors import MlyardError
    from mlyard.core.tracking.active_run import (
        Run,
        active_run,
        end_run,
        lightgbm_callback,
        log_artifact,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        set_tag,
        set_tags,
        start_run,
    )
    from mlyard.core.workspace import Workspace, open_workspace

__all__ = [
    "MlyardError", "Run", "Workspace", "active_run", "end_run", "lightgbm_callback",
    "log_artifact", "log_metric", "log_metrics", "log_param", "log_params", "log_text",
    "open_workspace", "set_tag", "set_tags", "start_run",
]
_HOMES = {"MlyardError": "mlyard.core.errors", "Workspace": "mlyard.core.workspace",
          "open_workspace": "mlyard.core.workspace"}
_EXPORTS = {name: _HOMES.get(name, "mlyard.core.tracking.active_run") for name in __all__}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlyard' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
