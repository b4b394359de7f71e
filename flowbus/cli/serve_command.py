"""``flowbus serve``: the HTTP API alone, for deployments whose workers run apart."""

from __future__ import annotations

import click

from flowbus.cli.options import run_async, server_options, server_parts, setting_option, steady_collector
from flowbus.logs import setup_logging


@click.command()
@setting_option("db")
@server_options
@setting_option("log_level")
def serve(db: str, host: str, port: int, max_body_kib: int, log_level: str) -> None:
    """Serve the HTTP API: ingest at POST /v1/projects/{project}/sources/{source}/events.

    Requests need an API key (flowbus keys create). Several serve processes may share one
    database; workers run apart (flowbus worker).
    """
    serving = server_parts()
    sock = serving.listen(host, port)
    setup_logging(level=log_level)
    server = serving.api_server(db, host, port, max_body_kib=max_body_kib, log_level=log_level)

    async def main() -> None:
        serving.stop_on_signals(lambda: setattr(server, "should_exit", True))
        click.echo(f"serving http://{host}:{port}; Ctrl-C to stop")
        await server.serve(sockets=[sock])
        click.echo("stopped")

    steady_collector()
    run_async(main())
