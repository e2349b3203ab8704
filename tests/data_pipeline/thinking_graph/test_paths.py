"""Bidirectional shortest-path search over the CSR relation graph, on small hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest

from data_pipeline.thinking_graph.paths import PathSearcher, RelationGraph, relation_key


def graph(edges: list[tuple[str, str, str]]) -> RelationGraph:
    """Edges (source, relation, target) -> graph."""
    cuis = sorted({e[0] for e in edges} | {e[2] for e in edges})
    labels = sorted({e[1] for e in edges})
    ix = {c: i for i, c in enumerate(cuis)}
    return RelationGraph.from_edges(np.array([ix[s] for s, _, _ in edges]), np.array([ix[t] for _, _, t in edges]),
                                    np.array([labels.index(r) for _, r, _ in edges]), np.array(cuis, object), labels)


CHAIN = [("A", "r1", "B"), ("B", "r2", "C"), ("C", "r3", "D"), ("D", "r4", "E"), ("A", "long", "X"),
         ("X", "long", "Y"), ("Y", "long", "Z"), ("Z", "long", "E")]


@pytest.mark.parametrize("source, target, expected", [
    ("A", "E", ["A", "r1", "B", "r2", "C", "r3", "D", "r4", "E"]),  # two 4-hop paths: the lowest node ids (B < X)
    ("A", "C", ["A", "r1", "B", "r2", "C"]),
    ("B", "B", ["B"]),
    ("E", "A", None),                                                  # edges are directed
    ("A", "nope", None),
])
def test_shortest_paths(source, target, expected):
    s = PathSearcher(graph(CHAIN))
    assert s.path(source, target) == expected


def test_shorter_detour_wins_and_ties_are_deterministic():
    g = graph([*CHAIN, ("A", "short", "Z")])
    assert PathSearcher(g).path("A", "E") == ["A", "short", "Z", "long", "E"]
    tie = graph([("S", "x", "M2"), ("S", "x", "M1"), ("M1", "y", "T"), ("M2", "y", "T")])
    assert [PathSearcher(tie).path("S", "T") for _ in range(3)] == [["S", "x", "M1", "y", "T"]] * 3


def test_depth_and_node_limits():
    assert PathSearcher(graph(CHAIN), max_length=3).path("A", "E") is None
    assert PathSearcher(graph(CHAIN), max_length=4).path("A", "E") is not None
    far = [("S", "r", f"L{i:03d}") for i in range(50)] + [(f"L{i:03d}", "r", f"M{i:03d}") for i in range(50)] + \
          [("M049", "r", "N"), ("N", "r", "T")]
    assert PathSearcher(graph(far), max_nodes=20).path("S", "T") is None
    assert PathSearcher(graph(far), max_nodes=2000).path("S", "T") == ["S", "r", "L049", "r", "M049", "r", "N",
                                                                      "r", "T"]


def test_scratch_is_reused_across_queries():
    s = PathSearcher(graph(CHAIN))
    results = [s.path("A", "C"), s.path("C", "E"), s.path("A", "C")]
    assert results[0] == results[2] == ["A", "r1", "B", "r2", "C"]
    assert results[1] == ["C", "r3", "D", "r4", "E"]


def test_mrrel_reading_direction_and_reference_exclusions(tmp_path):
    # MRREL "CUI1|..|REL|CUI2|..|RELA" reads "CUI2 RELA CUI1"; excluded RELAs are never walked
    rows = [("C1", "RO", "C2", "may_treat"), ("C3", "RO", "C1", "has_manifestation"),
            ("C3", "RO", "C2", "has_contraindicated_drug"), ("C3", "RO", "C2", "concept_in_subset"),
            ("C4", "RB", "C3", "")]
    (tmp_path / "MRREL.RRF").write_text("".join(f"{a}|A1|CUI|{rel}|{b}|A2|CUI|{rela}|R1||SRC|SRC|||N||\n"
                                                for a, rel, b, rela in rows))
    g = RelationGraph.from_mrrel(tmp_path)
    s = PathSearcher(g)
    assert s.path("C2", "C3") == ["C2", "may treat", "C1", "has manifestation", "C3"]
    assert s.path("C3", "C4") == ["C3", "has broader relationship", "C4"]
    assert g.num_edges == 3 and g.array_bytes() > 0
    assert relation_key("Has contraindicated drug") == relation_key("has_contraindicated_drug")
