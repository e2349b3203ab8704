"""CPU seconds of the dataset build's two per-patient workers, without Ray: the candidate index (task generators,
history cuts with availability times and window rules) and rendering (assembly, truncation, candidates, the
leakage audit of every sample).

    .venv/bin/python benchmarks/bench_task_cpu.py /tmp/ehr_r1/timelines_demo/timelines

Runs over every patient of the timeline shards given (e.g. the output of
``ray_jobs.build_timelines --config ray_jobs/configs/build_timelines/demo.yaml``), renders every fifth candidate
instance, and reports the best of ``--repeat`` rounds of process CPU time (robust on a shared machine, where wall
time is not). Prints one table row; run it from two checkouts on the same shards to compare code versions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("timelines_dir", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--every", type=int, default=5, help="render every n-th candidate instance")
    args = ap.parse_args()

    from data_pipeline.datasets.stages import TABLES_ROW, RenderWorker, index_batch, read_shard
    from data_pipeline.tasks import task_names

    shards = sorted(args.timelines_dir.glob("part-*.parquet"))
    if not shards:
        raise SystemExit(f"{args.timelines_dir}: no part-*.parquet timeline shards")
    batches = [b for s in shards for b in read_shard(str(s))]
    tasks = task_names()
    best_index = best_render = float("inf")
    rows, rendered = [], 0
    for _ in range(args.repeat):
        t = time.process_time()
        rows = []
        for batch in batches:
            rows += [r for r in index_batch(batch, tasks, 0.25, "ehr-r1").to_pylist() if r["task"] != TABLES_ROW]
        best_index = min(best_index, time.process_time() - t)
        selection: dict[int, list[dict]] = {}
        for n, row in enumerate(rows[::args.every]):
            selection.setdefault(row["subject_id"], []).append({**row, "dataset": "ehr_ins", "idx": n})
        worker = RenderWorker(selection, {}, 4096, None, 0, 100)
        t = time.process_time()
        rendered = sum(worker(batch).num_rows for batch in batches)
        best_render = min(best_render, time.process_time() - t)
    print("| candidate instances | index CPU s | instances/CPU s | rendered samples | render CPU s | samples/CPU s |")
    print("|---|---|---|---|---|---|")
    print(f"| {len(rows)} | {best_index:.2f} | {len(rows) / best_index:,.0f} | {rendered} | {best_render:.2f} | "
          f"{rendered / best_render:,.0f} |")


if __name__ == "__main__":
    main()
