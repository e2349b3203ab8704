"""``build_timelines(cfg)``: MIMIC-IV source -> per-patient timeline shards on Ray, resumable.

1. Source: a MIMIC-IV folder, or a synthetic cohort generated into ``<output_dir>/source`` (skipped if present).
2. :func:`~data_pipeline.mimic.reader.plan_source` validates every header before any heavy work.
3. Phase 1: each file is read, normalised, joined and partitioned by patient (``subject_id`` ranges,
   :mod:`~data_pipeline.timeline.buckets`) into buckets by one Ray task, except a file so large that its task would
   outlast all the others: the driver streams that one in chunks of ``spill_mb``, one Ray task per chunk
   (:func:`tables_to_stream`, :mod:`~data_pipeline.timeline.partition`).
   On a multi-node cluster ``output_dir`` must be on storage every node can read and write.
4. Phase 2 (Ray Data over bucket ids, a task pool sized to the cluster's CPUs, a few buckets per task): build each
   bucket's timelines and markdown and write them atomically (:mod:`~data_pipeline.timeline.build`,
   :mod:`~data_pipeline.timeline.store`). It starts on a driver thread as soon as phase 1 has no task left
   queued, so Ray Data's start-up overlaps the last phase-1 tasks; its tasks wait for those before building.
5. ``manifest.json`` is written last. A re-run skips staged tables and finished buckets.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from data_pipeline.mimic.reader import MimicDataError, SourceLayout, SourcePlan, describe_plan, plan_source
from data_pipeline.timeline import store
from data_pipeline.timeline.buckets import Buckets, plan_buckets
from data_pipeline.timeline.config import TimelineConfig, TimelineResult
from data_pipeline.timeline.partition import (INDEX, clear_failed, is_staged, mark_failed, staged_tables,
                                              table_dir)

log = logging.getLogger(__name__)

BUILD_FILE = "_build.json"
#: Rough expansion of a file's on-disk size to uncompressed CSV bytes, for sizing buckets.
_EXPANSION = {".gz": 5.0, ".parquet": 4.0}
#: Runtime environment of the timeline tasks (merged into the job's). Arrow's allocator (mimalloc) hands freed
#: memory back to the OS after 10 ms, so every chunk and bucket page-faults its large buffers in again; never
#: purging cut the CPU of both phases by 20-25% (BENCHMARKS.md). A worker then stays at its high-water mark,
#: which a build reaches with its first large bucket anyway.
TASK_RUNTIME_ENV = {"env_vars": {"MIMALLOC_PURGE_DELAY": "-1"}}


def prepare_source(cfg: TimelineConfig) -> SourceLayout:
    if cfg.synthetic is None:
        return SourceLayout(cfg.mimic_root, dict(cfg.module_roots), cfg.mappings_dir)
    from data_pipeline.mimic.synthetic import generate_cohort_from_config

    root = cfg.source_dir
    log.info("synthetic cohort (%d patients, volume=%s) in %s (generated unless already complete)",
             cfg.synthetic.num_patients, cfg.synthetic.volume, root)
    generate_cohort_from_config(cfg.synthetic, root)  # idempotent: a finished cohort is returned as is
    return SourceLayout(root)


def estimate_bytes(path: Path) -> float:
    """Rough uncompressed CSV bytes of one source file."""
    factor = next((f for ext, f in _EXPANSION.items() if path.name.endswith(ext)), 1.0)
    return path.stat().st_size * factor


def estimate_buckets(plan: SourcePlan, target_mb: int) -> int:
    total = sum(estimate_bytes(sf.path) for sf in plan.tables.values())
    return max(1, math.ceil(total / (target_mb * 2**20)))


def _guard(out: Path, cfg: TimelineConfig, buckets: Buckets) -> None:
    """Refuse to resume into an output folder built with different settings (or a changed patient list)."""
    want = {**cfg.fingerprint(), "num_buckets": buckets.count, "bucket_bounds": buckets.digest()}
    path = out / BUILD_FILE
    if path.is_file():
        have = json.loads(path.read_text())
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise MimicDataError(f"{out}: holds a build with different settings ({', '.join(diff)}: {have} vs "
                                 f"{want}); use a new output_dir, or delete {out} to rebuild")
    else:
        store.atomic_write_text(path, json.dumps(want, sort_keys=True))


def _unwrap(exc: BaseException) -> BaseException:
    """The MimicDataError inside a Ray task/UDF error, if any (its message is the one for the user)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, MimicDataError) and type(seen) is MimicDataError:
            return seen
        cause = getattr(seen, "cause", None) or seen.__cause__
        seen = cause if cause is not seen else None
    return exc


