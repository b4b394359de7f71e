"""The ``flowbus`` command line.

Exit codes (:class:`ExitCode`): 0 ok, 1 the config is invalid, 2 bad usage,
3 a run failed, 4 a run was rejected by a validate rule, 5 the command could not do its work.
"""

from __future__ import annotations

import click

from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.lazy_group import LazyCommand, LazyGroup

__all__ = ["ExitCode", "main"]


#: every command: its name, where it is defined, and its one-line help (the first line of its docstring)
COMMANDS = {
    "init": LazyCommand("flowbus.cli.init_command:init",
                        "Write a starter project: a commented flowbus.yaml, a sample message and a .gitignore."),
    "validate": LazyCommand("flowbus.cli.config_commands:validate",
                            "Check config FILES: fields, references, paths and expressions."),
    "schema": LazyCommand("flowbus.cli.config_commands:schema",
                          "Print the JSON Schema of the config format, for editors."),
    "try": LazyCommand("flowbus.cli.try_command:try_",
                       "Run FILE in memory: send one message, publish one event or run one flow; drain async work; "
                       "print the trace."),
    "publish": LazyCommand("flowbus.cli.version_commands:publish",
                           "Validate FILE and publish it as the project's next config version."),
    "versions": LazyCommand("flowbus.cli.version_commands:versions",
                            "List the project's config versions, newest last; `*` marks the active one."),
    "diff": LazyCommand("flowbus.cli.version_commands:diff",
                        "Show what changed between two config versions: flows, steps, handlers, events, sources, "
                        "targets."),
    "rollback": LazyCommand("flowbus.cli.version_commands:rollback_command",
                            "Publish config version NUMBER again, as a new version (history is never rewritten)."),
    "send": LazyCommand("flowbus.cli.message_commands:send",
                        "Send a message to the project's inbound queue, or publish an event; prints its id."),
    "trace": LazyCommand("flowbus.cli.message_commands:trace",
                         "Show the trace of an event, a message or a run: runs, their steps, and what they caused."),
    "events": LazyCommand("flowbus.cli.read_commands:events", "List event instances, newest first."),
    "runs": LazyCommand("flowbus.cli.read_commands:runs",
                        "List runs, newest first, without their steps (flowbus trace RUN_ID shows them)."),
    "entities": LazyCommand("flowbus.cli.read_commands:entities",
                            "List the records of ENTITY in key order, or show the record with KEY."),
    "dlq": LazyCommand("flowbus.cli.message_commands:dlq",
                       "The dead-letter queue: messages whose attempts are used up."),
    "schedules": LazyCommand("flowbus.cli.schedule_command:schedules",
                             "List the schedules and their next fire times: of FILE, or of the project's active "
                             "config."),
    "worker": LazyCommand("flowbus.cli.worker_command:worker",
                          "Claim and run queued messages of the project, following newly published config versions."),
    "purge": LazyCommand("flowbus.cli.purge_command:purge",
                         "Remove what the project keeps past its retention, and print how many of each kind went."),
    "db": LazyCommand("flowbus.cli.db_commands:db", "The database flowbus keeps its state in."),
    "keys": LazyCommand("flowbus.cli.key_commands:keys",
                        "API keys: who may ingest, read or administer a project over HTTP."),
    "serve": LazyCommand("flowbus.cli.serve_command:serve",
                         "Serve the HTTP API: ingest at POST /v1/projects/{project}/sources/{source}/events."),
    "run": LazyCommand("flowbus.cli.run_command:run",
                       "Run FILE: publish it when it changed, serve the HTTP API and run a worker, in one process."),
}  # fmt: skip


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="flowbus")
def main() -> None:
    """flowbus: declare events, flows and handlers in one file; publish events; see every trace.

    \b
    Examples:
      flowbus init my-project
      flowbus validate flowbus.yaml
      flowbus try examples/compass/flowbus.yaml --source compass_inbound \\
          --data @examples/compass/upsert_company.json
      flowbus try examples/shop/flowbus.yaml --flow CreateOrder \\
          --data @examples/shop/order.json --seed examples/shop/seed.yaml
      flowbus schema > flowbus.schema.json

    \b
    On a database (default sqlite:///.flowbus/flowbus.db, or FLOWBUS_DB):
      flowbus publish examples/compass/flowbus.yaml
      flowbus worker &
      flowbus send --source compass_inbound \\
          --data '{"event": "upsert_company", "payload": {"domain": "acme.example", "name": "Acme"}}'
      flowbus trace <message id>
      flowbus versions; flowbus diff; flowbus rollback 1; flowbus dlq list
    """
