"""EHR-R1 rewards: the evaluation metric of each task family, plus the (fixed) format reward.

- ``ehr_set_f1``: decision-making tasks. The answer after the last ``</think>``, one item per line, scored by set F1
  against the label list: :func:`evaluation.metrics.score_prediction` with the task's set metric.
- ``ehr_yes_no``: risk-prediction tasks. The yes/no answer (:func:`evaluation.answers.parse_yes_no`, any case,
  whitespace, trailing punctuation) equal to the label. The reference compared the unstripped text with
  ``startswith`` and scored ``"</think>\\n\\nyes"`` as 0; here it scores 1.
- ``ehr_rouge1``: free-text generation tasks (ROUGE-1 F, the evaluation's scorer).
- ``ehr_format``: the reference's unused ``mimiciv_format_reward``, made usable: 1.0 when the completion has one
  think block whose reasoning holds the ``## Extraction`` / ``## Reasoning`` / ``## Final Results`` sections in
  that order, then a non-empty answer with no duplicate items; 0.0 otherwise. Samples whose prompt turned thinking
  off (label ``thinking: false``) need an empty (or no) think block instead of the sections. The reference gave
  +1/-1; GRPO normalises rewards within a group, so only the difference matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.answers import THINK_CLOSE, THINK_OPEN, split_items
from evaluation.metrics import SET_METRICS, score_prediction
from rl.rewards.registry import as_text, check_lengths, label_field, register

FORMAT_SECTIONS = ("## Extraction", "## Reasoning", "## Final Results")


def _target(label: Mapping[str, Any], index: int) -> str | list[str]:
    target = label_field(label, "target", index)
    if isinstance(target, str):
        return target
    if isinstance(target, Sequence):
        return [str(t) for t in target]
    raise ValueError(f"sample {index}: label target {target!r} must be a string or a list of strings")


@register("ehr_set_f1")
def ehr_set_f1(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """Set F1 of the answer items against the label list (the decision-making metric)."""
    check_lengths(completions, labels)
    out = []
    for i, (completion, label) in enumerate(zip(completions, labels)):
        metric = label.get("metric", "f1") if isinstance(label, Mapping) else "f1"
        if metric not in SET_METRICS:
            raise ValueError(f"sample {i}: ehr_set_f1 scores set metrics {sorted(SET_METRICS)}, the label says "
                             f"{metric!r}; route it to the reward for that metric")
        out.append(score_prediction(metric, as_text(completion), _target(label, i)))
    return out


@register("ehr_yes_no")
def ehr_yes_no(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """1.0 when the yes/no answer equals the label (whitespace, case and trailing punctuation tolerated)."""
    check_lengths(completions, labels)
    return [score_prediction("aucroc", as_text(c), _target(label, i))
            for i, (c, label) in enumerate(zip(completions, labels))]


@register("ehr_rouge1")
def ehr_rouge1(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """ROUGE-1 F of the answer against the reference text (discharge-summary style tasks)."""
    check_lengths(completions, labels)
    return [score_prediction("rouge1", as_text(c), _target(label, i))
            for i, (c, label) in enumerate(zip(completions, labels))]


def _has_duplicate_items(answer: str) -> bool:
    per_line = sum(len(split_items(line)) for line in answer.splitlines())
    return per_line != len(split_items(answer))


def format_ok(completion: str, thinking: bool = True) -> bool:
    """The format check of :func:`ehr_format` for one completion (see the module docstring)."""
    n_open, n_close = completion.count(THINK_OPEN), completion.count(THINK_CLOSE)
    if n_open > 1 or n_close > 1:
        return False
    if n_close == 0:
        # No think block: fine only when thinking is off (the chat template pre-filled the empty block).
        return not thinking and n_open == 0 and _answer_ok(completion)
    head, _, answer = completion.partition(THINK_CLOSE)
    # The opening tag may be pre-filled by the chat template (Qwen3 thinking models): 0 or 1 of them, first.
    if n_open == 1 and not head.lstrip().startswith(THINK_OPEN):
        return False
    reasoning = head.split(THINK_OPEN)[-1]
    if not thinking:
        return not reasoning.strip() and _answer_ok(answer)
    positions = [reasoning.find(s) for s in FORMAT_SECTIONS]
    if any(p < 0 for p in positions) or positions != sorted(positions):
        return False
    return _answer_ok(answer)


def _answer_ok(answer: str) -> bool:
    return bool(split_items(answer)) and not _has_duplicate_items(answer)


@register("ehr_format")
def ehr_format(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]] | None = None,
               **kwargs: Any) -> list[float]:
    """1.0 for a well-formed completion, else 0.0. ``labels`` may carry ``thinking`` (default True)."""
    labels = labels if labels is not None else [{}] * len(completions)
    check_lengths(completions, labels)
    return [float(format_ok(as_text(c), bool(label.get("thinking", True)) if isinstance(label, Mapping) else True))
            for c, label in zip(completions, labels)]