def tables_to_stream(sizes: dict[str, float], cpus: int, spill_bytes: int) -> list[str]:
    """The tables the driver streams in chunks: those one task would still be reading when the rest are done.

    A table is streamed when its (estimated uncompressed) size is above a CPU's share of all the tables and above
    four chunks; every other table is read by a task of its own (cheaper in total: +25% CPU measured for
    streaming, whose chunks are read by the driver and pass through the object store).
    """
    limit = max(4 * spill_bytes, sum(sizes.values()) / max(1, cpus))
    return [rp for rp, size in sizes.items() if size > limit]


def run_phase1(plan: SourcePlan, staging: Path, buckets: Buckets, cfg: TimelineConfig,
               on_cpu_free: Callable[[list], None] = lambda refs: None) -> None:
    """Partition every unstaged table: most in one Ray task each, the largest streamed by the driver in chunks.

    At most ``2 x CPUs`` chunk tasks are in flight, so driver and object-store memory stay bounded by
    ``spill_mb`` whatever the table sizes; a whole-table task streams its file itself, in the same bounded chunks.
    ``on_cpu_free`` is called as soon as every task is submitted and no more are left than there are CPUs (none is
    queued, and the next to finish frees a CPU), with the refs of the tasks still running.
    """
    import ray
    from tqdm import tqdm

    from data_pipeline.mimic.schema import TABLES
    from data_pipeline.timeline.joins import load_lookups
    from data_pipeline.timeline.partition import (StageTask, finish_table, iter_chunks, prepare_table_dir,
                                                  stage_chunk, stage_table)

    todo = [rp for rp in staged_tables(plan) if not is_staged(staging, rp)]
    if not todo:
        log.info("phase 1: all %d tables already partitioned", len(staged_tables(plan)))
        return
    todo.sort(key=lambda rp: plan.tables[rp].path.stat().st_size, reverse=True)
    retries = task_retry_options(cfg.task_retries)
    remote = ray.remote(num_cpus=1, runtime_env=TASK_RUNTIME_ENV, **retries)(stage_chunk)
    whole = ray.remote(num_cpus=1, runtime_env=TASK_RUNTIME_ENV, **retries)(stage_table)
    # A table is read by one task of its own unless that task alone would outlast the whole phase: then the
    # driver streams it in chunks, one task each, so that all CPUs normalise it at once (tables_to_stream).
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    streamed = tables_to_stream({rp: estimate_bytes(plan.tables[rp].path) for rp in todo}, cpus,
                                cfg.spill_mb << 20)
    whole_left = [rp for rp in todo if rp not in streamed]  # largest first
    max_chunks = 2 * cpus  # bounds the raw chunks held by the object store
    pending: dict = {}  # ref -> (relpath, chunk task?)
    entries: dict[str, list[dict]] = {rp: [] for rp in streamed}
    chunks: dict[str, int | None] = {rp: None for rp in streamed}  # None while the driver is still reading
    running = {"chunk": 0, "whole": 0}

    def submit_whole(limit: float) -> None:
        while whole_left and running["whole"] < limit:
            rp = whole_left.pop(0)
            task = StageTask(rp, plan.tables[rp], staging, buckets, cfg.read_block_mb << 20, cfg.spill_mb << 20)
            pending[whole.remote(task, plan)] = (rp, False)
            running["whole"] += 1

    def collect_one() -> None:
        done, _ = ray.wait(list(pending), num_returns=1)
        rp, is_chunk = pending.pop(done[0])
        running["chunk" if is_chunk else "whole"] -= 1
        try:
            result = ray.get(done[0])
        except Exception as exc:  # noqa: BLE001 - surface the data error, cancel the rest
            cancel_and_wait(list(pending))
            raise _unwrap(exc) from None
        bar.update(result["rows_read"])
        if not is_chunk:  # a whole-table task wrote its table's index itself
            return
        entries[rp].append(result)
        if chunks[rp] is not None and len(entries[rp]) == chunks[rp]:
            finish_table(rp, table_dir(staging, rp), plan.tables[rp].path, entries[rp])

    total = sum(plan.tables[rp].path.stat().st_size for rp in todo)
    with tqdm(desc="phase 1: partition rows", unit="row", unit_scale=True) as bar:
        bar.set_postfix_str(f"{len(todo)} tables, {total / 2**20:.0f} MB on disk")
        # While the driver streams, whole-table tasks fill all CPUs but one, which is left for the chunk tasks: the
        # driver can only read on while its chunks are consumed (Ray queues tasks in submission order).
        for rp in streamed:
            out = table_dir(staging, rp)
            prepare_table_dir(out)
            lookups = ray.put(load_lookups(plan, TABLES[rp].name))
            columns = [c.lower() for c in TABLES[rp].column_names]
            n = 0
            for first, raw in iter_chunks(plan.tables[rp], columns, cfg.read_block_mb << 20, cfg.spill_mb << 20):
                submit_whole(cpus - 1)
                while running["chunk"] >= max_chunks:
                    collect_one()
                pending[remote.remote(rp, out, n, first, raw, lookups, buckets, plan.tables[rp].path)] = (rp, True)
                running["chunk"] += 1
                n += 1
            chunks[rp] = n
            if len(entries[rp]) == n:  # empty table, or every chunk already back
                finish_table(rp, out, plan.tables[rp].path, entries[rp])
        submit_whole(math.inf)
        while pending:
            if len(pending) <= cpus:
                on_cpu_free(list(pending))
            collect_one()
    unstaged = [rp for rp in todo if not is_staged(staging, rp)]
    if unstaged:  # phase-2 tasks wait for every table: never leave one out silently
        raise RuntimeError(f"phase 1 finished without staging {unstaged}; please report this bug")


