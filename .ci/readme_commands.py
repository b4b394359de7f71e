"""Print one of the README's two set-up commands exactly as written: ``main`` or ``test``.

``.ci/run`` runs the test command from here, and the fresh-clone acceptance test runs the main
one, so the README cannot drift from what is proven to work.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
NAMES = ("main", "test")


def setup_commands(text: str) -> dict[str, str]:
    """The bash blocks of the README's "Set up" section: the main job first, then the tests."""
    _, found, rest = text.partition("\n## Set up\n")
    if not found:
        raise ValueError("README.md has no '## Set up' section")
    section = rest.split("\n## ", 1)[0]
    blocks = [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]
    if len(blocks) != len(NAMES) or any("\n" in block for block in blocks):
        raise ValueError(f"README.md's Set up section must hold exactly {len(NAMES)} one-line bash commands")
    return dict(zip(NAMES, blocks, strict=True))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in NAMES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(NAMES)}}}")
    print(setup_commands(README.read_text(encoding="utf-8"))[sys.argv[1]])
