"""Reading a UMLS release's RRF files at real size: peak memory per process and time, 1 M to 10 M+ rows.

Writes MRCONSO / MRSTY / MRREL in the release layout (every column, trailing ``|``, SUPPRESS flags N/O/E/Y, a few
non-English and accented strings), then measures, each in a fresh process:

* ``graph``: the driver building the relation graph from MRREL (two streamed passes, ``RelationGraph.from_mrrel``);
* ``vocab``: the driver building the vocabulary of a cohort's 5,000 item names (one streamed MRCONSO pass,
  ``UmlsVocabulary.from_rrf(names=...)``) and the preferred names of 2,000 CUIs;
* ``full`` (up to 2 M rows): the whole release's strings as Python dicts, what every concept actor and the driver
  built before (for comparison);
* ``actors``: 1, 2 and 4 Ray actors holding what the concept and path actors hold (the shared name -> CUI map and
  the relation graph from the object store); their unique memory (USS) each, which must not grow with their
  number or with the release.

    .venv/bin/python benchmarks/bench_umls_rrf.py --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    """This process's peak RSS (VmHWM): unlike ``ru_maxrss``, not inherited from the parent across exec (the
    parent held the generated release)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_rrf(path: Path, columns: dict[str, np.ndarray]) -> None:
    from pyarrow import csv

    table = pa.table({**{k: pa.array(v) for k, v in columns.items()}, "_": pa.array([""] * len(next(iter(
        columns.values()))))})
    csv.write_csv(table, path, csv.WriteOptions(include_header=False, delimiter="|", quoting_style="none"))


