"""Fast parts of the TRL backend: prompt fitting to the actor's context, TRL reward adapters, GRPO arguments."""

from __future__ import annotations

import json

import pytest

from rl.config import RLJobConfig
from rl.grpo.data import fit_prompts
from rl.grpo.rewards import trl_reward_funcs
from rl.prompts import RLPrompt, write_prompts
from training.chat_format import build_messages


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from training.tiny_model import build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny") / "m"))


def _prompt(i, ehr):
    return RLPrompt.make(f"p{i}", "ehr_ins", "t", build_messages(ehr, "Will the patient die? Answer yes or no.", False),
                         reward="ehr_yes_no", target="no", thinking=False)


def test_long_prompts_lose_their_oldest_events_not_the_instruction(tmp_path, tokenizer):
    long_ehr = "\n".join(f"## Labotary Test Events [2150-01-{d:02d} 05:00:00]\n| Creatinine | {d} | mg/dL |"
                         for d in range(1, 29))
    src = tmp_path / "prompts.jsonl"
    write_prompts([_prompt(0, "short record"), _prompt(1, long_ehr)], src)
    stats = fit_prompts(src, tokenizer, 200, tmp_path / "fit.jsonl")
    assert (stats.prompts, stats.truncated, stats.dropped) == (2, 1, 0) and stats.max_prompt_tokens <= 200
    recs = [json.loads(x) for x in (tmp_path / "fit.jsonl").read_text().splitlines()]
    assert recs[0]["prompt"][-1]["content"].startswith("short record")
    cut = recs[1]["prompt"][-1]["content"]
    assert cut.endswith("Will the patient die? Answer yes or no.\n/no_think")
    assert "2150-01-28" in cut and "2150-01-01 " not in cut  # newest events kept
    assert json.loads((tmp_path / "fit.stats.json").read_text())["truncated"] == 1


def test_prompt_that_cannot_fit_is_an_error(tmp_path, tokenizer):
    src = tmp_path / "prompts.jsonl"
    write_prompts([_prompt(0, "x " * 400)], src)
    with pytest.raises(ValueError, match="longer than grpo.max_prompt_length=20"):
        fit_prompts(src, tokenizer, 20, tmp_path / "fit.jsonl")
    assert not (tmp_path / "fit.jsonl").exists()


def test_trl_reward_funcs_name_components_and_read_conversational_completions():
    funcs, weights = trl_reward_funcs({"task": 1.0, "ehr_format": 0.2})
    assert [f.__name__ for f in funcs] == ["task", "ehr_format"] and weights == [1.0, 0.2]
    completions = [[{"role": "assistant", "content": "no"}], [{"role": "assistant", "content": "yes"}]]
    label = json.dumps({"reward": "ehr_yes_no", "target": "no", "thinking": False})
    kwargs = {"label": [label, label], "id": ["a", "b"], "trainer_state": None, "completion_ids": [[1], [2]]}
    assert funcs[0](prompts=["p", "p"], completions=completions, **kwargs) == [1.0, 0.0]
    assert funcs[1](prompts=["p", "p"], completions=completions, **kwargs) == [1.0, 1.0]


def test_grpo_arguments_follow_the_config(tmp_path):
    from rl.grpo.worker import grpo_arguments

    cfg = RLJobConfig.model_validate({
        "model_path": "m", "data": {"sources": [{"kind": "ehr_ins", "path": "x.jsonl"}]},
        "grpo": {"num_generations": 4, "prompts_per_step": 4, "kl_coef": 0.02, "max_completion_length": 32},
        "trl": {"gradient_accumulation_steps": 2}, "scaling": {"num_workers": 2}, "run": {"name": "r"}})
    args = grpo_arguments(cfg, str(tmp_path), [1.0])
    # 4 prompts x 4 generations = 16 completions per step = 4 per device x 2 workers x 2 accumulation
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 2
    assert args.num_generations == 4 and args.beta == 0.02 and args.max_completion_length == 32
    assert args.use_cpu and not args.use_vllm