def task_retry_options(retries: int) -> dict:
    """Ray options of a timeline task: re-run after a system failure (its worker died: OOM kill, lost node), never
    after an exception raised by the task itself (a :class:`MimicDataError` must stop the build at once).

    Every task's writes are atomic (temporary name, then ``os.replace``) and idempotent (a re-run of a chunk,
    table or bucket writes the same bytes under the same names), so a re-run after a half-done attempt is safe.
    """
    return {"max_retries": retries, "retry_exceptions": False}


def cancel_and_wait(refs: list) -> None:
    """Cancel ``refs`` and return only once none of them runs any more.

    A gentle cancel (``KeyboardInterrupt`` in the task), not ``force=True``: a force-cancel kills the worker
    process asynchronously, and a worker that had just finished its task could already be running a task of
    the next build (a re-run after a data error, in the same Ray session) when the kill arrives - that task then
    died with ``WorkerCrashedError``. Waiting also keeps a cancelled task from writing into the staging folder
    that a re-run prepares afresh.
    """
    import ray

    for ref in refs:
        ray.cancel(ref, force=False)
    if refs:
        ray.wait(refs, num_returns=len(refs))  # settled: finished, failed or cancelled; the outcome is ignored


def _build_buckets(batch: dict, staging_dir: str, output_dir: str, tables: list[str], write_markdown: bool,
                   phase1: list, drop_orphans: bool = False) -> dict:
    """Ray Data UDF: build the buckets of ``batch["bucket"]`` one after the other (memory is that of one bucket).

    Phase 2 starts on the CPUs phase 1 has finished with, so a task first waits for the phase-1 tasks still
    running (``ray.get`` lends this task's CPU back to Ray while it blocks, so a phase-1 task still queued can
    never be starved by waiting phase-2 tasks), then for the tables' index files (the driver writes those of
    the tables it streamed).
    """
    import ray

    from data_pipeline.timeline.partition import wait_until_staged
    from data_pipeline.timeline.worker import build_one_bucket

    t0 = time.monotonic()
    if phase1:
        ray.get(phase1)
    wait_until_staged(Path(staging_dir), tables)
    waited = time.monotonic() - t0
    if waited > 1:
        log.debug("waited %.1fs for phase 1", waited)
    stats = [build_one_bucket(int(b), Path(staging_dir), Path(output_dir), tables, write_markdown, drop_orphans)
             for b in batch["bucket"]]
    return {k: [s[k] for s in stats] for k in ("bucket", "patients", "events", "rows")}


