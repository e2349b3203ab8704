"""OpenRLHF reward hook: ``--reward.remote_url rl/openrlhf/reward_func.py``.

OpenRLHF 0.11 loads this file with importlib inside every vLLM rollout actor (``SingleTurnAgentExecutor``) and
calls ``reward_func(queries, prompts, labels)`` -- in 0.11.x once per sample, with lists of length 1, but any
batch size works here. ``queries`` are prompt + response decoded with special tokens kept, so the response is
the query minus its prompt. Labels are the JSON strings of ``--data.label_key label`` (:mod:`rl.prompts`).

Returns ``rewards`` (weighted sum of the components, used for the advantages), ``scores`` (the task metric in
[0, 1], used by dynamic filtering) and ``extra_logs`` (each component, logged by OpenRLHF). The component
weights come from ``EHR_RL_REWARD_SPEC`` (JSON, set by ``ray_jobs.train_rl`` in the job's env) or default to
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


def _spec() -> dict[str, float]:
    raw = os.environ.get(SPEC_ENV)
    return json.loads(raw) if raw else {"task": 1.0}


def response_of(query: str, prompt: str) -> str:
    """The generated text: the query minus its prompt, end-of-turn tokens removed."""
    response = query[len(prompt):] if query.startswith(prompt) else query
    for tok in END_TOKENS:
        response = response.replace(tok, "")
    return response


def reward_func(queries: list[str], prompts: list[str], labels: list, **kwargs) -> dict:
    responses = [response_of(q, p) for q, p in zip(queries, prompts)]
    spec = _spec()
    out = score_labelled(responses, labels, spec)
    task = out.components.get("task", out.total)
    return {
        "rewards": torch.tensor(out.total, dtype=torch.float32),
        "scores": torch.tensor([min(1.0, max(0.0, s)) for s in task], dtype=torch.float32),
        "extra_logs": {f"reward_{name}": torch.tensor(v, dtype=torch.float32) for name, v in out.components.items()},
    }
