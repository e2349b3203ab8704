"""What every Ray Train worker runs for ``backend: trl``: TRL's GRPOTrainer, metrics to Ray and MLflow, checkpoints.

- Per step (every ``grpo.logging_steps``) every worker calls ``ray.train.report`` with the trainer's log: reward
  mean and std, one ``rewards/<component>/mean`` per reward component, completion lengths, KL, clip ratios,
  loss, learning rate. Rank 0's values reach the dashboard (Train view); MLflow gets the same log (rank 0).
- Checkpoints: ``RayTrainReportCallback`` copies each HF checkpoint (every ``grpo.save_steps``) to Ray storage;
  a restarted worker group or a re-submitted job with the same run name resumes from the latest one (model,
  optimizer, scheduler, RNG, step), like SFT (:mod:`training.worker`).
- The final model goes to ``{run_dir}/final_model`` with ``training_state.json`` (the log history).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from transformers import TrainerCallback

from rl.config import RLJobConfig

log = logging.getLogger(__name__)


class RayMetricsReport(TrainerCallback):
    """``ray.train.report`` of every log (a barrier: all ranks log at the same steps). Steps that save a checkpoint
    are left to ``RayTrainReportCallback``, which reports the same metrics with the checkpoint."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        import ray.train

        if not logs or "reward" not in logs:
            return
        saving = args.save_strategy == "steps" and state.global_step % args.save_steps == 0
        if saving or state.global_step >= state.max_steps:
            return
        metrics = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}
        ray.train.report({**metrics, "step": state.global_step, "epoch": float(state.epoch or 0)})


def grpo_arguments(cfg: RLJobConfig, output_dir: str, reward_weights: list[float]):
    from trl import GRPOConfig

    g, t = cfg.grpo, cfg.trl
    per_device = cfg.completions_per_step // (cfg.scaling.num_workers * t.gradient_accumulation_steps)
    return GRPOConfig(
        output_dir=output_dir, per_device_train_batch_size=per_device,
        gradient_accumulation_steps=t.gradient_accumulation_steps, num_generations=g.num_generations,
        max_completion_length=g.max_completion_length, temperature=g.temperature, top_p=g.top_p,
        top_k=g.top_k, learning_rate=g.learning_rate, warmup_steps=g.warmup_ratio, beta=g.kl_coef,
        epsilon=g.clip_epsilon, num_train_epochs=g.num_epochs, max_steps=g.max_steps,
        logging_steps=g.logging_steps, logging_first_step=True, save_strategy="steps", save_steps=g.save_steps,
        save_total_limit=1, seed=g.seed, data_seed=g.seed, reward_weights=reward_weights, scale_rewards="group",
        report_to=["mlflow"] if cfg.run.mlflow_tracking_uri else [], run_name=cfg.run.name,
        use_cpu=not cfg.scaling.use_gpu, bf16=t.bf16, gradient_checkpointing=t.gradient_checkpointing,
        use_vllm=t.use_vllm, vllm_mode="colocate", vllm_gpu_memory_utilization=t.vllm_gpu_memory_utilization,
        ddp_find_unused_parameters=False, dataloader_num_workers=0, disable_tqdm=True, log_completions=False,
    )


def _configure_mlflow(cfg: RLJobConfig) -> None:
    from training.worker import mlflow_uri

    if cfg.run.mlflow_tracking_uri:
        uri = mlflow_uri(cfg.run.mlflow_tracking_uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "ehr-r1-rl-grpo")
        os.environ.setdefault("HF_MLFLOW_LOG_ARTIFACTS", "FALSE")


def train_loop_per_worker(config: dict) -> None:
    """Ray Train ``train_loop_per_worker``; ``config`` holds the job config and the paths the driver prepared."""
    import datasets
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    from rl.grpo.rewards import trl_reward_funcs
    from training.worker import AttemptLog, save_final_model

    cfg = RLJobConfig.model_validate(config["cfg"])
    run_dir, model_path = Path(config["run_dir"]), config["model_path"]
    logging.basicConfig(level=getattr(logging, cfg.log_level.upper(), logging.INFO))
    rank = ray.train.get_context().get_world_rank()
    _configure_mlflow(cfg)
    local_out = tempfile.mkdtemp(prefix=f"ehr_grpo_{cfg.run.name}_rank{rank}_")
    try:
        funcs, weights = trl_reward_funcs(cfg.reward)
        args = grpo_arguments(cfg, local_out, weights)
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype="bfloat16" if cfg.trl.bf16 else "float32")
        train_ds = datasets.load_dataset("json", data_files=config["prompts_path"], split="train")
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=train_ds,
                              processing_class=tokenizer, callbacks=[AttemptLog(run_dir, rank), RayMetricsReport()])
        trainer.add_callback(RayTrainReportCallback())
        trainer = prepare_trainer(trainer)
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            trainer.train()
        else:
            with checkpoint.as_directory() as ckpt_dir:
                resume = os.path.join(ckpt_dir, RayTrainReportCallback.CHECKPOINT_NAME)
                log.info("resuming from %s", resume)
                trainer.train(resume_from_checkpoint=resume)
        save_final_model(trainer, tokenizer, run_dir / "final_model", rank)
    finally:
        shutil.rmtree(local_out, ignore_errors=True)
