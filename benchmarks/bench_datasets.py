"""Dataset build: throughput (1 vs 2 workers) and driver peak memory vs number of candidate rows.

    .venv/bin/python benchmarks/bench_datasets.py                      # builds a 200-patient synthetic cohort
    .venv/bin/python benchmarks/bench_datasets.py --timelines-dir /tmp/ehr_r1/datasets_demo/timelines/timelines
    .venv/bin/python benchmarks/bench_datasets.py --memory 200 800     # driver memory, one cohort per size

``--memory N ...`` builds a synthetic cohort of each size and, in a fresh driver process per size, runs the
index, statistics and selection passes (caps scaled down with ``--cap`` so that they bite, as the real caps do
at MIMIC-IV scale) while a thread samples the driver's RSS; for contrast it then collects the whole candidate
index into one pandas frame on the driver, as the build did before the streaming selection. Prints one table.
With ``--render`` (e.g. ``--memory 200 800 --cap -1 --render``) it measures instead the driver through render +
export (per-shard selection files, actors writing per-shard parts, the driver streaming them into the writers),
and for contrast the selection held as row dicts grouped by patient, as the driver held (and broadcast) it before.

After an untimed warm-up, each worker count runs the index stage (Ray Data tasks over the timeline shards,
from scratch) and the render stage (Ray Data actor pool: assembly, truncation, candidates; EHR-Ins + EHR-Bench
of the demo config) on a private local Ray instance, then prints one table. Wall times include Ray Data
scheduling and actor start-up.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _burn(n: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t


def machine_headroom(n: int = 10_000_000) -> float:
    """Speed-up of a pure-Python CPU loop from 1 to 2 processes: the most any 2-worker run can gain right now
    (on a machine shared with other jobs it can be ~1x, which makes worker scaling unmeasurable)."""
    import multiprocessing as mp

    t0 = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_burn, [n, n])
    return serial / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timelines-dir", help="existing timeline shards (default: build the demo cohort)")
    ap.add_argument("--patients", type=int, default=200, help="synthetic cohort size when building")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--memory", type=int, nargs="+", metavar="PATIENTS",
                    help="measure driver peak memory for synthetic cohorts of these sizes instead")
    ap.add_argument("--cap", type=int, default=200, help="per-task cap of every preset in --memory runs")
    ap.add_argument("--render", action="store_true",
                    help="with --memory: measure the driver through render + export instead (use --cap -1)")
    ap.add_argument("--memory-child", nargs=2, metavar=("TIMELINES", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return memory_child(Path(args.memory_child[0]), Path(args.memory_child[1]), args.cap, args.num_cpus,
                            args.render)
    if args.memory:
        return memory_table(args.memory, args.cap, args.num_cpus, args.render)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from data_pipeline.datasets.build import build_index, render_and_write
    from data_pipeline.datasets.config import BuildDatasetsConfig
    from data_pipeline.datasets.export import DatasetWriter
    from jobkit.config import load_config
    from jobkit.ray_runtime import setup_logging

    setup_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench_datasets_"))
    demo = ROOT / "ray_jobs/configs/build_datasets/demo.yaml"
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        if args.timelines_dir:
            timelines = Path(args.timelines_dir)
        else:
            from data_pipeline.datasets.build import resolve_timelines

            cfg0 = load_config(BuildDatasetsConfig, demo, [f"output_dir={work}",
                                                           f"timelines.synthetic.num_patients={args.patients}"])
            timelines = resolve_timelines(cfg0)
        shards = sorted(timelines.glob("part-*.parquet"))
        # warm-up (untimed): start Ray's worker processes and import the pipeline in them, so the first timed
        # row does not pay for it
        warm = load_config(BuildDatasetsConfig, demo, [f"output_dir={work / 'warm'}", f"timelines_dir={timelines}",
                                                       "timelines=null", f"num_workers={max(args.workers)}"])
        build_index(warm, shards, warm.task_list(), work / "warm" / "_work")
        rows = []
        for w in args.workers:
            out = work / f"w{w}"
            cfg = load_config(BuildDatasetsConfig, demo, [f"output_dir={out}", f"timelines_dir={timelines}",
                                                          "timelines=null", f"num_workers={w}", "overwrite=true"])
            tasks = cfg.task_list()
            t0 = time.perf_counter()
            index = build_index(cfg, shards, tasks, out / "_work")
            t_index = time.perf_counter() - t0
            selected, vocab, _, _ = streaming_selection(cfg, index, tasks, shards, out / "_work")
            writers = {p: DatasetWriter(out, p) for p in cfg.presets}
            t0 = time.perf_counter()
            stats = render_and_write(cfg, selected, vocab, writers, out / "_work" / "rendered")
            t_render = time.perf_counter() - t0
            for wr in writers.values():
                wr.abort()
            n = sum(sum(s["samples"].values()) + sum(s["too_long"].values()) for s in stats.values())
            rows.append((w, index.rows, t_index, n, t_render, next(iter(stats.values()))["write_seconds"]))
        base = rows[0]
        headroom = machine_headroom()
        print(f"\n{len(shards)} shards, {ray.cluster_resources().get('CPU')} CPUs; machine headroom "
              f"(pure-Python loop, 1 -> 2 processes): {headroom:.2f}x; load average {os.getloadavg()[0]:.1f}")
        print(f"| workers | candidate instances | index s | instances/s | index speed-up | samples | render s "
              f"| samples/s | render speed-up | driver write s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        base_idx, base_rate = base[1] / base[2], base[3] / base[4]
        for w, n_idx, t_i, n, t_r, t_w in rows:
            print(f"| {w} | {n_idx} | {t_i:.1f} | {n_idx / t_i:.0f} | {(n_idx / t_i) / base_idx:.2f}x | {n} | "
                  f"{t_r:.1f} | {n / t_r:.0f} | {(n / t_r) / base_rate:.2f}x | {t_w:.1f} |")
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def streaming_selection(cfg, index, tasks, shards, work: Path):
    """Statistics + selection passes of the build over the index parts, the selection written per shard as the
    build does: (``{shard: selection file}``, vocabularies, peak rows held by the driver's top-k merge, rows)."""
    from data_pipeline.datasets.build import collect_stats, explain_missing
    from data_pipeline.datasets.selection import preset_spec, selection_plan, vocabulary_from_counts
    from data_pipeline.datasets.shards import selection_table, write_shard_selections

    presets = cfg.preset_objects()
    specs = [preset_spec(p, tasks) for p in presets]
    stats = collect_stats(cfg, index.parts, specs, tasks)
    live = [t for t in tasks if t not in explain_missing(tasks, index.tables, stats["all"])]
    caps = {p.name: {t: p.sampling_for(t)[0] for t in live if stats["datasets"][p.name]["pools"][t]}
            for p in presets}
    plans, k_of_group = selection_plan(specs, stats, caps)
    chosen, peak = _select(cfg, index.parts, plans, k_of_group)
    selection = selection_table([(p.name, chosen[p.name]) for p in presets])
    selected = write_shard_selections(selection, [str(p) for p in shards], work / "selected")
    vocab = {t: vocabulary_from_counts(*stats["vocab"][t]) for t in live if t in stats["vocab"]}
    return selected, vocab, peak, selection.num_rows


def old_driver_selection(selected: dict[str, str]) -> int:
    """What the build held on the driver (and sent to every render actor) before the per-shard files: every
    selected row as a dict, grouped by patient. Returns the row count (the caller measures the memory)."""
    from data_pipeline.datasets.shards import read_shard_selection

    by_subject = {}
    for path in selected.values():
        by_subject.update(read_shard_selection(path))
    return sum(len(v) for v in by_subject.values())


def _select(cfg, parts, plans, k_of_group):
    """:func:`build.select_streaming`, also returning the merge's peak row count."""
    from data_pipeline.datasets.build import _map_parts
    from data_pipeline.datasets.selection import SURVIVOR_SCHEMA, TopK, number_selection, select_udf

    top = TopK(k_of_group)
    for batch in _map_parts(cfg, parts, select_udf, plans=plans, k_of_group=k_of_group, seed=cfg.seed):
        top.add(batch.cast(SURVIVOR_SCHEMA))
    return number_selection(top.result(), plans), top.peak_rows


class PeakRSS:
    """Samples this process's resident set size every 10 ms between ``start()`` and ``stop()``."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()
        self.peak = self.base = 0

    def start(self):
        import threading

        self.base = self.peak = self.proc.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        return (self.peak - self.base) / 2**20


def memory_child(timelines: Path, work: Path, cap: int, num_cpus: int, render: bool) -> None:
    """One cohort in a fresh driver: prints a JSON line with the row counts and driver memory of each stage."""
    import gc
    import json

    import pandas as pd
    import ray

    from data_pipeline.datasets.build import build_index, render_and_write
    from data_pipeline.datasets.config import BuildDatasetsConfig
    from data_pipeline.datasets.export import DatasetWriter
    from jobkit.config import load_config
    from jobkit.ray_runtime import setup_logging

    setup_logging("WARNING")
    demo = ROOT / "ray_jobs/configs/build_datasets/demo.yaml"
    sampling = {"decision_making": {"cap": cap}, "risk_prediction": {"cap": cap, "mode": "weighted"},
                "tasks": {t: {"mode": "weighted"} for t in ("chartevents", "emar", "next_event")}}
    cfg = load_config(BuildDatasetsConfig, demo, [f"output_dir={work}", f"timelines_dir={timelines}",
                                                  "timelines=null", f"num_workers={2 if render else 1}"])
    cfg = cfg.model_copy(update={"sampling": {**cfg.sampling, **sampling}})
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        shards, tasks = sorted(timelines.glob("part-*.parquet")), cfg.task_list()
        gc.collect()
        rss = PeakRSS().start()
        index = build_index(cfg, shards, tasks, work / "_work")
        selected, vocab, peak_rows, n_selected = streaming_selection(cfg, index, tasks, shards, work / "_work")
        streaming = rss.stop()
        result = {"candidates": index.rows, "selected": n_selected, "peak_rows": peak_rows,
                  "streaming_mib": streaming, "shards": len(shards)}
        gc.collect()
        if render:
            # the old driver's selection first: RSS freed by one stage is reused by the next without growing
            rss = PeakRSS().start()
            assert old_driver_selection(selected) == n_selected
            result["old_selection_mib"] = rss.stop()
            gc.collect()
            writers = {p: DatasetWriter(work, p) for p in cfg.presets}
            rss = PeakRSS().start()
            t0 = time.perf_counter()
            stats = render_and_write(cfg, selected, vocab, writers, work / "_work" / "rendered")
            result["render_s"] = time.perf_counter() - t0
            result["render_mib"] = rss.stop()
            result["written"] = sum(w.rows for w in writers.values())
            result["jsonl_mib"] = sum((w.tmp / f"{w.name}.jsonl").stat().st_size for w in writers.values()) / 2**20
            for w in writers.values():
                w.abort()
            del stats
        else:
            rss = PeakRSS().start()
            frame = pd.concat([pd.read_parquet(p) for p in index.parts], ignore_index=True)  # the old driver index
            result["collect_mib"] = rss.stop()
            assert len(frame) == index.rows
        print(json.dumps(result))
    finally:
        ray.shutdown()


def memory_table(sizes: list[int], cap: int, num_cpus: int, render: bool) -> None:
    import json
    import subprocess
    import sys

    from data_pipeline.datasets.build import resolve_timelines
    from data_pipeline.datasets.config import BuildDatasetsConfig
    from jobkit.config import load_config
    from jobkit.ray_runtime import setup_logging

    setup_logging("WARNING")
    demo = ROOT / "ray_jobs/configs/build_datasets/demo.yaml"
    work = Path(tempfile.mkdtemp(prefix="bench_datasets_mem_"))
    rows = []
    try:
        for n in sizes:
            cfg = load_config(BuildDatasetsConfig, demo, [f"output_dir={work / f'p{n}'}",
                                                          f"timelines.synthetic.num_patients={n}"])
            import ray

            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            try:
                timelines = resolve_timelines(cfg)
            finally:
                ray.shutdown()
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(timelines), str(work / f"m{n}"),
                                  "--cap", str(cap), "--num-cpus", str(num_cpus), *(["--render"] if render else [])],
                                 capture_output=True, text=True, check=True).stdout
            rows.append((n, json.loads(out.strip().splitlines()[-1])))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nper-task cap {cap} in both presets; driver RSS growth over the stage, sampled every 10 ms")
    if render:
        print("| patients | shards | selected rows | samples written | jsonl MiB | render + export s "
              "| driver peak RSS, render + export (MiB) | driver RSS, selection as row dicts by patient (old, MiB) |")
        print("|---|---|---|---|---|---|---|---|")
        for n, r in rows:
            print(f"| {n} | {r['shards']} | {r['selected']} | {r['written']} | {r['jsonl_mib']:.0f} | "
                  f"{r['render_s']:.0f} | {r['render_mib']:.0f} | {r['old_selection_mib']:.0f} |")
        return
    print("| patients | shards | candidate rows | selected rows | driver merge peak rows | driver peak RSS, "
          "index + stats + select (MiB) | driver RSS, collecting the index as pandas (old, MiB) |")
    print("|---|---|---|---|---|---|---|")
    for n, r in rows:
        print(f"| {n} | {r['shards']} | {r['candidates']} | {r['selected']} | {r['peak_rows']} | "
              f"{r['streaming_mib']:.0f} | {r['collect_mib']:.0f} |")


if __name__ == "__main__":
    main()
