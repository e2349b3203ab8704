"""Truncation, loss masks, packing and padding on token level (tables of small int lists)."""

from __future__ import annotations

import pytest

from training.sequences import IGNORE_INDEX as X
from training.sequences import build_labels, concat_row, fit_example, pack_first_fit_decreasing, pad_rows

P, S, C = [1, 2], [8, 9], [50, 51]  # prefix, suffix, completion


@pytest.mark.parametrize(
    ("inp", "max_len", "expected"),
    [
        ([10, 11, 12], 10, ([1, 2, 10, 11, 12, 8, 9], [50, 51], 0)),  # fits: untouched
        ([10, 11, 12], 9, ([1, 2, 10, 11, 12, 8, 9], [50, 51], 0)),  # exactly fits
        ([10, 11, 12], 8, ([1, 2, 11, 12, 8, 9], [50, 51], 1)),  # the oldest input token is dropped
        ([10, 11, 12], 7, ([1, 2, 12, 8, 9], [50, 51], 2)),
        ([10, 11, 12], 6, ([1, 2, 8, 9], [50, 51], 3)),  # input fully dropped; instruction and answer kept
        ([], 6, ([1, 2, 8, 9], [50, 51], 0)),
        ([10, 11, 12], 5, None),  # the fixed parts (6 tokens) do not fit: dropped, the answer is never cut
    ],
)
def test_fit_example_left_truncates_input_only(inp, max_len, expected):
    assert fit_example(P, inp, S, C, max_len) == expected


@pytest.mark.parametrize(
    ("prompt", "completion", "completion_only", "labels"),
    [
        ([1, 2, 3], [7, 8], False, [X, 2, 3, 7, 8]),
        ([1, 2, 3], [7, 8], True, [X, X, X, 7, 8]),
        ([1], [7], True, [X, 7]),
        ([], [7, 8], True, [X, 8]),  # the first token is never a target (no cross-example label when packed)
    ],
)
def test_build_labels(prompt, completion, completion_only, labels):
    ids, got = build_labels(prompt, completion, completion_only)
    assert ids == prompt + completion
    assert got == labels


@pytest.mark.parametrize(
    ("lengths", "max_len", "chunk", "rows"),
    [
        ([3, 3, 2, 4], 6, 1024, [[0, 1], [2, 3]]),
        ([6, 1, 6], 6, 1024, [[0], [1], [2]]),  # rows are ordered by their earliest example
        ([1, 2, 5, 4], 6, 1024, [[0, 2], [1, 3]]),  # decreasing order fills rows: 5+1, 4+2
        ([1, 2, 5, 4], 6, 2, [[0, 1], [2], [3]]),  # chunks of 2: order kept across chunks, fuller rows lost
        ([4, 4, 2, 2], 6, 1, [[0], [1], [2], [3]]),  # chunk 1 = no packing at all
        ([5, 5, 5], 6, 1024, [[0], [1], [2]]),
        ([], 6, 4, []),
    ],
)
def test_pack_first_fit_decreasing(lengths, max_len, chunk, rows):
    got = pack_first_fit_decreasing(lengths, max_len, chunk)
    assert got == rows
    assert sorted(i for r in got for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= max_len for r in got)
    assert all(r == sorted(r) for r in got)


def test_pack_rejects_overlong_example():
    with pytest.raises(ValueError, match="example 1 has 9 tokens"):
        pack_first_fit_decreasing([2, 9], max_len=8)


def test_concat_row_restarts_positions_per_example():
    row = concat_row([([1, 2, 3], [X, 2, 3]), ([4, 5], [X, 5])])
    assert row == {"input_ids": [1, 2, 3, 4, 5], "labels": [X, 2, 3, X, 5], "position_ids": [0, 1, 2, 0, 1]}


def test_pad_packed_rows_no_attention_mask():
    rows = [concat_row([([1, 2], [X, 2]), ([3], [X])]), concat_row([([4, 5, 6, 7], [X, 5, 6, 7])])]
    assert pad_rows(rows, pad_id=0) == {
        "input_ids": [[1, 2, 3, 0], [4, 5, 6, 7]],
        "labels": [[X, 2, X, X], [X, 5, 6, 7]],
        "position_ids": [[0, 1, 0, 0], [0, 1, 2, 3]],  # padding is its own block
    }


def test_pad_unpacked_rows_with_attention_mask():
    rows = [{"input_ids": [1, 2], "labels": [X, 2]}, {"input_ids": [3, 4, 5], "labels": [X, X, 5]}]
    assert pad_rows(rows, pad_id=9) == {
        "input_ids": [[1, 2, 9], [3, 4, 5]],
        "labels": [[X, 2, X], [X, X, 5]],
        "attention_mask": [[1, 1, 0], [1, 1, 1]],
    }
