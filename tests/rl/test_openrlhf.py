"""OpenRLHF 0.11 (installed --no-deps): every emitted argv parsed by OpenRLHF's own parser; the reward hook loaded
by OpenRLHF's own loader and driven through its rollout executor and dataset preprocessing on CPU."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ray_jobs.config_loader import load_config
from rl.config import RLJobConfig
from rl.openrlhf.argv import build_argv
from rl.openrlhf.cli_check import OpenRLHFArgvError, openrlhf_version, parse_openrlhf_argv

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "ray_jobs" / "configs" / "train_rl").glob("*.yaml"))
HOOK = REPO / "rl" / "openrlhf" / "reward_func.py"
FIX = Path(__file__).parent / "fixtures"
PATHS = dict(model_path="/ckpt/stage2/final_model", prompts_path="/shared/rl/prompts.jsonl",
             reward_file="rl/openrlhf/reward_func.py", save_path="/shared/rl/final", ckpt_path="/shared/rl/ckpt")


def test_openrlhf_011_is_installed():
    version = openrlhf_version()
    assert version is not None and version.startswith("0.11."), f"openrlhf 0.11.x expected, found {version}"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_argv_parses_with_openrlhf(config):
    # a step limit is TRL's; OpenRLHF runs whole episodes (the config refuses grpo.max_steps for it)
    steps = ["grpo.max_steps=-1"] if load_config(RLJobConfig, config).grpo.max_steps > 0 else []
    cfg = load_config(RLJobConfig, config, ["backend=openrlhf", *steps])
    args = parse_openrlhf_argv(build_argv(cfg, **PATHS))
    g, o = cfg.grpo, cfg.openrlhf
    assert args.actor.model_name_or_path == PATHS["model_path"]
    assert args.vllm.num_engines == o.vllm_num_engines and args.train.colocate_all is o.colocate_all
    assert args.algo.advantage.estimator == g.advantage_estimator
    assert args.critic.model_name_or_path is None  # GRPO: no critic
    assert args.rollout.n_samples_per_prompt == g.num_generations
    assert args.rollout.batch_size == g.prompts_per_step
    assert args.train.batch_size == g.prompts_per_step * g.num_generations
    assert args.algo.kl.use_loss is (g.kl_coef > 0) and args.algo.kl.init_coef == g.kl_coef
    assert args.data.input_key == "prompt" and args.data.label_key == "label" and args.data.apply_chat_template
    assert args.data.max_len == g.max_prompt_length + g.max_completion_length
    assert args.rollout.max_new_tokens == g.max_completion_length
    assert args.reward.remote_url == [PATHS["reward_file"]]


@pytest.mark.parametrize("overrides", [
    ["grpo.kl_coef=0", "openrlhf.colocate_all=false", "openrlhf.packing_samples=false", "openrlhf.bf16=false"],
    ["grpo.advantage_estimator=reinforce_baseline", "openrlhf.vllm_num_engines=4", "grpo.prompts_per_step=8",
     "openrlhf.vllm_tensor_parallel_size=2", "openrlhf.actor_gpus_per_node=8", "openrlhf.ref_gpus_per_node=8"],
    ["grpo.advantage_estimator=dr_grpo", "openrlhf.extra_args=['--vllm.enforce_eager']"],
])
def test_variants_parse(overrides):
    cfg = load_config(RLJobConfig, CONFIGS[0], ["backend=openrlhf", "grpo.max_steps=-1", *overrides])
    parse_openrlhf_argv(build_argv(cfg, **PATHS))


@pytest.mark.parametrize("argv, fragment", [
    (["--vllm_num_engines", "2"], "rejected"),  # a pre-0.10.2 flat flag
    (["--algo.advantage.estimator", "group_norm", "--rollout.n_samples_per_prompt", "1"],
     "requires n_samples_per_prompt > 1"),
])
def test_openrlhf_parser_rejects(argv, fragment):
    """OpenRLHF's own rules, not ours: a renamed flag, and GRPO with one sample per prompt."""
    with pytest.raises(OpenRLHFArgvError, match=fragment):
        parse_openrlhf_argv(argv)


