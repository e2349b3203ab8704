"""Thinking-graph benchmark: concept extraction, co-occurrence aggregation, path search. Prints a table.

    .venv/bin/python benchmarks/bench_thinking_graph.py --timelines /tmp/ehr_r1/datasets_demo/timelines \
        --histories /tmp/ehr_r1/thinking_graph_demo/_work/histories

* concepts/s per worker: one :class:`ConceptExtractor` (QuickUMLS on the made-up UMLS) over the synthetic
  cohort's notes (admission_info, radiology, discharge) and, separately, its structured events; then the Ray Data
  actor pool of the job with 1 and 2 workers over the same shards (wall time, speed-up).
* co-occurrence aggregation: the job's distributed counts -> lift -> top-k over the sample histories, replicated
  ``--replicate`` times (more samples, same concepts).
* path search at 1M and 10M synthetic edges (random graph, 10 edges per node, relation labels): graph build time,
  adjacency memory, queries/s of the CSR bidirectional search; the anchor is the reference's per-pair search
  (MRREL in in-memory SQLite, a Python bidirectional BFS issuing one query per expanded node, CUI strings).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_concepts(timelines: Path, umls_dir: Path, cache: Path) -> tuple[list[tuple[str, str]], list[Path], int]:
    import pyarrow.parquet as pq

    from data_pipeline.events import PatientTimeline
    from data_pipeline.thinking_graph.concepts import ConceptExtractor
    from data_pipeline.thinking_graph.matcher import build_index, load_matcher
    from data_pipeline.thinking_graph.umls import UmlsVocabulary

    shards = sorted(timelines.glob("part-*.parquet")) or sorted((timelines / "timelines").glob("part-*.parquet"))
    tls = [PatientTimeline.from_row(r) for s in shards for r in pq.read_table(s).to_pylist()]
    matcher = load_matcher(build_index(umls_dir, cache))
    ex = ConceptExtractor(UmlsVocabulary.from_rrf(umls_dir), matcher)
    notes = [e for tl in tls for e in tl.events if e.file_name in ex.text_fields]
    structured = [e for tl in tls for e in tl.events if e.file_name not in ex.text_fields]
    rows = []
    for name, events in (("notes", notes), ("structured events", structured)):
        t0 = time.perf_counter()
        n = sum(len(ex.event_concepts(e)[0]) for e in events)
        dt = time.perf_counter() - t0
        chars = sum(len(r.get(f, "")) for e in events for r in e.items for f in ex.text_fields.get(e.file_name, ()))
        rows.append((f"concepts/s, 1 worker, {name}",
                     f"{n / dt:,.0f} ({n:,} concepts from {len(events):,} events"
                     + (f", {chars / dt / 1e3:,.0f} k chars/s" if chars else "") + f", {dt:.1f} s)"))
    return rows, shards, len(tls)


def bench_actor_pool(shards: list[Path], umls_dir: Path, cache: Path, n_patients: int) -> list[tuple[str, str]]:
    import ray

    from data_pipeline.thinking_graph.concepts import ConceptWorker
    from data_pipeline.thinking_graph.matcher import MatcherSettings

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows, times = [], {}
    for workers in (1, 2):
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            ds = ray.data.read_parquet([str(s) for s in shards], columns=["subject_id", "events"],
                                       ray_remote_args={"num_cpus": 0.1}).repartition(8)
            ds = ds.map_batches(ConceptWorker, batch_format="pyarrow", batch_size=8, num_cpus=0.5,
                                compute=ray.data.ActorPoolStrategy(size=workers),
                                fn_constructor_kwargs={"umls_dir": str(umls_dir), "cache_dir": str(cache),
                                                       "settings": MatcherSettings(), "text_fields": None})
            ds.count()  # runs the whole job
            best = min(best, time.perf_counter() - t0)
        times[workers] = best
        rows.append((f"concept job, {workers} actor(s), {n_patients} patients", f"{best:.1f} s wall "
                     f"({n_patients / best:.1f} patients/s, incl. actor start-up)"))
    rows.append(("concept job speed-up 1 -> 2 actors", f"{times[1] / times[2]:.2f}x"))
    ray.shutdown()
    return rows


def bench_cooccurrence(histories: Path, replicate: int) -> list[tuple[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from data_pipeline.thinking_graph.config import ThinkingGraphConfig
    from data_pipeline.thinking_graph.pipeline import cooccurrence_lift

    table = pq.read_table(histories)
    big = pa.concat_tables([table] * replicate)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    cfg = ThinkingGraphConfig(timelines_dir=".", ehr_ins_dir=".", output_dir=".", num_partitions=2,
                              evidence={"min_support": 5, "threshold": 5.0, "top_k": 20})
    ds = ray.data.from_arrow(big).repartition(4).materialize()
    t0 = time.perf_counter()
    kept = cooccurrence_lift(ds, cfg)
    dt = time.perf_counter() - t0
    ray.shutdown()
    return [(f"co-occurrence counts -> lift -> top-k, {big.num_rows:,} samples",
             f"{dt:.1f} s ({big.num_rows / dt:,.0f} samples/s, {len(kept):,} pairs kept)")]


def random_graph(n_edges: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_nodes = n_edges // 10
    src = rng.integers(0, n_nodes, n_edges)
    dst = rng.integers(0, n_nodes, n_edges)
    lab = rng.integers(0, 40, n_edges)
    return n_nodes, src, dst, lab


def reference_search(conn, start: str, end: str, max_length: int = 10, max_nodes: int = 2000):
    """The reference's shape: per expanded node one SQLite query on MRREL, dict parents keyed by CUI strings."""
    if start == end:
        return [start]
    par_f, par_b = {start: None}, {end: None}
    q_f, q_b = deque([start]), deque([end])
    depth = 0
    while q_f and q_b and depth < max_length and len(par_f) + len(par_b) < max_nodes:
        forward = len(q_f) <= len(q_b)
        q, par, other = (q_f, par_f, par_b) if forward else (q_b, par_b, par_f)
        sql = ("SELECT CUI1, RELA FROM MRREL WHERE CUI2 = ?" if forward else
               "SELECT CUI2, RELA FROM MRREL WHERE CUI1 = ?")
        for _ in range(len(q)):
            u = q.popleft()
            for v, rela in conn.execute(sql, (u,)):
                if v not in par:
                    par[v] = (u, rela)
                    if v in other:
                        return v
                    q.append(v)
        depth += 1
    return None


