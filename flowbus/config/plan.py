"""A config compiled for running: flows with compiled steps, and the dispatch index.

Everything that can be worked out once per config version is worked out here, so that the
per-message path is dict lookups and closure calls (design §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flowbus.config.debounce import compile_key as compile_debounce_key
from flowbus.config.event_versions import EventVersions
from flowbus.config.model import Config, EventDefinition, Flow, Handler, HttpTarget, StoreTarget
from flowbus.config.schema import PropertySchema
from flowbus.config.steps import (
    BaseStep,
    EntityStep,
    PublishStep,
    SaveStep,
    SwitchStep,
    UpsertStep,
    ValidateStep,
)
from flowbus.config.values import InvalidValue, Value, compile_value
from flowbus.errors import EventValidationError
from flowbus.events.frozen import freeze
from flowbus.expr import DEFAULT_LIMITS, Expression, ExpressionError, JsonPath, Limits, compile_path
from flowbus.limits import FlowControl, compile_key, flow_control

#: the field that keys an entity's records when its target does not say
DEFAULT_KEY = "id"

Path = tuple[str | int, ...]


# -- what the plan fixes for an action when the config loads (a step's ``extra``) ---------------


@dataclass(frozen=True, slots=True)
class CompiledRule:
    check: Value
    message: Value


@dataclass(frozen=True, slots=True)
class ValidateRules:
    """A validate step's rules, evaluated one by one when the step runs."""

    rules: tuple[CompiledRule, ...]


@dataclass(frozen=True, slots=True)
class SwitchCases:
    """The value of each case of a switch step, frozen, as data read in a run is."""

    equals: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class EntityKey:
    """The field that keys an entity step's records: the step's ``key``, its target's, or ``id``."""

    field: str


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    """The version a publish step publishes: the one it names, or the latest of this config."""

    version: int | None


#: the extra data of a step, by the action that reads it
StepExtra = ValidateRules | SwitchCases | EntityKey | PublishedVersion
E = TypeVar("E", ValidateRules, SwitchCases, EntityKey, PublishedVersion)
M = TypeVar("M", bound=BaseStep)


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledStep:
    id: str
    action: str
    model: BaseStep
    #: evaluated before the action runs; what it evaluates to is the step's recorded input
    params: Value
    #: the step's model declares its effects outside the run's unit of work: see ``StepSpec.journaled``
    #: (no default: either wrong guess is a bug, and a missed journal repeats an effect on retry)
    journaled: bool
    blocks: Mapping[str, tuple[CompiledStep, ...]] = field(default_factory=dict)
    #: what the plan fixed for the action when the config loaded (validate rules, switch cases...)
    extra: StepExtra | None = None

    def extra_as(self, kind: type[E]) -> E:
        """The step's extra data, which the plan made a ``kind`` for this step's action."""
        extra = self.extra
        if not isinstance(extra, kind):
            raise TypeError(f"step {self.id!r} ({self.action}) has no {kind.__name__}")
        return extra

    def model_as(self, kind: type[M]) -> M:
        """The step's model, which is a ``kind`` for the action registered for ``kind``."""
        model = self.model
        if not isinstance(model, kind):
            raise TypeError(f"step {self.id!r} ({self.action}) is not a {kind.__name__}")
        return model


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledFlow:
    name: str
    model: Flow
    steps: tuple[CompiledStep, ...]
    inputs: PropertySchema
    input_defaults: Mapping[str, Any]
    #: inputs that must have a value when the run starts (required, with no default)
    required_inputs: frozenset[str] = frozenset()

    @property
    def is_trigger(self) -> bool:
        return self.model.is_trigger


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledDebounce:
    """A handler's debounce, its key compiled (see :mod:`flowbus.config.debounce`)."""

    #: evaluates ``{"event": envelope}`` to the key's value; None: one burst for every event
    key: Expression | None
    period_s: float
    max_wait_s: float | None


