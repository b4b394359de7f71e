"""Named exit codes of the ``flowbus`` command."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  #: everything worked
    INVALID_CONFIG = 1  #: a config file did not load or validate
    USAGE = 2  #: bad arguments or input data (click uses 2 for usage errors too)
    RUN_FAILED = 3  #: a run failed
    RUN_REJECTED = 4  #: a validate rule refused the input
    FAILED = 5  #: the command could not do its work (a store error, a missing version...)
