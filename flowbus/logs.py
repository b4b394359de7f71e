"""Structured logs for long-running processes: one JSON object per line, or plain text."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import re
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: a record's own attributes come first, then the extra fields: where the extra fields start
_EXTRA_AT = len(vars(logging.makeLogRecord({})))
_NEEDS_QUOTES = re.compile(r'[\s"=]')

#: the levels ``--log-level`` offers, quietest last
LOG_LEVELS = ("debug", "info", "warning", "error")


#: OpenTelemetry's severity numbers of the standard levels (the log data model's SeverityNumber)
SEVERITY_NUMBERS = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}


class JsonFormatter(logging.Formatter):
    """One JSON object a line, named as in the OpenTelemetry log data model where the two meet
    (``timestamp``, ``severity_text``, ``severity_number``, ``body``; a run's ``trace_id`` and
    ``span_id``), so that a collector's log pipeline maps it without rules; the extra fields
    follow as they are."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "severity_text": record.levelname,
            "severity_number": SEVERITY_NUMBERS.get(record.levelname, 0),
            "logger": record.name,
            "body": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER: MESSAGE key=value ...``: the extra fields as logfmt, those that are None
    left out and a value with spaces quoted, so that a worker's line per run reads at a glance."""

    def __init__(self) -> None:
        super().__init__()
        # a worker logs a line per run: the date and time are formatted once a second, not per line
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        # a plain loop, not a generator: this runs once a run, and a generator's frames cost more
        # than the fields it formats
        for key, value in itertools.islice(vars(record).items(), _EXTRA_AT, None):  # not the ~20 standard ones
            if value is not None and key not in _STANDARD:
                parts.append(f"{key}={_logfmt(value)}")
        return " ".join(parts)


def _logfmt(value: object) -> str:
    kind = type(value)
    if kind is int or kind is float:  # never quoted: no regular expression for them
        return str(value)
    text = str(value)
    return json.dumps(text) if not text or _NEEDS_QUOTES.search(text) else text


def quieter(level: str, floor: str) -> str:
    """The quieter of two level names (what a chatty library gets next to flowbus's own level)."""
    return max(level, floor, key=LOG_LEVELS.index)


def setup_logging(log_format: str = "text", level: str = "info") -> None:
    # neither format shows where a call was made, nor the thread or the process: not gathering
    # them makes each record cheaper (logging's own advice), which a line per run wants
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger("flowbus")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
