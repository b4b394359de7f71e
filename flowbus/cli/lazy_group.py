"""A click group whose commands are imported only when one of them runs.

Each command module pulls in what its command needs (the config models, the engine, the
JSONPath library, the HTTP server); importing them all made ``flowbus --help`` take a second.
The group keeps each command's one-line help, so ``--help`` lists every command without
importing any of them (a test keeps that line equal to the command's own).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    #: ``"package.module:attribute"`` of the click command
    target: str
    #: the command's one-line help, shown by ``--help`` without importing it
    short_help: str


class LazyGroup(click.Group):
    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(load_command(self.lazy_commands[cmd_name]), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows: list[tuple[str, str]] = []
        for name in names:
            lazy = self.lazy_commands.get(name)
            if lazy is not None and name not in self.commands:
                # a stand-in command shortens the line exactly as click shortens a command's own
                rows.append((name, click.Command(name, help=lazy.short_help).get_short_help_str(limit)))
            elif (command := self.get_command(ctx, name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_command(lazy: LazyCommand) -> click.Command:
    module, _, attribute = lazy.target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{lazy.target} is a {type(command).__name__}, not a click command")
    return command
