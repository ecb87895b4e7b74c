"""Health, readiness and metrics over HTTP for hosts that probe (``up --http HOST:PORT``).

``/healthz`` and ``/readyz`` need nothing more; ``/metrics`` (the Prometheus text format) needs
the ``http`` extra (``pip install 'runnerconf[http]'``, prometheus-client), imported when scraped.
"""

from runnerconf.http.server import HealthServer, serve

__all__ = ["HealthServer", "serve"]
