"""Token-level sequence building for SFT: truncation, loss masks, packing. Pure functions on lists of ints.

An example is four token segments produced by the chat template (see ``training.data``)::

    prefix     <|im_start|>system ... <|im_start|>user\\n          (template before the EHR text)
    input      the EHR text                                       (the only part that may be truncated)
    suffix     \\n{instruction}[\\n/think]<|im_end|>\\n<|im_start|>assistant\\n
    completion <think>..</think>\\n\\n{labels}<|im_end|>\\n             (never cut)

**Truncation** keeps the LATEST tokens of the input (drops its oldest events) so that
``len(prefix + input + suffix + completion) <= max_len``. The system prompt, the instruction, the thinking switch
and the answer are never cut; an example whose fixed parts alone exceed ``max_len`` is dropped (and counted).

**Labels**: the input ids, or ``IGNORE_INDEX`` on the prompt with completion-only loss. The first token of every
example is always ``IGNORE_INDEX``: HF shifts labels left, so that label would only ever be predicted from the
*previous* example's last token in a packed row (a no-op without packing, so both modes train the same loss).

**Packing** puts several examples in one row with ``position_ids`` restarting at 0 for each. transformers 5 turns a
position_ids reset into a block-diagonal causal mask when no ``attention_mask`` is passed
(``masking_utils.find_packed_sequence_indices``; works with sdpa/eager on CPU and flash-attention on GPU), so
examples in one row do not attend to each other (verified by a test: packed logits == per-example logits).
Caveat: transformers skips that detection when a KV cache is passed, and ``use_cache=True`` (the config default)
creates one even in training; the workers therefore load the model with ``use_cache=False``
(``training.worker.load_model_for_training``) -- with the cache on, packed examples silently attend to each other.
"""

from __future__ import annotations

from collections.abc import Sequence

IGNORE_INDEX = -100


def fit_example(prefix: Sequence[int], input_ids: Sequence[int], suffix: Sequence[int],
                completion: Sequence[int], max_len: int) -> tuple[list[int], list[int], int] | None:
    """Left-truncate ``input_ids`` to fit ``max_len``; returns ``(prompt, completion, n_cut)`` or None (cannot fit)."""
    fixed = len(prefix) + len(suffix) + len(completion)
    if fixed > max_len:
        return None
    keep = max_len - fixed
    n_cut = max(0, len(input_ids) - keep)
    kept = list(input_ids[n_cut:])
    return [*prefix, *kept, *suffix], list(completion), n_cut


def build_labels(prompt: Sequence[int], completion: Sequence[int],
                 completion_only: bool) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` for one example; see the module doc for the masking rules."""
    input_ids = [*prompt, *completion]
    labels = [IGNORE_INDEX] * len(prompt) if completion_only else list(prompt)
    labels.extend(completion)
    if labels:
        labels[0] = IGNORE_INDEX
    return input_ids, labels


def pack_first_fit_decreasing(lengths: Sequence[int], max_len: int, chunk: int = 1024) -> list[list[int]]:
    """Group example indices into rows whose lengths sum to ``<= max_len`` (first-fit decreasing per chunk).

    The examples are taken ``chunk`` at a time; inside a chunk the longest go first, each into the first row with
    room. Rows keep their examples in input order and are emitted ordered by their earliest example, so the order
    of the data (e.g. a curriculum) survives at chunk granularity. FFD fills rows to ~97% on EHR-length mixes
    where sequential greedy packing reaches ~77% (see BENCHMARKS.md, SFT section).

    >>> pack_first_fit_decreasing([3, 3, 2, 4], max_len=6)
    [[0, 1], [2, 3]]
    """
    out: list[list[int]] = []
    for start in range(0, len(lengths), chunk):
        order = sorted(range(start, min(start + chunk, len(lengths))), key=lambda i: -lengths[i])
        rows: list[tuple[list[int], list[int]]] = []  # (indices, [used])
        for i in order:
            n = lengths[i]
            if n > max_len:
                raise ValueError(f"example {i} has {n} tokens > max_len {max_len}; truncate it first (fit_example)")
            for idx, used in rows:
                if used[0] + n <= max_len:
                    idx.append(i)
                    used[0] += n
                    break
            else:
                rows.append(([i], [n]))
        out.extend(sorted((sorted(idx) for idx, _ in rows), key=lambda r: r[0]))
    return out


def concat_row(examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> dict[str, list[int]]:
    """One packed row from ``(input_ids, labels)`` examples, with per-example ``position_ids``."""
    row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for ids, labels in examples:
        row["input_ids"].extend(ids)
        row["labels"].extend(labels)
        row["position_ids"].extend(range(len(ids)))
    return row


def pad_rows(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, list[list[int]]]:
    """Right-pad rows to the longest one.

    Packed rows (with ``position_ids``): padding gets positions 0.. (its own block; no real token attends to it) and
    no ``attention_mask`` is returned, which is what turns on block-diagonal attention. Unpacked rows get an
    ``attention_mask``. Padding labels are ``IGNORE_INDEX`` in both cases.
    """
    width = max(len(r["input_ids"]) for r in rows)
    packed = "position_ids" in rows[0]
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    out["position_ids" if packed else "attention_mask"] = []
    for r in rows:
        n = len(r["input_ids"])
        pad = width - n
        out["input_ids"].append([*r["input_ids"], *[pad_id] * pad])
        out["labels"].append([*r["labels"], *[IGNORE_INDEX] * pad])
        if packed:
            out["position_ids"].append([*r["position_ids"], *range(pad)])
        else:
            out["attention_mask"].append([1] * n + [0] * pad)
    return out
