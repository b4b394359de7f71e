"""CLI options derived from :class:`~flowbus.settings.Settings`, and helpers the commands share.

Every command imports this module: it imports nothing heavy at module level (see
:mod:`flowbus.cli.lazy_group`)."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from flowbus import config, jsonio, telemetry
from flowbus.cli.exit_codes import ExitCode
from flowbus.config.issues import ConfigError
from flowbus.errors import FlowbusError
from flowbus.settings import Settings
from flowbus.stores import open_backend, projects_in
from flowbus.stores.protocols import Backend

if TYPE_CHECKING:
    from flowbus.config import LoadedConfig

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def setting_option(name: str, *flags: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option for setting ``name``: its default, help and environment variable come from Settings."""
    spec = Settings.field(name)
    choices = spec.metadata["choices"]
    return click.option(
        *(flags or (f"--{name.replace('_', '-')}",)),
        name,
        default=spec.default,
        envvar=Settings.env_var(name),
        show_envvar=True,
        show_default=bool(spec.default),
        help=spec.metadata["help"],
        type=click.Choice(choices, case_sensitive=False) if choices else type(spec.default),
        **kwargs,
    )


def server_options(fn: F) -> F:
    """``--host``, ``--port`` and ``--max-body-kib`` of the commands that serve the HTTP API."""
    for option in reversed((
        click.option(
            "--host", default="127.0.0.1", envvar="FLOWBUS_HOST", show_envvar=True, show_default=True,
            help="Interface to listen on.",
        ),
        click.option(
            "--port", default=8080, envvar="FLOWBUS_PORT", show_envvar=True, show_default=True,
            type=click.IntRange(0, 65535), help="Port to listen on.",
        ),
        click.option(
            "--max-body-kib", default=256, show_default=True, type=click.IntRange(1, 64 * 1024),
            help="Largest request body accepted (KiB); larger ones are refused with 413.",
        ),
    )):  # fmt: skip
        fn = option(fn)
    return fn


def server_parts() -> ModuleType:
    """:mod:`flowbus.cli.serving`, or a usage error naming the server extra when it is missing."""
    try:
        from flowbus.cli import serving  # noqa: PLC0415 - the server extra is optional
    except ImportError as exc:
        raise click.UsageError(f"the HTTP API needs the server extra: pip install 'flowbus[server]' ({exc})") from None
    return serving


def db_options(fn: F) -> F:
    return setting_option("db")(setting_option("project")(fn))


def open_project(db: str, project: str) -> Backend:
    """The backend of ``project``, or of the database's only project when none is named; a database
    that cannot be used is a message on stderr and exit code 5, not a traceback."""
    try:
        return open_backend(db, project or _only_project(db))
    except FlowbusError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(ExitCode.FAILED)


def _only_project(db: str) -> str:
    found = projects_in(db)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(found)
        raise click.UsageError(f"the database holds several projects ({names}); choose one with --project")
    return "default"


async def closing(backend: Backend, work: Awaitable[T]) -> T:
    """Await ``work``, then close ``backend`` whatever happened."""
    try:
        return await work
    finally:
        await backend.close()


def print_issues(exc: ConfigError) -> None:
    """Every issue of a config that did not load, as FILE:LINE: field: message, on stderr."""
    for issue in exc.issues:
        click.echo(str(issue), err=True)


def exit_invalid(exc: ConfigError) -> NoReturn:
    print_issues(exc)
    sys.exit(ExitCode.INVALID_CONFIG)


def load_or_exit(file: str) -> LoadedConfig:
    """The loaded config of ``file`` (its warnings printed on stderr), or its issues printed and exit code 1."""
    return read_and_load_or_exit(file)[1]


def read_and_load_or_exit(file: str) -> tuple[str, LoadedConfig]:
    """The text of ``file`` as read once, and its loaded config: what is published is what was checked."""
    from flowbus.config.document import read_file  # noqa: PLC0415 - the parser, on first use

    try:
        raw = read_file(file)
        loaded = config.load_config_text(raw, file=file)
    except ConfigError as exc:
        exit_invalid(exc)
    for warning in loaded.warnings:
        click.echo(str(warning), err=True)
    return raw.decode(), loaded  # loading it proved it UTF-8


#: allocations between two collections of Python's youngest generation in a process that runs for
#: long: at the default, 700, a worker collected every few runs, and the collections of the older
#: generations that follow held the event loop for tens of milliseconds (in `flowbus run`, the
#: API's requests waited for them: `bench_ingest --while-draining`)
GC_YOUNG_ALLOCATIONS = 50_000


def steady_collector() -> None:
    """Tune Python's cycle collector for a process that runs for long (`flowbus run`, `worker`,
    `serve`): what was loaded at start is frozen out of every collection, and the youngest
    generation is collected far less often. What flowbus frees goes by reference counting; the
    collector only finds cycles, and the older generations keep their default pace, so cyclic
    garbage is still collected."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, middle, oldest)


def run_async(work: Awaitable[T]) -> T:
    """Run a command's coroutine; flowbus errors become a message and a telling exit code. The
    spans of the command are exported before it returns."""
    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except ConfigError as exc:
        exit_invalid(exc)
    except FlowbusError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(ExitCode.FAILED)
    finally:
        telemetry.shutdown()  # the spans still buffered go out before the process ends


def read_data(value: str, *, option: str = "--data") -> Any:
    """Inline JSON, or ``@path`` to a JSON or YAML file."""
    try:
        if value.startswith("@"):
            path = Path(value[1:])
            if path.suffix.lower() == ".json":
                return jsonio.loads(path.read_bytes())
            from flowbus.config.document import parse_file  # noqa: PLC0415 - YAML only when a file is YAML

            return parse_file(path).data
        return jsonio.loads(value)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value[1:]}: {exc.strerror}", param_hint=option) from None
    except (FlowbusError, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def json_option(fn: F) -> F:
    """``--json``: print the whole answer as JSON instead of the ids and a human line."""
    return click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")(fn)


def print_created(ids: Sequence[str], *, human: Iterable[str], answer: Any, as_json: bool) -> None:
    """Report what a command created so that it composes: the ids bare on stdout, one a line
    (``flowbus trace $(flowbus send ...)``), the human text on stderr; with ``--json`` the whole
    answer on stdout instead."""
    if as_json:
        click.echo(jsonio.dumps(answer, indent=2))
        return
    for line in human:
        click.echo(line, err=True)
    for identifier in ids:
        click.echo(identifier)
