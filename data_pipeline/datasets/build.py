"""Timelines -> EHR-Ins / EHR-Bench on Ray Data: index -> sample -> render -> write.

1. **Index** (Ray Data tasks over the timeline shards): every candidate instance of every task, without text
   (:func:`stages.index_batch`), streamed by the workers to parquet parts in ``<output_dir>/_work/index/``
   (never through the driver), kept under a fingerprint of the shards and settings so a re-run skips it.
2. **Statistics** (Ray Data tasks over the index parts): per dataset and task the pool sizes, label and class
   counts and the train split's vocabularies, merged on the driver (small: O(tasks x labels)).
3. **Select** (Ray Data tasks over the index parts): sampling keys from a hash of (seed, task, row) and per-part
   top-k per (dataset, task[, class]) with the quotas of step 2, merged exactly on the driver (:mod:`selection`,
   :mod:`sampling`): driver memory O(sum of the caps), not O(candidates); the same rows whatever the sharding.
4. **Render** (Ray Data actor pool over the shards with selected rows): the selection is written per timeline
   shard to ``<output_dir>/_work/selected/`` and each actor reads only its shard's file, renders (assembly, left
   truncation, candidates: :class:`shards.ShardRenderWorker`) and writes ``_work/rendered/<shard>.parquet``
   (:mod:`shards`); only the patients with selected samples do any work.
5. **Write** (driver, streaming): the rendered parts, a bounded slice at a time in shard order, to jsonl + parquet
   + provenance + summary per dataset, committed atomically; a dataset whose ``_SUCCESS.json`` fingerprint
   matches is skipped.

**Leakage audit.** Every rendered sample is checked by the leakage auditor (:mod:`audit`, full rules whatever
``leakage_rules`` says) in the render workers; the per-task table is printed, and a build with leaking samples
stops before committing anything (:class:`LeakageError`) unless ``audit.allow_leaks``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_pipeline.datasets.config import BuildDatasetsConfig, timeline_config
from data_pipeline.datasets.export import (DatasetWriter, atomic_write_text, format_summary, is_finished)
from data_pipeline.datasets.selection import (SURVIVOR_SCHEMA, TopK, empty_stats, merge_stats, number_selection,
                                              preset_spec, select_udf, selection_plan, stats_udf,
                                              vocab_tasks, vocabulary_from_counts)
from data_pipeline.datasets.shards import (empty_export_stats, export_parts, in_order, selection_table,
                                           write_shard_selections)
from data_pipeline.datasets.stages import index_shards_to_parts

log = logging.getLogger(__name__)
INDEX_VERSION = 3
RENDER_VERSION = 3


class LeakageError(RuntimeError):
    """The audit found samples that show what the model could not have known at prediction time."""


@dataclass(frozen=True)
class IndexParts:
    """The candidate index on disk: parquet parts (``stages.INDEX_SCHEMA``), the event tables seen, row count."""

    parts: list[str]
    tables: set[str]
    rows: int
    fingerprint: str


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_timelines(cfg: BuildDatasetsConfig) -> Path:
    """The folder of timeline shards: the configured one, or built now from the embedded timelines config."""
    if cfg.timelines is not None:
        from data_pipeline.timeline.pipeline import build_timelines

        result = build_timelines(timeline_config(cfg.timelines, cfg.output_dir))
        return Path(result.timelines_dir)
    folder = Path(cfg.timelines_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"timelines_dir={str(folder)!r} is not a directory; run ray_jobs.build_timelines "
                                "first or embed its config under `timelines:`")
    if not any(folder.glob("part-*.parquet")) and (folder / "timelines").is_dir():
        folder = folder / "timelines"  # the build_timelines output folder was given
    return folder


def available_tables(timelines_dir: Path, seen: set[str]) -> set[str]:
    """Tables known to be present: the timeline manifest's non-empty source tables, else the event tables seen."""
    manifest = timelines_dir.parent / "manifest.json"
    have = set(seen)
    if manifest.is_file():
        rows = json.loads(manifest.read_text()).get("rows_per_table", {})
        have |= {k.rsplit("/", 1)[-1] for k, v in rows.items() if v}
    return have


def _map_parts(cfg: BuildDatasetsConfig, paths: list[str], fn, **fn_kwargs):
    """Ray Data tasks over ``paths`` (one file per block, so files run in parallel); yields the output blocks."""
    import ray

    ds = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=max(len(paths), 1))
    ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=1, num_cpus=cfg.worker_cpus,
                        compute=ray.data.TaskPoolStrategy(size=cfg.num_workers), fn_kwargs=fn_kwargs)
    yield from ds.iter_batches(batch_format="pyarrow", batch_size=None)


