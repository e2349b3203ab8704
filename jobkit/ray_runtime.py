"""Connect a job to Ray the way `ray job submit` and local runs both expect."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster a job was submitted to, or start a local one.

    Under ``ray job submit`` Ray sets ``RAY_ADDRESS`` and ``ray.init()`` joins that cluster. Without it we start a
    private local instance (``address="local"``) rather than silently attaching to whatever ``ray start`` cluster
    happens to run on the machine.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs = {"address": address}
    if address == "local" and num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    context = ray.init(**kwargs, log_to_driver=True)
    log.info("Ray ready (%s); dashboard: %s", address, getattr(context, "dashboard_url", None) or "not running")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
