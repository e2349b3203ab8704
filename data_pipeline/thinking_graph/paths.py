"""The UMLS relation graph as integer arrays (CSR) and a bidirectional breadth-first shortest-path search.

The reference keeps MRREL in SQLite and searches each pair with dicts of CUI strings. Here the graph is built
once from MRREL into numpy arrays: node ids (int32), forward and backward CSR adjacency (int64 offsets, int32
targets, int16 relation labels), about 12 bytes per edge, so the real MRREL (tens of millions of edges) fits in a
few hundred MB and can be shared zero-copy through the Ray object store. The search is a numba kernel over
those arrays with reusable per-worker scratch (no per-query allocation of graph-sized arrays).

Semantics (UMLS): an MRREL row ``CUI1|REL|CUI2|RELA`` says "CUI2 RELA CUI1", so it is stored as the edge
CUI2 -> CUI1 labelled RELA and a path reads left to right as statements: ``[A, "may treat", B, "isa", C]``.
Rows whose RELA is in the exclusion list (the reference's: subset membership and contraindications) and
self-loops are dropped. The search returns one shortest path (ties broken by the lowest node ids, so results
are deterministic) of at most ``max_length`` edges, giving up after ``max_nodes`` visited nodes (the reference's
limits: 10 and 2000).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # numba is a core dependency (the timeline builder's kernels); the pure-python fallback keeps tests honest
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        return (lambda f: f) if not args or not callable(args[0]) else args[0]

#: The reference's relation exclusions (compared after :func:`relation_key`).
REFERENCE_EXCLUDED_RELATIONS = ("subset includes concept", "concept in subset", "Has contraindicated drug",
                                "Contraindicated with disease")


def relation_key(name: str) -> str:
    """``Has_contraindicated_drug`` and ``has contraindicated drug`` compare equal."""
    return " ".join(str(name).replace("_", " ").lower().split())


@dataclass
class RelationGraph:
    """Directed labelled graph in CSR form (forward and backward), node ids = positions in ``cuis``."""

    cuis: np.ndarray            # sorted fixed-width bytes (id -> CUI): 8 bytes a node, shared zero-copy
    labels: list[str]           # label id -> relation text
    fwd_ptr: np.ndarray
    fwd_dst: np.ndarray
    fwd_lab: np.ndarray
    bwd_ptr: np.ndarray
    bwd_src: np.ndarray
    bwd_lab: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.cuis)

    @property
    def num_edges(self) -> int:
        return len(self.fwd_dst)

    def array_bytes(self) -> int:
        """Bytes of the adjacency arrays (what the search touches; the CUI strings are extra)."""
        return sum(a.nbytes for a in (self.fwd_ptr, self.fwd_dst, self.fwd_lab, self.bwd_ptr, self.bwd_src,
                                      self.bwd_lab))

    def node(self, cui: str) -> int | None:
        """The node id of ``cui`` (a binary search in the sorted CUIs), None if it has no relation."""
        key = str(cui).encode()
        if len(key) > self.cuis.dtype.itemsize:
            return None
        i = int(np.searchsorted(self.cuis, key))
        return i if i < len(self.cuis) and self.cuis[i] == key else None

    def cui(self, node: int) -> str:
        return self.cuis[node].decode()

    @classmethod
    def from_edges(cls, src: np.ndarray, dst: np.ndarray, lab: np.ndarray, cuis: np.ndarray,
                   labels: list[str]) -> "RelationGraph":
        """Build from integer edge arrays (duplicates of (src, dst) keep the lowest label id); ``cuis`` in any
        order (node ids follow the sorted CUIs)."""
        n = len(cuis)
        # int32 ids and one int64 sort key: ~30 bytes an edge at the peak (a release's MRREL has tens of millions)
        src, dst, lab = (np.asarray(src, np.int32), np.asarray(dst, np.int32), np.asarray(lab, np.int16))
        cuis = np.asarray(cuis).astype("S") if n else np.zeros(0, "S1")
        order = np.argsort(cuis, kind="stable")
        if n and (order != np.arange(n)).any():
            rank = np.empty(n, np.int32)
            rank[order] = np.arange(n, dtype=np.int32)
            cuis, src, dst = cuis[order], rank[src], rank[dst]
        del order
        keep = src != dst
        src, dst, lab = src[keep], dst[keep], lab[keep]
        del keep
        order = np.lexsort((lab, (src.astype(np.int64) << 32) | dst))
        src, dst, lab = src[order], dst[order], lab[order]
        del order
        if len(src):
            first = np.ones(len(src), bool)
            first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
            src, dst, lab = src[first], dst[first], lab[first]
            del first
        fwd_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=fwd_ptr[1:])
        border = np.lexsort((lab, (dst.astype(np.int64) << 32) | src))
        bwd_ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(dst, minlength=n), out=bwd_ptr[1:])
        return cls(cuis, list(labels), fwd_ptr, dst, lab, bwd_ptr, src[border], lab[border])

    @classmethod
    def from_mrrel(cls, umls_dir: str | Path,
                   excluded_relations: tuple[str, ...] = REFERENCE_EXCLUDED_RELATIONS,
                   suppress: tuple[str, ...] | None = None, block_bytes: int = 4 << 20) -> "RelationGraph":
        """Two streamed passes over MRREL (bounded memory whatever its size): the distinct CUIs, then the edges as
        integer ids (a binary search per block). Rows whose SUPPRESS flag is not in ``suppress`` are left out."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from data_pipeline.thinking_graph.umls import (DEFAULT_SUPPRESS, MRREL_COLUMNS, iter_rrf, relation_label,
                                                       rrf_path)

        path = rrf_path(umls_dir, "MRREL")
        keep_cols = ["CUI1", "REL", "CUI2", "RELA", "SUPPRESS"]
        allowed = pa.array(list(suppress if suppress is not None else DEFAULT_SUPPRESS))

        def blocks():
            for batch in iter_rrf(path, MRREL_COLUMNS, keep_cols, block_bytes):
                yield batch.filter(pc.is_in(batch["SUPPRESS"], value_set=allowed))

        uniques = []
        for batch in blocks():
            uniques.append(np.unique(np.asarray(pc.unique(pa.concat_arrays(
                [batch["CUI1"], batch["CUI2"]])).to_numpy(zero_copy_only=False)).astype("S")))
        cuis = np.unique(np.concatenate(uniques)) if uniques else np.zeros(0, "S1")
        del uniques
        excluded = {relation_key(x) for x in excluded_relations}
        kinds: dict[str, int] = {}       # "REL|RELA" -> kind id, in first-seen order
        src_parts, dst_parts, kind_parts = [], [], []
        for batch in blocks():
            combo = pc.binary_join_element_wise(batch["REL"], batch["RELA"], "|").dictionary_encode()
            local = [kinds.setdefault(k, len(kinds)) for k in combo.dictionary.to_pylist()]
            kind_parts.append(np.asarray(local, np.int32)[combo.indices.to_numpy(zero_copy_only=False)])
            for col, out in (("CUI2", src_parts), ("CUI1", dst_parts)):
                ids = np.asarray(batch[col].to_numpy(zero_copy_only=False)).astype(cuis.dtype)
                out.append(np.searchsorted(cuis, ids).astype(np.int32))
        names = [relation_label(*k.split("|", 1)) for k in kinds]
        label_ids = sorted(set(names))
        lab_of_kind = np.array([label_ids.index(nm) if relation_key(nm) not in excluded else -1 for nm in names]
                               or [0], np.int32)
        cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt))
        lab = lab_of_kind[cat(kind_parts, np.int32)]
        src, dst = cat(src_parts, np.int32), cat(dst_parts, np.int32)
        keep = lab >= 0
        return cls.from_edges(src[keep], dst[keep], lab[keep], cuis, label_ids)


