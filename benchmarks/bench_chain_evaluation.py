"""What the chain's evaluation stage costs at the demo's sample size: every compared model and baseline.

    .venv/bin/python -m benchmarks.bench_chain_evaluation --demo-dir outputs/demo

Reads a finished demo run (``make demo``: datasets, tiny model, stage 1 / 2 / RL models) and runs the evaluation
stage's runs (``PipelineConfig.evaluation_configs``: the untrained model, every stage, the baselines) into a
temporary directory, so nothing is reused. Prints, per run, the wall time of ``evaluation.run.evaluate`` (Ray Data
inference or the baseline's fit + predict, scoring, the patient-level bootstrap and the report), the samples, and
the samples per second; then the comparison's own time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", default="outputs/demo")
    parser.add_argument("--config", default="ray_jobs/configs/pipeline/demo.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted pipeline-config overrides")
    args = parser.parse_args()

    from evaluation.compare import compare_runs
    from evaluation.run import evaluate
    from jobkit.config import load_config
    from jobkit.ray_runtime import init_ray
    from orchestration.config import PipelineConfig

    demo = Path(args.demo_dir).resolve()
    cfg = load_config(PipelineConfig, args.config, [f"output_dir={demo}", *args.overrides])
    init_ray(None, 2)
    rows, dirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'run':<20} {'samples':>8} {'patients':>9} {'seconds':>8} {'samples/s':>10}", flush=True)
        for name, ev in cfg.evaluation_configs().items():
            ev = ev.model_copy(update={"output_dir": tmp, "mlflow_tracking_uri": None, "progress": False})
            start = time.perf_counter()
            result = evaluate(ev)
            seconds = time.perf_counter() - start
            run = __import__("json").loads((result.run_dir / "metrics.json").read_text())["run"]
            rows.append((name, run["total"], run["patients"], seconds))
            dirs.append(result.run_dir)
            print(f"{name:<20} {run['total']:>8} {run['patients']:>9} {seconds:>8.1f} {run['total'] / seconds:>10.1f}",
                  flush=True)
        start = time.perf_counter()
        compare_runs(dirs, Path(tmp), pairs=cfg.comparison_pairs(), n_bootstrap=cfg.evaluation_config().scoring.n_bootstrap)
        compare = time.perf_counter() - start
    total = sum(r[3] for r in rows) + compare
    print(f"{'comparison':<20} {'':>8} {'':>9} {compare:>8.1f}")
    print(f"{'total':<20} {sum(r[1] for r in rows):>8} {'':>9} {total:>8.1f}")


if __name__ == "__main__":
    main()
