"""Command groups that build a subcommand only when it is asked for.

Typer builds every command of a group when the CLI starts (reading each signature and its
annotations) and Click wants them all at hand; `anomaly scan price` needs one. Start-up time is
what a short scan costs, so the groups here build the command asked for, and all of them only
to list them (`--help`, completion) or to suggest a name for a typo.
"""

from __future__ import annotations

from typing import Any

import typer

from anomaly_cli.cli.coercion import without_pydantic


class LazyGroup(typer.core.TyperGroup):
    """A TyperGroup whose commands come from `names` and `build` (None for an unknown name)."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def build(self, name: str) -> Any:
        raise NotImplementedError

    def list_commands(self, ctx: Any) -> list[str]:
        return self.names()

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            command = self.build(cmd_name)
            if command is None:  # a typo: every command built, for Typer's "did you mean"
                for name in self.names():
                    self.get_command(ctx, name)
                return None
            self.commands[cmd_name] = without_pydantic(command)
        return self.commands[cmd_name]


def build_command(info: Any, app: typer.Typer) -> Any:
    """The click command of one registered Typer command (typer.models.CommandInfo), as Typer builds it."""
    return typer.main.get_command_from_info(info, rich_markup_mode=app.rich_markup_mode,
                                           pretty_exceptions_short=app.pretty_exceptions_short)


def build_group(info: Any, app: typer.Typer) -> Any:
    """The click group of one registered Typer sub-app (typer.models.TyperInfo), as Typer builds it."""
    return typer.main.get_group_from_info(info, rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands,
                                         pretty_exceptions_short=app.pretty_exceptions_short)