@njit(cache=True)
def _bidirectional(fp, fd, fl, bp, bs, bl, s, t, max_length, max_nodes, stamp, mark_f, mark_b, dist_f, dist_b,
                   par_f, par_b, lab_f, lab_b, q_f, q_b):
    """Shortest s -> t path length and the meeting node (-1, -1 if none within the limits)."""
    if s == t:
        return 0, s
    mark_f[s] = stamp
    mark_b[t] = stamp
    dist_f[s] = 0
    dist_b[t] = 0
    par_f[s] = -1
    par_b[t] = -1
    q_f[0] = s
    q_b[0] = t
    f_lo, f_hi, b_lo, b_hi = 0, 1, 0, 1
    depth_f, depth_b = 0, 0
    visited = 2
    while f_lo < f_hi and b_lo < b_hi and depth_f + depth_b < max_length:
        best, meet = 1 << 30, -1
        if f_hi - f_lo <= b_hi - b_lo:  # expand the smaller frontier by one level
            end = f_hi
            for qi in range(f_lo, end):
                u = q_f[qi]
                for e in range(fp[u], fp[u + 1]):
                    v = fd[e]
                    if mark_f[v] != stamp:
                        mark_f[v] = stamp
                        dist_f[v] = dist_f[u] + 1
                        par_f[v] = u
                        lab_f[v] = fl[e]
                        q_f[f_hi] = v
                        f_hi += 1
                        visited += 1
                        if mark_b[v] == stamp and dist_f[v] + dist_b[v] < best:
                            best, meet = dist_f[v] + dist_b[v], v
            f_lo = end
            depth_f += 1
        else:
            end = b_hi
            for qi in range(b_lo, end):
                u = q_b[qi]
                for e in range(bp[u], bp[u + 1]):
                    v = bs[e]
                    if mark_b[v] != stamp:
                        mark_b[v] = stamp
                        dist_b[v] = dist_b[u] + 1
                        par_b[v] = u
                        lab_b[v] = bl[e]
                        q_b[b_hi] = v
                        b_hi += 1
                        visited += 1
                        if mark_f[v] == stamp and dist_f[v] + dist_b[v] < best:
                            best, meet = dist_f[v] + dist_b[v], v
            b_lo = end
            depth_b += 1
        if meet >= 0:
            if best <= max_length:
                return best, meet
            return -1, -1
        if visited > max_nodes:
            return -1, -1
    return -1, -1


