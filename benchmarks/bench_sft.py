"""SFT throughput on Ray Train: tokens/s per worker and padding share, with and without packing, 1 vs 2 workers.

Runs the real job (``training.sft.run_sft``: data prep, TorchTrainer + HF Trainer, checkpoints) on the tiny model
with toy EHR-Ins records of varied length (1-8 lab days, ~110-700 tokens), then reads the per-log metrics from the
final model's ``training_state.json``. The first log (step 1: warm-up, dataloader start) is excluded from the rates.

    .venv/bin/python benchmarks/bench_sft.py [--steps 24] [--records 256] [--out-dir /tmp/bench_sft]

Metrics:
- ``tok/s/worker``: real (non-padding) tokens per second on one worker (rank 0), averaged over logs.
- ``padding``: padding tokens / computed tokens in rank 0's batches (rows are padded to the longest in the batch).
- ``padding if rows were padded to max_seq_length``: 1 - real tokens / (rows x max_seq_length), from data prep.
- ``tok/s total`` = tok/s/worker x workers; the speed-up compares it with the 1-worker run of the same mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RUNS = [  # (packing, workers)
    (False, 1), (False, 2), (True, 1), (True, 2),
]


def run_one(base: Path, data: Path, packing: bool, workers: int, steps: int, records: int) -> dict:
    from training.config import SFTJobConfig
    from training.sft import run_sft

    name = f"{'pack' if packing else 'pad'}_{workers}w"
    cfg = SFTJobConfig.model_validate({
        "tiny_model": {"output_dir": str(base / "tiny")},
        "data": {"paths": [str(data)], "max_seq_length": 1024, "packing": packing, "max_samples": records},
        # Same rows per worker per step in every run: per-worker numbers compare, totals scale with workers.
        "train": {"learning_rate": 1e-3, "max_steps": steps, "global_batch_size": 4 * workers,
                  "per_device_train_batch_size": 4, "logging_steps": 2, "save_steps": steps * 10,
                  "warmup_ratio": 0.0},
        "scaling": {"num_workers": workers},
        "run": {"name": name, "storage_path": str(base / "runs"), "max_failures": 0},
    })
    t0 = time.perf_counter()
    result = run_sft(cfg)
    wall = time.perf_counter() - t0
    logs = json.loads((result.final_model / "training_state.json").read_text())["log_history"]
    logs = [h for h in logs if "tokens_per_sec_per_worker" in h and h["step"] > 1]
    return {
        "mode": "packing" if packing else "padding", "workers": workers,
        "tok_s_worker": statistics.mean(h["tokens_per_sec_per_worker"] for h in logs),
        "padding": statistics.mean(h["padding_fraction"] for h in logs),
        "prep_padding": 1 - result.data_stats["real_tokens"] / result.data_stats["row_capacity_tokens"],
        "wall_s": wall,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--records", type=int, default=256)
    p.add_argument("--out-dir", default=None)
    a = p.parse_args()
    import ray

    from training.toy_data import write_toy_data

    base = Path(a.out_dir or tempfile.mkdtemp(prefix="bench_sft_"))
    data = write_toy_data(base / "ins.jsonl", n=a.records, seed=0, n_events=(1, 8))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = [run_one(base, data, packing, workers, a.steps, a.records) for packing, workers in RUNS]
    ray.shutdown()
    one = {r["mode"]: r["tok_s_worker"] for r in rows if r["workers"] == 1}
    print("| mode | workers | tok/s/worker | tok/s total | speed-up vs 1 worker | padding (batches) "
          "| padding if rows were padded to max_seq_length | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        total = r["tok_s_worker"] * r["workers"]
        print(f"| {r['mode']} | {r['workers']} | {r['tok_s_worker']:.0f} | {total:.0f} | "
              f"{total / one[r['mode']]:.2f}x | {r['padding']:.1%} | {r['prep_padding']:.1%} | {r['wall_s']:.0f} |")
    (base / "bench_sft.json").write_text(json.dumps(rows, indent=1))
    print(f"raw results: {base / 'bench_sft.json'}")


if __name__ == "__main__":
    main()