def _load_hook():
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    return SingleTurnAgentExecutor(str(HOOK))  # OpenRLHF's own importlib loader of --reward.remote_url *.py


def test_hook_loads_through_openrlhf_and_scores_a_batch(monkeypatch):
    monkeypatch.setenv("EHR_RL_REWARD_SPEC", json.dumps({"task": 1.0, "ehr_format": 0.5}))
    executor = _load_hook()
    prompt = "<|im_start|>user\nEHR\nWill the patient die?\n/no_think<|im_end|>\n<|im_start|>assistant\n"
    labels = [json.dumps({"reward": "ehr_yes_no", "target": "no", "thinking": False}),
              json.dumps({"reward": "ehr_set_f1", "target": ["Sepsis", "AKI"]}),
              json.dumps({"reward": "trial_match", "target": "excluded"})]
    responses = ["<think>\n\n</think>\n\nno<|im_end|>",
                 "<think>\n## Extraction\n## Reasoning\n## Final Results\n</think>\n\nSepsis<|im_end|>",
                 "<think>\nx\n</think>\n\nexcluded<|im_end|>"]
    out = executor.reward_func([prompt + r for r in responses], [prompt] * 3, labels)
    assert out["scores"].tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    assert out["extra_logs"]["reward_ehr_format"].tolist() == [1.0, 1.0, 0.0]
    assert out["rewards"].tolist() == pytest.approx([1.5, 2 / 3 + 0.5, 1.0])
    # OpenRLHF's own per-sample path (batch of one, through asyncio.to_thread)
    single = asyncio.run(executor._fetch_rewards_via_func([prompt + responses[0]], [prompt], [labels[0]]))
    assert float(single[0]["rewards"]) == pytest.approx(1.5)


class _FakeEngine:
    """Stands in for vLLM (GPU) behind OpenRLHF's executor: returns fixed token ids as the generation."""

    def __init__(self, ids):
        self.ids = ids

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=self.ids, finish_reason="stop", logprobs=None)])


