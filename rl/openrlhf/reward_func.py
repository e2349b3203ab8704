"""OpenRLHF reward hook: ``--reward.remote_url rl/openrlhf/reward_func.py``.

OpenRLHF 0.11 loads this file with importlib inside every vLLM rollout actor (``SingleTurnAgentExecutor``) and
calls ``reward_func(queries, prompts, labels)`` -- in 0.11.x once per sample, with lists of length 1, but any
batch size works here. ``queries`` are prompt + response decoded with special tokens kept, the prompt cut from the
left when it exceeded OpenRLHF's budget (the export fits prompts so that it should not), so the response is found
after the prompt's end whatever was cut (:func:`response_of`). Labels are the JSON strings of ``--data.label_key label`` (:mod:`rl.prompts`).

Returns ``rewards`` (weighted sum of the components, used for the advantages), ``scores`` (the task metric in
[0, 1], used by dynamic filtering) and ``extra_logs`` (each component, logged by OpenRLHF). The component
weights are bound by the run's own hook (``{run}/reward_func.py``, :func:`make_reward_func`, written by
:mod:`rl.openrlhf.submit`); this file used directly reads them from ``EHR_RL_REWARD_SPEC`` (JSON) or uses
``{"task": 1.0}``. Exceptions are swallowed by OpenRLHF (the reward becomes None), so the rewards never raise on
model output; a malformed label is our data error and is raised (it cannot happen with exported prompts).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

try:
    from rl.rewards import score_labelled
except ImportError:  # loaded by file path outside the job's working_dir on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from rl.rewards import score_labelled

import torch

SPEC_ENV = "EHR_RL_REWARD_SPEC"
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>")


ASSISTANT_TURN = "<|im_start|>assistant"


def _spec() -> dict[str, float]:
    raw = os.environ.get(SPEC_ENV)
    return json.loads(raw) if raw else {"task": 1.0}


def _prompt_end(query: str, prompt: str) -> int | None:
    """Where the (possibly left-truncated) prompt ends in the query, or None.

    OpenRLHF cuts a prompt longer than its budget from the left, token by token, so the query starts with a suffix
    of the prompt whose first characters may be a partial token. The prompt's tail from its last assistant turn
    (the generation prompt) is searched for in the query; an occurrence counts when everything before it, bar a few
    boundary characters, is the end of the prompt -- so a response that repeats the tail is not cut there.
    """
    anchor = prompt.rfind(ASSISTANT_TURN)
    tail = prompt[anchor:] if anchor >= 0 else prompt[-64:]
    if not tail:
        return None
    start = query.find(tail)
    while start >= 0:
        end = start + len(tail)
        head = query[:end]
        if prompt.endswith(head[min(len(head) - len(tail), 8):]):
            return end
        start = query.find(tail, start + 1)
    return None


def response_of(query: str, prompt: str) -> str:
    """The generated text: the query after its prompt (whole or left-truncated), end-of-turn tokens removed."""
    if query.startswith(prompt):
        response = query[len(prompt):]
    else:
        end = _prompt_end(query, prompt)
        response = query[end:] if end is not None else query[query.rfind(ASSISTANT_TURN):] if (
            ASSISTANT_TURN in query) else query
    for tok in END_TOKENS:
        response = response.replace(tok, "")
    return response


def make_reward_func(spec: dict[str, float]):
    """``reward_func(queries, prompts, labels)`` with fixed component weights (the run's own hook binds them)."""

    def reward_func(queries: list[str], prompts: list[str], labels: list, **kwargs) -> dict:
        return score(queries, prompts, labels, spec)

    return reward_func


def score(queries: list[str], prompts: list[str], labels: list, spec: dict[str, float]) -> dict:
    responses = [response_of(q, p) for q, p in zip(queries, prompts)]
    out = score_labelled(responses, labels, spec)
    task = out.components.get("task", out.total)
    return {
        "rewards": torch.tensor(out.total, dtype=torch.float32),
        "scores": torch.tensor([min(1.0, max(0.0, s)) for s in task], dtype=torch.float32),
        "extra_logs": {f"reward_{name}": torch.tensor(v, dtype=torch.float32) for name, v in out.components.items()},
    }


def reward_func(queries: list[str], prompts: list[str], labels: list, **kwargs) -> dict:
    """The generic hook: weights from ``EHR_RL_REWARD_SPEC`` (JSON) or ``{"task": 1.0}``."""
    return score(queries, prompts, labels, _spec())
