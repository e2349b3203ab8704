"""Prometheus metrics of the ingress through Ray's metrics export (``ray.serve.metrics``).

Inside a Serve replica the metrics carry the ``deployment``/``replica``/``application`` tags and appear, prefixed
``ray_``, on every node's metrics export endpoint (``ray start --metrics-export-port=PORT`` then
``curl http://NODE:PORT/metrics``; for a local ``ray.init`` the port is in
``ray._private.worker.global_worker.node.metrics_export_port``), next to Serve's own ``ray_serve_*`` metrics:

- ``ray_ehr_serve_requests_total{route, status}``
- ``ray_ehr_serve_tokens_total{kind="prompt"|"completion"}``
- ``ray_ehr_serve_request_latency_ms_bucket{route}`` (histogram)

Outside Ray (in-process tests, the benchmark's direct baseline) the recorder is a no-op.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]


class Metrics:
    def __init__(self, enabled: bool = True):
        self._on = False
        if not enabled:
            return
        try:
            import ray

            if not ray.is_initialized():
                return
            from ray.serve.metrics import Counter, Histogram

            self._requests = Counter("ehr_serve_requests", description="HTTP requests by route and status",
                                     tag_keys=("route", "status"))
            self._tokens = Counter("ehr_serve_tokens", description="prompt and completion tokens",
                                   tag_keys=("kind",))
            self._latency = Histogram("ehr_serve_request_latency_ms", description="request latency (ms)",
                                      boundaries=LATENCY_BOUNDARIES_MS, tag_keys=("route",))
            self._on = True
        except Exception as exc:  # noqa: BLE001 - metrics must never take the server down
            log.warning("metrics disabled: %s", exc)

    def request(self, route: str, status: int, latency_ms: float) -> None:
        if self._on:
            self._requests.inc(1, tags={"route": route, "status": str(status)})
            self._latency.observe(latency_ms, tags={"route": route})

    def tokens(self, prompt: int, completion: int) -> None:
        if self._on:
            if prompt:
                self._tokens.inc(prompt, tags={"kind": "prompt"})
            if completion:
                self._tokens.inc(completion, tags={"kind": "completion"})