def _debounce(handler: Handler, flow: Flow) -> CompiledDebounce | None:
    debounce = handler.debounce or flow.debounce
    if debounce is None:
        return None
    return CompiledDebounce(
        key=compile_debounce_key(debounce.key) if debounce.key is not None else None,
        period_s=debounce.period.total_seconds(),
        max_wait_s=debounce.max_wait.total_seconds() if debounce.max_wait is not None else None,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledHandler:
    model: Handler
    flow: CompiledFlow
    #: (event property, flow input) pairs
    bindings: tuple[tuple[str, str], ...]
    #: its own debounce, else its flow's (None: every event runs the flow)
    debounce: CompiledDebounce | None = None
    #: its concurrency and rate limits and priority (flowbus.limits); None: it has none
    flow_control: FlowControl | None = None

    @property
    def name(self) -> str:
        return self.model.name


@dataclass(frozen=True, kw_only=True, slots=True)
class Subscribers:
    """The handlers of one event version, split by mode, each in registration order."""

    sync: tuple[CompiledHandler, ...] = ()
    async_: tuple[CompiledHandler, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CompiledEvent:
    """One version of an event, with the handlers subscribed to that version."""

    definition: EventDefinition
    #: ``OrderPlaced``, or ``OrderPlaced v2`` when the config defines several versions of it
    label: str
    schema: PropertySchema
    subscribers: Subscribers = Subscribers()


@dataclass(frozen=True, kw_only=True)
class Plan:
    config: Config
    flows: Mapping[str, CompiledFlow]
    #: name -> the event's latest version, what a publisher that names no version publishes
    events: Mapping[str, CompiledEvent]
    #: (name, version) -> every version of every event
    versions: Mapping[tuple[str, int], CompiledEvent]
    handlers: Mapping[str, CompiledHandler]
    #: (source, event_type) -> enabled trigger flows in declared order
    routes: Mapping[tuple[str, str], tuple[CompiledFlow, ...]]
    #: name -> the handlers of the event's latest version
    subscribers: Mapping[str, Subscribers]
    #: the sources a message may come from: those declared, and those a trigger flow names
    sources: frozenset[str]
    #: source -> the JSONPath giving the event type of its raw payloads
    type_paths: Mapping[str, JsonPath]
    targets: Mapping[str, StoreTarget | HttpTarget]
    limits: Limits


class StepCompileError(Exception):
    """Raised inside :func:`compile_plan` with the path of the failing value; the loader reports it."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(message)


def compile_plan(config: Config, *, limits: Limits = DEFAULT_LIMITS) -> Plan:
    """Compile a config that passed reference validation. Raises :class:`StepCompileError`."""
    keys = {t.name: t.keys for t in config.targets if isinstance(t, StoreTarget)}
    known = EventVersions(config.events)
    compiler = _StepCompiler(limits, keys, known)
    flows = {flow.name: compiler.flow(flow, ("flows", index)) for index, flow in enumerate(config.flows)}
    handlers = {
        h.name: CompiledHandler(
            model=h,
            flow=flows[h.flow],
            bindings=tuple(h.bindings.items()),
            debounce=_debounce(h, flows[h.flow].model),
            flow_control=_flow_control(h, index, flows[h.flow].model, limits),
        )
        for index, h in enumerate(config.handlers)
        if h.flow in flows
    }
    _check_flow_limits(config, limits)
    routes: dict[tuple[str, str], list[CompiledFlow]] = {}
    for flow in flows.values():
        if flow.model.enabled and flow.model.source is not None and flow.model.event_type is not None:
            routes.setdefault((flow.model.source, flow.model.event_type), []).append(flow)
    # a handler listens to one version of its event: the one it names, or the latest
    sync: dict[tuple[str, int], list[CompiledHandler]] = {}
    async_: dict[tuple[str, int], list[CompiledHandler]] = {}
    for handler in handlers.values():
        event = known.resolve(handler.model.event, handler.model.event_version)
        if not handler.flow.model.enabled or event is None:
            continue
        (sync if handler.model.mode == "sync" else async_).setdefault((event.name, event.version), []).append(handler)
    versions = {
        key: CompiledEvent(
            definition=event,
            label=known.label(event),
            schema=PropertySchema(known.label(event), event.properties),
            subscribers=Subscribers(sync=tuple(sync.get(key, ())), async_=tuple(async_.get(key, ()))),
        )
        for key, event in known.by_key.items()
    }
    events = {name: versions[(event.name, event.version)] for name, event in known.latest.items()}
    _check_schedules(config, known, versions, flows)
    return Plan(
        config=config,
        flows=flows,
        events=events,
        versions=versions,
        handlers=handlers,
        routes={key: tuple(value) for key, value in routes.items()},
        subscribers={name: event.subscribers for name, event in events.items()},
        sources=frozenset(s.name for s in config.sources) | {f.source for f in config.flows if f.source is not None},
        type_paths=_type_paths(config),
        targets={t.name: t for t in config.targets},
        limits=limits,
    )


def _check_schedules(
    config: Config,
    known: EventVersions,
    versions: Mapping[tuple[str, int], CompiledEvent],
    flows: Mapping[str, CompiledFlow],
) -> None:
    """A schedule's literal properties or inputs are checked against their types now, rather than
    refused at every tick."""
    for index, schedule in enumerate(config.schedules):
        try:
            if schedule.publish is not None:
                where: Path = ("schedules", index, "publish", "properties")
                event = known.resolve(schedule.publish.event, schedule.publish.event_version)
                if event is not None:
                    versions[(event.name, event.version)].schema.validate(schedule.publish.properties)
            elif schedule.run is not None and schedule.run in flows:
                where = ("schedules", index, "inputs")
                flows[schedule.run].inputs.validate(schedule.inputs)
        except EventValidationError as exc:
            raise StepCompileError(where, str(exc)) from None


def _flow_control(handler: Handler, index: int, flow: Flow, limits: Limits) -> FlowControl | None:
    """A handler's flow control; a key that does not compile is refused at its place."""
    for name in ("concurrency", "rate_limit"):
        setting = getattr(handler, name)
        if setting is not None and setting.key is not None:
            _key(setting.key, ("handlers", index, name, "key"), limits)
    return flow_control(
        handler.name, flow.name, concurrency=(handler.concurrency, flow.concurrency),
        rate=(handler.rate_limit, flow.rate_limit), priority=handler.priority, limits=limits,
    )  # fmt: skip


def _check_flow_limits(config: Config, limits: Limits) -> None:
    """A flow's limits apply to the handlers that run it: refused on a trigger flow, which runs
    for its source's messages (several trigger flows run in one message)."""
    for index, flow in enumerate(config.flows):
        for name in ("concurrency", "rate_limit"):
            setting = getattr(flow, name)
            if setting is None:
                continue
            if flow.is_trigger:
                raise StepCompileError(
                    ("flows", index, name),
                    f"`{name}` applies to the runs of handlers; a trigger flow runs with every other "
                    "trigger flow of its source message, so it cannot be limited on its own",
                )
            if setting.key is not None:
                _key(setting.key, ("flows", index, name, "key"), limits)


def _key(source: str, where: Path, limits: Limits) -> None:
    try:
        compile_key(source, limits)
    except ExpressionError as exc:
        raise StepCompileError(where, str(exc)) from None


def _type_paths(config: Config) -> dict[str, JsonPath]:
    paths: dict[str, JsonPath] = {}
    for index, source in enumerate(config.sources):
        if source.event_type_from:
            paths[source.name] = _path(source.event_type_from, ("sources", index, "event_type_from"))
    for index, flow in enumerate(config.flows):
        if flow.source and flow.event_type_from and flow.source not in paths:
            paths[flow.source] = _path(flow.event_type_from, ("flows", index, "event_type_from"))
    return paths


def _path(source: str, where: Path) -> JsonPath:
    if not source.startswith("$"):
        raise StepCompileError(where, f"a JSONPath must start with '$', got {source!r}")
    try:
        return compile_path(source)
    except ExpressionError as exc:
        raise StepCompileError(where, str(exc)) from None


class _StepCompiler:
    def __init__(self, limits: Limits, keys: Mapping[str, Mapping[str, str]], events: EventVersions) -> None:
        self.limits = limits
        self.keys = keys
        self.events = events

    def flow(self, flow: Flow, where: Path) -> CompiledFlow:
        schema = PropertySchema(f"flow {flow.name} inputs", flow.inputs)
        defaults = {name: spec.default for name, spec in flow.inputs.items() if spec.default is not None}
        try:  # a default must be a valid value of its input
            if defaults:
                defaults = PropertySchema(schema.subject, {n: flow.inputs[n] for n in defaults}).validate(defaults)
        except EventValidationError as exc:
            name, reason = next(iter(exc.problems.items()))
            raise StepCompileError(
                (*where, "inputs", name, "default"), f"default does not fit the input: {reason}"
            ) from None
        required = frozenset(n for n, spec in flow.inputs.items() if spec.needs_value)
        return CompiledFlow(
            name=flow.name,
            model=flow,
            steps=self.steps(list(flow.steps), (*where, "steps")),
            inputs=schema,
            input_defaults=defaults,
            required_inputs=required,
        )

    def steps(self, steps: list[BaseStep], where: Path) -> tuple[CompiledStep, ...]:
        return tuple(self.step(step, (*where, index)) for index, step in enumerate(steps))

    def step(self, step: BaseStep, where: Path) -> CompiledStep:
        spec = type(step).spec
        try:
            params = compile_value(spec.params(step), limits=self.limits)
            extra = self.extra(step)
        except InvalidValue as exc:
            raise StepCompileError((*where, *exc.path), exc.message) from None
        if isinstance(step, UpsertStep):
            self.upsert_key(step, where)
        blocks = {".".join(str(p) for p in path): self.steps(block, (*where, *path)) for path, block in step.blocks()}
        return CompiledStep(
            id=step.id,
            action=step.action,
            model=step,
            params=params,
            blocks=blocks,
            extra=extra,
            journaled=spec.journaled,
        )

    def extra(self, step: BaseStep) -> StepExtra | None:
        if isinstance(step, ValidateStep):
            return ValidateRules(
                tuple(self.rule(index, rule.check, rule.message) for index, rule in enumerate(step.rules))
            )
        if isinstance(step, SwitchStep):
            return SwitchCases(tuple(freeze(case.equals) for case in step.cases))
        if isinstance(step, EntityStep):
            return EntityKey(step.key if isinstance(step, SaveStep | UpsertStep) and step.key else self.key_field(step))
        if isinstance(step, PublishStep):
            # "the latest" means the latest of this config, not of whatever config runs it later
            published = self.events.resolve(step.event, step.event_version)
            return PublishedVersion(published.version if published is not None else None)
        return None

    def key_field(self, step: EntityStep) -> str:
        return self.keys.get(step.target, {}).get(step.entity, DEFAULT_KEY)

    def upsert_key(self, step: UpsertStep, where: Path) -> None:
        """An upsert finds its record by the key field of its data: one nothing names fails every run."""
        keys = self.keys.get(step.target)
        if step.key or (keys is not None and step.entity in keys):
            return
        if isinstance(step.data, Mapping) and DEFAULT_KEY in step.data:
            return  # the record carries the default key field for all to see
        entity, target = step.entity, step.target
        if keys is None:
            fix = f"declare it: `targets: [{{name: {target}, type: store, keys: {{{entity}: {DEFAULT_KEY}}}}}]`"
        elif keys:
            fix = f"add `{entity}: {DEFAULT_KEY}` under the `keys:` of target {target!r}"
        else:
            fix = f"add `keys: {{{entity}: {DEFAULT_KEY}}}` under target {target!r}"
        raise StepCompileError(
            (*where, "entity"),
            f"target {target!r} has no key for {entity!r}, so the upsert cannot tell which record its data is; "
            f"{fix}, with the field that identifies a {entity} record in place of {DEFAULT_KEY!r} "
            "(or give this step `key:`)",
        )

    def rule(self, index: int, check: Any, message: Any) -> CompiledRule:
        compiled = []
        for name, raw in (("check", check), ("message", message)):
            try:
                compiled.append(compile_value(raw, limits=self.limits))
            except InvalidValue as exc:
                raise InvalidValue(("rules", index, name, *exc.path), exc.error) from None
        return CompiledRule(compiled[0], compiled[1])
