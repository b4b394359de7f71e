"""The ``flowbus`` command line.

Exit codes (:class:`ExitCode`): 0 ok, 1 the config is invalid, 2 bad usage,
3 a run failed, 4 a run was rejected by a validate rule.
"""

from __future__ import annotations

import click

from flowbus.cli.config_commands import schema, validate
from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.try_command import try_

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
    """


main.add_command(validate)
main.add_command(schema)
main.add_command(try_)
