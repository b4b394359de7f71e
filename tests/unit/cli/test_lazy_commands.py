"""The CLI imports a command's module only when that command runs, and ``import flowbus`` is light."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from flowbus.cli import COMMANDS, main
from flowbus.cli.lazy_group import load_command

#: modules that take most of a second to import: the engine, the config models, the JSONPath library
HEAVY = ("flowbus.engine", "flowbus.config.model", "flowbus.config.loader", "pydantic", "jsonpath")


def imported_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return eval(done.stdout.strip().splitlines()[-1])


def test_help_lists_every_command_with_the_first_line_of_its_own_help():
    listed = CliRunner().invoke(main, ["--help"]).output
    for name, lazy in COMMANDS.items():
        command = load_command(lazy)
        assert command.get_short_help_str(1000) == lazy.short_help, name
        assert f"\n  {name} " in listed


def test_help_imports_no_command_module():
    code = "from flowbus.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == []
    assert "flowbus.cli.try_command" not in subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(sorted(sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def test_a_command_runs_once_its_module_is_loaded_on_demand():
    result = CliRunner().invoke(main, ["try", "--help"])
    assert result.exit_code == 0 and "Run FILE in memory" in result.output


def test_importing_flowbus_leaves_the_engine_until_it_is_used():
    assert imported_after("import flowbus") == []
    assert "flowbus.engine" in imported_after("import flowbus\nflowbus.Engine")