def bench_paths(n_edges: int, queries: int, anchor: bool) -> list[tuple[str, str]]:
    from data_pipeline.thinking_graph.paths import PathSearcher, RelationGraph

    gc.collect()
    warm = RelationGraph.from_edges(np.array([0]), np.array([1]), np.array([0]), np.array(["a", "b"], object), ["r"])
    PathSearcher(warm).node_path(0, 1)  # numba import + JIT outside the memory and time figures
    n_nodes, src, dst, lab = random_graph(n_edges)
    cuis = np.array([f"C{i:07d}" for i in range(n_nodes)], dtype=object)
    before = rss_mb()
    t0 = time.perf_counter()
    g = RelationGraph.from_edges(src, dst, lab, cuis, [f"rel{i}" for i in range(40)])
    build = time.perf_counter() - t0
    searcher = PathSearcher(g)
    rng = random.Random(1)
    pairs = [(rng.randrange(n_nodes), rng.randrange(n_nodes)) for _ in range(queries)]
    t0 = time.perf_counter()
    found = sum(searcher.node_path(s, t) is not None for s, t in pairs)
    dt = time.perf_counter() - t0
    label = f"{n_edges / 1e6:g}M edges"
    rows = [(f"graph build, {label} ({n_nodes:,} nodes)", f"{build:.1f} s"),
            (f"graph memory, {label}", f"{g.array_bytes() / 2**20:,.0f} MB adjacency arrays "
                                       f"(+{rss_mb() - before:,.0f} MB RSS incl. CUI strings, scratch)"),
            (f"path queries/s, {label} (CSR bidirectional)", f"{queries / dt:,.0f} ({found}/{queries} found)")]
    if anchor:
        with tempfile.TemporaryDirectory() as tmp:
            before = rss_mb()
            conn = sqlite3.connect(os.path.join(tmp, "mrrel.db") if n_edges > 2_000_000 else ":memory:")
            conn.execute("CREATE TABLE MRREL (CUI1 TEXT, CUI2 TEXT, RELA TEXT)")
            t0 = time.perf_counter()
            conn.executemany("INSERT INTO MRREL VALUES (?, ?, ?)",
                             ((cuis[d], cuis[s], f"rel{r}") for s, d, r in zip(src.tolist(), dst.tolist(),
                                                                               lab.tolist())))
            conn.execute("CREATE INDEX i1 ON MRREL (CUI1)")
            conn.execute("CREATE INDEX i2 ON MRREL (CUI2)")
            conn.commit()
            build_ref = time.perf_counter() - t0
            mem = rss_mb() - before
            n_ref = max(queries // 10, 20)
            t0 = time.perf_counter()
            ref_found = sum(reference_search(conn, cuis[s], cuis[t]) is not None for s, t in pairs[:n_ref])
            dt_ref = time.perf_counter() - t0
            conn.close()
        rows += [(f"anchor (reference-style SQLite BFS), {label}",
                  f"{n_ref / dt_ref:,.0f} queries/s ({ref_found}/{n_ref} found), load+index {build_ref:.0f} s, "
                  f"+{mem:,.0f} MB RSS" + (" (on-disk db)" if n_edges > 2_000_000 else ""))]
    del g, searcher
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timelines", type=Path, help="timeline shards of the synthetic cohort")
    ap.add_argument("--histories", type=Path, help="_work/histories of a thinking-graph run")
    ap.add_argument("--replicate", type=int, default=20)
    ap.add_argument("--edges", type=float, nargs="*", default=[1e6, 1e7])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--no-anchor", action="store_true")
    args = ap.parse_args()
    from data_pipeline.thinking_graph.fake_umls import write_fake_umls

    rows: list[tuple[str, str]] = []

    def add(found: list[tuple[str, str]]) -> None:
        for k, v in found:
            print(f"[result] {k}: {v}", flush=True)
        rows.extend(found)

    for n in args.edges:
        add(bench_paths(int(n), args.queries, not args.no_anchor))
    if args.histories:
        add(bench_cooccurrence(args.histories, args.replicate))
    with tempfile.TemporaryDirectory() as tmp:
        umls_dir, cache = write_fake_umls(Path(tmp) / "umls"), Path(tmp) / "cache"
        if args.timelines:
            found, shards, n = bench_concepts(args.timelines, umls_dir, cache)
            add(found)
            add(bench_actor_pool(shards, umls_dir, cache, n))
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure':<{width}}  result\n{'-' * width}  {'-' * 40}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
