"""The config model: everything one flowbus config file declares (design §1).

These models hold what the file says, validated field by field. References between them
(a handler's flow, a step's target...) are checked by :mod:`flowbus.config.references`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from flowbus.config.base import Identifier, Model, Name
from flowbus.config.debounce import Debounce
from flowbus.config.flow_control import DEFAULT_PRIORITY, Concurrency, RunRateLimit
from flowbus.config.limits import Period, RateLimit
from flowbus.config.retention import Retention
from flowbus.config.schedules import Schedule
from flowbus.config.steps import Step

PropertyType = Literal[
    "String", "Integer", "Decimal", "Money", "Boolean", "DateTime", "Date",
    "EntityReference", "Guid", "List", "Object",
]  # fmt: skip


URL_PATTERN = r"^https?://"


class Property(Model):
    """A typed property of an event definition."""

    type: PropertyType
    required: bool = False
    description: str = ""
    entity: Identifier | None = Field(default=None, description="for EntityReference: the entity referred to")
    items: PropertyType | None = Field(default=None, description="for List: the type of every item")
    scale: int | None = Field(default=None, ge=0, le=18, description="for Money: fractional digits allowed (default 2)")

    @property
    def needs_value(self) -> bool:
        """Whether a value must be given: required, and nothing fills it in."""
        return self.required

    @model_validator(mode="after")
    def _type_options_fit(self) -> Property:
        if self.type == "EntityReference" and self.entity is None:
            raise ValueError("an EntityReference property needs `entity`: the entity it refers to")
        if self.entity is not None and self.type != "EntityReference":
            raise ValueError("`entity` applies only to EntityReference properties")
        if self.items is not None and self.type != "List":
            raise ValueError("`items` applies only to List properties")
        if self.items in ("List", "EntityReference"):
            raise ValueError("`items` cannot be List or EntityReference; use Object for nested lists")
        if self.scale is not None and self.type != "Money":
            raise ValueError("`scale` applies only to Money properties")
        return self


class FlowInput(Property):
    """A typed input of a logic flow."""

    default: Any = Field(default=None, description="used when the input is not given")

    @property
    def needs_value(self) -> bool:
        return self.required and self.default is None


class Source(Model):
    """A named producer of raw messages."""

    name: Name
    description: str = ""
    event_type_from: str | None = Field(default=None, description="JSONPath into the raw payload giving the event type")


class EventDefinition(Model):
    """The contract of an event: its typed properties."""

    name: Name
    version: int = Field(default=1, ge=1)
    description: str = ""
    properties: dict[Identifier, Property] = Field(default_factory=dict)


class Retry(Model):
    """How a failing queued run is tried again: exponential backoff with jitter, then the dead-letter queue."""

    max_attempts: int = Field(default=5, ge=1, le=100, description="attempts before the message is dead-lettered")
    backoff_s: float = Field(
        default=1.0, gt=0, le=3600, description="the wait after the first failure; doubles each time"
    )
    max_backoff_s: float = Field(default=300.0, gt=0, le=86400, description="the longest wait between attempts")


class Flow(Model):
    """An ordered list of steps: a trigger flow (source + event_type) or a logic flow (inputs)."""

    name: Name
    description: str = ""
    source: Name | None = None
    event_type: str | None = Field(default=None, min_length=1, max_length=256)
    event_type_from: str | None = Field(default=None, description="JSONPath into the payload giving the event type")
    enabled: bool = True
    inputs: dict[Identifier, FlowInput] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    retry: Retry | None = Field(default=None, description="retries of queued runs of this flow")
    on_failure: Literal["block", "park"] = Field(
        default="park",
        description="when attempts are used up: park (dead-letter, the group goes on) or block (the group waits)",
    )
    debounce: Debounce | None = Field(
        default=None, description="of the async handlers that run this flow (a handler's own debounce comes first)"
    )
    concurrency: Concurrency | None = Field(default=None, description="at most `limit` runs at once per key")
    rate_limit: RunRateLimit | None = Field(default=None, description="at most `limit` runs per `period` per key")

    @property
    def is_trigger(self) -> bool:
        return self.source is not None or self.event_type is not None


class Handler(Model):
    """Subscribes a logic flow to an event definition."""

    name: Name
    event: Name
    flow: Name
    event_version: int | None = Field(
        default=None, ge=1, description="the version of the event it listens to (default: the latest defined)"
    )
    mode: Literal["sync", "async"] = "async"
    bindings: dict[Identifier, Identifier] = Field(default_factory=dict, description="event property -> flow input")
    retry: Retry | None = Field(default=None, description="retries of this handler's runs (default: its flow's)")
    debounce: Debounce | None = Field(
        default=None, description="one run per burst of events with one key, for the last (default: its flow's)"
    )
    concurrency: Concurrency | None = Field(default=None, description="default: its flow's")
    rate_limit: RunRateLimit | None = Field(default=None, description="default: its flow's")
    priority: int = Field(default=DEFAULT_PRIORITY, ge=0, le=9, description="0-9, higher claimed first")


class StoreTarget(Model):
    """The built-in entity store."""

    name: Name
    type: Literal["store"]
    description: str = ""
    keys: dict[Identifier, Identifier] = Field(
        default_factory=dict,
        description="entity -> the field that identifies its records (default `id`)",
    )


class HttpTarget(Model):
    """An HTTP API."""

    name: Name
    type: Literal["http"]
    description: str = ""
    base_url: Annotated[str, Field(pattern=URL_PATTERN)]
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=3, ge=1, le=10)
    rate_limit: RateLimit | None = Field(default=None, description="calls allowed per period, across every worker")
    max_retry_after: Period = Field(
        default=dt.timedelta(minutes=5), description="the longest `Retry-After` honoured by giving the message back"
    )
    max_deferrals: int = Field(
        default=10, ge=1, le=1000, description="how often one message may be given back for this target's Retry-After"
    )


Target = Annotated[StoreTarget | HttpTarget, Field(discriminator="type")]


class Project(Model):
    name: Name = "default"
    description: str = ""


class Config(Model):
    """One flowbus config file."""

    project: Project = Field(default_factory=Project)
    sources: list[Source] = Field(default_factory=list)
    events: list[EventDefinition] = Field(default_factory=list)
    flows: list[Flow] = Field(default_factory=list)
    handlers: list[Handler] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list, description="cron ticks that publish or run")
    retention: Retention = Field(default_factory=Retention, description="how long records are kept")
