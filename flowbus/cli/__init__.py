"""The ``flowbus`` command line.

Exit codes (:class:`ExitCode`): 0 ok, 1 the config is invalid, 2 bad usage,
3 a run failed, 4 a run was rejected by a validate rule, 5 the command could not do its work.
"""

from __future__ import annotations

import click

from flowbus.cli.config_commands import schema, validate
from flowbus.cli.db_commands import db
from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.key_commands import keys
from flowbus.cli.message_commands import dlq, send, trace
from flowbus.cli.read_commands import entities, events, runs
from flowbus.cli.run_command import run
from flowbus.cli.serve_command import serve
from flowbus.cli.try_command import try_
from flowbus.cli.version_commands import diff, publish, rollback_command, versions
from flowbus.cli.worker_command import worker

__all__ = ["ExitCode", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="flowbus")
def main() -> None:
    """flowbus: declare events, flows and handlers in one file; publish events; see every trace.

    \b
    Examples:
      flowbus validate flowbus.yaml
      flowbus try examples/compass/flowbus.yaml --source compass_inbound \\
          --data @examples/compass/upsert_company.json
      flowbus try examples/shop/flowbus.yaml --flow CreateOrder \\
          --data @examples/shop/order.json --seed examples/shop/seed.yaml
      flowbus schema > flowbus.schema.json

    \b
    On a database (default sqlite:///.flowbus/flowbus.db, or FLOWBUS_DB):
      flowbus publish examples/shop/flowbus.yaml
      flowbus worker &
      flowbus send --event OrderPlaced --data @order-placed.json
      flowbus trace <event id>
      flowbus versions; flowbus diff; flowbus rollback 1; flowbus dlq list
    """


for command in (
    validate,
    schema,
    try_,
    publish,
    versions,
    diff,
    rollback_command,
    send,
    trace,
    events,
    runs,
    entities,
    dlq,
    worker,
    db,
    keys,
    serve,
    run,
):
    main.add_command(command)
