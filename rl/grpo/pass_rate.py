"""Prompts the policy can sometimes solve, and whether RL made it solve them more often.

GRPO learns only from groups whose rewards differ: a prompt the start model always fails (or always solves) gives
every completion the same reward, an advantage of 0 and no gradient. So, before training, the start model samples
``samples`` completions for each exported candidate prompt with the run's own sampling settings, each is scored by
the run's own reward, and the prompts whose pass rate (mean reward) lies strictly inside (0, max reward) are kept,
those nearest half-way first, one task at a time. After training the same prompts are sampled again, with the
start model and with the final policy, on fresh seeds: ``pass_rate_start`` vs ``pass_rate_final`` is the rise in
mean reward on the same prompts, free of the selection's own noise.

Generation runs in one Ray task (a GPU when the job has them) with transformers ``generate``; prompts are rendered
with the model's chat template exactly as TRL renders them.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingSettings:
    samples: int
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    batch_size: int = 64


def read_records(path: str | Path) -> list[dict]:
    """The exported prompts as dicts, validated by the export's own reader (errors name the file and line)."""
    from dataclasses import asdict

    from rl.prompts.schema import read_prompts

    return [asdict(r) for r in read_prompts(path)]


def write_records(records: Sequence[Mapping], path: str | Path) -> None:
    from rl.prompts.schema import RLPrompt, write_prompts

    write_prompts((RLPrompt(**{k: r[k] for k in ("id", "source", "task", "prompt", "label")}) for r in records),
                  path)


def select_by_pass_rate(records: Sequence[Mapping], rates: Sequence[float], keep: int, max_reward: float,
                        min_keep: int, seed: int = 0) -> tuple[list[dict], dict]:
    """Pure: the prompts with ``0 < rate < max_reward``, nearest ``max_reward / 2`` first, round-robin over tasks,
    at most ``keep``. When fewer than ``min_keep`` are mixed, the rest is filled with the prompts nearest the band
    (they still give no gradient, and ``stats["filled"]`` says how many).

    >>> recs = [{"id": str(i), "task": t} for i, t in enumerate("aabbc")]
    >>> kept, st = select_by_pass_rate(recs, [0.5, 0.0, 0.25, 1.0, 0.75], keep=2, max_reward=1.0, min_keep=1)
    >>> [r["id"] for r in kept], st["mixed"]
    (['0', '2'], 3)
    """
    if len(records) != len(rates):
        raise ValueError(f"{len(records)} prompts but {len(rates)} pass rates")
    eps = 1e-9
    mixed = [i for i, r in enumerate(rates) if eps < r < max_reward - eps]
    rng = random.Random(seed)
    by_task: dict[str, list[int]] = {}
    for i in mixed:
        by_task.setdefault(str(records[i]["task"]), []).append(i)
    queues = []
    for task in sorted(by_task):
        idx = by_task[task]
        rng.shuffle(idx)  # ties broken by a seeded draw, not file order
        queues.append(sorted(idx, key=lambda i: abs(rates[i] - max_reward / 2)))
    queues.sort(key=lambda q: abs(rates[q[0]] - max_reward / 2))
    chosen: list[int] = []
    depth = 0
    while len(chosen) < keep and any(depth < len(q) for q in queues):
        chosen += [q[depth] for q in queues if depth < len(q)][:keep - len(chosen)]
        depth += 1
    filled = 0
    if len(chosen) < min_keep:
        rest = sorted((i for i in range(len(records)) if i not in set(chosen)),
                      key=lambda i: (abs(rates[i] - max_reward / 2), i))
        extra = rest[:min_keep - len(chosen)]
        chosen += extra
        filled = len(extra)
    kept = [{**records[i], "pass_rate": float(rates[i])} for i in chosen]
    stats = {"candidates": len(records), "mixed": len(mixed), "kept": len(kept), "filled": filled,
             "always_zero": sum(r <= eps for r in rates), "always_max": sum(r >= max_reward - eps for r in rates),
             "mean_candidate_rate": float(sum(rates) / len(rates)) if rates else math.nan,
             "mean_kept_rate": float(sum(r["pass_rate"] for r in kept) / len(kept)) if kept else math.nan}
    return kept, stats


def max_total_reward(reward_spec: Mapping[str, float]) -> float:
    """The largest total a completion can get: every component's rewards lie in [0, 1]."""
    return float(sum(w for w in reward_spec.values() if w > 0))


def sample_pass_rates(model_path: str, records: Sequence[Mapping], reward_spec: Mapping[str, float],
                      settings: SamplingSettings) -> list[float]:
    """Per prompt, the mean total reward of ``settings.samples`` sampled completions (runs where it is called)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rl.prompts.schema import LABEL_KEY
    from rl.rewards.combine import score_labelled

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_path).to(device).eval()
    texts = [tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True) for r in records]
    flat = [(i, texts[i]) for i in range(len(records)) for _ in range(settings.samples)]
    completions: list[str] = []
    torch.manual_seed(settings.seed)
    for start in range(0, len(flat), settings.batch_size):
        batch = [t for _, t in flat[start:start + settings.batch_size]]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=settings.temperature, top_p=settings.top_p,
                                 top_k=settings.top_k or None, max_new_tokens=settings.max_new_tokens,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        completions += tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    labels = [records[i][LABEL_KEY] for i, _ in flat]
    # the conversational form TRL hands its reward functions
    scores = score_labelled([[{"role": "assistant", "content": c}] for c in completions], labels,
                            dict(reward_spec)).total
    rates = [0.0] * len(records)
    for (i, _), s in zip(flat, scores):
        rates[i] += s / settings.samples
    return rates


def remote_pass_rates(model_path: str, records: Sequence[Mapping], reward_spec: Mapping[str, float],
                      settings: SamplingSettings, use_gpu: bool) -> list[float]:
    """:func:`sample_pass_rates` in one Ray task (one GPU when the job trains on GPUs)."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0, max_retries=2)(sample_pass_rates)
    return ray.get(task.remote(model_path, list(records), dict(reward_spec), settings))


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan
