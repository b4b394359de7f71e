"""``flowbus run``: one process that publishes a config, serves the API and runs a worker."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import click

from flowbus import jsonio
from flowbus.cli.custom_actions import actions_option, load_actions, register_actions
from flowbus.cli.options import (
    closing,
    open_project,
    read_and_load_or_exit,
    run_async,
    server_options,
    server_parts,
    setting_option,
    steady_collector,
)
from flowbus.config.loader import LoadedConfig
from flowbus.engine import Engine
from flowbus.foreground import Foreground
from flowbus.keys import Scope, new_key
from flowbus.logs import quieter, setup_logging
from flowbus.publishing import publish_config
from flowbus.stores.protocols import Backend
from flowbus.worker import Worker, WorkerSettings


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@setting_option("db")
@server_options
@setting_option("log_format")
@setting_option("log_level")
@actions_option
def run(
    file: str,
    db: str,
    host: str,
    port: int,
    max_body_kib: int,
    log_format: str,
    log_level: str,
    action_specs: tuple[str, ...],
) -> None:
    """Run FILE: publish it when it changed, serve the HTTP API and run a worker, in one process.

    On first start it creates an admin API key and prints it with a curl command that sends an
    example event, and the dashboard's address to sign in with it. Ctrl-C (or SIGTERM) stops it
    gracefully.

    \b
    Example:
      flowbus run examples/compass/flowbus.yaml
      flowbus run shop.yaml --actions shop_actions:ACTIONS   # with the config's Python steps
    """
    serving = server_parts()
    text, loaded = read_and_load_or_exit(file)
    actions = load_actions(action_specs)
    sock = serving.listen(host, port)
    setup_logging(log_format, log_level)
    project = loaded.config.project.name
    backend = open_project(db, project)

    async def main() -> None:
        result = await publish_config(backend, text, file=file)  # as checked, and found compiled
        if result.unchanged:
            click.echo(f"project {project}: version {result.version.number} is current")
        else:
            click.echo(f"project {project}: published version {result.version.number} ({result.diff.summary()})")
        created = await _first_key(backend, loaded, host, port)
        who = "the admin key above" if created else f"an API key of project {project} (read or admin scope)"
        click.echo(f"open the dashboard: http://{host}:{port}/ and sign in with {who}")
        engine = Engine(loaded, backend=backend, config_version=result.version.number)
        register_actions(engine, actions)
        # the worker gives way to the requests the API has in hand: they share one event loop
        foreground = Foreground()
        worker = Worker(engine, WorkerSettings(), follow_versions=True, foreground=foreground)
        # the server's access log would drown the worker's lines: warnings at least
        server = serving.api_server(
            db, host, port, max_body_kib=max_body_kib, log_level=quieter(log_level, "warning"), foreground=foreground
        )

        def stop() -> None:
            server.should_exit = True
            worker.stop()

        serving.stop_on_signals(stop)
        click.echo(f"serving http://{host}:{port} and working; Ctrl-C to stop")
        parts = [asyncio.create_task(server.serve(sockets=[sock])), asyncio.create_task(worker.run())]
        # whichever ends first, by a signal or by failing, ends the other: never half a process
        await asyncio.wait(parts, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*parts)
        click.echo("stopped")

    steady_collector()
    run_async(closing(backend, main()))


async def _first_key(backend: Backend, loaded: LoadedConfig, host: str, port: int) -> bool:
    """On first start (no key yet), an admin key and a curl that sends an example message; whether
    it made the key."""
    if await backend.list_keys():
        return False
    key, token = new_key(backend.project, "created by flowbus run", (Scope.ADMIN,))
    await backend.add_key(key)
    click.echo(f"created an admin API key (shown once, keep it): {token}")
    base = f"http://{host}:{port}/v1/projects/{backend.project}"
    authorization = ["-H", f"Authorization: Bearer {token}"]
    example = _example(loaded, Path(loaded.file).parent)
    if example is not None:
        source, payload, headers = example
        parts = ["curl", "-X", "POST", f"{base}/sources/{source}/events", *authorization]
        parts += ["-H", "Content-Type: application/json"]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        parts += ["-d", jsonio.dumps(payload)]
        click.echo("send an example message:\n  " + shlex.join(parts))
    click.echo("then see what ran:\n  " + shlex.join(["curl", f"{base}/runs", *authorization]))
    return True


def _example(loaded: LoadedConfig, folder: Path) -> tuple[str, object, dict[str, str]] | None:
    """A message the config routes: a JSON file beside the config that a source's path types, or
    else a bare one for the first trigger flow."""
    for candidate in sorted(folder.glob("*.json")):
        if candidate.stat().st_size > 64 * 1024:
            continue
        try:
            payload = jsonio.loads(candidate.read_bytes())
        except jsonio.JsonError:
            continue
        for source, type_path in loaded.plan.type_paths.items():
            found = type_path.find_one(payload)
            if isinstance(found, str) and (source, found) in loaded.plan.routes:
                return source, payload, {}
    for (source, event_type), _flows in loaded.plan.routes.items():
        path = loaded.plan.type_paths.get(source)
        if path is not None and path.source.startswith("$.") and path.source[2:].isidentifier():
            return source, {path.source[2:]: event_type, "payload": {}}, {}
        return source, {}, {"X-Event-Type": event_type}
    return None
