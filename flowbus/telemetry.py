"""OpenTelemetry traces, when the standard ``OTEL_*`` variables ask for them (the ``otel`` extra).

Nothing here imports ``opentelemetry`` until :func:`tracing` is first called, and that call
imports it only when a variable asks for export (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER``) and ``OTEL_SDK_DISABLED``
is not ``true``. Otherwise :func:`tracing` is None, once and for all in the process, and every
caller skips its spans on that one test: no span objects, no context variables, no SDK.

The spans, and who makes them: the ingest request (``api/ingest.py``); the message's wait in its
queue, from when it could be claimed to its claim, and the batch commit (``worker.py``); each
run and each step (``runtime/context.py``); each attempt of an ``http`` step, as a client span
that sends ``traceparent`` on (``runtime/actions/http.py``). A message keeps the W3C trace
context it was sent in (``trace_context``, migration 0007), so a worker, in another process and
later, continues the producer's trace; the async handlers of an event published by a run keep the
publishing step's context the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext, Tracer

logger = logging.getLogger("flowbus.telemetry")

T = TypeVar("T")

#: the variables that ask for spans to be exported
EXPORT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
#: the longest ``tracestate`` kept: W3C asks vendors to pass on at least 512 characters, and a
#: longer one (from outside) would be stored with every message
MAX_TRACESTATE_CHARS = 512
#: the spans of finished runs remembered for their log line and the batch commit's links
_REMEMBERED_RUNS = 4096
_INSTRUMENTATION = "flowbus"

#: a stored traceparent (version 00, as flowbus writes it)
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

_UNSET: Any = object()
_tracing: Tracing | None = _UNSET


def tracing() -> Tracing | None:
    """The process's tracing, or None when no ``OTEL_*`` variable asks for it (decided once)."""
    global _tracing  # noqa: PLW0603 - configured once per process, from its environment
    if _tracing is _UNSET:
        _tracing = _configure(os.environ)
    return _tracing


def export_asked(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return any(environ.get(name, "").strip() for name in EXPORT_VARIABLES)


def current_carrier() -> str | None:
    """The active span's W3C trace context as stored with a message; None without one."""
    active = tracing()
    return None if active is None else active.carrier()


def event_carrier(traceparent: str | None, tracestate: str | None) -> str | None:
    """The trace context an event carries (the CloudEvents distributed-tracing extension), as
    stored with a message; None without tracing, or when the event carries no valid one."""
    active = tracing()
    if active is None or not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return active.carrier(active.extract(carrier))


def annotate(attributes: Mapping[str, Any]) -> None:
    """Add ``attributes`` to the active span, when there is one."""
    active = tracing()
    if active is not None:
        active.annotate(attributes)


def shutdown() -> None:
    """Export the spans still buffered (the end of a worker, ``serve`` or ``run``)."""
    if _tracing is not _UNSET and _tracing is not None:
        _tracing.shutdown()


def _configure(environ: Mapping[str, str]) -> Tracing | None:
    if not export_asked(environ):
        return None
    try:
        from opentelemetry import trace  # noqa: PLC0415 - imported only when traces are asked for
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - imported only when traces are asked for
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - imported only when traces are asked for
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter  # noqa: PLC0415 - imported only when traces are asked for
    except ImportError:
        logger.warning(
            "OTEL_* variables ask for traces, but OpenTelemetry is not installed: "
            "pip install 'flowbus[otel]'; no spans are made"
        )
        return None
    provider = trace.get_tracer_provider()
    own: TracerProvider | None = None
    if not isinstance(provider, TracerProvider):  # the application configured none: flowbus does
        exporter_name = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
        exporter: SpanExporter
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        else:
            if exporter_name != "otlp":
                logger.warning("OTEL_TRACES_EXPORTER=%s is not supported; exporting over OTLP/HTTP", exporter_name)
            protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            if protocol and protocol != "http/protobuf":
                logger.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; using http/protobuf", protocol)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415 - imported only when traces are asked for

            exporter = OTLPSpanExporter()
        # the resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (flowbus is the name
        # when neither gives one), the provider OTEL_TRACES_SAMPLER(_ARG), the processor OTEL_BSP_*
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "flowbus"}))
        own = TracerProvider(resource=resource)
        own.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(own)
    return Tracing(trace.get_tracer(_INSTRUMENTATION), own, parent_based=_parent_based(trace.get_tracer_provider()))


