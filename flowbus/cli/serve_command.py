"""``flowbus serve``: the HTTP API alone, for deployments whose workers run apart."""

from __future__ import annotations

import click

from flowbus.cli.options import run_async, server_options, setting_option


@click.command()
@setting_option("db")
@server_options
def serve(db: str, host: str, port: int, max_body_kib: int) -> None:
    """Serve the HTTP API: ingest at POST /v1/projects/{project}/sources/{source}/events.

    Requests need an API key (flowbus keys create). Several serve processes may share one
    database; workers run apart (flowbus worker).
    """
    try:
        import uvicorn  # noqa: PLC0415 - the server extra is optional

        from flowbus.api import create_app  # noqa: PLC0415
        from flowbus.cli.serving import Server, listen, stop_on_signals  # noqa: PLC0415
    except ImportError as exc:
        raise click.UsageError(f"the HTTP API needs the server extra: pip install 'flowbus[server]' ({exc})") from None
    sock = listen(host, port)
    app = create_app(db, max_body_bytes=max_body_kib * 1024)
    server = Server(uvicorn.Config(app, host=host, port=port, log_level="info"))

    async def main() -> None:
        stop_on_signals(lambda: setattr(server, "should_exit", True))
        click.echo(f"serving http://{host}:{port}; Ctrl-C to stop")
        await server.serve(sockets=[sock])
        click.echo("stopped")

    run_async(main())
