"""Did the RL run do anything? A GRPO run whose every group had zero reward variance learns nothing (the advantages
are all zero), and one whose weights equal its start is not an RL model, whatever its folder is called.

``check_rl_run`` reads the run's log history (TRL's ``training_state.json``: per step ``reward``, ``reward_std``,
``frac_reward_zero_std``, ``kl``, ``completions/mean_length``) and compares the final weights with the start,
writes ``rl_check.json`` beside the model and returns what it found with the warnings to print.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

STEP_KEYS = {"reward": "reward", "reward_std": "reward_std", "frac_reward_zero_std": "frac_reward_zero_std",
             "kl": "kl", "completion_length": "completions/mean_length"}


def step_table(log_history: list[dict]) -> list[dict]:
    """One row per optimizer step that logged a reward: step and the :data:`STEP_KEYS` values present."""
    rows = []
    for h in log_history:
        if "reward" in h and "step" in h:
            rows.append({"step": int(h["step"]), **{k: float(h[src]) for k, src in STEP_KEYS.items() if src in h}})
    return rows


def max_weight_change(start: Path, final: Path) -> float:
    """The largest absolute difference between any weight of two checkpoints (safetensors)."""
    import torch
    from safetensors.torch import load_file

    def tensors(d: Path) -> dict:
        out = {}
        for f in sorted(Path(d).glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    a, b = tensors(start), tensors(final)
    if set(a) != set(b):
        return float("inf")
    return max((float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel()), default=0.0) \
        if a else float("nan")


def check_rl_run(start_model: Path, final_model: Path) -> dict:
    state = Path(final_model) / "training_state.json"
    history = json.loads(state.read_text()).get("log_history", []) if state.is_file() else []
    steps = step_table(history)
    change = max_weight_change(Path(start_model), Path(final_model))
    warnings = []
    if not steps:
        warnings.append("no step logged a reward")
    elif all(s.get("frac_reward_zero_std", 0.0) >= 1.0 for s in steps):
        warnings.append("every group of every step had zero reward variance, so every advantage was 0: raise "
                        "grpo.num_generations / temperature, or give completions the budget to reach an answer")
    elif all(s.get("reward", 0.0) == 0.0 for s in steps):
        warnings.append("the reward was 0 on every step")
    if change == 0.0:
        warnings.append(f"the final weights equal the start ({start_model}): this is not an RL model")
    rewards = [s["reward"] for s in steps]
    half = len(rewards) // 2
    report = {"steps": steps, "max_weight_change": change, "warnings": warnings, "changed": change > 0.0,
              "reward_first_half": sum(rewards[:half]) / half if half else None,
              "reward_second_half": sum(rewards[half:]) / (len(rewards) - half) if rewards[half:] else None}
    (Path(final_model).parent / "rl_check.json").write_text(json.dumps(report, indent=2))
    for w in warnings:
        log.warning("RL run %s: %s", final_model, w)
    return report
