"""Timeline build throughput and peak memory vs a plain pyarrow scan of the same files.

    python benchmarks/bench_timelines.py --patients 1000 4000 --repeat 3 --work /tmp/bench_timelines

For each cohort size: generate a synthetic MIMIC-IV cohort (``volume="realistic"``, cached in ``--work``), then in
fresh subprocesses (1) stream every file the timeline build reads with ``pyarrow.csv.open_csv`` (default options
except ``newlines_in_values=True``, which note text needs; rows counted, nothing else) and (2) run
``build_timelines`` on a private 2-CPU Ray instance. Reported: source rows/s of each, their ratio, the peak RSS
of the scanning process and the peak memory of the whole build process tree (driver + raylet + Ray workers, sum
of PSS, so shared object-store pages count once, read whenever the tree's resident size reaches a new high).
Ray start-up is excluded from the build time and shown on its own. Also reported: CPU seconds (user + system) of
the scan process and of the whole build process tree during the build, and by process; on a shared machine their
ratio is far less sensitive to other jobs than wall time. ``--repeat`` runs several (scan, build) rounds per cohort
and reports the round with the median ratio.
``target_bucket_mb`` is small so that the number of buckets grows with the cohort and a bucket's size does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pss(pid: int) -> int:
    """Proportional set size of one process in bytes, from ``/proc/<pid>/smaps_rollup``.

    The kernel sums it in one read; ``psutil``'s ``memory_full_info`` parses the whole ``smaps`` (every mapping,
    thousands for a Ray worker), which at five samples a second cost the measured build about 0.1 CPU.
    """
    with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
        for line in f:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _tree_pss_by_process() -> dict[str, int]:
    import psutil

    me = psutil.Process()
    out: dict[str, int] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            name = " ".join(p.cmdline()[:1])[-40:] if not p.name().startswith("ray::") else p.name()
            out[f"{p.pid} {name}"] = _pss(p.pid)
        except (psutil.Error, OSError):
            pass
    return out


def _tree_rss() -> int:
    """Memory of this process and all its descendants (raylet, GCS, Ray workers), as the sum of their PSS.

    PSS splits each shared page (the object store, shared libraries) between the processes that map it, so the
    sum counts every page once -- unlike a sum of RSS, which counts the object store once per worker.
    """
    return sum(_tree_pss_by_process().values())


def _tree_rss_pages() -> int:
    """Sum of resident pages of the process tree, from ``/proc/<pid>/statm`` (100x cheaper than PSS)."""
    import psutil

    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            with open(f"/proc/{p.pid}/statm") as f:
                total += int(f.read().split()[1])
        except (psutil.Error, OSError):
            pass
    return total


class _Sampler(threading.Thread):
    """Peak PSS of the process tree.

    The exact PSS (``smaps_rollup``: the kernel walks every mapping, ~15 ms for a 2-CPU Ray tree) is only read when
    the resident size, sampled every 0.2 s for almost nothing, exceeds the size at the last exact reading by 3%
    (a new high): reading it on every sample cost the measured build 2-3 CPU-seconds of its 2 cores.
    """

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval, self.peak, self.stop = interval, 0, threading.Event()
        self.breakdown: dict[str, int] = {}

    def run(self) -> None:
        read_at = 0
        while not self.stop.is_set():
            rss = _tree_rss_pages()
            if rss > 1.03 * read_at:
                read_at = rss
                parts = _tree_pss_by_process()
                total = sum(parts.values())
                if total > self.peak:
                    self.peak, self.breakdown = total, parts
            time.sleep(self.interval)


def _self_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _tree_cpu_by_process() -> dict[str, float]:
    """User + system CPU seconds used so far by this process and every live descendant, by ``"pid name"``."""
    import psutil

    me = psutil.Process()
    out: dict[str, float] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[f"{p.pid} {p.name()[:40]}"] = t.user + t.system
        except psutil.Error:
            pass
    return out


def _tree_cpu() -> float:
    """User + system CPU seconds used so far by the process tree (Ray's processes are long-lived)."""
    return sum(_tree_cpu_by_process().values())


def child_scan(root: Path) -> dict:
    import resource

    import pyarrow.csv as pv

    from data_pipeline.mimic.reader import SourceLayout, plan_source
    from data_pipeline.timeline.partition import staged_tables

    plan = plan_source(SourceLayout(root))
    files = [plan.tables[rp].path for rp in staged_tables(plan)]
    t0, c0 = time.perf_counter(), _self_cpu()
    rows = 0
    parse = pv.ParseOptions(newlines_in_values=True)  # note text spans lines; the default chunker would fail
    for path in files:
        for batch in pv.open_csv(path, parse_options=parse):
            rows += batch.num_rows
    seconds, cpu = time.perf_counter() - t0, _self_cpu() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "peak_rss": peak, "files": len(files)}


