"""Shared pieces of the config models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"

#: a name usable in expressions (`steps.<id>`, `vars.<name>`, properties and inputs)
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN, max_length=128)]
#: a name of a source, event, flow, handler or target
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=128)]


class Model(BaseModel):
    """A config record: unknown fields are errors and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
