"""timelines + EHR-Ins -> concepts -> co-occurrence lift -> UMLS paths -> stage-2 reasoning records, on Ray Data.

Stages (each writes under ``<output_dir>/_work/`` atomically with a fingerprint marker; a re-run skips a stage
whose marker matches):

1. **concepts**: Ray Data over the timeline shards, an actor pool with one QuickUMLS matcher per actor
   (:class:`concepts.ConceptWorker`), only the patients of the EHR-Ins samples; one row per patient.
2. **histories**: Ray Data over the per-patient concepts, with the sample metadata (provenance + labels, no
   text) shared through the object store: per sample the target keys and the history keys (what the prompt
   shows).
3. **lift**: per-block counts (:func:`cooccurrence.partial_counts`) summed by a Ray Data groupby; lift, support
   and threshold on the pair rows in parallel; top-k per target on the (small) survivors.
4. **paths**: the relation graph (CSR arrays, :mod:`paths`) put in the object store once; the distinct kept
   pairs searched by an actor pool; per-sample evidence written to ``_work/evidence``.
5. **records**: EHR-Ins records joined with their evidence; LLM-free (template) text, or chains written by an
   OpenAI-compatible endpoint (:mod:`synthesis`, resumable), filtered; written as one jsonl in ``idx`` order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from data_pipeline.thinking_graph.concepts import NON_CONCEPT_TASKS
from data_pipeline.thinking_graph.config import ThinkingGraphConfig
from data_pipeline.thinking_graph.stage_store import Stage, atomic_text

log = logging.getLogger(__name__)
VERSION = 2  # 2: cohort vocabulary, QuickUMLS fallback for item names, SUPPRESS filters
#: The kept (target, history) pairs of a task: counts and lift.
KEPT_SCHEMA = pa.schema([("task", pa.string()), ("a", pa.string()), ("b", pa.string()), ("n", pa.int64()),
                         ("lift", pa.float64())])


def _fp(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _files_key(paths) -> list:
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in map(Path, paths)]


def resolve_inputs(cfg: ThinkingGraphConfig) -> tuple[list[Path], Path, Path]:
    folder = Path(cfg.timelines_dir)
    if not any(folder.glob("part-*.parquet")) and (folder / "timelines").is_dir():
        folder = folder / "timelines"
    shards = sorted(folder.glob("part-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"timelines_dir={cfg.timelines_dir!r}: no part-*.parquet timeline shards; run "
                                "python -m ray_jobs.build_timelines first")
    ins = Path(cfg.ehr_ins_dir)
    records, prov = ins / "ehr_ins.parquet", ins / "provenance.parquet"
    for p in (records, prov):
        if not p.is_file():
            raise FileNotFoundError(f"ehr_ins_dir={cfg.ehr_ins_dir!r}: {p.name} missing; build EHR-Ins first "
                                    "(python -m ray_jobs.build_datasets)")
    check_training_split(ins / "summary.json")
    return shards, records, prov


def check_training_split(summary: Path) -> None:
    """Stage-2 records are training data: refuse a dataset built from the test split (EHR-Bench) or of unknown
    split, which would train on the benchmark's patients."""
    try:
        split = json.loads(summary.read_text()).get("split")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{summary}: cannot read the dataset's split ({exc}); point ehr_ins_dir at an EHR-Ins "
                         "folder written by python -m ray_jobs.build_datasets") from exc
    if split != "train":
        raise ValueError(f"{summary}: split is {split!r}, not 'train'; ehr_ins_dir must be the EHR-Ins (training) "
                         "dataset, never EHR-Bench")


def task_filter(cfg: ThinkingGraphConfig) -> list[str]:
    from data_pipeline.tasks import all_tasks, canonical_name

    dm = [t.name for t in all_tasks("decision_making") if t.name not in NON_CONCEPT_TASKS]
    return dm if cfg.tasks is None else [t for t in dict.fromkeys(canonical_name(x) for x in cfg.tasks) if t in dm]


