"""Peak memory of the SFT data path, driver and workers, from 10 k to 1 M synthetic EHR-Ins records.

Each size runs in a fresh process on a fresh local Ray instance: write N toy records (``training.toy_data``, one
lab event each so 1 M records fit the machine's time), build the rows on Ray Data (``training.prepare``), then read
them the way Ray Train workers do: ``streaming_split(2, equal=True)`` consumed by two actors through
``training.stream.RowStream`` (collated batches). Reported: the driver's peak RSS and its growth over the Ray
baseline, the preparation workers' peak RSS, the reading actors' peak RSS and their unique memory (USS) at the
end, the rows and the wall time.

    .venv/bin/python benchmarks/bench_sft_prep_memory.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n: int, workdir: Path) -> dict:
    import ray

    sys.path.insert(0, str(ROOT))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    from training.config import DataSpec
    from training.prepare import prepare_rows, shard_files
    from training.collate import SFTCollator
    from training.stream import RowStream, rows_dataset
    from training.tiny_model import build_tiny_model
    from training.toy_data import write_toy_data

    model = build_tiny_model(workdir / "tiny")
    data = write_toy_data(workdir / "ins.jsonl", n=n, seed=0, n_events=1)
    baseline = _peak_mb()

    poller = WorkerPoller()
    poller.start()
    start = time.perf_counter()
    spec = DataSpec(paths=[str(data)], max_seq_length=1024, prep_concurrency=2)
    rows_dir, stats = prepare_rows(spec, model, workdir / "prep", seed=0)
    prep_s = time.perf_counter() - start
    driver_after_prep = _peak_mb()
    actor_rss = poller.stop()

    @ray.remote(num_cpus=0)
    class Reader:
        def read(self, shard) -> dict:
            rows = 0
            for k, batch in enumerate(RowStream(shard, 8, SFTCollator(pad_id=0))):
                rows += batch["input_ids"].shape[0]
                if rows >= per_worker:
                    break
            import psutil

            # RSS counts the object-store pages a reader has touched (shared memory the raylet owns and frees);
            # USS is what the reader itself holds
            return {"rows": rows, "peak_mb": _peak_mb(), "uss_mb": psutil.Process().memory_full_info().uss / 2**20}

    per_worker = stats["rows"] // 2
    ds = rows_dataset(shard_files(rows_dir), ["input_ids", "labels", "position_ids"])
    splits = ds.streaming_split(2, equal=True)
    readers = [Reader.remote() for _ in splits]
    start = time.perf_counter()
    read = ray.get([r.read.remote(s) for r, s in zip(readers, splits)])
    read_s = time.perf_counter() - start
    ray.shutdown()
    return {"records": n, "rows": stats["rows"], "shards": stats["shards"], "prep_s": round(prep_s, 1),
            "read_s": round(read_s, 1), "driver_baseline_mb": round(baseline), "driver_peak_mb": round(driver_after_prep),
            "driver_growth_mb": round(driver_after_prep - baseline), "prep_worker_peak_mb": round(actor_rss),
            "reader_peak_mb": round(max(r["peak_mb"] for r in read)),
            "reader_uss_mb": round(max(r["uss_mb"] for r in read)), "rows_read": sum(r["rows"] for r in read)}


class WorkerPoller(threading.Thread):
    """The largest RSS any Ray worker process of this node reaches (sampled every 0.2 s): the prep actors."""

    def __init__(self):
        super().__init__(daemon=True)
        self.best, self._halt = 0.0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.wait(0.2):
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                try:
                    cmd = " ".join(proc.info["cmdline"] or [])
                    if cmd.startswith("ray::") or "default_worker.py" in cmd:
                        self.best = max(self.best, proc.info["memory_info"].rss / 2**20)
                except (psutil.Error, TypeError):
                    continue

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print("RESULT " + json.dumps(one_size(args.one, Path(tmp))))
        return
    rows = []
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"size {n} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(line[7:]))
        print(rows[-1], flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