def buckets_per_task(num_todo: int, parallel: int, configured: int | None) -> int:
    """Buckets one phase-2 task builds: about three tasks per CPU, at most 16 buckets each.

    Ray Data notices a finished task and starts the next one within 0.1-0.2 s; with buckets of a fraction of a
    second (small ``target_bucket_mb``) one task per bucket left the CPUs idle for a third of phase 2. Grouping
    keeps that latency small against the task, while three tasks per CPU keep the tail short.
    """
    if configured is not None:
        return configured
    return min(16, max(1, math.ceil(num_todo / (3 * parallel))))


def run_phase2(todo: list[int], staging: Path, out: Path, tables: list[str], cfg: TimelineConfig,
               phase1: list | None = None) -> None:
    """Build every bucket in ``todo`` on Ray Data: blocks of a few buckets through a task pool of ``max_parallel``.

    ``phase1``: refs of phase-1 tasks still running when phase 2 starts (its tasks wait for them, see
    :func:`_build_buckets`).

    Ray Data is the platform's sharding layer for patient records (the same pattern later stages use), and gives
    streaming back-pressure, retries and per-operator progress in the dashboard. Its executor start-up costs a few
    CPU-seconds, which shows on a tiny cohort on 2 cores and is negligible at MIMIC-IV scale (BENCHMARKS.md).
    """
    import ray

    if not todo:
        return
    parallel = cfg.max_parallel or max(1, int(ray.cluster_resources().get("CPU", 1)))
    per_task = buckets_per_task(len(todo), parallel, cfg.buckets_per_task)
    num_tasks = math.ceil(len(todo) / per_task)
    ctx = ray.data.DataContext.get_current()
    # Two back-pressure rules made for multi-stage pipelines with large blocks held this single stage, whose
    # output is a few hundred bytes of counts per task (the buckets go to parquet), to one task at a time on a
    # 2-CPU node: the per-operator resource reservation (until the first task finished) and the downstream-
    # capacity rule (from then on; phase 2 took 1.6x as long). Both are restored afterwards.
    saved = ctx.op_resource_reservation_enabled, ctx.downstream_capacity_backpressure_ratio
    ctx.op_resource_reservation_enabled, ctx.downstream_capacity_backpressure_ratio = False, None
    try:
        # from_items splits the ids into ``num_tasks`` contiguous blocks; each block is one batch, one task
        ds = ray.data.from_items([{"bucket": b} for b in todo], override_num_blocks=num_tasks)
        ds = ds.map_batches(_build_buckets, batch_size=None, num_cpus=1, runtime_env=TASK_RUNTIME_ENV,
                            # no retry options: Ray Data re-runs a task after a system failure (a dead worker,
                            # RaySystemError) by default and never after the UDF's own exception (a data error);
                            # its only ways to bound that (ray_remote_args[_fn]) are deprecated in Ray 2.60
                            compute=ray.data.TaskPoolStrategy(size=min(parallel, num_tasks)),
                            fn_kwargs={"staging_dir": str(staging), "output_dir": str(out), "tables": tables,
                                       "write_markdown": cfg.write_markdown, "phase1": list(phase1 or []),
                                       "drop_orphans": cfg.orphan_rows == "drop"})
        for row in ds.iter_rows():
            log.debug("bucket %d: %d patients, %d events", row["bucket"], row["patients"], row["events"])
    except Exception as exc:  # noqa: BLE001
        raise _unwrap(exc) from None
    finally:
        ctx.op_resource_reservation_enabled, ctx.downstream_capacity_backpressure_ratio = saved