def child_build(root: Path, out: Path, markdown: bool, target_mb: int) -> dict:
    import logging

    import ray

    from data_pipeline.timeline.config import TimelineConfig
    from data_pipeline.timeline.pipeline import build_timelines

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("data_pipeline.timeline.pipeline").setLevel(logging.INFO)
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, object_store_memory=1 << 30, include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - t0
    time.sleep(2)
    idle = _tree_rss()
    sampler = _Sampler()
    sampler.start()
    cfg = TimelineConfig(mimic_root=root, output_dir=out, write_markdown=markdown, target_bucket_mb=target_mb)
    t0, before = time.perf_counter(), _tree_cpu_by_process()
    result = build_timelines(cfg)
    seconds, after = time.perf_counter() - t0, _tree_cpu_by_process()
    used = {k: v - before.get(k, 0.0) for k, v in after.items()}
    cpu = sum(used.values())
    top = sorted(used.items(), key=lambda kv: -kv[1])[:8]
    print("CPU s by process: " + ", ".join(f"{k}={v:.1f}" for k, v in top), file=sys.stderr)
    sampler.stop.set()
    sampler.join()
    top = sorted(sampler.breakdown.items(), key=lambda kv: -kv[1])[:6]
    print("peak memory by process (PSS MB): " + ", ".join(f"{k}={v >> 20}" for k, v in top), file=sys.stderr)
    ray.shutdown()
    return {"rows": result.source_rows, "seconds": seconds, "cpu": cpu, "peak_rss": sampler.peak, "idle_rss": idle,
            "ray_init": ray_init, "buckets": result.num_buckets, "patients": result.num_patients,
            "events": result.num_events}


def _run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        if "took" in line or "peak memory" in line or "CPU s by process" in line:
            print("   ", line.split(": ", 1)[-1], file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_timelines"))
    ap.add_argument("--volume", default="realistic", choices=["demo", "realistic"])
    ap.add_argument("--no-markdown", action="store_true", help="build timelines only (write_markdown=false)")
    ap.add_argument("--target-bucket-mb", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of (scan, build) per cohort; the round with the median ratio is reported")
    ap.add_argument("--child-scan", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-build", type=Path, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_scan:
        print(json.dumps(child_scan(args.child_scan)))
        return
    if args.child_build:
        print(json.dumps(child_build(*args.child_build, markdown=not args.no_markdown,
                                     target_mb=args.target_bucket_mb)))
        return

    from data_pipeline.mimic.synthetic import generate_cohort

    rows_out = []
    for n in args.patients:
        src = generate_cohort(args.work / f"mimic_{args.volume}_{n}", num_patients=n, seed=0, volume=args.volume)
        out = args.work / f"timelines_{args.volume}_{n}"
        rounds = []
        for r in range(args.repeat):
            # scan and build back to back, so that a round's ratio compares them under the same machine load
            shutil.rmtree(out, ignore_errors=True)
            scan = _run_child(["--child-scan", str(src)])
            extra = ["--no-markdown"] if args.no_markdown else []
            build = _run_child(["--child-build", str(src), str(out), "--target-bucket-mb",
                                str(args.target_bucket_mb), *extra])
            assert build["rows"] == scan["rows"], (build["rows"], scan["rows"])
            ratio = (build["rows"] / build["seconds"]) / (scan["rows"] / scan["seconds"])
            rounds.append((ratio, scan, build))
            print(f"done: {n} patients, round {r + 1}/{args.repeat}: build/scan {ratio:.1%}; load average now "
                  f"{os.getloadavg()[0]:.1f}", file=sys.stderr)
        rounds.sort(key=lambda x: x[0])
        _, scan, build = rounds[len(rounds) // 2]
        rows_out.append((n, scan, build, rounds[0][0], rounds[-1][0], len(rounds)))

    mb = 2**20
    print(f"\nload average (1/5/15 min) at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"\nvolume={args.volume}, markdown={'off' if args.no_markdown else 'on'}, 2 CPUs, 1 GiB object store, "
          f"target_bucket_mb={args.target_bucket_mb}; the median round of {args.repeat}")
    print("| patients | source rows | buckets | pyarrow scan rows/s | build rows/s | build / scan | all rounds | "
          "build s (+ Ray start) | scan CPU s | build CPU s (process tree) | scan / build CPU | scan peak RSS MB | "
          "build peak MB (process tree PSS) | idle Ray MB (PSS) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, scan, build, lo, hi, k in rows_out:
        s_rate, b_rate = scan["rows"] / scan["seconds"], build["rows"] / build["seconds"]
        spread = f"{lo:.1%} - {hi:.1%} ({k})" if k > 1 else "-"
        print(f"| {n} | {scan['rows']:,} | {build['buckets']} | {s_rate:,.0f} | {b_rate:,.0f} | "
              f"{b_rate / s_rate:.1%} | {spread} | {build['seconds']:.1f} (+{build['ray_init']:.1f}) | "
              f"{scan['cpu']:.1f} | {build['cpu']:.1f} | {scan['cpu'] / build['cpu']:.1%} | "
              f"{scan['peak_rss'] / mb:,.0f} | {build['peak_rss'] / mb:,.0f} | {build['idle_rss'] / mb:,.0f} |")


if __name__ == "__main__":
    main()
