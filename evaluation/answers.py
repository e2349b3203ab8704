"""The one answer parser shared by serving (``/v1/ehr/predict``), evaluation and the RL rewards.

Pure string functions, no imports beyond the standard library, so every process (Serve replicas, Ray Data
workers, OpenRLHF reward workers) parses a completion the same way.

- :func:`answer_text`: the answer is the text after the *last* ``</think>``; a completion that opened a think
  block but never closed it has no answer (the model never finished thinking).
- :func:`split_items`: one item per line; a literal backslash-n (a model imitating an escaped label list, which
  the reference scorer splits on) separates items too; stripped, empty items dropped, duplicates removed.
- :func:`parse_yes_no`: the yes/no answer of a risk-prediction task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Whitespace, trailing punctuation and markdown emphasis a model may wrap a one-word answer in.
_YES_NO_STRIP = " \t\r\n.,;:!?\"'`*_()[]"
_YES_NO = re.compile(r"^(yes|no)$")


def answer_text(completion: str) -> str | None:
    """Text after the last ``</think>``; the whole text if there is no think block; None if one is left open.

    >>> answer_text("<think>\\nlabs\\n</think>\\n\\nSepsis")
    '\\n\\nSepsis'
    >>> answer_text("<think>unfinished") is None
    True
    >>> answer_text("plain")
    'plain'
    """
    head, sep, tail = completion.rpartition(THINK_CLOSE)
    if sep:
        return tail
    if THINK_OPEN in completion:
        return None
    return completion


def split_items(text: str | Sequence[str], *, lowercase: bool = True) -> list[str]:
    """Items of an answer: one per line (a literal ``\\n`` also separates), stripped, empty ones dropped.

    Duplicates are removed keeping the first occurrence; two items are duplicates when they are equal after
    lower-casing. With ``lowercase=True`` (scoring) the items are returned lower-cased; serving passes
    ``lowercase=False`` to show the model's own spelling. A sequence is taken as already-split items (each is
    still split on line breaks).

    >>> split_items("Sepsis\\n  pneumonia \\nSEPSIS\\n")
    ['sepsis', 'pneumonia']
    >>> split_items("A\\\\nB", lowercase=False)
    ['A', 'B']
    """
    parts = [text] if isinstance(text, str) else list(text)
    seen: dict[str, str] = {}
    for part in parts:
        for line in str(part).splitlines():
            for piece in line.split("\\n"):
                item = piece.strip()
                if item:
                    seen.setdefault(item.lower(), item)
    return list(seen) if lowercase else list(seen.values())


def parse_yes_no(text: str) -> str | None:
    """``'yes'`` or ``'no'`` if the answer is exactly that word (any case, whitespace, trailing punctuation,
    markdown emphasis); None otherwise (including an unfinished think block). A completion with a think
    block is reduced to its answer first.

    >>> [parse_yes_no(t) for t in ["yes", " No.\\n", "**YES**", "<think>x</think>\\n\\nno", "yes, likely", "maybe"]]
    ['yes', 'no', 'yes', 'no', None, None]
    """
    answer = answer_text(text)
    if answer is None:
        return None
    word = answer.strip(_YES_NO_STRIP).lower()
    return word if _YES_NO.match(word) else None