def sample_table(records: Path, prov: Path, tasks: list[str]) -> pa.Table:
    """Sample metadata (no text): provenance columns + the labels, decision-making tasks with concept labels."""
    cols = ["idx", "task", "subject_id", "context_ids", "admissions_id", "last_discharge_id",
            "dropped_previous_discharge"]
    have = pq.read_schema(prov).names
    missing = [c for c in cols if c not in have]
    if missing:
        raise ValueError(f"{prov}: provenance lacks {missing}; rebuild EHR-Ins with this version")
    meta = pq.read_table(prov, columns=cols)
    meta = meta.filter(pc.is_in(meta["task"], pa.array(tasks)))
    hf = pq.read_table(records, columns=["idx", "task_info"])
    target = pc.struct_field(hf["task_info"], "target")
    pos = pc.index_in(meta["idx"], value_set=hf["idx"])
    if pos.null_count:
        raise ValueError(f"{prov}: {pos.null_count} provenance rows have no record in {records}; rebuild EHR-Ins")
    return meta.append_column("target", target.take(pos)).sort_by("idx")


def _ray_init(cfg: ThinkingGraphConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    address = cfg.ray.address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs = {"address": address}
    if address == "local" and cfg.ray.num_cpus:
        kwargs["num_cpus"] = cfg.ray.num_cpus
    ray.init(**kwargs)


def build(cfg: ThinkingGraphConfig) -> dict:
    """Run every stage (skipping finished ones); returns the summary also written to ``summary.json``."""
    import ray

    from data_pipeline.thinking_graph.matcher import build_index

    t_start = time.time()
    out = Path(cfg.output_dir).expanduser().resolve()
    work = out / "_work"
    work.mkdir(parents=True, exist_ok=True)
    shards, records, prov = resolve_inputs(cfg)
    _ray_init(cfg)
    umls_dir = Path(cfg.umls.path) if cfg.umls.path else None
    if umls_dir is None:
        from data_pipeline.thinking_graph.fake_umls import write_fake_umls

        umls_dir = work / "fake_umls"
        if not (umls_dir / "MRREL.RRF").is_file():
            write_fake_umls(umls_dir)
        log.warning("umls.path is unset: using the MADE-UP UMLS in %s (demo/test only)", umls_dir)
    settings = cfg.matcher.settings()
    cache = Path(cfg.umls.index_cache_dir or out / "_cache")
    index_dir = build_index(umls_dir, cache, settings)  # once, on the driver, before the actors start
    tasks = task_filter(cfg)
    samples = sample_table(records, prov, tasks)
    log.info("%d decision-making samples over %d tasks from %s", samples.num_rows,
             len(set(samples["task"].to_pylist())), records)
    umls_key = _files_key(sorted(umls_dir.glob("*.RRF")) + sorted((umls_dir / "META").glob("*.RRF")))
    base_fp = {"v": VERSION, "umls": umls_key, "matcher": cfg.matcher.model_dump(),
               "atoms": [cfg.umls.atom_suppress, cfg.umls.sources]}

    # 1. concepts ------------------------------------------------------------------------------------------------
    subjects = pc.unique(samples["subject_id"]).to_pylist()
    st_concepts = Stage(work, "concepts", _fp({**base_fp, "shards": _files_key(shards), "subjects": subjects}),
                        cfg.overwrite)
    if not st_concepts.done:
        from data_pipeline.thinking_graph.concepts import ConceptWorker

        t0 = time.time()

        def timelines():
            # reads reserve worker_cpus too: a 1-CPU read next to the actor pool (and a Serve replica on the same
            # small cluster) could never be scheduled
            ds = ray.data.read_parquet([str(s) for s in shards], columns=["subject_id", "events"],
                                       ray_remote_args={"num_cpus": cfg.worker_cpus})
            if len(shards) < 2 * cfg.num_workers:  # few shards (small cohorts): split them so every actor works
                ds = ds.repartition(2 * cfg.num_workers)
            return ds

        subjects_ref = ray.put(set(subjects))
        name_map = cohort_name_map(timelines(), subjects_ref, umls_dir, cache, cfg)
        ds = timelines().map_batches(
            ConceptWorker, batch_format="pyarrow", batch_size=8, num_cpus=cfg.worker_cpus,
            compute=ray.data.ActorPoolStrategy(size=cfg.num_workers),
            fn_constructor_kwargs={"umls_dir": str(umls_dir), "cache_dir": str(cache), "settings": settings,
                                   "text_fields": cfg.matcher.text_fields, "subjects": [subjects_ref],
                                   "names": [ray.put(name_map)], "name_fallback": cfg.matcher.item_name_fallback})
        st_concepts.write(ds)
        log.info("concepts: %d patients in %.1fs (index %s)", len(subjects), time.time() - t0, index_dir.name)

    # 2. histories -----------------------------------------------------------------------------------------------
    st_hist = Stage(work, "histories", _fp({"concepts": st_concepts.fp, "samples": _files_key([records, prov]),
                                            "tasks": tasks}), cfg.overwrite)
    if not st_hist.done:
        from data_pipeline.thinking_graph.cooccurrence import HISTORY_SCHEMA, sample_concepts
        from data_pipeline.tasks import get_task

        shows = {t: get_task(t).show_admission for t in tasks}
        by_subject = samples.sort_by([("subject_id", "ascending"), ("idx", "ascending")])
        samples_ref = ray.put(by_subject)

        def to_history(batch: pa.Table) -> pa.Table:
            # the samples of this block's patients: binary search in the shared, subject-sorted sample table
            import numpy as np

            table = ray.get(samples_ref)
            sids = table["subject_id"].to_numpy()
            rows = []
            for k, sid in enumerate(batch["subject_id"].to_pylist()):
                lo, hi = np.searchsorted(sids, sid, "left"), np.searchsorted(sids, sid, "right")
                if lo == hi:
                    continue
                concepts, names = batch["concepts"][k].as_py(), batch["names"][k].as_py()
                for r in table.slice(lo, hi - lo).to_pylist():
                    r.update(concepts=concepts, names=names)
                    rows.append(sample_concepts(r, shows[r["task"]]))
            return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)

        st_hist.write(st_concepts.read(columns=["subject_id", "concepts", "names"])
                      .map_batches(to_history, batch_format="pyarrow", batch_size=16))

    # 3. co-occurrence lift ----------------------------------------------------------------------------------------
    ev = cfg.evidence
    st_lift = Stage(work, "lift", _fp({"hist": st_hist.fp, "ev": ev.model_dump(exclude={"require_graph"})}),
                    cfg.overwrite)
    if not st_lift.done:
        st_lift.write_table(pa.Table.from_pandas(cooccurrence_lift(st_hist.read(), cfg), preserve_index=False,
                                                 schema=KEPT_SCHEMA))
    kept = pq.read_table(st_lift.dir).to_pandas()
    log.info("lift: %d (target, history) pairs kept over %d tasks", len(kept), kept["task"].nunique())

    # 4. paths + per-sample evidence -----------------------------------------------------------------------------
    st_ev = Stage(work, "evidence", _fp({"lift": st_lift.fp, "umls": umls_key, "rel": cfg.umls.model_dump()}),
                  cfg.overwrite)
    if not st_ev.done:
        st_ev.write(evidence_dataset(st_hist.read(), kept, umls_dir, cfg))

    # 5. records --------------------------------------------------------------------------------------------------
    from data_pipeline.thinking_graph.records import write_records

    summary = write_records(cfg, out, st_ev, records, tasks_of=samples.select(["idx", "task"]),
                            fingerprint=_fp({"ev": st_ev.fp, "syn": cfg.synthesis.model_dump(), "max": cfg.max_samples,
                                             "seed": cfg.seed, "req": ev.require_graph, "draw": "by-task"}))
    summary.update(samples=samples.num_rows, patients=len(subjects), kept_pairs=len(kept),
                   umls=str(umls_dir), seconds=round(time.time() - t_start, 1))
    atomic_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def cohort_name_map(timelines_ds, subjects_ref, umls_dir: Path, cache: Path,
                    cfg: ThinkingGraphConfig) -> dict[str, str]:
    """Item name -> CUI for the structured names the cohort's patients have: the names collected on Ray Data, the
    vocabulary built for them alone by one streamed MRCONSO pass (never a release-sized map per actor), then the
    reference's full-text search (an on-disk FTS5 index) for the names it misses; QuickUMLS's best match, in the
    actors, is the last fallback."""
    from data_pipeline.thinking_graph.concepts import names_of_batch
    from data_pipeline.thinking_graph.umls import UmlsVocabulary

    t0 = time.time()
    names_ds = timelines_ds.map_batches(names_of_batch, batch_format="pyarrow", batch_size=64,
                                        num_cpus=cfg.worker_cpus, fn_kwargs={"subjects": [subjects_ref]})
    names: set[str] = set()
    for batch in names_ds.iter_batches(batch_format="pyarrow", batch_size=None):
        names.update(batch.column("name").to_pylist())
    vocab = UmlsVocabulary.from_rrf(umls_dir, names=names, sources=cfg.umls.sources_tuple(),
                                    suppress=tuple(cfg.umls.atom_suppress))
    found = {n: c for n in names if (c := vocab.lookup(n)) is not None}
    by_text: dict[str, str] = {}
    if cfg.matcher.item_name_fallback and len(found) < len(names):
        from data_pipeline.thinking_graph.fulltext import build_fulltext_index, fulltext_lookup

        index = build_fulltext_index(umls_dir, cache, sources=cfg.umls.sources_tuple(),
                                     suppress=tuple(cfg.umls.atom_suppress))
        by_text = fulltext_lookup(index, sorted(set(names) - set(found)))
    log.info("item names: %d distinct in the cohort, %d found exactly or normalised, %d by full-text search; the "
             "other %d go to QuickUMLS's best match%s (%.1fs)", len(names), len(found), len(by_text),
             len(names) - len(found) - len(by_text), "" if cfg.matcher.item_name_fallback else " (off)",
             time.time() - t0)
    return {**found, **by_text}


