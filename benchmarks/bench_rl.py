"""RL throughput: reward functions on 10,000 outputs, rollout tokens/s and seconds per GRPO step (tiny model, CPU).

    .venv/bin/python benchmarks/bench_rl.py [--outputs 10000] [--steps 4] [--out-dir /tmp/bench_rl]

- Rewards: each registered reward on its own kind of labelled outputs (right, wrong and malformed mixed), and the
  routed mix (``score_labelled`` with ``{task: 1, ehr_format: 0.2}``), in one process: samples/s.
- Rollout: HF ``generate`` (what TRL's GRPOTrainer uses on CPU) of the tiny model, batches of
  prompts x 4 samples, 64 new tokens, sampling on; generated tokens/s on one process with 1 torch thread (as in a Ray Train worker).
- GRPO step: the real job (``rl.grpo.run.run_grpo``: TorchTrainer, 2 CPU workers, TRL) for ``--steps`` steps of
  2 prompts x 4 generations, 64 completion tokens; seconds per step from TRL's ``step_time`` (step 1 excluded:
  warm-up), plus the wall time of the whole fit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WELL = "<think>\n## Extraction\nfever\n## Reasoning\ninfection\n## Final Results\nSepsis\n</think>\n\n"


def _outputs(n: int, seed: int = 0) -> dict[str, tuple[list[str], list[dict]]]:
    rng = random.Random(seed)
    dm = ["Sepsis", "Pneumonia", "Acute kidney failure", "Anemia"]
    cases = {
        "ehr_set_f1": (lambda: WELL + "\n".join(rng.sample(dm, rng.randint(0, 4))), lambda: {"target": dm[:2]}),
        "ehr_yes_no": (lambda: rng.choice(["<think>\n\n</think>\n\nyes", " No.", "maybe", "<think>yes"]),
                       lambda: {"target": rng.choice(["yes", "no"])}),
        "ehr_format": (lambda: rng.choice([WELL + "Sepsis", "<think>x</think>\n\nA\nA", "plain"]),
                       lambda: {"thinking": True}),
        "medcalc": (lambda: f"<think>70 / 1.75^2</think>\n\nThe BMI is {rng.uniform(18, 28):.2f} kg/m²",
                    lambda: {"target": "22.857", "output_type": "decimal", "lower_limit": "21.714",
                             "upper_limit": "23.999", "calculator_id": 6}),
        "trial_match": (lambda: "<think>criteria</think>\n\n" + rng.choice(["eligible", "Excluded.", "not relevant",
                                                                           "unsure"]),
                        lambda: {"target": rng.choice(["eligible", "excluded", "not relevant"])}),
        "ehrshot_yes_no": (lambda: rng.choice(["yes", "no", "**No**", ""]),
                           lambda: {"target": rng.choice(["yes", "no"]), "class_weight": 2.0}),
    }
    return {name: ([out() for _ in range(n)], [lab() for _ in range(n)]) for name, (out, lab) in cases.items()}


def bench_rewards(n: int) -> list[tuple[str, float]]:
    from rl.rewards import get_reward, score_labelled

    rows = []
    data = _outputs(n)
    for name, (outs, labels) in data.items():
        fn = get_reward(name)
        t = time.perf_counter()
        fn(outs, labels)
        rows.append((name, n / (time.perf_counter() - t)))
    mixed_outs, mixed_labels = [], []
    for name, (outs, labels) in data.items():
        if name != "ehr_format":
            mixed_outs += outs[: n // 5]
            mixed_labels += [json.dumps({"reward": name, **lab}) for lab in labels[: n // 5]]
    t = time.perf_counter()
    score_labelled(mixed_outs, mixed_labels, {"task": 1.0, "ehr_format": 0.2})
    rows.append(("routed mix + format (JSON labels)", len(mixed_outs) / (time.perf_counter() - t)))
    return rows


def bench_rollout(model_dir: Path, prompts: int = 4, samples: int = 4, new_tokens: int = 64, rounds: int = 3):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)  # like a Ray Train worker (OMP_NUM_THREADS=1); 2 threads thrash on shared cores
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    from training.toy_data import toy_record

    texts = [tok.apply_chat_template([{"role": "user", "content": toy_record(i, random.Random(i), False, 2)["input"]
                                       + "\nPredict.\n/think"}], tokenize=False, add_generation_prompt=True)
             for i in range(prompts)]
    enc = tok(texts * samples, return_tensors="pt", padding=True)
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 pad_token_id=tok.pad_token_id)
        gen = (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]
        rates.append(gen / (time.perf_counter() - t))
    return statistics.median(rates), prompts * samples, enc["input_ids"].shape[1]


def bench_grpo(model_dir: Path, prompts_file: Path, out: Path, steps: int) -> dict:
    import ray

    from rl.config import RLJobConfig
    from rl.grpo.run import run_grpo

    cfg = RLJobConfig.model_validate({
        "model_path": str(model_dir), "data": {"sources": [{"kind": "ehr_ins", "path": str(prompts_file)}]},
        "reward": {"task": 1.0, "ehr_format": 0.2},
        "grpo": {"num_generations": 4, "prompts_per_step": 2, "max_prompt_length": 768,
                 "max_completion_length": 64, "learning_rate": 1e-3, "warmup_ratio": 0.0, "max_steps": steps,
                 "logging_steps": 1, "save_steps": steps},
        "scaling": {"num_workers": 2}, "run": {"name": "bench_grpo", "storage_path": str(out / "runs")}})
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        t = time.perf_counter()
        result = run_grpo(cfg)
        wall = time.perf_counter() - t
    finally:
        ray.shutdown()
    hist = [h for h in json.loads((result.final_model / "training_state.json").read_text())["log_history"]
            if "step_time" in h]
    times = [h["step_time"] for h in hist[1:]] or [h["step_time"] for h in hist]
    return {"s_per_step": statistics.mean(times), "wall": wall, "steps": steps,
            "completion_len": statistics.mean(h["completions/mean_length"] for h in hist)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--skip-grpo", action="store_true")
    args = parser.parse_args()
    out = Path(args.out_dir or tempfile.mkdtemp(prefix="bench_rl_"))
    out.mkdir(parents=True, exist_ok=True)

    from training.tiny_model import build_tiny_model
    from training.toy_data import write_toy_data

    model = build_tiny_model(out / "tiny")
    prompts = write_toy_data(out / "toy.jsonl", n=64, seed=0)

    print(f"\nReward functions ({args.outputs} outputs each, one process)")
    print(f"| {'reward':<36} | {'samples/s':>10} |\n|{'-' * 38}|{'-' * 12}|")
    for name, rate in bench_rewards(args.outputs):
        print(f"| {name:<36} | {rate:>10,.0f} |")

    rate, batch, prompt_len = bench_rollout(model)
    print(f"\nRollout (HF generate, tiny model, 1 thread, batch {batch}, prompt {prompt_len} tokens, 64 new)")
    print(f"| {'metric':<36} | {'value':>10} |\n|{'-' * 38}|{'-' * 12}|")
    print(f"| {'generated tokens/s':<36} | {rate:>10,.0f} |")
    if not args.skip_grpo:
        g = bench_grpo(model, prompts, out, args.steps)
        print(f"| {'GRPO s/step (2 CPU workers, 2x4)':<36} | {g['s_per_step']:>10.2f} |")
        print(f"| {'GRPO fit wall s (' + str(g['steps']) + ' steps, incl. start)':<36} | {g['wall']:>10.1f} |")
        print(f"| {'mean completion tokens':<36} | {g['completion_len']:>10.1f} |")


if __name__ == "__main__":
    main()
