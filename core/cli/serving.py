"""`mlyard serve`, `mlyard predict` and `mlyard explain`."""

from __future__ import annotations

import os
from pathlib import Path

import click
import uvicorn

from mlyard.core import compute
from mlyard.core.cli import output
from mlyard.core.cli.context import CLUSTER_OPTION, Context
from mlyard.core.errors import UsageError
from mlyard.core.models import registry
from mlyard.core.serving.batch import Scored, explain_file, predict_file
from mlyard.core.serving.cluster_batch import predict_on_cluster
from mlyard.core.serving.detached import serve_detached
from mlyard.core.serving.server import HeaderTimeoutHttp, check_binding, create_app


@click.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5005, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int,
              help="Server processes (each loads the model).")
@click.option("--token", envvar="MLYARD_SERVE_TOKEN",
              help="Require Authorization: Bearer TOKEN (needed beyond loopback). Prefer "
                   "the MLYARD_SERVE_TOKEN environment variable: others can read --token "
                   "in `ps`.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also answer requests whose Host header is NAME (the loopback names "
                   "always are); repeat for more, `*` for any.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback host without a token.")
@click.option("--max-body", default=10 * 1024 * 1024, show_default=True, type=int,
              help="Largest request body in bytes (larger: 413).")
@click.option("--no-log", is_flag=True, help="Do not log predictions (monitoring sees none).")
@click.option("--shadow", "shadow", metavar="MODEL",
              help="Also score every request with this version or alias (e.g. "
                   "churn@challenger) after answering it; see `mlyard shadow report`. "
                   "Default: [serve] shadow.")
@click.option("--no-shadow", is_flag=True, help="No shadow, even if [serve] shadow names one.")
@click.option("--detach", is_flag=True,
              help="Run in the background: return once the server answers, printing its "
                   "URL and pid (stop it with `kill PID`); the pid is also in "
                   ".mlyard/serve-PORT.pid, its log in .mlyard/logs/serve-PORT.log.")
@click.pass_obj
def serve(obj: Context, model: str, host: str, port: int, workers: int, token: str | None,
          allowed_hosts: tuple[str, ...], insecure: bool, max_body: int, no_log: bool,
          shadow: str | None, no_shadow: bool, detach: bool) -> None:
    """Serve MODEL (a version or an alias, e.g. churn@champion) over MLflow's protocol."""
    check_binding(host, token, insecure)
    if shadow is not None and no_shadow:
        raise UsageError("give --shadow or --no-shadow, not both")
    if detach:
        _detach(obj, model, host, port, workers, token, allowed_hosts, insecure, max_body,
                no_log, shadow, no_shadow)
        return
    if host not in ("0.0.0.0", "::"):  # the name it is reached by is the one it binds
        allowed_hosts = (*allowed_hosts, host)
    shadow = None if no_shadow else shadow or obj.ws.config.serve.shadow
    version = registry.resolve(obj.ws, model)
    shadowed = registry.resolve(obj.ws, shadow) if shadow is not None else None
    output.stderr.print(f"serving {version.model}/{version.version} ({model}) on "
                        f"http://{host}:{port}/invocations", markup=False)
    if shadowed is not None:
        output.stderr.print(f"shadow {shadowed.model}/{shadowed.version} ({shadow}) scores "
                            "every request after it is answered", markup=False)
    if workers > 1:
        if no_log:
            raise UsageError("--no-log works with one worker only")
        os.environ.update({"MLYARD_SERVE_MODEL": model, "MLYARD_SERVE_TOKEN": token or "",
                           "MLYARD_SERVE_MAX_BODY": str(max_body),
                           "MLYARD_SERVE_ALLOWED_HOSTS": ",".join(allowed_hosts),
                           "MLYARD_SERVE_SHADOW": shadow or "",
                           "MLYARD_WORKSPACE": str(obj.ws.root)})
        uvicorn.run("mlyard.core.serving.server:app_from_env", factory=True, host=host, port=port,
                    workers=workers, log_level="warning", http=HeaderTimeoutHttp)
        return
    uvicorn.run(create_app(obj.ws, model, token, max_body, log_predictions=not no_log,
                           allowed_hosts=allowed_hosts, shadow_ref=shadow),
                host=host, port=port, log_level="warning", http=HeaderTimeoutHttp)


def _detach(obj: Context, model: str, host: str, port: int, workers: int, token: str | None,
            allowed_hosts: tuple[str, ...], insecure: bool, max_body: int, no_log: bool,
            shadow: str | None, no_shadow: bool) -> None:
    """The same server in a process of its own; the token goes by the environment, never
    the command line others can read in `ps`."""
    args = [model, "--host", host, "--port", str(port), "--workers", str(workers),
            "--max-body", str(max_body)]
    args += [arg for name in allowed_hosts for arg in ("--allowed-host", name)]
    args += ["--insecure"] * insecure + ["--no-log"] * no_log + ["--no-shadow"] * no_shadow
    args += ["--shadow", shadow] if shadow is not None else []
    version = registry.resolve(obj.ws, model)  # a bad reference fails here, in one line
    if token:
        os.environ["MLYARD_SERVE_TOKEN"] = token
    server = serve_detached(obj.ws, args, host, port)
    output.stdout.print(f"serving {version.model}/{version.version} ({model}) on "
                        f"{server.url}/invocations, pid {server.pid} (in {server.pid_file}); "
                        f"stop: kill {server.pid}; log: {server.log}", markup=False)


@click.command()
@click.argument("model")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "target", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The .parquet to write.")
@CLUSTER_OPTION
@click.pass_obj
def predict(obj: Context, model: str, source: Path, target: Path, cluster: str | None) -> None:
    """Score a CSV or Parquet file with MODEL into a Parquet file, in batches."""
    if compute.wants_dask(obj.ws, cluster):
        with compute.dask_client(obj.ws, cluster) as client:
            scored = predict_on_cluster(obj.ws, model, source, target, client)
    else:
        scored = predict_file(obj.ws, model, source, target)
    output.stdout.print(f"{target}: {scored.rows:,} rows scored", markup=False)
    _notes(scored)


@click.command()
@click.argument("model")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "target", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The .parquet to write.")
@click.pass_obj
def explain(obj: Context, model: str, source: Path, target: Path) -> None:
    """Score a file with MODEL and write each row's feature contributions beside it."""
    scored = explain_file(obj.ws, model, source, target)
    output.stdout.print(f"{target}: {scored.rows:,} rows explained", markup=False)
    _notes(scored)


def _notes(scored: Scored) -> None:
    for note in scored.notes:
        output.stderr.print(f"  note: {note}", markup=False)
