"""Did the RL run do anything? A GRPO run whose every group had zero reward variance learns nothing (the advantages
are all zero), and one whose weights equal its start is not an RL model, whatever its folder is called.

``check_rl_run`` reads the run's log history (TRL's ``training_state.json``: per step ``reward``, ``reward_std``,
``frac_reward_zero_std``, ``kl``, ``completions/mean_length``) and compares the final weights with the start,
writes ``rl_check.json`` (and ``rl_steps.png``, those five per step) beside the model and returns what it found
with the warnings to print. ``warnings`` mean "not an RL model"; ``notes`` flag an RL model that did not raise its
mean reward on its own prompts (``recheck``: the start model and the final policy sampled on the same prompts,
:func:`rl.grpo.run.recheck_pass_rates`).
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


def steps_plot(steps: list[dict], out: Path) -> Path | None:
    """One panel per logged quantity against the step."""
    keys = [k for k in STEP_KEYS if any(k in s for s in steps)]
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 2.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        xs = [s["step"] for s in steps if key in s]
        ax.plot(xs, [s[key] for s in steps if key in s], marker=".", lw=1)
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def check_rl_run(start_model: Path, final_model: Path, recheck: dict | None = None) -> dict:
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
    notes = []
    if recheck is not None and not warnings and recheck["pass_rate_final"] <= recheck["pass_rate_start"]:
        notes.append(f"the mean reward on its {recheck['prompts']} prompts did not rise "
                     f"({recheck['pass_rate_start']:.3f} at the start, {recheck['pass_rate_final']:.3f} after RL)")
    report = {"steps": steps, "max_weight_change": change, "warnings": warnings, "notes": notes,
              "changed": change > 0.0,
              "reward_first_half": sum(rewards[:half]) / half if half else None,
              "reward_second_half": sum(rewards[half:]) / (len(rewards) - half) if rewards[half:] else None,
              "recheck": recheck}
    run_dir = Path(final_model).parent
    plot = steps_plot(steps, run_dir / "rl_steps.png")
    report["plot"] = str(plot) if plot else None
    (run_dir / "rl_check.json").write_text(json.dumps(report, indent=2))
    for w in warnings:
        log.warning("RL run %s: %s", final_model, w)
    for n in notes:
        log.warning("RL run %s: %s", final_model, n)
    if recheck is not None:
        log.info("RL run %s: mean reward on its prompts %.3f (start model) -> %.3f (final policy), %d samples each",
                 final_model, recheck["pass_rate_start"], recheck["pass_rate_final"], recheck["samples"])
    return report
