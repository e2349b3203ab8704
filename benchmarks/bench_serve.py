"""Bounded loopback load test of the Serve app, and the latency Ray Serve adds over the in-process engine.

    .venv/bin/python -m benchmarks.bench_serve --config ray_jobs/configs/serve/demo.yaml \
        --requests 200 --concurrency 1 8 32 --max-tokens 8

1. Deploys the app from the config on a private local Ray (127.0.0.1 only, a free port).
2. For each route (chat, predict-risk) and concurrency level, sends ``--requests`` requests with at most
   ``concurrency`` in flight; reports throughput, p50/p99 latency and the count of each HTTP status. Overload
   beyond ``max_ongoing_requests + max_queued_requests`` should show up as 503 and nothing else.
3. Overhead: the same chat request through ``InferenceService`` in this process (transformers engine, no HTTP,
   no Serve) interleaved with the request through Serve at concurrency 1; the median paired difference is what
   the proxy + routing + HTTP add. ``GET /health`` through Serve (no engine work) is reported as well.

Every request is bounded (timeout ``--timeout``); the run is bounded by requests x levels.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

CHAT = {"messages": [{"role": "user", "content": "Creatinine 2.1 mg/dL, potassium 5.4. Next step?"}]}
EHR = ("## Admissions [2180-06-26 18:27:00]\n- Admission_Type: EW EMER.\n\n"
       "## Labotary Test Events [2180-06-27 05:10:00]\n- Item_Name: Creatinine")
PREDICT = {"ehr": EHR, "task": "Readmission_30day"}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


async def load(url: str, body: dict, n: int, concurrency: int, headers: dict, timeout: float):
    import httpx

    sem = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        async def one():
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, json=body, headers=headers)
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        latencies.append((time.perf_counter() - t0) * 1000)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - t0
    return latencies, statuses, wall


async def paired_overhead(cfg, model_path: str, url: str, health_url: str, body: dict, n: int,
                          headers: dict, timeout: float) -> dict[str, list[float]]:
    """Interleave the same chat request in-process (InferenceService, engine called directly) and through Serve,
    so that both see the same machine load; also time GET /health (no engine) through Serve."""
    import httpx

    from serving import openai_schema as oai
    from serving.engines.transformers_engine import TransformersEngine
    from serving.prompts import PromptCodec
    from serving.service import InferenceService

    engine = TransformersEngine(model_path, cfg.model.dtype, cfg.engine.transformers.torch_threads)
    service = InferenceService(engine, PromptCodec(model_path, cfg.limits.max_input_tokens),
                               cfg.model.served_name, cfg.limits)
    out: dict[str, list[float]] = {"direct": [], "served": [], "health": []}
    async with httpx.AsyncClient(timeout=timeout) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            await service.chat(oai.ChatCompletionRequest.model_validate(body))
            t1 = time.perf_counter()
            r = await client.post(url, json=body, headers=headers)
            t2 = time.perf_counter()
            h = await client.get(health_url)
            t3 = time.perf_counter()
            if r.status_code == 200 and h.status_code == 200:
                out["direct"].append((t1 - t0) * 1000)
                out["served"].append((t2 - t1) * 1000)
                out["health"].append((t3 - t2) * 1000)
    return out


def fmt_row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="ray_jobs/configs/serve/demo.yaml")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--routes", nargs="+", default=["chat", "predict"], choices=["chat", "predict"])
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. deployment.max_queued_requests=4")
    args = parser.parse_args(argv)
    if args.requests > 2000 or max(args.concurrency) > 128:
        parser.error("keep the load test bounded: --requests <= 2000 and concurrency <= 128")

    from ray import serve

    from jobkit.config import load_config
    from serving.app import resolve_model_path
    from serving.config import ServeConfig
    from serving.launch import start

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = load_config(ServeConfig, args.config, [*args.overrides, "http.host=127.0.0.1", f"http.port={port}",
                                                 "app_name=bench-serve"])
    keys = cfg.auth.resolve_keys()
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    t0 = time.perf_counter()
    base = start(cfg)
    startup = time.perf_counter() - t0
    model_path = resolve_model_path(cfg)
    chat = CHAT | {"model": cfg.model.served_name, "max_tokens": args.max_tokens}
    routes = {"chat": (f"{base}/v1/chat/completions", chat), "predict": (f"{base}/v1/ehr/predict", PREDICT)}
    d = cfg.deployment
    print(f"# bench_serve: {args.config} engine={cfg.engine.kind} replicas={d.num_replicas} "
          f"max_ongoing={d.max_ongoing_requests} max_queued={d.max_queued_requests} "
          f"startup={startup:.1f}s cpus={os.cpu_count()}", flush=True)
    print(fmt_row(["route", "concurrency", "requests", "throughput (req/s)", "p50 ms", "p99 ms", "statuses"]))
    print(fmt_row(["---"] * 7))
    try:
        for name in args.routes:
            url, body = routes[name]
            asyncio.run(load(url, body, min(10, args.requests), 1, headers, args.timeout))  # warm-up
            for c in args.concurrency:
                lat, statuses, wall = asyncio.run(load(url, body, args.requests, c, headers, args.timeout))
                ok = len(lat)
                p50 = f"{percentile(lat, 50):.1f}" if lat else "-"
                p99 = f"{percentile(lat, 99):.1f}" if lat else "-"
                st = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))
                print(fmt_row([name, c, args.requests, f"{ok / wall:.1f}", p50, p99, st]), flush=True)
        if cfg.engine.kind == "transformers" and "chat" in args.routes:
            url, body = routes["chat"]
            o = asyncio.run(paired_overhead(cfg, model_path, url, f"{base}/health", body,
                                            min(args.requests, 100), headers, args.timeout))
            diffs = [s - d for s, d in zip(o["served"], o["direct"])]
            print(f"\nServe overhead, chat at concurrency 1, {len(diffs)} interleaved pairs: in-process p50 "
                  f"{statistics.median(o['direct']):.1f} ms, through Serve p50 {statistics.median(o['served']):.1f} "
                  f"ms, paired difference p50 {statistics.median(diffs):.1f} ms; GET /health through Serve p50 "
                  f"{statistics.median(o['health']):.1f} ms (p99 {percentile(o['health'], 99):.1f} ms)", flush=True)
    finally:
        serve.delete(cfg.app_name)
        serve.shutdown()


if __name__ == "__main__":
    sys.exit(main())
