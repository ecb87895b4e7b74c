"""``/metrics``: the runners' state in the Prometheus text format (prometheus-client).

Everything is read when scraped, from counters the runtime keeps anyway: nothing is measured per
message or per worker on their way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from runnerconf.workers.runner import WorkerRunner

__all__ = ["INSTALL_HINT", "render_metrics"]

INSTALL_HINT = "/metrics needs prometheus-client: pip install 'runnerconf[http]'"


def render_metrics(runners: Sequence[WorkerRunner]) -> tuple[bytes, str]:
    """The exposition text and its content type (ImportError with the install hint without the extra)."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(runners))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, runners: Sequence[WorkerRunner]) -> None:
        self.runners = runners

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("runnerconf_runner_running", "1 while the runner runs.", labels=["runner"])
        states = GaugeMetricFamily("runnerconf_workers", "Workers of the runner, by state.", labels=["runner", "state"])
        outcomes = CounterMetricFamily("runnerconf_worker_outcomes", "Workers that finished, by outcome.", labels=["runner", "outcome"])
        failures = CounterMetricFamily("runnerconf_worker_failures", "Workers that failed or were abandoned.", labels=["runner"])
        restarts = CounterMetricFamily("runnerconf_worker_restarts", "Restarts of supervised commands.", labels=["runner", "worker"])
        for runner in self.runners:
            up.add_metric([runner.name], 1.0 if runner.running else 0.0)
            live = Counter(w.state.value for w in runner.workers())
            for state in ("created", "starting", "running", "stopping"):
                states.add_metric([runner.name, state], float(live.get(state, 0)))
            summary = runner.summary()
            for outcome, count in summary.items():
                outcomes.add_metric([runner.name, outcome], float(count))
            failures.add_metric([runner.name], float(summary.get("failed", 0) + summary.get("abandoned", 0)))
            for worker in runner.workers():
                count = getattr(worker, "restarts", None)
                if isinstance(count, int):
                    restarts.add_metric([runner.name, worker.name], float(count))
        yield from (up, states, outcomes, failures, restarts)
        yield from self._buses()

    def _buses(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sent = CounterMetricFamily("runnerconf_bus_messages_sent", "Messages sent through the bus.", labels=["bus"])
        delivered = CounterMetricFamily("runnerconf_bus_messages_delivered", "Messages handled by local subscribers.", labels=["bus"])
        depth = GaugeMetricFamily("runnerconf_bus_queue_depth", "Messages waiting for a subscriber (those with any).", labels=["bus", "subscriber"])
        queued = GaugeMetricFamily("runnerconf_bus_queued_messages", "Messages waiting for every subscriber together.", labels=["bus"])
        reconnects = CounterMetricFamily("runnerconf_redis_reconnects", "Reconnections to Redis.", labels=["bus"])
        outbox = GaugeMetricFamily("runnerconf_redis_outbox_messages", "Messages waiting to be published.", labels=["bus"])
        bad = CounterMetricFamily("runnerconf_redis_bad_frames", "Frames or messages from peers that were skipped.", labels=["bus"])
        rejected = CounterMetricFamily(
            "runnerconf_redis_rejected_frames", "Frames refused for their signature, unread.", labels=["bus", "reason"]
        )
        duplicates = CounterMetricFamily("runnerconf_redis_duplicate_frames", "Stream frames read again and not handed out twice.", labels=["bus"])
        seen: set[int] = set()
        for runner in self.runners:
            bus = runner.bus
            if id(bus) in seen:
                continue  # runners of one process share their bus
            seen.add(id(bus))
            label = getattr(bus, "channel", None) or type(bus).__name__
            sent.add_metric([label], float(bus.sent))
            delivered.add_metric([label], float(bus.delivered))
            per = bus.queued()
            queued.add_metric([label], float(sum(per.values())))
            for name, count in per.items():
                if count:
                    depth.add_metric([label, name], float(count))
            if hasattr(bus, "reconnects"):
                reconnects.add_metric([label], float(bus.reconnects))
                outbox.add_metric([label], float(bus.outbox_size))
                bad.add_metric([label], float(bus.bad_frames))
                for reason, count in sorted(getattr(bus, "rejected_frames", {}).items()):
                    rejected.add_metric([label, reason], float(count))
                duplicates.add_metric([label], float(getattr(bus, "duplicates", 0)))
        yield from (sent, delivered, queued, depth, reconnects, outbox, bad, rejected, duplicates)
