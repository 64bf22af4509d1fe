"""What every `mlyard` command shares: the workspace context, `--json`, and turning
mlyard errors into one line on stderr with exit code 1 (failure) or 2 (usage)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlyard.core.errors import MlyardError, UsageError, os_error_line

if TYPE_CHECKING:
    from mlyard.core.workspace import Workspace

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
QUIET_OPTION = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
CLUSTER_OPTION = click.option(
    "--cluster", metavar="ADDRESS",
    help="Run on this Dask scheduler (tcp://HOST:8786); default: [compute] in mlyard.toml.")


class Context:
    def __init__(self, workspace: Path | None) -> None:
        self.workspace_override = workspace
        self._ws: Workspace | None = None

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            self._ws = _open(self.workspace_override, register=True)
        return self._ws

    @property
    def opened(self) -> Workspace | None:
        """The workspace if this command opened it."""
        return self._ws

    def unopened_ws(self) -> Workspace:
        """The workspace without opening its catalog (it may be what is broken)."""
        return _open(self.workspace_override, register=False)


def _open(workspace: Path | None, register: bool) -> Workspace:
    # Imported here for start-up speed: the workspace brings DuckDB and pyarrow, which
    # `mlyard --help` and `--version` do not need.
    from mlyard.core.workspace import open_workspace

    return open_workspace(workspace=workspace, register=register)


class _Failed(click.ClickException):
    """An mlyard error as one line on stderr and an exit code (1 failure, 2 usage)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"mlyard: {self.message}", err=True)


class Group(click.Group):
    """Maps mlyard errors raised by any subcommand to one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise _Failed(exc.msg, 2) from exc
        except MlyardError as exc:
            raise _Failed(exc.msg, 1) from exc
        except OSError as exc:  # a full disk, a read-only workspace: one line, not a trace
            raise _Failed(os_error_line(exc), 1) from exc
        finally:
            if ctx.parent is None and ctx.invoked_subcommand not in _DELIVERING_ELSEWHERE:
                _deliver_alerts(ctx.obj)


# Commands that deliver alerts themselves while they run (the daemon and `watch`), or
# run until stopped; every other command delivers what it raised on its way out.
_DELIVERING_ELSEWHERE = {"daemon", "watch", "serve", "tui", None}


def _deliver_alerts(obj: Context | None) -> None:
    """Deliver pending alerts when no daemon does (core/alerts/delivery.py); a failure
    here is one line on stderr, never the command's outcome."""
    ws = obj.opened if obj is not None else None
    if ws is None or not (ws.config.alerts.webhooks or ws.config.alerts.command):
        return
    # Imported here: only a project with receivers configured pays for it.
    from mlyard.core.alerts.delivery import deliver_pending

    try:
        attempts = deliver_pending(ws)
    except (MlyardError, OSError) as exc:
        line = exc.msg if isinstance(exc, MlyardError) else os_error_line(exc)
        click.echo(f"mlyard: alerts not delivered yet: {line}", err=True)
        return
    for attempt in attempts:
        if attempt.error and attempt.outcome != "suppressed":
            click.echo(f"mlyard: alert to {attempt.receiver}: {attempt.error} "
                       f"({attempt.outcome})", err=True)




class LazyGroup(Group):
    """Imports a subcommand's module only when that command runs, so `mlyard --help` and
    `mlyard runs list` do not pay for LightGBM, Optuna, Dask or the web server. The
    listing in `--help` comes from `lazy`'s one-line summaries (a test keeps them equal to
    each command's own)."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str | None]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)  # name -> ("module:attribute", one-line summary or None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy[cmd_name][0].partition(":")
        command: click.Command = getattr(import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                if (summary := self.lazy[name][1]) is not None:  # None: a hidden command
                    rows.append((name, summary))
            elif (command := self.commands.get(name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
