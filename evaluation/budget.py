"""One token budget for evaluation: the model's context bounds prompt + new tokens, on every backend.

- **Context.** ``max_position_embeddings`` of the checkpoint (``config.json``, or its ``text_config``) bounds
  ``prompt + max_new_tokens``. The input budget of a run is ``min(backend.max_input_tokens, context -
  max_new_tokens)``; a ``max_new_tokens`` that leaves no room for a prompt is refused when the config loads.
- **History that does not fit is cut from the left, whole events at a time**, as the dataset build does
  (``data_pipeline.datasets.truncation``): the first block (demographics / the admission header) stays, the oldest
  events go first. Counting uses the model's own tokenizer on the fully rendered chat prompt, so the dataset
  build's approximate counter (used before the demo's tokenizer exists) cannot push a prompt over the limit.
  Only a prompt whose header and newest event alone are too long loses text inside a block (the reference's
  left cut, which keeps the newest text).
  Every cut is counted per sample (``dropped_events``) and per task in the report; no sample is refused for
  length.
- **Decoding budget per task** (``decoding.budget: from_training``): a quantile (default p99) of the token length
  of what the model was trained to emit for that task in the prompt's mode (the answer after the pre-filled
  empty think block with thinking off; think block + answer with thinking on), plus a margin, capped by
  ``backend.max_new_tokens``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: An event block starts with a ``## `` heading after a blank line (``data_pipeline.render``).
_BLOCK = re.compile(r"\n\n(?=## )")


def model_context(model_path: str | None) -> int | None:
    """``max_position_embeddings`` of a local checkpoint, or None when unknown (no path / no config.json yet)."""
    if not model_path:
        return None
    path = Path(model_path).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    value = data.get("max_position_embeddings") or (data.get("text_config") or {}).get("max_position_embeddings")
    return int(value) if value else None


def budget_errors(max_input_tokens: int, max_new_tokens: int, context: int | None, where: str = "backend") -> list:
    """Config-load check: the decoding budget must leave room for a prompt inside the model's context."""
    if context is None:
        return []
    if max_new_tokens >= context - 16:
        return [f"{where}.max_new_tokens: {max_new_tokens} leaves no room for a prompt in the model's context of "
                f"{context} tokens (max_position_embeddings); lower it"]
    return []


def input_budget(max_input_tokens: int, max_new_tokens: int, context: int | None) -> int:
    """The most prompt tokens a sample may have: the configured limit, within ``context - max_new_tokens``."""
    return max_input_tokens if context is None else min(max_input_tokens, context - max_new_tokens)


def split_blocks(text: str) -> list[str]:
    return _BLOCK.split(text)


def fit_history(text: str, n_tokens: Callable[[str], int], budget: int) -> tuple[str, int, int]:
    """The longest left-truncation of ``text`` whose rendered prompt (``n_tokens(kept_text)``) fits ``budget``.

    Returns ``(kept_text, dropped_events, n_tokens)``. The first block always stays; whole later blocks are dropped
    oldest first (binary search over how many: the count grows with every kept block). ``n_tokens`` counts the
    whole prompt built around the text (chat template, instruction, switches), so the budget is exact.
    """
    n = n_tokens(text)
    if n <= budget:
        return text, 0, n
    blocks = split_blocks(text)
    head, rest = blocks[0], blocks[1:]

    def kept(drop: int) -> str:
        return "\n\n".join([head, *rest[drop:]])

    lo, hi = 1, len(rest) - 1  # the smallest drop that fits, keeping at least the newest event
    if hi >= 1 and n_tokens(kept(hi)) <= budget:
        while lo < hi:
            mid = (lo + hi) // 2
            if n_tokens(kept(mid)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        out = kept(hi)
        return out, hi, n_tokens(out)
    # even the header with the newest event is too long: cut characters from the left of the whole text (the
    # reference's left token cut), keeping the newest text; a handful of halvings settles it
    lo_c, hi_c = 0, len(text)
    while lo_c < hi_c:
        mid = (lo_c + hi_c) // 2
        if n_tokens(text[mid:]) <= budget:
            hi_c = mid
        else:
            lo_c = mid + 1
    out = text[hi_c:]
    # every block that lost its start counts as dropped (the partly kept one included)
    return out, len(blocks) - len(split_blocks(out)) + 1, n_tokens(out)


def _records(paths: Sequence[str]) -> Iterable[dict]:
    for raw in paths:
        path = Path(raw).expanduser()
        files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"decoding.training_data: {f} does not exist; point it at the EHR-Ins "
                                        "export the model was trained on (datasets/ehr_ins/ehr_ins.jsonl)")
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)


def target_length_quantiles(paths: Sequence[str], n_tokens: Callable[[str], int], *, thinking: bool,
                            quantile: float = 0.99, max_per_task: int = 2000) -> dict[str, int]:
    """Per task, the ``quantile`` of the token length of the assistant text the model was trained to emit.

    With thinking off the prompt pre-fills the empty think block, so the model emits the answer (+ EOS); with
    thinking on it emits ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}`` where the record has reasoning."""
    from training.chat_format import format_assistant

    lengths: dict[str, list[int]] = {}
    for rec in _records(paths):
        task = (rec.get("task_info") or {}).get("task")
        if not task or len(lengths.setdefault(task, [])) >= max_per_task:
            continue
        answer = rec.get("output") or ""
        text = format_assistant(answer, rec.get("reasoning")) if thinking else answer
        lengths[task].append(n_tokens(text) + 1)  # + the end-of-turn token
    return {t: int(math.ceil(np.quantile(v, quantile))) for t, v in lengths.items() if v}


def per_sample_budgets(tasks: Sequence[str], kinds: Sequence[str], thinking: Sequence[bool | None],
                       quantiles: dict[bool, dict[str, int]], *, margin: int, cap: int) -> list[int]:
    """``max_new_tokens`` of each sample: its task's trained length in its mode + margin, within ``cap``; a risk
    sample with thinking off needs one forced token; a task never seen in training gets the cap."""
    out = []
    for task, kind, think in zip(tasks, kinds, thinking):
        if kind == "risk" and not think:
            out.append(1)
            continue
        trained = quantiles.get(bool(think), {}).get(task)
        out.append(cap if trained is None else max(1, min(cap, trained + margin)))
    return out