def build_timelines(cfg: TimelineConfig) -> TimelineResult:
    """Build (or finish building) the timelines of ``cfg`` and say where they are and how to look at them."""
    from jobkit.ray_runtime import init_ray

    t0 = time.time()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    layout = prepare_source(cfg)
    plan = plan_source(layout)
    log.info("source %s: %s", layout.root, describe_plan(plan))
    num_buckets = cfg.num_buckets or max(cfg.min_buckets, estimate_buckets(plan, cfg.target_bucket_mb))
    buckets = plan_buckets(plan, num_buckets)
    _guard(out, cfg, buckets)
    staging = out / store.STAGING
    for folder in (out / store.TIMELINES, out / store.MARKDOWN):
        if store.remove_stale_tmp(folder):
            log.info("removed temporary files of an interrupted run in %s", folder)
    todo = [b for b in range(num_buckets) if not _finished(out, b, cfg.write_markdown)]
    skipped = num_buckets - len(todo)
    log.info("%d buckets: %d to build, %d already finished", num_buckets, len(todo), skipped)
    tables = staged_tables(plan)
    if todo:
        init_ray(cfg.ray.address, cfg.ray.num_cpus)
        t1 = time.time()
        clear_failed(staging)
        phase2 = _Background(lambda refs: run_phase2(todo, staging, out, tables, cfg, refs))
        try:
            run_phase1(plan, staging, buckets, cfg, on_cpu_free=phase2.start)
        except BaseException:
            mark_failed(staging)  # phase-2 tasks already waiting for phase 1 give up
            phase2.wait_if_started()
            raise
        t2 = time.time()
        log.info("phase 1 (partition) took %.1fs", t2 - t1)
        phase2.join()
        log.info("phase 2 (build %d buckets) took %.1fs after phase 1 (started %.1fs before its end)", len(todo),
                 time.time() - t2, t2 - (phase2.started or t2))
    manifest = _write_manifest(out, cfg, num_buckets, staging, tables)
    _report_orphans(manifest["orphan_rows"])
    if not cfg.keep_staging and staging.exists():
        shutil.rmtree(staging)
    result = TimelineResult(
        output_dir=out, timelines_dir=out / store.TIMELINES,
        markdown_dir=out / store.MARKDOWN if cfg.write_markdown else None, num_buckets=num_buckets,
        buckets_built=len(todo), buckets_skipped=skipped, num_patients=manifest["patients"],
        num_events=manifest["events"], source_rows=manifest["source_rows"], seconds=round(time.time() - t0, 2))
    _announce(result, next((b["bucket"] for b in manifest["buckets"] if b["patients"] > 0), 0))
    return result


class _Background:
    """Run ``fn(refs)`` once on a driver thread (phase 2 may start while phase 1 finishes); :meth:`join`
    re-raises what it raised."""

    def __init__(self, fn: Callable[[list], None]):
        self._fn = fn
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.started: float | None = None

    def _run(self, refs: list) -> None:
        try:
            self._fn(refs)
        except BaseException as exc:  # noqa: BLE001 - handed to join()
            self._error = exc

    def start(self, refs: list | None = None) -> None:
        if self._thread is None:
            self.started = time.time()
            # a daemon thread: an interrupted driver exits without waiting for it (Ray cancels the job's tasks)
            self._thread = threading.Thread(target=self._run, args=(list(refs or []),), name="timelines-phase2",
                                            daemon=True)
            self._thread.start()

    def join(self) -> None:
        """Start (if not yet), wait, and re-raise what ``fn`` raised."""
        self.start()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def wait_if_started(self) -> None:
        """Wait for a started ``fn`` (its error is dropped: the caller is handling its own)."""
        if self._thread is not None:
            self._thread.join()


