"""Prometheus metrics, one registry per app (so tests can run several apps in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "liaison_connections", "Live Socket.IO connections", registry=self.registry
        )
        self.commands = Counter(
            "liaison_commands_total",
            "Commands handled, by name and outcome (ok or an error code)",
            ["name", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "liaison_command_seconds",
            "Command latency from receipt to answer",
            ["name"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.events_pushed = Counter(
            "liaison_events_pushed_total",
            "Event frames written to sockets, by kind (durable or ephemeral)",
            ["kind"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "liaison_jobs_total",
            "Deferred jobs run, by kind and outcome (done, retried, dead: dead-lettered)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.sockets_cut = Counter(
            "liaison_sockets_cut_total",
            "Sockets cut by the server: unsent data over the bound, or a missed pong",
            ["reason"],
            registry=self.registry,
        )
        self.bus_publish_failures = Counter(
            "liaison_bus_publish_failures_total",
            "Bus messages Redis did not take (their events reach other nodes by the sweep)",
            registry=self.registry,
        )
        self.bus_rebuilds = Counter(
            "liaison_bus_rebuilds_total",
            "Redis subscriptions torn down and rebuilt after they fell silent",
            registry=self.registry,
        )

        # prometheus_client's labels() takes a lock and validates on every call; these run per
        # command and per pushed frame, so each labelled child is looked up once.
        self.pushed_durable = self.events_pushed.labels("durable")
        self.pushed_ephemeral = self.events_pushed.labels("ephemeral")
        self._command_children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def command_done(self, name: str, outcome: str, seconds: float) -> None:
        children = self._command_children.get((name, outcome))
        if children is None:
            children = (self.commands.labels(name, outcome), self.command_seconds.labels(name))
            self._command_children[(name, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
