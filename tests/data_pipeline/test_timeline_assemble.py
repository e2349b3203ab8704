"""TextBuilder: templates of literals and Arrow string values, written by the native kernels."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

import data_pipeline.timeline.assemble as assemble
from data_pipeline.timeline.assemble import TextBuilder


def one_string_per_piece(tb: TextBuilder, template: int, rows: list[int]) -> list[str]:
    return tb.build(np.full(len(rows), template), np.array(rows), np.arange(len(rows) + 1)).to_pylist()


@pytest.mark.parametrize("values,parts,kwargs,expected", [
    (["a", "bc"], ["<", 0, ">"], {}, ["<a>", "<bc>"]),
    (["a", None], ["k=", 0], {}, ["k=a", "k=nan"]),
    (["a", None], ["k=", 0], {"null": "None"}, ["k=a", "k=None"]),
    (["a", None], ['"t": ', 0, "}"], {"null": "null", "quoted": (0,)}, ['"t": "a"}', '"t": null}']),
    (["", None], ["[", 0, "]"], {}, ["[]", "[nan]"]),  # an empty string is a value, not a null
    (["é ✓", "\u2028"], [0, 0], {}, ["é ✓é ✓", "\u2028\u2028"]),
    (["x", "y"], ["only a literal"], {}, ["only a literal", "only a literal"]),
    (["x", "y"], [0], {}, ["x", "y"]),
])
def test_templates(values, parts, kwargs, expected):
    tb = TextBuilder()
    tb.column(pa.array(values, pa.string()))
    assert one_string_per_piece(tb, tb.template(*parts, **kwargs), [0, 1]) == expected


def test_sliced_and_large_string_columns_read_from_their_offset():
    tb = TextBuilder()
    sliced = tb.column(pa.array(["skip", None, "b", None, "d"]).slice(1, 4))  # validity bitmap at an offset too
    large = tb.column(pa.array(["w", "x", None, "z"], pa.large_string()))
    row = tb.template(sliced, "|", large)
    assert one_string_per_piece(tb, row, [0, 1, 2, 3]) == ["nan|w", "b|x", "nan|nan", "d|z"]


def test_pieces_concatenate_into_outputs_and_empty_outputs_are_empty():
    tb = TextBuilder()
    col = tb.column(pa.array(["a", "b", "c"]))
    item, sep = tb.template("(", col, ")"), tb.template(", ")
    out = tb.build(np.array([item, sep, item, item]), np.array([0, 0, 2, 1]), np.array([0, 3, 3, 4]))
    assert out.type == pa.string() and out.to_pylist() == ["(a), (c)", "", "(b)"]


def test_an_array_registered_twice_is_one_column():
    tb = TextBuilder()
    arr = pa.array(["a"])
    assert tb.column(arr) == tb.column(arr) != tb.column(pa.array(["a"]))


def test_text_over_the_string_limit_becomes_large_string(monkeypatch):
    monkeypatch.setattr(assemble, "MAX_STRING_BYTES", 3)
    tb = TextBuilder()
    row = tb.template("<", tb.column(pa.array(["ab", "c"])), ">")
    out = tb.build(np.array([row, row]), np.array([0, 1]), np.array([0, 1, 2]))
    assert out.type == pa.large_string() and out.to_pylist() == ["<ab>", "<c>"]


def test_chunked_columns_are_combined():
    tb = TextBuilder()
    row = tb.template(tb.column(pa.chunked_array([["a"], [None, "c"]])))
    assert one_string_per_piece(tb, row, [0, 1, 2]) == ["a", "nan", "c"]


@pytest.mark.parametrize("call,error", [
    (lambda tb: tb.column(pa.array([1, 2])), TypeError),
    (lambda tb: tb.template("x", 7), ValueError),
    (lambda tb: tb.build(np.array([0]), np.array([0, 1]), np.array([0, 1])), ValueError),
    (lambda tb: tb.build(np.array([5]), np.array([0]), np.array([0, 1])), ValueError),
    (lambda tb: tb.build(np.array([0]), np.array([0]), np.array([0, 2])), ValueError),
])
def test_bad_use_is_refused_before_any_native_code_runs(call, error):
    tb = TextBuilder()
    tb.template("literal")
    with pytest.raises(error):
        call(tb)


def test_random_layouts_match_a_python_reference():
    rng = random.Random(0)
    for _ in range(30):
        columns = [[rng.choice([None, "", "x", "yz", "é", "long value " * rng.randint(1, 5)])
                    for _ in range(8)] for _ in range(3)]
        tb = TextBuilder()
        ids = [tb.column(pa.array(c, pa.string())) for c in columns]
        templates = []
        for _ in range(4):
            parts: list = []
            for _ in range(rng.randint(0, 4)):
                parts += [rng.choice(["", "-", "<lit>"]), rng.choice(ids)]
            parts.append(rng.choice(["", "!"]))
            null = rng.choice(["nan", "None", "null"])
            templates.append((tb.template(*parts, null=null), parts, null))
        n_pieces = rng.randint(0, 20)
        picks = [rng.randrange(len(templates)) for _ in range(n_pieces)]
        rows = [rng.randrange(8) for _ in range(n_pieces)]
        cuts = sorted(rng.choices(range(n_pieces + 1), k=rng.randint(0, 4)))
        bounds = [0, *cuts, n_pieces]

        def render(t: int, row: int) -> str:
            _, parts, null = templates[t]
            text = ""
            for p in parts:
                if isinstance(p, str):
                    text += p
                else:
                    value = columns[ids.index(p)][row]
                    text += null if value is None else value
            return text

        expected = ["".join(render(picks[q], rows[q]) for q in range(a, b)) for a, b in zip(bounds, bounds[1:])]
        got = tb.build(np.array([templates[p][0] for p in picks], dtype=np.int64), np.array(rows, dtype=np.int64),
                       np.array(bounds))
        assert got.to_pylist() == expected
