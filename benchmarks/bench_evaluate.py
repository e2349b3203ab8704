"""Evaluation throughput: samples/s of the tiny model with each backend at several batch sizes, on Ray Data.

    .venv/bin/python -m benchmarks.bench_evaluate --samples 256 --batch-sizes 1 8 32 \
        --backends transformers vllm http --max-new-tokens 16

The same made-up decision samples (markdown EHR prompts, greedy generation of ``--max-new-tokens``) go through
each backend's Ray Data path exactly as ``ray_jobs.evaluate`` runs it (``backend.apply(ds)``, batches streamed to
the driver). Two figures per cell:

- ``total s``: wall time from submitting the dataset to the last prediction, engine start-up included;
- ``samples/s``: steady state, the samples after the first batch divided by the time between the first and the
  last batch reaching the driver (start-up excluded). With a single batch there is no steady state ("–").

The vLLM speed-up is vLLM's steady-state samples/s over transformers' at the same batch size. The http backend
talks to the project's Ray Serve app (transformers engine, the same tiny model) on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def samples_frame(n: int):
    import pandas as pd

    from evaluation.samples import add_prompts, make_frame

    rows = []
    for i in range(n):
        ehr = (f"## Admissions [2150-01-{i % 28 + 1:02d} 08:00:00]\n- Admission_Type: URGENT\n\n"
               f"## Labotary Test Events [2150-01-{i % 28 + 1:02d} 10:00:00]\n- Item_Name: Creatinine\n"
               f"- Valuenum: {1 + (i % 7) / 10}")
        rows.append({"sample_id": f"bench:{i}", "benchmark": "ehr_bench", "task": "diagnoses_icd",
                     "family": "decision: hosp", "kind": "decision", "metric": "recall", "input": ehr,
                     "instruction": "Predict the diagnoses of this admission.", "candidates": [],
                     "target": ["Sepsis"], "label": -1, "grading": ""})
    frame = add_prompts(make_frame(rows))
    frame["thinking"] = frame["thinking"].astype(object)
    frame["max_new_tokens"] = 0  # 0 = the backend's max_new_tokens
    return pd.DataFrame(frame)


def timed_run(backend, frame, batch_size: int) -> tuple[float, float | None, int]:
    import ray.data

    from evaluation.inference import INPUT_COLUMNS

    todo = frame[INPUT_COLUMNS]
    chunks = [todo.iloc[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    start = time.perf_counter()
    arrivals: list[tuple[float, int]] = []
    errors = 0
    for batch in backend.apply(ray.data.from_pandas(chunks)).iter_batches(batch_size=None, batch_format="pandas"):
        if len(batch):
            arrivals.append((time.perf_counter(), len(batch)))
            errors += int((batch["status"] != "ok").sum())
    total = arrivals[-1][0] - start
    after_first = sum(n for _, n in arrivals[1:])
    steady = after_first / (arrivals[-1][0] - arrivals[0][0]) if after_first and arrivals[-1][0] > arrivals[0][0] \
        else None
    return total, steady, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="HF checkpoint (default: build training.tiny_model in a temp dir)")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--backends", nargs="+", default=["transformers", "vllm", "http"],
                        choices=["transformers", "vllm", "http"])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)
    if args.samples > 2000:
        parser.error("keep the benchmark bounded: --samples <= 2000")

    import ray

    from evaluation.backends import HttpBackend, TransformersBackend, VLLMBackend
    from training.tiny_model import build_tiny_model

    model = args.model or str(build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-eval-")) / "model"))
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    frame = samples_frame(args.samples)
    common = dict(max_new_tokens=args.max_new_tokens)
    served: dict[str, str] = {}

    def serve_app() -> tuple[str, str]:
        """The project's Serve app on the same model, started before the first http cell (it holds a CPU)."""
        if not served:
            from ray_jobs.config_loader import load_config
            from serving.config import ServeConfig
            from serving.launch import start

            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cfg = load_config(ServeConfig, "ray_jobs/configs/serve/demo.yaml", [
                "model.tiny_model=null", f"model.path={model}", "http.host=127.0.0.1", f"http.port={port}",
                "app_name=bench-evaluate"])
            served.update(url=start(cfg), name=cfg.model.served_name)
        return served["url"], served["name"]

    def make(kind: str, bs: int):
        if kind == "transformers":
            return TransformersBackend(model, max_input_tokens=2048, batch_size=bs, **common)
        if kind == "vllm":
            return VLLMBackend(model, max_input_tokens=1024, batch_size=bs, engine_kwargs={
                "dtype": "float32", "enforce_eager": True, "max_num_seqs": max(bs, 1)},
                env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"}, **common)
        url, name = serve_app()
        return HttpBackend(url, api="openai", model=name, batch_size=bs, concurrency=bs, timeout_s=300,
                           max_retries=2, backoff_s=0.5, **common)

    results: dict[tuple[str, int], tuple[float, float | None, int]] = {}
    print(f"# bench_evaluate: {args.samples} decision samples, {args.max_new_tokens} new tokens, model {model}, "
          f"{args.num_cpus} Ray CPUs on {os.cpu_count()} cores", flush=True)
    for kind in args.backends:
        for bs in args.batch_sizes:
            results[kind, bs] = timed_run(make(kind, bs), frame, bs)
            total, steady, errors = results[kind, bs]
            print(f"  {kind:<12} batch {bs:>3}: total {total:7.1f} s, steady "
                  f"{'–' if steady is None else f'{steady:.2f}'} samples/s, errors {errors}", flush=True)

    print("\n| backend | batch size | samples/s (steady) | total s (incl. start-up) | vLLM speed-up over transformers |")
    print("|---|---|---|---|---|")
    for (kind, bs), (total, steady, _) in results.items():
        speedup = "–"
        if kind == "vllm" and ("transformers", bs) in results:
            base = results["transformers", bs][1]
            if steady and base:
                speedup = f"{steady / base:.2f}x"
        print(f"| {kind} | {bs} | {'–' if steady is None else f'{steady:.2f}'} | {total:.1f} | {speedup} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