def build_index(cfg: BuildDatasetsConfig, shards: list[Path], tasks: list[str], work: Path) -> IndexParts:
    """The candidate-instance index of every shard as parquet parts under ``<work>/index`` (written by the
    workers, never collected) and its fingerprint; reused when the fingerprint matches."""
    stat = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in shards]
    rules = cfg.leakage_rules.model_dump()
    fp = _fingerprint({"v": INDEX_VERSION, "shards": stat, "tasks": tasks, "test_ratio": cfg.test_ratio,
                       "salt": cfg.split_salt, "rules": rules})
    folder, marker = work / "index", work / "index.json"
    if not cfg.overwrite and marker.is_file():
        done = json.loads(marker.read_text())
        paths = [str(folder / name) for name in done.get("parts", [])]
        if done.get("fp") == fp and all(Path(p).is_file() for p in paths):
            log.info("index: reusing %s (same shards and settings)", folder)
            return IndexParts(paths, set(done["tables"]), int(done["rows"]), fp)
    t0 = time.time()
    marker.unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths, seen, rows = [], set(), 0
    for batch in _map_parts(cfg, [str(p) for p in shards], index_shards_to_parts, tasks=tasks,
                            test_ratio=cfg.test_ratio, salt=cfg.split_salt, out_dir=str(folder), rules=rules):
        for part in batch.to_pylist():
            paths.append(part["path"])
            seen.update(part["tables"])
            rows += part["rows"]
    paths.sort()
    atomic_write_text(marker, json.dumps({"fp": fp, "parts": [Path(p).name for p in paths], "tables": sorted(seen),
                                          "rows": rows}))
    log.info("index: %d candidate instances from %d shards in %.1fs", rows, len(shards), time.time() - t0)
    return IndexParts(paths, seen, rows, fp)


def collect_stats(cfg: BuildDatasetsConfig, parts: list[str], specs: list[dict], tasks: list[str]) -> dict:
    """Pass 1 over the index parts: the merged per-(dataset, task[, label]) statistics (:mod:`selection`)."""
    total = empty_stats()
    for batch in _map_parts(cfg, parts, stats_udf, specs=specs, vocab_tasks=vocab_tasks(tasks)):
        for blob in batch["stats"].to_pylist():
            merge_stats(total, pickle.loads(blob))
    return total


def select_streaming(cfg: BuildDatasetsConfig, parts: list[str], plans: list[dict],
                     k_of_group: dict[int, int]) -> dict[str, pd.DataFrame]:
    """Pass 2 over the index parts: each part's top-k per group, merged exactly on the driver (O(quotas))."""
    top = TopK(k_of_group)
    for batch in _map_parts(cfg, parts, select_udf, plans=plans, k_of_group=k_of_group, seed=cfg.seed):
        top.add(batch.cast(SURVIVOR_SCHEMA))
    return number_selection(top.result(), plans)


def explain_missing(tasks: list[str], have: set[str], pool_sizes: Counter) -> dict[str, str]:
    """Why a task has no candidate instance: a missing table/module, or a mapping that maps nothing."""
    from data_pipeline.mimic.schema import EVENT_TABLES, MAPPINGS, TABLES
    from data_pipeline.tasks import get_task

    notes = {}
    for name in tasks:
        spec = get_task(name)
        missing = [r for r in spec.requires if r in EVENT_TABLES and r not in have]
        if missing:
            modules = sorted({t.module for t in TABLES.values() if t.name in missing})
            notes[name] = (f"skipped: no {', '.join(missing)} events in the timelines "
                           f"(module {'/'.join(modules)} absent from the source?)")
        elif pool_sizes[name] == 0:
            maps = [r for r in spec.requires if r in MAPPINGS]
            notes[name] = ("skipped: no anchor event has a label" +
                           (f" (mapping {', '.join(maps)} absent or maps nothing?)" if maps else ""))
    return notes


