"""Prometheus metrics (prometheus-client): sessions by state, worker memory and CPU,
restarts, same-page merging, HTTP request latency and worker command round trips.
Figures are read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gowa_py import protocol as p
from gowa_py.protocol import SessionState
from gowa_py.supervisor import Supervisor, ksm

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _SessionCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Any]:
        supervisor = self._supervisor
        records = supervisor.list()
        states = GaugeMetricFamily("gowa_sessions", "Sessions by state", labels=["state"])
        counts = {state: 0 for state in SessionState}
        for record in records:
            counts[record.status] += 1
        for state, count in counts.items():
            states.add_metric([state.value], count)
        yield states
        memory = GaugeMetricFamily(
            "gowa_worker_memory_bytes", "Worker memory (rss, pss, uss)", labels=["session", "kind"]
        )
        cpu = GaugeMetricFamily("gowa_worker_cpu_percent", "Worker CPU", labels=["session"])
        restarts = CounterMetricFamily(
            "gowa_worker_restarts", "Worker restarts since gateway start", labels=["session"]
        )
        for session_id, info in supervisor.workers().items():
            restarts.add_metric([session_id], info.restarts)
            if info.pid is None:
                continue
            sample = info.sample
            for kind in ("rss", "pss", "uss"):
                memory.add_metric([session_id, kind], getattr(sample, kind))
            cpu.add_metric([session_id], sample.cpu_percent)
        yield memory
        yield cpu
        yield restarts


class _KsmCollector(Collector):
    """Whether the workers' pages are being merged, and how much (docs/benchmarks.md)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def collect(self) -> Iterator[Any]:
        state = GaugeMetricFamily(
            "gowa_ksm_state", "Same-page merging for workers (1 = current state)", labels=["state"]
        )
        state.add_metric([self._supervisor.ksm.state], 1)
        yield state
        counters = ksm.counters()
        for name in ("pages_shared", "pages_sharing"):
            if name in counters:
                yield GaugeMetricFamily(
                    f"gowa_ksm_{name}",
                    f"Host-wide ksmd {name} (4 KiB pages), of processes that opted in",
                    value=counters[name],
                )


class Metrics:
    """One registry per app, so several gateways (tests) never share global state."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_SessionCollector(supervisor))
        self.registry.register(_KsmCollector(supervisor))
        self.latency = Histogram(
            "gowa_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        # Against the HTTP latency of the same route, this tells the time a request spends
        # in the gateway from the time it waits for the worker.
        self.worker_latency = Histogram(
            "gowa_worker_request_duration_seconds",
            "Worker command round trip seen by the gateway (ZeroMQ request to reply)",
            ["command"],
            registry=self.registry,
            buckets=BUCKETS,
        )
        supervisor.observe_request = self._observe_worker

    def _observe_worker(self, command: p.Command, seconds: float) -> None:
        kind = command.input if isinstance(command, p.Operation) else command
        self.worker_latency.labels(type(kind).__name__).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self) -> Any:
        @web.middleware
        async def measure(request: web.Request, handler: Any) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            finally:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unmatched"
                self.latency.labels(request.method, route, str(status)).observe(
                    time.perf_counter() - started
                )

        return measure
