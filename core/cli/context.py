"""What every `mlyard` command shares: the workspace context, `--json`, and turning
mlyard errors into one line on stderr with exit code 1 (failure) or 2 (usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlyard.core.errors import MlyardError, UsageError
from mlyard.core.workspace import Workspace, open_workspace

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class Context:
    def __init__(self, workspace: Path | None) -> None:
        self.workspace_override = workspace
        self._ws: Workspace | None = None

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            self._ws = open_workspace(workspace=self.workspace_override)
        return self._ws


class _Failed(click.ClickException):
    """An mlyard error as one line on stderr and an exit code (1 failure, 2 usage)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

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


