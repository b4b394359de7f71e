"""Schedules: a cron expression in a time zone that publishes an event or runs a logic flow.

The cron is read by ``cronsim`` (five fields, or six with seconds first), time zones by
``zoneinfo``; a cron that never fires (``0 0 30 2 *``) or an unknown zone is refused when the
config loads. What a tick does, and which ticks fire after downtime, is :mod:`flowbus.schedules`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, Literal

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator

from flowbus.config.base import Identifier, Model, Name

#: the most missed ticks ``catch_up: all`` fires after downtime, unless a schedule says
DEFAULT_MAX_CATCH_UP = 100
MAX_CRON_CHARS = 256


class SchedulePublish(Model):
    """The event a tick publishes, with literal properties."""

    event: Name
    event_version: int | None = Field(default=None, ge=1, description="default: the latest defined")
    properties: dict[Identifier, Any] = Field(default_factory=dict)


class Schedule(Model):
    """Fires on each tick of a cron: publishes an event or runs a logic flow, once per tick however
    many workers run."""

    name: Name
    description: str = ""
    cron: str = Field(
        max_length=MAX_CRON_CHARS,
        description="five fields (minute hour day month weekday), or six with seconds first",
    )
    timezone: str = Field(default="UTC", max_length=64, description="an IANA zone the cron is read in")
    enabled: bool = True
    catch_up: Literal["latest", "all", "none"] = Field(
        default="latest",
        description="ticks missed while no worker ran: fire the latest once, all (up to max_catch_up), or none",
    )
    max_catch_up: int = Field(default=DEFAULT_MAX_CATCH_UP, ge=1, le=10_000, description="the cap of catch_up: all")
    publish: SchedulePublish | None = None
    run: Name | None = Field(default=None, description="the logic flow each tick runs")
    inputs: dict[Identifier, Any] = Field(default_factory=dict, description="the inputs of the flow it runs")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _fires(cls, value: str) -> str:
        first_tick(value, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        return value

    @model_validator(mode="after")
    def _one_thing(self) -> Schedule:
        if (self.publish is None) == (self.run is None):
            raise ValueError("a schedule does one thing: give `publish` (an event) or `run` (a logic flow)")
        if self.inputs and self.run is None:
            raise ValueError("`inputs` go with `run`: the inputs of the flow a tick runs")
        return self


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone ``name``; a ValueError saying so when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; give an IANA name like Europe/Paris or UTC") from None


def first_tick(cron: str, after: dt.datetime) -> dt.datetime:
    """The first tick of ``cron`` after ``after``; a ValueError when the cron is not one or never fires."""
    try:
        return next(CronSim(cron, after))
    except CronSimError as error:
        raise ValueError(f"{cron!r} is not a cron expression flowbus can read: {error}") from None
    except StopIteration:
        raise ValueError(f"{cron!r} never fires") from None
