"""What every Ray Train worker runs: the HF Trainer on its share of the prepared rows, checkpoints reported to Ray.

- Data: this worker's Ray Data shard (``ray.train.get_dataset_shard("train")``), streamed (``training.stream``).

- Resume: ``ray.train.get_checkpoint()`` (the latest reported checkpoint, after a worker-group restart or a
  re-submitted job with the same run name) -> HF ``resume_from_checkpoint``, which restores model, optimizer,
  scheduler, RNG and ``global_step`` and skips the batches already trained on.
- Metrics: loss, lr, grad norm (HF) plus ``tokens_per_sec_per_worker`` and ``padding_fraction`` (this worker's
  batches since the previous log) go to the MLflow file store (rank 0) and, with every checkpoint, to Ray.
- ``attempts.jsonl`` in the run directory records the step every attempt started from (progress across restarts).
- The final model is written by rank 0 in HF format to ``{run_dir}/final_model`` (atomically, via a temp dir).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

from training.collate import SFTCollator
from training.config import SFTJobConfig
from training.stream import RowStream, stream_loader

log = logging.getLogger(__name__)
ATTEMPTS_FILE = "attempts.jsonl"
FAULT_MARKER = ".fault_injected"


class SFTTrainer(Trainer):
    """HF Trainer that reads a :class:`RowStream` and adds the collator's throughput/padding metrics to every log."""

    def get_train_dataloader(self):
        if isinstance(self.train_dataset, RowStream):
            return stream_loader(self.train_dataset)
        return super().get_train_dataloader()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        collator = self.data_collator
        if "loss" in logs and isinstance(collator, SFTCollator):
            logs.update(collator.pop_metrics())
        super().log(logs, start_time)


class AttemptLog(TrainerCallback):
    def __init__(self, run_dir: Path, rank: int):
        self.path, self.rank = run_dir / ATTEMPTS_FILE, rank

    def on_train_begin(self, args, state, control, **kwargs):
        if self.rank == 0:
            with self.path.open("a") as fh:
                fh.write(json.dumps({"start_step": state.global_step, "time": time.time()}) + "\n")


class FailOnce(TrainerCallback):
    """Fault injection for tests: rank 0 raises right after step ``step``, once per run directory."""

    def __init__(self, step: int, run_dir: Path, rank: int):
        self.step, self.marker, self.rank = step, run_dir / FAULT_MARKER, rank

    def on_step_end(self, args, state, control, **kwargs):
        if self.rank == 0 and state.global_step == self.step and not self.marker.exists():
            self.marker.write_text(str(self.step))
            raise RuntimeError(f"fault_injection: simulated worker crash after step {self.step}")


def load_model_for_training(model_path: str | Path, bf16: bool = False):
    """The model with its KV cache off. Required for packing: transformers only derives the block-diagonal mask
    from position_ids when no cache is passed, and ``use_cache=True`` creates one even in training mode."""
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16 if bf16 else torch.float32)
    model.config.use_cache = False
    return model


def training_arguments(cfg: SFTJobConfig, output_dir: str, grad_accum: int, max_steps: int,
                       deepspeed: dict | None = None) -> TrainingArguments:
    """HF arguments from the job config; ``max_steps`` is the driver's plan (``training.stream.planned_steps``:
    a streamed dataset has no length), ``deepspeed`` the config dict the driver loaded (or None)."""
    t = cfg.train
    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type, warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay,
        max_steps=max_steps, logging_steps=t.logging_steps,
        logging_first_step=True, save_strategy="steps", save_steps=t.save_steps, save_total_limit=1,
        report_to=["mlflow"] if cfg.run.mlflow_tracking_uri else [], run_name=cfg.run.name,
        use_cpu=not cfg.scaling.use_gpu, bf16=t.bf16, gradient_checkpointing=t.gradient_checkpointing,
        deepspeed=deepspeed, ddp_find_unused_parameters=False, seed=t.seed, data_seed=t.seed,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
    )


def mlflow_uri(value: str) -> str:
    """A directory -> its ``file://`` URI; anything with a scheme is kept."""
    return value if "://" in value or value.startswith("file:") else Path(value).expanduser().resolve().as_uri()


