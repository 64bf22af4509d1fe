"""Local or Dask execution: connecting to the cluster `[compute]` or `--cluster` names.

Only training and batch scoring go to the cluster; the catalog, the registry and the
artifacts stay in the local workspace, and a model trained there is an ordinary model
version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from mlyard.core.errors import UsageError
from mlyard.core.workspace import Workspace

INSTALL_HINT = "pip install 'mlyard[dask]' (dask, distributed and scikit-learn)"

if TYPE_CHECKING:  # the optional dask extra: imported only where it is used
    from distributed import Client


def wants_dask(ws: Workspace, cluster: str | None) -> bool:
    return cluster is not None or ws.config.compute.engine == "dask"


@contextmanager
def dask_client(ws: Workspace, cluster: str | None = None) -> Iterator[Client]:
    """A `distributed.Client` on the scheduler from `--cluster` or `[compute] address`."""
    address = cluster or ws.config.compute.address
    if not address:
        raise UsageError("the Dask engine needs a scheduler: set [compute] address = "
                         '"tcp://HOST:8786" or pass --cluster tcp://HOST:8786')
    try:
        from distributed import Client  # the optional dask extra
    except ImportError:
        raise UsageError(f"the Dask engine is not installed: {INSTALL_HINT}") from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