def write_release(out: Path, rows: int, seed: int = 0) -> dict:
    """MRCONSO and MRREL of ``rows`` rows each, MRSTY of one row per CUI, in the release's layout."""
    rng = np.random.default_rng(seed)
    n_cui = max(rows // 3, 10)
    cui_ids = np.arange(1, n_cui + 1)
    cui = np.char.add("C", np.char.zfill(cui_ids.astype(str), 7))
    of = rng.integers(0, n_cui, rows)
    words = np.array(["acute", "chronic", "renal", "failure", "sodium", "glucose", "serum", "tablet", "oral",
                      "mg", "infection", "Ménière", "syndrome", "level", "blood"])
    strs = np.char.add(np.char.add(words[rng.integers(0, len(words), rows)], " "),
                       np.char.add(words[rng.integers(0, len(words), rows)], np.char.add(" ", of.astype(str))))
    n = np.arange(rows).astype(str)
    flag = lambda p: rng.choice(np.array(["N", "O", "E", "Y"]), rows, p=p)  # noqa: E731
    conso = {"CUI": cui[of], "LAT": rng.choice(np.array(["ENG", "SPA", "FRE"]), rows, p=[0.9, 0.05, 0.05]),
             "TS": rng.choice(np.array(["P", "S"]), rows), "LUI": np.char.add("L", n), "STT": rng.choice(
                 np.array(["PF", "VO"]), rows), "SUI": np.char.add("S", n), "ISPREF": rng.choice(np.array(["Y", "N"]),
                                                                                              rows),
             "AUI": np.char.add("A", n), "SAUI": np.full(rows, ""), "SCUI": n, "SDUI": np.full(rows, ""),
             "SAB": rng.choice(np.array(["SNOMEDCT_US", "RXNORM", "LNC", "MSH"]), rows), "TTY": np.full(rows, "PT"),
             "CODE": n, "STR": strs, "SRL": np.full(rows, "0"), "SUPPRESS": flag([0.94, 0.02, 0.02, 0.02]),
             "CVF": np.full(rows, "")}
    _write_rrf(out / "MRCONSO.RRF", conso)
    _write_rrf(out / "MRSTY.RRF", {"CUI": cui, "TUI": np.full(n_cui, "T047"), "STN": np.full(n_cui, "B2.2.1.2.1"),
                                   "STY": np.full(n_cui, "Disease or Syndrome"), "ATUI": np.char.add("AT", cui),
                                   "CVF": np.full(n_cui, "")})
    a, b = rng.integers(0, n_cui, rows), rng.integers(0, n_cui, rows)
    rela = np.array(["isa", "inverse_isa", "may_treat", "has_finding_site", "", "concept_in_subset",
                     "has_ingredient"])
    rel = {"CUI1": cui[a], "AUI1": np.full(rows, ""), "STYPE1": np.full(rows, "CUI"),
           "REL": rng.choice(np.array(["RO", "RB", "RN", "PAR", "CHD"]), rows), "CUI2": cui[b],
           "AUI2": np.full(rows, ""), "STYPE2": np.full(rows, "CUI"), "RELA": rela[rng.integers(0, len(rela), rows)],
           "RUI": np.char.add("R", n), "SRUI": np.full(rows, ""), "SAB": np.full(rows, "SNOMEDCT_US"),
           "SL": np.full(rows, "SNOMEDCT_US"), "RG": np.full(rows, ""), "DIR": np.full(rows, "Y"),
           "SUPPRESS": flag([0.9, 0.04, 0.03, 0.03]), "CVF": np.full(rows, "")}
    _write_rrf(out / "MRREL.RRF", rel)
    # a cohort's item names: strings of the release in other case and spacing (normalised matches), and misses
    pick = rng.choice(rows, 4000, replace=False)
    names = [s.upper() if k % 2 else f"  {s} " for k, s in enumerate(strs[pick].tolist())]
    names += [f"made up item {k}" for k in range(1000)]
    (out / "names.json").write_text(json.dumps({"names": names, "cuis": cui[rng.choice(n_cui, 2000)].tolist()}))
    return {"mb": round(sum(p.stat().st_size for p in out.glob("*.RRF")) / 2**20)}


def measure_graph(umls: Path) -> dict:
    from data_pipeline.thinking_graph.paths import RelationGraph

    base, t0 = _peak_mb(), time.perf_counter()
    g = RelationGraph.from_mrrel(umls)
    return {"seconds": round(time.perf_counter() - t0, 1), "driver_peak_mb": round(_peak_mb()),
            "driver_growth_mb": round(_peak_mb() - base), "nodes": g.num_nodes, "edges": g.num_edges,
            "graph_mb": round((g.array_bytes() + g.cuis.nbytes) / 2**20)}


def measure_vocab(umls: Path) -> dict:
    from data_pipeline.thinking_graph.umls import UmlsVocabulary, preferred_names

    spec = json.loads((umls / "names.json").read_text())
    base, t0 = _peak_mb(), time.perf_counter()
    vocab = UmlsVocabulary.from_rrf(umls, names=spec["names"])
    found = sum(vocab.lookup(n) is not None for n in spec["names"])
    pref = preferred_names(umls, spec["cuis"])
    return {"seconds": round(time.perf_counter() - t0, 1), "driver_peak_mb": round(_peak_mb()),
            "driver_growth_mb": round(_peak_mb() - base), "names": len(spec["names"]), "found": found,
            "preferred": len(pref)}


def measure_full_vocab(umls: Path) -> dict:
    """What every concept actor and the driver held before: the whole release's strings as Python dicts."""
    from data_pipeline.thinking_graph.umls import UmlsVocabulary

    base, t0 = _peak_mb(), time.perf_counter()
    vocab = UmlsVocabulary.from_rrf(umls)
    return {"seconds": round(time.perf_counter() - t0, 1), "growth_mb": round(_peak_mb() - base),
            "strings": len(vocab.exact)}


def measure_actors(umls: Path) -> dict:
    import psutil
    import ray

    from data_pipeline.thinking_graph.paths import RelationGraph
    from data_pipeline.thinking_graph.umls import UmlsVocabulary

    spec = json.loads((umls / "names.json").read_text())
    vocab = UmlsVocabulary.from_rrf(umls, names=spec["names"])
    name_map = {n: c for n in spec["names"] if (c := vocab.lookup(n)) is not None}
    graph = RelationGraph.from_mrrel(umls)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    refs = [ray.put(name_map)], [ray.put(graph)]

    @ray.remote(num_cpus=0)
    class Holder:
        def __init__(self, names, graph):
            from data_pipeline.thinking_graph.concepts import NameMap

            self.names = NameMap(ray.get(names[0]))
            self.graph = ray.get(graph[0])
            self.graph.fwd_dst.sum(), self.graph.bwd_src.sum()  # touch the shared arrays

        def memory(self) -> dict:
            info = psutil.Process().memory_full_info()
            return {"uss": info.uss / 2**20, "rss": info.rss / 2**20}

    out = {}
    for k in (1, 2, 4):
        actors = [Holder.remote(*refs) for _ in range(k)]
        mem = ray.get([a.memory.remote() for a in actors])
        out[f"actor_uss_mb_x{k}"] = round(max(m["uss"] for m in mem))
        for a in actors:
            ray.kill(a)
    ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        what, umls = args.one
        print("RESULT " + json.dumps({"graph": measure_graph, "vocab": measure_vocab,
                                      "actors": measure_actors, "full": measure_full_vocab}[what](Path(umls))))
        return
    table = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            size = write_release(Path(tmp), rows)
            row = {"rows": rows, "rrf_mb": size["mb"], "write_s": round(time.perf_counter() - t0, 1)}
            for what in ("graph", "vocab", "actors") + (("full",) if rows <= 2_000_000 else ()):
                res = subprocess.run([sys.executable, __file__, "--one", what, tmp], capture_output=True, text=True)
                line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    sys.exit(f"{what} at {rows} rows failed:\n{res.stderr[-3000:]}")
                row.update({f"{what}_{k}" if what != "actors" else k: v for k, v in json.loads(line[7:]).items()})
            print(row, flush=True)
            table.append(row)
    keys = list(dict.fromkeys(k for r in table for k in r))
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in table:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
