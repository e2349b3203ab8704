"""Left truncation of a sample to a token budget, whole events at a time.

Policy: the demographics and the admission header are always kept; the oldest material goes first, so the
previous admission's discharge note is dropped before any context event, then context events from the oldest
on, until ``input + "\\n" + instruction`` fits. An event is never cut in the middle (the reference cut tokens on
the left, which left half a table at the top of the prompt). A sample whose kept header alone is over budget
is reported (``fits=False``) so the caller can drop it, and so is one whose pinned last event (the discharge note
a readmission sample is about) does not fit: it is dropped and counted, never exported with an empty context.
The caller also re-applies the context-size filter to the events left after truncation.

Token counting: a Hugging Face tokenizer when one is configured; otherwise :func:`approx_token_count`, which
counts each run of letters, each digit and each other non-space character as one token. Qwen-style BPE
tokenizers split numbers into single digits and rarely merge punctuation, so on the markdown EHR text this
slightly over-counts words and tracks tables closely: a budget set with it is conservative.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from data_pipeline.tasks.assembly import SEPARATOR, SampleParts

TokenCounter = Callable[[str], int]
_APPROX = re.compile(r"[^\W\d_]+|\d|[^\w\s]|_")


def approx_token_count(text: str) -> int:
    """Approximate BPE token count. Additive over whitespace-joined pieces (so pieces can be counted once).

    >>> approx_token_count("| INR(PT) | 1.5 |")
    10
    """
    return len(_APPROX.findall(text))


approx_token_count.additive = True  # count(a + "\n\n" + b) == count(a) + count(b)


def cached_counter(count: TokenCounter) -> TokenCounter:
    """Memoise ``count`` by text (an event shows up in many samples of the same patient)."""
    cache: dict[str, int] = {}

    def counted(text: str) -> int:
        n = cache.get(text)
        if n is None:
            n = cache[text] = count(text)
        return n

    counted.additive = getattr(count, "additive", False)
    counted.clear = cache.clear
    return counted


def hf_token_counter(tokenizer_path: str) -> TokenCounter:
    """A counter backed by a local Hugging Face tokenizer (no special tokens)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_path)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    return count


def make_token_counter(tokenizer_path: str | None) -> TokenCounter:
    return hf_token_counter(tokenizer_path) if tokenizer_path else approx_token_count


@dataclass
class Truncated:
    parts: SampleParts
    n_tokens: int
    dropped_events: int
    dropped_previous_discharge: bool
    fits: bool


def truncate_parts(parts: SampleParts, max_tokens: int | None, count: TokenCounter = approx_token_count,
                   instruction: str = "", pinned_from: int | None = None) -> Truncated:
    """Drop whole events from the left until ``input + "\\n" + instruction`` has at most ``max_tokens`` tokens.

    ``max_tokens=None`` keeps everything (the count is still reported). Context events from position
    ``pinned_from`` on are never dropped (the discharge note of a readmission sample *is* the input, and the
    events charted after it stay too): when they do not fit with the header, the sample does not fit
    (``fits=False``) rather than losing them.
    """
    sep = count(SEPARATOR)
    fixed = count(parts.demographics) + count(parts.admission) + count("\n" + instruction) + 2 * sep
    prev = count(parts.previous_discharge)
    sizes = [count(c) + sep for c in parts.context]
    total = fixed + prev + sum(sizes)
    if max_tokens is None:
        exact = total if getattr(count, "additive", False) else count(parts.text() + "\n" + instruction)
        return Truncated(parts, exact, 0, False, True)
    droppable = len(sizes) if pinned_from is None else min(pinned_from, len(sizes))
    start, drop_prev = 0, False
    if total > max_tokens and parts.previous_discharge:
        drop_prev, total = True, total - prev
    while total > max_tokens and start < droppable:
        total -= sizes[start]
        start += 1
    out = SampleParts(parts.demographics, "" if drop_prev else parts.previous_discharge, parts.admission,
                      parts.context[start:], parts.context_ids[start:])
    if getattr(count, "additive", False):
        return Truncated(out, total, start, drop_prev, total <= max_tokens)
    # Per-piece counts can differ from the count of the joined text at piece boundaries: settle on the real one.
    exact = count(out.text() + "\n" + instruction)
    while exact > max_tokens and out.context and start < droppable:
        out.context, out.context_ids = out.context[1:], out.context_ids[1:]
        start += 1
        exact = count(out.text() + "\n" + instruction)
    return Truncated(out, exact, start, drop_prev, exact <= max_tokens)
