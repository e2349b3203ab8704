"""The RL config -> ``python -m openrlhf.cli.train_ppo_ray`` argv (OpenRLHF 0.11.x dotted flags).

This is the only module that knows OpenRLHF's flag names; :mod:`rl.openrlhf.cli_check` parses its output with
OpenRLHF's own argument parser (tests and the job's preflight), so a renamed flag fails before any GPU is booked.

Mapping (GRPO = ``--algo.advantage.estimator group_norm`` with the k3 KL loss, as OpenRLHF's examples do):
prompts per step -> ``--rollout.batch_size``; group size -> ``--rollout.n_samples_per_prompt``; one optimizer step
per rollout (on-policy) -> ``--train.batch_size = prompts x group``; prompt + completion budget ->
``--data.max_len`` and ``--rollout.max_new_tokens``.
"""

from __future__ import annotations

from rl.config import RLJobConfig
from rl.prompts.schema import LABEL_KEY, PROMPT_KEY

MODULE = "openrlhf.cli.train_ppo_ray"


def _num(x: float) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def build_argv(cfg: RLJobConfig, *, model_path: str, prompts_path: str, reward_file: str, save_path: str,
               ckpt_path: str) -> list[str]:
    """Flags for ``train_ppo_ray`` (without the ``python -m`` prefix)."""
    g, o = cfg.grpo, cfg.openrlhf
    argv = [
        "--actor.model_name_or_path", model_path,
        "--actor.num_nodes", str(o.actor_num_nodes), "--actor.num_gpus_per_node", str(o.actor_gpus_per_node),
        "--ref.num_nodes", str(o.ref_num_nodes), "--ref.num_gpus_per_node", str(o.ref_gpus_per_node),
        "--vllm.num_engines", str(o.vllm_num_engines),
        "--vllm.tensor_parallel_size", str(o.vllm_tensor_parallel_size),
        "--vllm.gpu_memory_utilization", _num(o.vllm_gpu_memory_utilization),
        "--reward.remote_url", reward_file,
        "--data.prompt_dataset", prompts_path, "--data.input_key", PROMPT_KEY, "--data.label_key", LABEL_KEY,
        "--data.apply_chat_template",
        "--data.max_len", str(g.max_prompt_length + g.max_completion_length),
        "--rollout.max_new_tokens", str(g.max_completion_length),
        "--algo.advantage.estimator", g.advantage_estimator,
        "--rollout.n_samples_per_prompt", str(g.num_generations),
        "--rollout.batch_size", str(g.prompts_per_step),
        "--rollout.micro_batch_size", str(o.rollout_micro_batch_size),
        "--rollout.temperature", _num(g.temperature), "--rollout.top_p", _num(g.top_p),
        "--train.batch_size", str(g.prompts_per_step * g.num_generations),
        "--train.micro_batch_size", str(o.train_micro_batch_size),
        "--train.max_epochs", "1", "--train.num_episodes", str(max(1, int(g.num_epochs))),
        "--train.seed", str(g.seed),
        "--actor.adam.lr", _num(g.learning_rate), "--actor.lr_warmup_ratio", _num(g.warmup_ratio),
        "--actor.eps_clip", _num(g.clip_epsilon),
        "--algo.kl.init_coef", _num(g.kl_coef),
        "--ds.zero_stage", str(o.zero_stage),
        "--ckpt.output_dir", save_path, "--ckpt.path", ckpt_path, "--ckpt.save_steps", str(g.save_steps),
        "--ckpt.save_hf", "--ckpt.load_enable",
        "--logger.logging_steps", str(g.logging_steps),
    ]
    if g.kl_coef > 0:
        argv += ["--algo.kl.use_loss", "--algo.kl.estimator", "k3"]
    if o.colocate_all:
        argv += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
    if o.bf16:
        argv += ["--ds.param_dtype", "bf16"]
    if o.packing_samples:
        argv += ["--ds.packing_samples"]
    if o.gradient_checkpointing:
        argv += ["--actor.gradient_checkpointing_enable"]
    return argv + list(o.extra_args)


def build_command(cfg: RLJobConfig, **paths: str) -> list[str]:
    """The full entrypoint: ``python3 -m openrlhf.cli.train_ppo_ray <argv>``."""
    return ["python3", "-m", MODULE, *build_argv(cfg, **paths)]
