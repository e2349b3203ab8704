"""Where the HTTP backend reads p(yes): the first answer token after the think block, from the response's
own log-probs (so a thinking model is scored like the in-process backends do)."""

from __future__ import annotations

import pytest

from evaluation.backends import answer_token_position


def toks(*pieces: str) -> list[dict]:
    return [{"token": p} for p in pieces]


@pytest.mark.parametrize("pieces, expected", [
    (("yes",), 0),                                          # thinking off: the first token
    (("\n", " ", "no"), 2),                                 # leading blanks skipped
    (("<think>", "\n", "why", "\n", "</think>", "\n\n", "yes"), 6),
    (("<think>", "a", "</", "think", ">", "\n\n", "no"), 6),  # the closing tag split over tokens
    (("<think>", "a", "</think>", "b", "</think>", "yes"), 5),  # the last closing tag counts
    (("<think>", "still", " thinking"), None),               # budget ran out inside the think block
    (("<think>", "x", "</think>", "\n"), None),              # closed, but no answer token after it
    ((), None),
])
def test_answer_token_position(pieces, expected):
    assert answer_token_position(toks(*pieces)) == expected


@pytest.mark.parametrize("pieces, expected", [(("\n", "yes"), 0), (("no",), 0), ((), None)])
def test_forced_answer_is_the_first_token(pieces, expected):
    assert answer_token_position(toks(*pieces), forced=True) == expected
