"""``flowbus validate`` and ``flowbus schema``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sized

import click

from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.options import load_or_exit, print_issues
from flowbus.config import ConfigError, load_config
from flowbus.config.model import Config
from flowbus.config.schema import event_json_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check config FILES: fields, references, paths and expressions.

    Prints one summary line per valid file, and every problem as FILE:LINE: field: message.
    Exits 1 when any file has an error (warnings alone exit 0).

    \b
    Example:
      flowbus validate examples/shop/flowbus.yaml
    """
    failed = False
    for file in files:
        try:
            loaded = load_config(file)
        except ConfigError as exc:
            failed = True
            print_issues(exc)
            continue
        for warning in loaded.warnings:
            click.echo(str(warning), err=True)
        c = loaded.config
        click.echo(
            f"{file}: ok: project {c.project.name}: {_count(c.sources, 'source')}, {_count(c.events, 'event')}, "
            f"{_count(c.flows, 'flow')}, {_count(c.handlers, 'handler')}, {_count(c.targets, 'target')}"
        )
    sys.exit(ExitCode.INVALID_CONFIG if failed else ExitCode.OK)


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


@click.command()
@click.option(
    "--events",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Print the JSON Schema of every event version this config defines instead.",
)
def schema(config_file: str | None) -> None:
    """Print the JSON Schema of the config format, for editors.

    With --events FILE: the schema of the properties of each event version FILE defines, under
    $defs as NAME.vVERSION.

    \b
    Example (VS Code with the YAML extension):
      flowbus schema > flowbus.schema.json
      # then at the top of flowbus.yaml:
      # yaml-language-server: $schema=./flowbus.schema.json
      flowbus schema --events examples/shop/flowbus.yaml
    """
    if config_file is not None:
        config = load_or_exit(config_file).config
        project = config.project.name
        versions = {
            f"{event.name}.v{event.version}": event_json_schema(project, event.name, event.version, event.properties)
            for event in config.events
        }
        document = {"$schema": DRAFT, "title": f"events of project {project}", "$defs": versions}
    else:
        document = {"$schema": DRAFT, "title": "flowbus config", **Config.model_json_schema()}
    click.echo(json.dumps(document, indent=2, sort_keys=False))
