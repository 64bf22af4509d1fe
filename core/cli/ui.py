"""`mlyard tui`: the terminal UI on this project, in this terminal or in a browser."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import click

from mlyard.core.cli import output
from mlyard.core.cli.context import Context
from mlyard.core.errors import UsageError


@click.command()
@click.option("--screen",
              type=click.Choice(["dashboard", "runs", "datasets", "models", "serving",
                                 "automation", "monitoring"]),
              default="dashboard", help="The screen to open on.")
@click.option("--no-mouse", is_flag=True, help="Ignore the mouse (plain SSH terminals).")
@click.option("--read-only", is_flag=True,
              help="Look, never change: promote, rollback, serve and pause are disabled.")
@click.option("--web", is_flag=True, help="Serve the UI to a browser instead (textual-serve).")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --web: address.")
@click.option("--port", default=8765, show_default=True, help="With --web: port.")
@click.option("--token", envvar="MLYARD_TUI_TOKEN",
              help="With --web: required as ?token=TOKEN (needed beyond loopback; prefer "
                   "the MLYARD_TUI_TOKEN environment variable).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="With --web: also answer requests whose Host is NAME (the loopback "
                   "names and the address bound always are); repeat for more, `*` for any.")
@click.option("--allow-actions", is_flag=True,
              help="With --web: let browser sessions promote, roll back, serve and pause "
                   "(needs --token).")
@click.pass_obj
def tui(obj: Context, screen: str, no_mouse: bool, read_only: bool, web: bool, host: str,
        port: int, token: str | None, allowed_hosts: tuple[str, ...],
        allow_actions: bool) -> None:
    """Open the terminal UI on this project (or, with --web, serve it to a browser)."""
    if web:
        check_web_binding(host, token, allow_actions)
        from mlyard.tui.web import WebUI, app_command  # only for those who serve the UI

        command = app_command(obj.ws, screen, allow_actions)
        output.stdout.print(f"mlyard UI for {obj.ws.project} on http://{host}:{port}/"
                            + ("?token=..." if token else "")
                            + ("" if allow_actions else " (read-only)"))
        WebUI(command, host, port, token, allowed_hosts).serve()
        return
    from mlyard.tui.app import MlyardApp  # the UI's imports are paid only by those who open it

    ws = replace(obj.ws, read_only=True) if read_only else obj.ws
    MlyardApp(ws, screen).run(mouse=not no_mouse)


def check_web_binding(host: str, token: str | None, allow_actions: bool) -> None:
    """The UI beyond loopback shows every run and model, and one that can act changes
    them: neither without a token."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise UsageError(f"--host {host} shows this project beyond this machine: pass "
                         "--token TOKEN (or set MLYARD_TUI_TOKEN); browsers then open "
                         "/?token=TOKEN")
    if allow_actions and not token:
        raise UsageError("--allow-actions lets a browser promote, serve and pause: pass "
                         "--token TOKEN too (or set MLYARD_TUI_TOKEN), so only those "
                         "given it can")
