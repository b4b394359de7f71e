"""``flowbus init``: a starter project to begin from, and the commands that try it."""

from __future__ import annotations

import re
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import get_args

import click

from flowbus.cli.exit_codes import ExitCode
from flowbus.cli.options import json_option, print_created

#: each file written -> its template in flowbus/cli/starter/
STARTER = {"flowbus.yaml": "flowbus.yaml", "signup.json": "signup.json", ".gitignore": "gitignore"}
#: what a project name may hold (config ``NAME_PATTERN``), and the name when a directory's is no name
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_DEFAULT_PROJECT = "starter"


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite the files that exist.")
@json_option
def init(directory: str, force: bool, as_json: bool) -> None:
    """Write a starter project: a commented flowbus.yaml, a sample message and a .gitignore.

    DIRECTORY (default: the current one) is created when missing. Files that exist are left
    alone unless --force is given. Prints the paths written (stdout) and what to run next (stderr).

    \b
    Example:
      flowbus init my-project
    """
    root = Path(directory)
    paths = {root / name: template for name, template in STARTER.items()}
    existing = [str(path) for path in paths if path.exists()]
    if existing and not force:
        named = ", ".join(existing)
        click.echo(f"error: {named}: already there; flowbus init overwrites files only with --force", err=True)
        sys.exit(ExitCode.FAILED)
    root.mkdir(parents=True, exist_ok=True)
    starter = resources.files("flowbus.cli") / "starter"
    for path, template in paths.items():
        text = (starter / template).read_text(encoding="utf-8")
        path.write_text(text.replace("__PROJECT__", _project_name(root)), encoding="utf-8")
    written = [str(path) for path in paths]
    config, sample = (shlex.quote(str(root / name)) for name in ("flowbus.yaml", "signup.json"))
    steps = [
        f"flowbus validate {config}",
        f"flowbus try {config} --source signup_form --data @{sample}",
        f"flowbus run {config}",
    ]
    human = [f"wrote {', '.join(written)}; next:", *(f"  {step}" for step in steps)]
    answer = {"written": written, "next": steps}
    print_created(written, human=human, answer=answer, as_json=as_json)


def _project_name(root: Path) -> str:
    """The directory's name made a project name: ``my project`` -> ``my_project``; ``starter`` when
    that is still no name (it starts with a digit, or is too long)."""
    # the config's own rule, imported when init runs: pydantic is no import of flowbus --help
    from flowbus.config.base import NAME_PATTERN, Name  # noqa: PLC0415

    name = _NOT_IN_NAME.sub("_", root.resolve().name)
    _, constraints = get_args(Name)
    fits = re.fullmatch(NAME_PATTERN, name) and len(name) <= constraints.max_length
    return name if fits else _DEFAULT_PROJECT
