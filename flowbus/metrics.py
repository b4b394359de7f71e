"""Prometheus metrics of this process: messages taken in, runs by status, run latency (in all and
by flow), messages no flow took, records removed by retention.

Counted where the work happens (the ingress, the worker), in a registry of their own so that two
apps in one test process do not share counts. Queue depth, dead letters, the messages flow control holds
back and the records kept are read from the store when scraped, so they are right whatever process did the work; so is
the age of each queue's oldest open message.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: the buckets of run durations, in seconds
RUN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_in = Counter(
            "flowbus_messages_in", "Messages and events accepted at the ingress.", ["project", "kind"],
            registry=self.registry,
        )  # fmt: skip
        self.runs = Counter("flowbus_runs", "Runs finished, by status.", ["project", "status"], registry=self.registry)
        self.messages_unmatched = Counter(
            "flowbus_messages_unmatched", "Source messages no enabled trigger flow took.", ["project", "source"],
            registry=self.registry,
        )  # fmt: skip
        self.run_seconds = Histogram(
            "flowbus_run_seconds", "How long runs took.", ["project"], registry=self.registry,
            buckets=RUN_BUCKETS,
        )  # fmt: skip
        self.flow_run_seconds = Histogram(
            "flowbus_flow_run_seconds", "How long runs took, by flow.", ["project", "flow"], registry=self.registry,
            buckets=RUN_BUCKETS,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "flowbus_queue_depth", "Messages by queue and state.", ["project", "queue", "state"],
            registry=self.registry,
        )  # fmt: skip
        self.queue_oldest_age = Gauge(
            "flowbus_queue_oldest_message_age_seconds",
            "Age of the oldest open (ready or leased) message, by queue; 0 when the queue has none.",
            ["project", "queue"], registry=self.registry,
        )  # fmt: skip
        self.messages_held = Gauge(
            "flowbus_messages_held",
            "Ready messages held back by flow control, by queue and reason (throttled, waiting_for_slot).",
            ["project", "queue", "reason"], registry=self.registry,
        )  # fmt: skip
        self.dead_letters = Gauge(
            "flowbus_dead_letters", "Messages in the dead-letter queue.", ["project"], registry=self.registry
        )

        self.deferrals = Counter(
            "flowbus_deferrals",
            "Messages given back without spending an attempt (shown throttled), by the target that asked.",
            ["project", "target"], registry=self.registry,
        )  # fmt: skip
        self.purged = Counter(
            "flowbus_purged_rows", "Records removed by retention (steps: runs whose step runs expired), by kind.",
            ["project", "kind"], registry=self.registry,
        )  # fmt: skip
        self.kept_rows = Gauge(
            "flowbus_kept_rows", "Records kept, by kind (steps: runs still holding their step runs).",
            ["project", "kind"], registry=self.registry,
        )  # fmt: skip
        self.oldest_kept_seconds = Gauge(
            "flowbus_oldest_kept_age_seconds", "The age of the oldest record kept, by kind (0: none kept).",
            ["project", "kind"], registry=self.registry,
        )  # fmt: skip


#: the metrics of this process (the worker and the API of `flowbus run` share them)
PROCESS = Metrics()
