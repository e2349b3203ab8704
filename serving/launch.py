"""Start the Serve application from a validated config, print how to call it, block until interrupted."""

from __future__ import annotations

import logging
import signal
import threading

from serving.config import ServeConfig

log = logging.getLogger(__name__)


def base_url(cfg: ServeConfig) -> str:
    host = "127.0.0.1" if cfg.http.host in ("0.0.0.0", "::") else cfg.http.host
    prefix = cfg.http.route_prefix.rstrip("/")
    return f"http://{host}:{cfg.http.port}{prefix}"


def usage_text(cfg: ServeConfig) -> str:
    url = base_url(cfg)
    auth = (f' -H "Authorization: Bearer ${cfg.auth.api_keys_env}"' if cfg.auth.resolve_keys() and
            cfg.auth.api_keys_env else "")
    key = f'os.environ["{cfg.auth.api_keys_env}"].split(",")[0]' if auth else '"none"'
    return f"""EHR-R1 server ready at {url}  (model id: {cfg.model.served_name})
  curl {url}/v1/models{auth}
  curl {url}/v1/chat/completions{auth} -H 'Content-Type: application/json' \\
       -d '{{"model": "{cfg.model.served_name}", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  curl {url}/v1/ehr/predict{auth} -H 'Content-Type: application/json' \\
       -d '{{"ehr": "## Admissions [2180-06-26 18:27:00]\\n- Admission_Type: EW EMER.", "instruction": "Will the patient die in the hospital? Answer yes or no.", "kind": "risk"}}'
  python -c 'import os, openai; c = openai.OpenAI(base_url="{url}/v1", api_key={key}); print(c.chat.completions.create(model="{cfg.model.served_name}", messages=[{{"role": "user", "content": "Hello"}}]).choices[0].message.content)'
Prometheus metrics (ray_ehr_serve_*): the node's metrics export port, e.g. `ray start --head --metrics-export-port=8080` then curl http://127.0.0.1:8080/metrics
Ctrl-C stops the server."""


def start(cfg: ServeConfig) -> str:
    """Deploy the app (on RAY_ADDRESS / ray.address, else a private local Ray) and return its base URL."""
    from ray import serve

    from jobkit.ray_runtime import init_ray
    from serving.app import auth_banner, build_app_from_config

    init_ray(cfg.ray.address, cfg.ray.num_cpus)
    print(auth_banner(cfg), flush=True)
    serve.start(http_options={"host": cfg.http.host, "port": cfg.http.port})
    serve.run(build_app_from_config(cfg), name=cfg.app_name, route_prefix=cfg.http.route_prefix)
    return base_url(cfg)


def run(cfg: ServeConfig) -> None:
    """The `ray_jobs/serve.py` lifecycle: start, print usage, block, shut down on Ctrl-C / SIGTERM."""
    from ray import serve

    from jobkit.ray_runtime import setup_logging

    setup_logging(cfg.log_level)
    # `ray job stop` (and Kubernetes) stop the driver with SIGTERM: Python's default would end it at once and skip
    # the delete, leaving the Serve app running on the cluster with no job behind it.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    start(cfg)
    print(usage_text(cfg), flush=True)
    try:
        while not stop.wait(1.0):
            pass
        print("shutting down", flush=True)
    finally:
        # not blocking: the detached Serve controller finishes the delete; `ray job stop` SIGKILLs a driver that is
        # not gone within RAY_JOB_STOP_WAIT_TIME_S (3 s by default)
        serve.delete(cfg.app_name, _blocking=False)