def test_openrlhf_dataset_and_executor_with_exported_prompts(tmp_path):
    """Our exported jsonl through OpenRLHF's dataset loader and prompt preprocessing (its --data.apply_chat_template
    path), then one rollout through its SingleTurnAgentExecutor, scored by our hook."""
    from openrlhf.datasets.prompts_dataset import preprocess_data
    from openrlhf.datasets.utils import blending_datasets

    from rl.config import PromptSourceSpec
    from rl.prompts import export_prompts
    from training.tiny_model import build_tiny_model

    tok_dir = build_tiny_model(tmp_path / "tiny")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tok_dir)
    prompts = tmp_path / "prompts.jsonl"
    export_prompts([PromptSourceSpec(kind="ehr_ins", path=str(FIX / "ehr_ins.jsonl"), tasks=["Inpatient_Mortality"])],
                   prompts)
    data = blending_datasets(str(prompts), None, strategy=SimpleNamespace(print=lambda *a: None, is_rank_0=lambda: True), dataset_split="train")
    prompt, label = preprocess_data(data[0], input_key="prompt", label_key="label",
                                    apply_chat_template=tok.apply_chat_template)
    assert prompt.endswith("/no_think<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    executor = _load_hook()
    params = SimpleNamespace(max_tokens=8, logprobs=None)
    answer_ids = tok("no", add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    out = asyncio.run(executor.execute(prompt, label, params, 512, tok, _FakeEngine(answer_ids)))
    assert float(out["reward"]) == 1.0 and float(out["scores"]) == 1.0
    out = asyncio.run(executor.execute(prompt, label, params, 512, tok,
                                       _FakeEngine(tok("yes", add_special_tokens=False)["input_ids"])))
    assert float(out["reward"]) == 0.0


def test_executor_scores_a_left_truncated_prompt_as_the_whole_one(tmp_path):
    """OpenRLHF cuts a prompt longer than max_length - max_tokens from the left (system turn and template head go):
    the hook must still find the response, so a perfect answer keeps its reward and an unfinished one is not
    scored on the EHR lines of the prompt."""
    from openrlhf.datasets.prompts_dataset import preprocess_data
    from openrlhf.datasets.utils import blending_datasets
    from transformers import AutoTokenizer

    from rl.config import PromptSourceSpec
    from rl.openrlhf.submit import write_reward_file
    from rl.prompts import export_prompts
    from training.tiny_model import build_tiny_model

    tok = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "tiny"))
    prompts = tmp_path / "prompts.jsonl"
    export_prompts([PromptSourceSpec(kind="ehr_ins", path=str(FIX / "ehr_ins.jsonl"), tasks=["Diagnoses_ICD"])],
                   prompts)
    data = blending_datasets(str(prompts), None, strategy=SimpleNamespace(print=lambda *a: None, is_rank_0=lambda: True),
                             dataset_split="train")
    prompt, label = preprocess_data(data[0], input_key="prompt", label_key="label",
                                    apply_chat_template=tok.apply_chat_template)
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    hook = write_reward_file(tmp_path / "run" / "reward_func.py", {"task": 1.0, "ehr_format": 0.2})
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=str(hook))
    gold = "\n".join(json.loads(label)["target"])
    perfect = f"<think>\n## Extraction\nx\n## Reasoning\ny\n## Final Results\n{gold}\n</think>\n\n{gold}<|im_end|>"
    perfect_ids = tok(perfect, add_special_tokens=False)["input_ids"]
    params = SimpleNamespace(max_tokens=len(perfect_ids), logprobs=None)

    def reward(ids, cut):
        out = asyncio.run(executor.execute(prompt, label, params, n_prompt + len(perfect_ids) - cut, tok,
                                           _FakeEngine(ids)))
        assert len(out["observation_tokens"]) == n_prompt - cut + len(ids)  # OpenRLHF really cut `cut` tokens
        return float(out["reward"])

    whole = reward(perfect_ids, 0)
    assert whole == pytest.approx(1.2)
    for cut in (9, n_prompt // 2):
        assert reward(perfect_ids, cut) == pytest.approx(whole)
    unfinished = tok("<think>\n## Extraction\nthe patient", add_special_tokens=False)["input_ids"]
    assert reward(unfinished, 9) == 0.0


@pytest.mark.parametrize("query, prompt, response", [
    ("<|im_start|>user\nEHR<|im_end|>\n<|im_start|>assistant\nyes<|im_end|>",
     "<|im_start|>user\nEHR<|im_end|>\n<|im_start|>assistant\n", "yes"),
    # cut from the left, mid-word
    ("R lines<|im_end|>\n<|im_start|>assistant\nno<|im_end|>",
     "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nEHR lines<|im_end|>\n<|im_start|>assistant\n", "no"),
    # a response that repeats the generation prompt is not cut there
    ("EHR<|im_end|>\n<|im_start|>assistant\nA <|im_start|>assistant\n B",
     "<|im_start|>user\nEHR<|im_end|>\n<|im_start|>assistant\n", "A <|im_start|>assistant\n B"),
    # the no-think scaffold stays in the prompt
    ("x<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nno",
     "<|im_start|>user\nxx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", "no"),
])
def test_response_of(query, prompt, response):
    from rl.openrlhf.reward_func import response_of

    assert response_of(query, prompt) == response


@pytest.mark.parametrize("override, fragment", [("grpo.max_steps=10", "grpo.max_steps"), ("grpo.top_k=20", "grpo.top_k")])
def test_grpo_keys_openrlhf_cannot_honour_are_refused(override, fragment):
    from ray_jobs.config_loader import ConfigError

    with pytest.raises(ConfigError, match=fragment):
        load_config(RLJobConfig, CONFIGS[0], ["backend=openrlhf", "grpo.max_steps=-1", override])


def test_config_rejects_colocation_that_openrlhf_would_refuse():
    from ray_jobs.config_loader import ConfigError

    with pytest.raises(ConfigError, match="actor GPUs"):
        load_config(RLJobConfig, CONFIGS[0], ["backend=openrlhf", "grpo.max_steps=-1", "openrlhf.vllm_num_engines=3"])
