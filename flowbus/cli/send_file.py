"""``flowbus send --file``: a JSON Lines file sent in batches, each batch one transaction.

A line is one event's properties (``--event``) or one raw message (``--source``). A batch is
parsed whole before it is sent, so a bad line stops the command with nothing of its batch sent;
what the earlier batches sent stays sent, and the error says up to which line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from flowbus import jsonio
from flowbus.cli.exit_codes import ExitCode
from flowbus.errors import FlowbusError
from flowbus.queue import OutgoingMessage, source_message

if TYPE_CHECKING:
    from flowbus.engine import Engine
    from flowbus.stores.protocols import Backend

#: seconds between two progress lines on stderr
PROGRESS_EVERY_S = 2.0


@dataclass
class Sent:
    """What a file sent so far: its ids (kept only when the answer is JSON) and how many."""

    keep_ids: bool
    count: int = 0
    lines: int = 0  #: the last line number sent
    ids: list[str] = field(default_factory=list)

    def add(self, ids: list[str], last_line: int) -> None:
        self.count += len(ids)
        self.lines = last_line
        if self.keep_ids:
            self.ids += ids
        else:  # the ids go out as they are sent: a long file is followed as it goes
            click.echo("\n".join(ids))


class LineError(click.ClickException):
    """A line that cannot be sent: named by file and line, with what was sent before it."""

    exit_code = ExitCode.USAGE

    def __init__(self, name: str, line: int, reason: str, sent: Sent) -> None:
        before = f"the {sent.count:,} before it (to line {sent.lines}) were sent" if sent.count else "nothing was sent"
        super().__init__(f"{name}:{line}: {reason}; {before}, nothing from its batch on")


def numbered_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, text)`` of every line that is not blank."""
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield number, raw


def open_lines(path: str) -> tuple[str, IO[bytes]]:
    """The file's name for errors and its bytes; ``-`` is stdin."""
    if path == "-":
        return "<stdin>", sys.stdin.buffer
    try:
        return path, Path(path).open("rb")  # closed by the caller
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--file") from None


def parsed(name: str, lines: Iterable[tuple[int, bytes]], sent: Sent) -> list[tuple[int, Any]]:
    """Each line's JSON value, or a :class:`LineError` for the first that is not JSON."""
    values = []
    for number, raw in lines:
        try:
            values.append((number, jsonio.loads(raw)))
        except (FlowbusError, UnicodeDecodeError) as exc:
            raise LineError(name, number, f"not JSON: {exc}", sent) from None
    return values


def batches(lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    while batch := list(islice(lines, size)):
        yield batch


class Progress:
    """A line on stderr every few seconds of a long send, none for a short one."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = self.shown = time.monotonic()

    def update(self, sent: Sent) -> None:
        now = time.monotonic()
        if now - self.shown >= PROGRESS_EVERY_S:
            self.shown = now
            rate = sent.count / (now - self.started)
            click.echo(f"{sent.count:,} {self.what} sent (to line {sent.lines}), {rate:,.0f}/s", err=True)


async def publish_file(
    engine: Engine, event: str, name: str, stream: IO[bytes], *, batch_size: int, sent: Sent
) -> None:
    """Publish each line's properties as ``event``; a batch is one :meth:`Engine.publish_many`."""
    progress = Progress("events")
    for batch in batches(numbered_lines(stream), batch_size):
        values = parsed(name, batch, sent)
        for number, properties in values:
            if not isinstance(properties, dict):
                raise LineError(name, number, "event properties must be a JSON object", sent)
        at = _Cursor()
        try:
            instances = await engine.publish_many(at.each(values, lambda p: (event, p)), source="cli")
        except FlowbusError as exc:
            raise LineError(name, at.line, exc.message, sent) from None
        sent.add([instance.id for instance in instances], values[-1][0])
        progress.update(sent)


async def send_file(
    backend: Backend,
    message_for: Callable[[int, Any], OutgoingMessage],
    name: str,
    stream: IO[bytes],
    *,
    batch_size: int,
    sent: Sent,
) -> None:
    """Queue each line as the raw message ``message_for(line number, data)`` makes; a batch is
    one :meth:`Backend.send`."""
    progress = Progress("messages")
    for batch in batches(numbered_lines(stream), batch_size):
        messages = [message_for(number, data) for number, data in parsed(name, batch, sent)]
        sent.add(await backend.send(messages), batch[-1][0])
        progress.update(sent)


def line_message(
    name: str, source: str, event_type_of: Callable[[Any], str | None], group: str | None, version: int, sent: Sent
) -> Callable[[int, Any], OutgoingMessage]:
    """How a line becomes a source message: its event type from ``event_type_of`` (the
    ``--type`` given, or the source's ``event_type_from``), or a :class:`LineError`."""

    def message_for(number: int, data: Any) -> OutgoingMessage:
        event_type = event_type_of(data)
        if event_type is None:
            raise LineError(name, number, f"no event type for source {source!r}; give --type", sent)
        return source_message(source, event_type, data, group, None, version)

    return message_for


class _Cursor:
    """Which line an iteration is at, for the error of the item it failed on."""

    line = 0

    def each(self, values: list[tuple[int, Any]], item: Callable[[Any], Any]) -> Iterator[Any]:
        for number, value in values:
            self.line = number
            yield item(value)