def cooccurrence_lift(hist_ds, cfg: ThinkingGraphConfig) -> pd.DataFrame:
    """Distributed counts -> lift -> top-k: the kept pairs ``(task, a=target key, b=history key, n, lift)``."""
    import ray

    from data_pipeline.thinking_graph.cooccurrence import PAIR, counts_to_tables, lift_pairs, partial_counts, top_k

    t0 = time.time()
    counts = (hist_ds.map_batches(partial_counts, batch_format="pandas")
              .groupby(["task", "kind", "a", "b"], num_partitions=cfg.num_partitions).sum("n")
              .rename_columns({"sum(n)": "n"}))
    counts = counts.materialize()
    small = counts.filter(expr=f"kind != '{PAIR}'").to_pandas()
    task_num, concept_num, _ = counts_to_tables(small)
    ev = cfg.evidence
    ref = ray.put((concept_num, task_num))

    def lift_block(batch: pd.DataFrame) -> pd.DataFrame:
        cn, tn = ray.get(ref)
        return lift_pairs(batch, cn, tn, ev.min_support, ev.threshold)[["task", "a", "b", "n", "lift"]]

    survivors = counts.filter(expr=f"kind == '{PAIR}'").map_batches(lift_block, batch_format="pandas").to_pandas()
    if survivors.empty:
        survivors = pd.DataFrame({"task": [], "a": [], "b": [], "n": pd.Series([], dtype="int64"), "lift": []})
    kept = top_k(survivors, ev.top_k)
    log.info("co-occurrence: %d tasks, %d concept counts, %d pairs over the lift threshold, %d kept (%.1fs)",
             len(task_num), len(concept_num), len(survivors), len(kept), time.time() - t0)
    return kept.reset_index(drop=True)


