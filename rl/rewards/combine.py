"""Route each sample to the reward its label names, and add weighted extra components.

A reward spec is a mapping ``{component: weight}``. The component ``task`` is the task's own metric: every label
names its reward (``label["reward"]``, written by the prompt export), so one batch may mix decision-making,
risk-prediction, MedCalc, trial-matching and EHRSHOT samples. Any other component is a registered reward name (or
import path) applied to every sample, e.g. ``{"task": 1.0, "ehr_format": 0.2}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rl.rewards.lookup import get_reward
from rl.rewards.registry import check_lengths

TASK = "task"
DEFAULT_SPEC: Mapping[str, float] = {TASK: 1.0}


def parse_label(label: Any, index: int | None = None) -> dict[str, Any]:
    """A label as stored (a JSON string, or a mapping once a loader decoded it) -> a dict with a ``reward`` key."""
    where = f"sample {index}: " if index is not None else ""
    if isinstance(label, Mapping):
        parsed = dict(label)
    elif isinstance(label, (str, bytes)):
        try:
            parsed = json.loads(label)
        except ValueError as exc:
            raise ValueError(f"{where}label is not JSON ({exc}); labels are written by rl.prompts") from None
    else:
        raise ValueError(f"{where}label {label!r} is neither a JSON string nor a mapping")
    if not isinstance(parsed, dict) or not isinstance(parsed.get("reward"), str):
        raise ValueError(f"{where}label {parsed!r} has no 'reward' name; re-export the prompts with rl.prompts")
    return parsed


def task_reward(completions: Sequence[Any], labels: Sequence[Any], **kwargs: Any) -> list[float]:
    """Each sample scored by the reward its label names (grouped, so every reward function sees one batch)."""
    check_lengths(completions, labels)
    parsed = [parse_label(label, i) for i, label in enumerate(labels)]
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(parsed):
        groups.setdefault(label["reward"], []).append(i)
    out = [0.0] * len(parsed)
    for name, idx in groups.items():
        scores = get_reward(name)([completions[i] for i in idx], [parsed[i] for i in idx], **kwargs)
        for i, s in zip(idx, scores):
            out[i] = float(s)
    return out


@dataclass
class RewardBreakdown:
    total: list[float]
    components: dict[str, list[float]] = field(default_factory=dict)


def component_fn(name: str):
    """The batched function of one component: ``task`` routes by label, anything else is looked up."""
    if name == TASK:
        return task_reward
    fn = get_reward(name)

    def call(completions, labels, **kwargs):
        return fn(completions, [parse_label(label, i) for i, label in enumerate(labels)], **kwargs)

    call.__name__ = name
    return call


def score_labelled(completions: Sequence[Any], labels: Sequence[Any],
                   spec: Mapping[str, float] | None = None, **kwargs: Any) -> RewardBreakdown:
    """Weighted sum of the spec's components per sample, and each component's scores."""
    spec = DEFAULT_SPEC if spec is None else spec
    check_lengths(completions, labels)
    total = [0.0] * len(completions)
    components: dict[str, list[float]] = {}
    for name, weight in spec.items():
        scores = [float(s) for s in component_fn(name)(completions, labels, **kwargs)]
        components[name] = scores
        total = [t + weight * s for t, s in zip(total, scores)]
    return RewardBreakdown(total=total, components=components)