def build_datasets(cfg: BuildDatasetsConfig) -> dict[str, dict]:
    """Build every configured dataset; returns ``{name: summary}`` and prints the per-task count tables."""
    from jobkit.ray_runtime import init_ray

    out = Path(cfg.output_dir)
    timelines_dir = resolve_timelines(cfg)
    shards = sorted(timelines_dir.glob("part-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{timelines_dir}: no part-*.parquet timeline shards; run ray_jobs.build_timelines "
                                "or set `timelines:` to build them")
    out.mkdir(parents=True, exist_ok=True)
    init_ray(cfg.ray.address, cfg.ray.num_cpus)
    tasks = cfg.task_list()
    index = build_index(cfg, shards, tasks, out / "_work")

    presets, todo = {}, []
    for preset in cfg.preset_objects():
        # the whole index counts: the candidate vocabularies come from the train split whichever split is drawn
        fp = _fingerprint({"v": RENDER_VERSION, "index": index.fingerprint,
                           "preset": preset.model_dump(), "seed": cfg.seed, "tokens": cfg.max_input_tokens,
                           "tokenizer": cfg.tokenizer_path, "cands": cfg.max_candidates,
                           "style": cfg.instruction_style, "audit": cfg.audit.model_dump()})
        presets[preset.name] = (preset, fp)
        if not cfg.overwrite and is_finished(out / preset.name, fp):
            log.info("%s: finished output with the same fingerprint exists, skipping", preset.name)
        else:
            todo.append(preset.name)
    if todo:
        _build(cfg, out, shards, index, tasks, [presets[n] for n in todo], available_tables(timelines_dir,
                                                                                            index.tables))
    summaries = {}
    for name in presets:
        summaries[name] = json.loads((out / name / "summary.json").read_text())
        print(format_summary(summaries[name]), flush=True)
    atomic_write_text(out / "summary.json", json.dumps(summaries, indent=2))
    return summaries


def _build(cfg, out: Path, shards, index: IndexParts, tasks: list[str], todo: list, have: set[str]) -> None:
    """Statistics, selection, rendering and writing of the datasets in ``todo`` (``(preset, fingerprint)``)."""
    specs = [preset_spec(preset, tasks) for preset, _ in todo]
    stats = collect_stats(cfg, index.parts, specs, tasks)
    notes = explain_missing(tasks, have, stats["all"])
    for task, note in notes.items():
        log.warning("task %s %s", task, note)
    live = [t for t in tasks if t not in notes]
    pools, caps = {}, {}
    for preset, _ in todo:
        counts = stats["datasets"][preset.name]["pools"]
        pools[preset.name] = {t: counts[t] for t in live if counts[t]}
        caps[preset.name] = {t: preset.sampling_for(t)[0] for t in pools[preset.name]}
    plans, k_of_group = selection_plan(specs, stats, caps)
    chosen = select_streaming(cfg, index.parts, plans, k_of_group)
    for preset, _ in todo:
        frame = chosen[preset.name]
        log.info("%s: %d samples selected over %d tasks from the %s split", preset.name, len(frame),
                 frame["task"].nunique(), preset.split)
    # the selection leaves the driver here: one file per timeline shard, read by that shard's render task only
    work = out / "_work"
    for scratch in ("selected", "rendered"):
        shutil.rmtree(work / scratch, ignore_errors=True)
    selection = selection_table([(preset.name, chosen[preset.name]) for preset, _ in todo])
    del chosen
    selected = write_shard_selections(selection, [str(p) for p in shards], work / "selected")
    del selection
    vocab = {t: vocabulary_from_counts(*stats["vocab"][t]) for t in live if t in stats["vocab"]}
    for preset, _ in todo:  # leftovers of an interrupted run (never a finished dataset: those are renamed into place)
        for stale in [*out.glob(f".{preset.name}.tmp-*"), *out.glob(f".{preset.name}.old-*")]:
            shutil.rmtree(stale, ignore_errors=True)
    writers = {preset.name: DatasetWriter(out, preset.name) for preset, _ in todo}
    options = {preset.name: {"truncate": preset.truncate, "min_context": preset.min_context_events}
               for preset, _ in todo}
    try:
        results = render_and_write(cfg, selected, vocab, writers, work / "rendered", options)
        check_leaks(cfg, results)
        for preset, fp in todo:
            writers[preset.name].commit(_summary(preset.name, preset, pools[preset.name], notes,
                                                 results[preset.name], tasks), fp)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for scratch in ("selected", "rendered"):  # scratch of this run only: the datasets are committed
        shutil.rmtree(work / scratch, ignore_errors=True)


def check_leaks(cfg, results: dict[str, dict]) -> None:
    """Print the audit's per-task table; stop the build when samples leak (unless ``audit.allow_leaks``)."""
    if not cfg.audit.enabled:
        return
    leaking = {name: st["leaking"] for name, st in results.items()}
    for name, st in results.items():
        rows = [f"  {task:<26} {st['samples'][task]:>8} {st['leaking'][task]:>8}"
                for task in sorted(set(st["samples"]) | set(st["leaking"]))]
        print(f"leakage audit of {name}: {sum(st['leaking'].values())} leaking of {sum(st['samples'].values())} "
              f"samples\n  {'task':<26} {'samples':>8} {'leaking':>8}\n" + "\n".join(rows), flush=True)
    total = sum(sum(c.values()) for c in leaking.values())
    if total and not cfg.audit.allow_leaks:
        examples = [e for st in results.values() for e in st["leak_examples"]][:5]
        raise LeakageError(
            f"{total} exported samples leak information not available at their prediction time "
            f"({', '.join(f'{n}: {dict(c)}' for n, c in leaking.items() if c)}); e.g. "
            + "; ".join(f"{t} idx {i}: {why}" for t, i, why in examples)
            + ". Nothing was committed. Keep leakage_rules on, or set audit.allow_leaks=true to write them anyway.")
    if total:
        log.warning("%d leaking samples written (audit.allow_leaks=true)", total)


def render_and_write(cfg, selected: dict[str, str], vocab, writers: dict[str, DatasetWriter], folder: Path,
                     options: dict[str, dict] | None = None) -> dict:
    """Render the selected samples on an actor pool and stream them to ``writers`` (one per dataset).

    ``selected`` maps each timeline shard with selected rows to its selection file (:mod:`shards`), in shard
    order; every actor writes its shard's samples to a part under ``folder`` and the driver exports the parts
    in shard order while the others render, so a re-run writes the same files byte for byte.
    """
    import ray

    from data_pipeline.datasets.shards import ShardRenderWorker

    folder.mkdir(parents=True, exist_ok=True)
    order = list(selected)
    items = [{"path": shard, "selection": sel, "out": str(folder / f"{Path(shard).stem}.parquet")}
             for shard, sel in selected.items()]
    stats = {name: empty_export_stats() for name in writers}
    t0, n, writing = time.time(), 0, 0.0
    if items:
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            ShardRenderWorker, batch_format="pyarrow", batch_size=1, num_cpus=cfg.worker_cpus,
            # one shard in flight per actor: with a few large shards, queueing several on the first actor that
            # starts would leave the others idle
            compute=ray.data.ActorPoolStrategy(size=min(cfg.num_workers, len(items)),
                                               max_tasks_in_flight_per_actor=1),
            fn_constructor_kwargs={"vocabularies": [ray.put(vocab)], "max_input_tokens": cfg.max_input_tokens,
                                   "tokenizer_path": cfg.tokenizer_path, "seed": cfg.seed,
                                   "max_candidates": cfg.max_candidates,
                                   "rules": cfg.leakage_rules.model_dump(),
                                   "instruction_style": cfg.instruction_style, "datasets": options or {},
                                   "audit": cfg.audit.enabled})
        done = ((r["shard"], r["path"]) for b in ds.iter_batches(batch_format="pyarrow", batch_size=None)
                for r in b.to_pylist())
        for part in in_order(done, order):  # shard order whatever order the actors finish in
            t_write = time.time()
            n += export_parts([part], writers, stats)
            writing += time.time() - t_write
            Path(part).unlink()  # exported: free the disk while the remaining shards render
            log.info("rendered %d samples (%.1f/s)", n, n / max(time.time() - t0, 1e-9))  # counts only, no text
    for st in stats.values():
        st["write_seconds"] = writing
    return stats


def _summary(name, preset, pools, notes, st, tasks) -> dict:
    from data_pipeline.tasks import all_tasks

    rows = []
    order = [t.name for t in all_tasks() if t.name in set(tasks) | set(pools) | set(st["samples"])]
    for task in order:
        risk = task in {t.name for t in all_tasks("risk_prediction")}
        rows.append({"task": task, "kind": "RP" if risk else "DM", "pool": int(pools.get(task, 0)),
                     "samples": st["samples"][task], "yes": st["yes"][task] if risk else None,
                     "no": st["no"][task] if risk else None, "too_long": st["too_long"][task],
                     "emptied": st["emptied"][task], "leaking": st["leaking"][task],
                     **({"note": notes[task]} if task in notes else
                        {"note": "not in this preset"} if not preset.includes(task) else {})})
    return {"dataset": name, "split": preset.split, "samples": sum(st["samples"].values()),
            "patients": len(st["patients"]), "leaking": sum(st["leaking"].values()),
            "preset": preset.model_dump(), "tasks": rows}