def _finished(out: Path, bucket: int, markdown: bool) -> bool:
    name = store.part_name(bucket)
    return store.bucket_done(out, bucket) and (not markdown or (out / store.MARKDOWN / name).is_file())


def _write_manifest(out: Path, cfg: TimelineConfig, num_buckets: int, staging: Path, tables: list[str]) -> dict:
    import pyarrow.parquet as pq

    from data_pipeline.timeline.worker import ORPHANS_KEY

    path = out / store.MANIFEST
    old = json.loads(path.read_text()) if path.is_file() else {}
    rows = dict(old.get("rows_per_table", {}))
    for rp in tables:
        if (table_dir(staging, rp) / INDEX).is_file():
            index = json.loads((table_dir(staging, rp) / INDEX).read_text())
            rows[rp] = index["rows_read"]
    buckets = []
    orphan_rows: dict[str, int] = {}
    orphan_subjects = 0
    for b in range(num_buckets):
        meta = pq.read_metadata(out / store.TIMELINES / store.part_name(b))
        extra = {k.decode(): int(v) for k, v in (meta.metadata or {}).items() if k in (b"events", b"rows")}
        buckets.append({"bucket": b, "patients": meta.num_rows, **extra})
        orphans = json.loads((meta.metadata or {}).get(ORPHANS_KEY, b"{}"))
        for rp, n in orphans.get("rows_per_table", {}).items():
            orphan_rows[rp] = orphan_rows.get(rp, 0) + n
        orphan_subjects += orphans.get("subjects", 0)
    manifest = {
        "settings": {**cfg.fingerprint(), "num_buckets": num_buckets, "write_markdown": cfg.write_markdown},
        "patients": sum(b["patients"] for b in buckets), "events": sum(b.get("events", 0) for b in buckets),
        "source_rows": sum(rows.values()), "rows_per_table": rows,
        # rows whose subject_id has no hosp/patients row: kept (timelines without demographics) or dropped
        "orphan_rows": {"policy": cfg.orphan_rows, "subjects": orphan_subjects, "rows": sum(orphan_rows.values()),
                        "rows_per_table": dict(sorted(orphan_rows.items()))},
        "buckets": buckets,
    }
    store.atomic_write_text(path, json.dumps(manifest, indent=1))
    return manifest


def _report_orphans(orphans: dict) -> None:
    """Say how many rows have no ``hosp/patients`` row, per table (counts only, never patient data)."""
    if not orphans["rows"]:
        return
    what = ("kept: their timelines have no demographics; set orphan_rows: drop to leave them out"
            if orphans["policy"] == "keep" else "dropped (orphan_rows: drop)")
    log.warning("%d rows of %d subjects have no hosp/patients row (%s); %s", orphans["rows"], orphans["subjects"],
                ", ".join(f"{rp}: {n}" for rp, n in orphans["rows_per_table"].items()), what)


def _announce(r: TimelineResult, first_bucket: int) -> None:
    first = r.timelines_dir / store.part_name(first_bucket)
    log.info("timelines of %d patients (%d events, %d source rows) in %s [%d shards; %d built, %d skipped; %.1fs]",
             r.num_patients, r.num_events, r.source_rows, r.timelines_dir, r.num_buckets, r.buckets_built,
             r.buckets_skipped, r.seconds)
    if r.markdown_dir is not None:
        log.info("look at one patient: python -c \"import pandas as pd; "
                 "print(pd.read_parquet('%s').markdown.iloc[0])\"", r.markdown_dir / store.part_name(first_bucket))
    log.info("iterate in Python: from data_pipeline.timeline.store import iter_timelines; "
             "next(iter_timelines('%s'))  (first shard: %s)", r.timelines_dir, first)