def _configure_mlflow(cfg: SFTJobConfig) -> None:
    if cfg.run.mlflow_tracking_uri:
        uri = mlflow_uri(cfg.run.mlflow_tracking_uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", f"ehr-r1-sft-stage{cfg.stage}")
        os.environ.setdefault("HF_MLFLOW_LOG_ARTIFACTS", "FALSE")


def train_loop_per_worker(config: dict) -> None:
    """Ray Train ``train_loop_per_worker``; ``config`` holds the job config and the paths the driver prepared."""
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    cfg = SFTJobConfig.model_validate(config["cfg"])
    run_dir, model_path = Path(config["run_dir"]), config["model_path"]
    logging.basicConfig(level=getattr(logging, cfg.log_level.upper(), logging.INFO))
    rank = ray.train.get_context().get_world_rank()
    _configure_mlflow(cfg)
    if config.get("deepspeed"):
        if not cfg.scaling.use_gpu:
            os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before anything imports deepspeed
        import deepspeed

        # Adopt Ray's process group now: ZeRO-3's zero.Init in from_pretrained checks the batch size against
        # DeepSpeed's world size, which is 1 until its comm layer is initialised.
        deepspeed.init_distributed()

    # Scratch dir for HF's own checkpoints (RayTrainReportCallback copies each one to storage). Fresh per attempt:
    # stale checkpoint-N dirs would be picked up by get_last_checkpoint.
    local_out = tempfile.mkdtemp(prefix=f"ehr_sft_{cfg.run.name}_rank{rank}_")
    try:
        # Arguments BEFORE the model: with ZeRO-3 they register the DeepSpeed config, so from_pretrained loads the
        # weights already partitioned (zero.Init) instead of a full copy per worker.
        args = training_arguments(cfg, local_out, cfg.gradient_accumulation_steps, config["max_steps"],
                                  config.get("deepspeed"))
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = load_model_for_training(model_path, bf16=cfg.train.bf16)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        collator = SFTCollator(pad_id=pad_id)
        train_ds = RowStream(ray.train.get_dataset_shard("train"), cfg.train.per_device_train_batch_size, collator)

        callbacks: list[TrainerCallback] = [AttemptLog(run_dir, rank)]
        if cfg.fault_injection.fail_at_step is not None:
            callbacks.append(FailOnce(cfg.fault_injection.fail_at_step, run_dir, rank))
        trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collator,
                             processing_class=tokenizer, callbacks=callbacks)
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


def deepspeed_report(trainer: Trainer) -> dict | None:
    """What DeepSpeed really ran (None without it): the engine's ZeRO stage, and how much of the model this rank
    holds - under ZeRO-3 every parameter is partitioned and a rank keeps about ``1 / world_size`` of it."""
    engine = getattr(trainer, "deepspeed", None)
    if engine is None:
        return None
    params = list(engine.module.parameters())
    full = sum(int(getattr(p, "ds_numel", p.numel())) for p in params)
    local = sum(int(p.ds_tensor.numel()) if hasattr(p, "ds_tensor") else p.numel() for p in params)
    return {"zero_stage": int(engine.zero_optimization_stage()), "world_size": int(engine.world_size),
            "parameters": len(params), "partitioned_parameters": sum(hasattr(p, "ds_tensor") for p in params),
            "local_fraction": local / max(full, 1)}


def save_final_model(trainer: Trainer, tokenizer, final_dir: Path, rank: int) -> None:
    """HF-format model + tokenizer in ``final_dir``. Every rank calls it (ZeRO-3 gathers); rank 0 writes."""
    tmp = final_dir.with_name(final_dir.name + ".tmp")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    zero = deepspeed_report(trainer)  # before saving: ZeRO-3 gathers the weights to save them
    trainer.save_model(str(tmp))
    if rank == 0:
        tokenizer.save_pretrained(str(tmp))
        (tmp / "training_state.json").write_text(json.dumps(
            {"global_step": trainer.state.global_step, "log_history": trainer.state.log_history,
             **({"deepspeed": zero} if zero else {})}, indent=1))
        shutil.rmtree(final_dir, ignore_errors=True)
        os.replace(tmp, final_dir)
        log.info("final model saved to %s", final_dir)
