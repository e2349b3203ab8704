"""The reward registry: names -> pure, batched reward functions.

A reward function has the signature ``fn(completions, labels, **kwargs) -> list[float]``:

- ``completions``: the model's generated text (the assistant turn only, think block included), one per sample;
- ``labels``: the parsed label of each sample (a mapping, see :mod:`rl.prompts.schema`), same length;
- ``**kwargs``: anything else a trainer passes (TRL passes ``prompts``, ``trainer_state`` ...); ignored unless used.

It returns one float per sample, never raises on model output and never evaluates it as code. A malformed *label*
(our own data, validated at export) is a ``ValueError`` naming the field.

Names are registered with :func:`register`; :func:`rl.rewards.lookup.get_reward` also accepts an import path
(``package.module:function``) so users can plug in their own function without editing this package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

RewardFn = Callable[..., list[float]]

_REGISTRY: dict[str, RewardFn] = {}


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering ``fn`` under ``name``. Registering a second, different function under a taken name
    is an error (two modules silently fighting over one name would change what a config trains on)."""

    def deco(fn: RewardFn) -> RewardFn:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(f"reward {name!r} is already registered by {existing.__module__}.{existing.__qualname__}; "
                             f"pick another name for {fn.__module__}.{fn.__qualname__}")
        _REGISTRY[name] = fn
        fn.reward_name = name  # type: ignore[attr-defined]
        return fn

    return deco


def label_field(label: Mapping[str, Any], key: str, index: int | None = None) -> Any:
    """``label[key]`` or a ValueError that names the sample and the missing field."""
    try:
        return label[key]
    except (KeyError, TypeError):
        where = f"sample {index}: " if index is not None else ""
        raise ValueError(f"{where}label {dict(label) if isinstance(label, Mapping) else label!r} has no {key!r}; "
                         "re-export the prompts with rl.prompts") from None


def check_lengths(completions: Sequence[str], labels: Sequence[Any]) -> None:
    if len(completions) != len(labels):
        raise ValueError(f"{len(completions)} completions but {len(labels)} labels; they must be paired")


def as_text(completion: Any) -> str:
    """Model output as a string, whatever the trainer passed: str, None, bytes, or a chat message list
    (``[{"role": "assistant", "content": ..., "reasoning_content": ...}]``, TRL's conversational form)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, bytes):
        return completion.decode("utf-8", errors="replace")
    if isinstance(completion, Mapping):
        content = completion.get("content")
        content = content if isinstance(content, str) else ("" if content is None else str(content))
        reasoning = completion.get("reasoning_content")
        if isinstance(reasoning, str):  # a parsed Qwen3 response: put the think block back
            return f"<think>\n{reasoning}\n</think>\n\n{content}"
        return content
    if isinstance(completion, Sequence):
        return "".join(as_text(m) for m in completion if not isinstance(m, Mapping) or m.get("role", "assistant")
                       == "assistant")
    return str(completion)