class PathSearcher:
    """Shortest relation paths over one :class:`RelationGraph`, with scratch reused across queries."""

    def __init__(self, graph: RelationGraph, max_length: int = 10, max_nodes: int = 2000):
        self.g = graph
        self.max_length, self.max_nodes = max_length, max_nodes
        n = max(graph.num_nodes, 1)
        self._marks = [np.zeros(n, np.int32), np.zeros(n, np.int32)]
        self._dist = [np.zeros(n, np.int32), np.zeros(n, np.int32)]
        self._par = [np.zeros(n, np.int32), np.zeros(n, np.int32)]
        self._lab = [np.zeros(n, np.int16), np.zeros(n, np.int16)]
        self._queue = [np.zeros(n, np.int32), np.zeros(n, np.int32)]
        self._stamp = 0

    def node_path(self, s: int, t: int) -> tuple[list[int], list[int]] | None:
        """(nodes, label ids) of a shortest s -> t path, or None."""
        self._stamp += 1
        if self._stamp >= 2**31 - 1:
            for m in self._marks:
                m[:] = 0
            self._stamp = 1
        g = self.g
        length, meet = _bidirectional(g.fwd_ptr, g.fwd_dst, g.fwd_lab, g.bwd_ptr, g.bwd_src, g.bwd_lab,
                                      s, t, self.max_length, self.max_nodes, self._stamp, *self._marks,
                                      *self._dist, *self._par, *self._lab, *self._queue)
        if length < 0:
            return None
        if length == 0:
            return [s], []
        head, labs = [meet], []
        v = meet
        while v != s:
            labs.append(int(self._lab[0][v]))
            v = int(self._par[0][v])
            head.append(v)
        head.reverse()
        labs.reverse()
        v = meet
        while v != t:
            labs.append(int(self._lab[1][v]))
            v = int(self._par[1][v])
            head.append(v)
        return head, labs

    def path(self, source_cui: str, target_cui: str, name=lambda cui: cui) -> list[str] | None:
        """``[name, relation, name, ...]`` from ``source_cui`` to ``target_cui``, or None (unknown CUI or no path)."""
        s, t = self.g.node(source_cui), self.g.node(target_cui)
        if s is None or t is None:
            return None
        found = self.node_path(s, t)
        if found is None:
            return None
        nodes, labs = found
        out = [name(self.g.cui(nodes[0]))]
        for node, lab in zip(nodes[1:], labs):
            out += [self.g.labels[lab], name(self.g.cui(node))]
        return out