def _parent_based(provider: Any) -> bool:
    """Whether the provider samples a span as its parent was (the default, and every
    ``parentbased_*`` sampler): then the children of a trace not sampled need not be made."""
    from opentelemetry.sdk.trace.sampling import ParentBased  # noqa: PLC0415 - as above

    return isinstance(getattr(provider, "sampler", None), ParentBased)


class Tracing:
    """The tracer and the few span shapes flowbus makes, each with its attributes."""

    def __init__(self, tracer: Tracer, provider: Any = None, *, parent_based: bool = False) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - imported only when traces are asked for
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: PLC0415 - imported only when traces are asked for

        self._trace = trace
        self.tracer = tracer
        self._provider = provider
        # W3C trace context only: what is stored with a message stays small and bounded
        self._propagator = TraceContextTextMapPropagator()
        self._runs: dict[str, SpanContext] = {}
        self._parent_based = parent_based

    # -- context in and out --------------------------------------------------------------

    def extract(self, headers: Mapping[str, str]) -> Context:
        """The context a request or an event carries in ``traceparent`` and ``tracestate``."""
        carrier = {}
        parent = headers.get("traceparent")
        if parent:
            carrier["traceparent"] = parent
            state = headers.get("tracestate")
            if state and len(state) <= MAX_TRACESTATE_CHARS:
                carrier["tracestate"] = state
        return self._propagator.extract(carrier)

    def carrier(self, context: Context | None = None) -> str | None:
        """The W3C trace context of ``context`` (default: the active one) as text to store with a
        message: ``{"traceparent": ..., "tracestate": ...}``; None when there is no valid span.

        Written and read here directly rather than through the propagator, which costs several
        times more: once a message, and again once a run.
        """
        span = self._trace.get_current_span(context).get_span_context()
        if not span.is_valid:
            return None
        carrier = {"traceparent": f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"}
        if span.trace_state:
            carrier["tracestate"] = span.trace_state.to_header()
        return json.dumps(carrier, separators=(",", ":"))

    def context_of(self, stored: str | None) -> Context | None:
        """The context of a message's stored ``trace_context``; None for none (or for text that is
        not one, as from a producer that wrote the column itself)."""
        if not stored:
            return None
        try:
            carrier = json.loads(stored)
        except ValueError:
            return None
        parent = carrier.get("traceparent") if isinstance(carrier, dict) else None
        found = _TRACEPARENT.fullmatch(parent) if isinstance(parent, str) else None
        if found is None:
            return None
        trace_id, span_id, flags = (int(part, 16) for part in found.groups())
        state = carrier.get("tracestate")
        trace = self._trace
        span = trace.SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags),
            trace_state=trace.TraceState.from_header([state]) if isinstance(state, str) and state else None,
        )  # fmt: skip
        return trace.set_span_in_context(trace.NonRecordingSpan(span)) if span.is_valid else None

    def headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) of the active span, for an outgoing request."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier

    # -- spans ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        kind: str = "INTERNAL",
        parent: Context | None = None,
    ) -> Iterator[Span]:
        """A span, active while the block runs; an exception leaving it marks it failed.

        In a trace that is not sampled, under parent-based sampling, no span is made (the SDK
        would make one that records nothing, at ~15-25 µs): the parent stays active instead, so
        the context still goes on (``traceparent`` with its sampled flag off).
        """
        above = self.sampled_out(parent)
        if above is not None:
            if parent is None:  # active already
                yield above
                return
            with self._trace.use_span(above, end_on_exit=False):
                yield above
            return
        span = self.tracer.start_span(
            name, context=parent, kind=self._trace.SpanKind[kind], attributes=_attributes(attributes)
        )
        with self._trace.use_span(span, end_on_exit=True):
            yield span

    def sampled_out(self, parent: Context | None = None) -> Span | None:
        """The span of ``parent`` (default: the active one) when its trace is not sampled and
        its children would not be either (parent-based sampling); None when a child is made."""
        if not self._parent_based:
            return None
        above = self._trace.get_current_span(parent)
        context = above.get_span_context()
        return above if context.is_valid and not context.trace_flags.sampled else None

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        self._trace.get_current_span().set_attributes(_attributes(attributes))

    def failed(self, span: Span, error: str) -> None:
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error))

    def queue_waits(self, messages: list[Any]) -> list[Any]:
        """One span per claimed message for its wait in the queue, ended now: from when it
        could be claimed (``available_at``: its sending, or its retry's time) to its claim. The
        messages are ``QueuedMessage`` records (of a layer above this one).

        A message sent outside any trace starts one here: it is given its wait span's context,
        so that its runs join that trace (and are sampled with it) instead of starting another.
        """
        now = time.time_ns()
        traced: list[Any] = []
        for message in messages:
            span = self.tracer.start_span(
                f"wait {message.queue}",
                context=self.context_of(message.trace_context),
                kind=self._trace.SpanKind.CONSUMER,
                start_time=min(int(message.available_at.timestamp() * 1e9), now),
                attributes=_attributes(
                    {
                        "messaging.system": "flowbus",
                        "messaging.operation.type": "receive",
                        "messaging.destination.name": str(message.queue),
                        "messaging.message.id": message.id,
                        "flowbus.message_id": message.id,
                        "flowbus.message.kind": str(message.kind),
                        "flowbus.attempt": message.attempts + 1,
                        "flowbus.group_key": message.group_key,
                    }
                ),
            )
            span.end(end_time=now)
            if message.trace_context is None:
                context = self.carrier(self._trace.set_span_in_context(span))
                traced.append(message._replace(trace_context=context))
            else:
                traced.append(message)
        return traced

    def ran(self, run_id: str, span: Span) -> None:
        """Remember a finished run's span, for its log line and the batch commit's links (a span
        sampled out is nowhere to be found: not remembered)."""
        context = span.get_span_context()
        if not context.trace_flags.sampled:
            return
        if len(self._runs) >= _REMEMBERED_RUNS:
            del self._runs[next(iter(self._runs))]
        self._runs[run_id] = context

    def log_ids(self, run_id: str) -> dict[str, str]:
        """``trace_id`` and ``span_id`` of a finished run's span, as hex (the log data model's
        form); empty when the run made none."""
        context = self._runs.get(run_id)
        if context is None:
            return {}
        return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}

    async def commit(self, applying: Awaitable[T], run_ids: Iterable[str], messages: int) -> T:
        """The span of a batch commit: a trace of its own, since a batch holds the messages of
        many traces, linked to the span of each run it commits."""
        links = [self._trace.Link(self._runs[i]) for i in run_ids if i in self._runs]
        span = self.tracer.start_span(
            "commit batch",
            context=self._trace.set_span_in_context(self._trace.INVALID_SPAN),
            links=links,
            attributes={"flowbus.batch.messages": messages, "flowbus.batch.runs": len(links)},
        )
        with self._trace.use_span(span, end_on_exit=True):
            return await applying

    def shutdown(self) -> None:
        """Export what is buffered and stop; a provider the application set up is its own to stop."""
        if self._provider is not None:
            provider, self._provider = self._provider, None
            provider.shutdown()


def _attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that have a value (OpenTelemetry refuses None)."""
    return {key: value for key, value in attributes.items() if value is not None}