def evidence_dataset(hist_ds, kept: pd.DataFrame, umls_dir: Path, cfg: ThinkingGraphConfig):
    """Per-sample evidence rows ``(idx, task, evidence json, n_paths)``: the kept pairs present in each sample's
    history, each with its shortest UMLS path (searched once per distinct pair by an actor pool)."""
    import ray

    from data_pipeline.thinking_graph.cooccurrence import sample_evidence
    from data_pipeline.thinking_graph.paths import RelationGraph
    from data_pipeline.thinking_graph.umls import preferred_names

    t0 = time.time()
    graph = RelationGraph.from_mrrel(umls_dir, tuple(cfg.umls.excluded_relations),
                                     suppress=tuple(cfg.umls.relation_suppress))
    log.info("relation graph: %d nodes, %d edges, %.1f MB of arrays (%.1fs)", graph.num_nodes, graph.num_edges,
             graph.array_bytes() / 2**20, time.time() - t0)
    pairs = kept[["b", "a"]].drop_duplicates()
    pairs = pairs[pairs["a"].str[0].ne("~") & pairs["b"].str[0].ne("~")]
    node_paths: dict[tuple[str, str], tuple[list[str], list[int]]] = {}
    if len(pairs):
        graph_ref = ray.put(graph)
        ds = ray.data.from_pandas(pairs.rename(columns={"b": "source", "a": "target"}).reset_index(drop=True))
        ds = ds.map_batches(PathWorker, batch_format="pandas", batch_size=256, num_cpus=cfg.worker_cpus,
                            compute=ray.data.ActorPoolStrategy(size=cfg.num_workers),
                            fn_constructor_kwargs={"graph": [graph_ref], "max_length": cfg.umls.max_path_length,
                                                   "max_nodes": cfg.umls.max_path_nodes})
        for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
            for s, t, nodes, labels in zip(batch["source"], batch["target"], batch["nodes"], batch["labels"]):
                if nodes is not None and len(nodes):
                    node_paths[(s, t)] = (list(nodes), [int(x) for x in labels])
    # preferred names of the CUIs on a path or kept as history concepts only: one streamed MRCONSO pass
    needed = {c for nodes, _ in node_paths.values() for c in nodes} | {k for k in kept["b"] if k[0] != "~"}
    pref = preferred_names(umls_dir, needed, sources=cfg.umls.sources_tuple(), suppress=tuple(cfg.umls.atom_suppress))
    found: dict[tuple[str, str], list[str]] = {}
    for key, (nodes, labels) in node_paths.items():
        path = [pref.get(nodes[0], nodes[0])]
        for lab, node in zip(labels, nodes[1:]):
            path += [graph.labels[lab], pref.get(node, node)]
        found[key] = path
    log.info("paths: %d of %d distinct pairs connected (%.1fs)", len(found), len(pairs), time.time() - t0)
    by_target: dict[tuple[str, str], list[tuple[str, float, int]]] = {}
    for task, a, b, n, lift in zip(kept["task"], kept["a"], kept["b"], kept["n"], kept["lift"]):
        by_target.setdefault((task, a), []).append((b, float(lift), int(n)))
    names = {k: (pref.get(k, k) if not k.startswith("~") else k[1:]) for k in set(kept["b"])}
    ref = ray.put((by_target, found, names))
    schema = pa.schema([("idx", pa.int64()), ("task", pa.string()), ("evidence", pa.string()),
                        ("n_paths", pa.int64())])

    def attach(batch: pa.Table) -> pa.Table:
        bt, paths, nm = ray.get(ref)
        rows = []
        for r in batch.to_pylist():
            items = sample_evidence(r["task"], r["targets"], r["target_labels"], r["history"], bt)
            for e in items:
                e["history_name"] = nm.get(e["history_key"], e["history_key"])
                e["path"] = paths.get((e["history_key"], e["target_key"]))
            rows.append({"idx": r["idx"], "task": r["task"], "evidence": json.dumps(items, ensure_ascii=False),
                         "n_paths": sum(1 for e in items if e["path"])})
        return pa.Table.from_pylist(rows, schema=schema)

    return hist_ds.map_batches(attach, batch_format="pyarrow")


class PathWorker:
    """Ray Data UDF: shortest paths for rows ``(source, target)`` (CUIs) over the shared graph."""

    def __init__(self, graph, max_length: int, max_nodes: int):
        import ray

        from data_pipeline.thinking_graph.paths import PathSearcher

        g = ray.get(graph[0]) if isinstance(graph, list) else graph
        self.g = g
        self.search = PathSearcher(g, max_length, max_nodes)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        nodes, labels = [], []
        for s, t in zip(batch["source"], batch["target"]):
            si, ti = self.g.node(s), self.g.node(t)
            res = self.search.node_path(si, ti) if si is not None and ti is not None else None
            nodes.append([self.g.cui(i) for i in res[0]] if res else [])
            labels.append(list(res[1]) if res else [])
        return batch.assign(nodes=nodes, labels=labels)
