"""The strict config of one SFT job (stage 1 domain adaptation or stage 2 reasoning enhancement).

Defaults live here only; YAML presets under ``ray_jobs/configs/train_sft/`` set what differs. Cross-field rules are
checked at load time (all problems reported together); checks that need the filesystem (the base checkpoint loads,
data files exist) run in :func:`training.sft.preflight` on the driver, before any worker starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TinyModelSpec(_Strict):
    """Build a tiny random Qwen3 (``training.tiny_model``) at ``output_dir`` first and train that (demos, CI)."""

    output_dir: str
    vocab_size: int = Field(512, ge=300)
    seed: int = 0
    hidden_size: int = Field(64, ge=8)
    intermediate_size: int = Field(128, ge=8)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(2, ge=1)
    """Heads of 64 dimensions each (vLLM's head_dim), whatever ``hidden_size`` is."""
    max_position_embeddings: int = Field(2048, ge=64)
    """The model's context; evaluation fits prompt + new tokens into it. Training at ``data.max_seq_length`` equal
    to it means evaluation never shows the model a position it has not learnt."""


class DataSpec(_Strict):
    paths: list[str] = Field(min_length=1, max_length=2)
    """jsonl or parquet files of EHR-Ins records (instruction, input, output[, reasoning]). Stage 2 may name two:
    e.g. the reasoning set and a non-reasoning set to mix in."""
    format: Literal["plain", "reasoning"] = "plain"
    """plain (stage 1): user ``{input}\\n{instruction}\\n/no_think``, assistant = labels after the empty think block:
    the prompt evaluation and serving send with thinking off (the reference's stage 1 had no switch; a model that
    never saw ``/no_think`` answers the evaluation's no-think prompt with the majority answer of every task).
    reasoning (stage 2): records with a ``reasoning`` get ``\\n/think`` and ``<think>\\n{reasoning}\\n</think>\\n\\n``;
    records without one get ``\\n/no_think`` and the empty think block."""
    mix: Literal["shuffle", "curriculum"] = "shuffle"
    """With two paths: shuffle them together, or a curriculum whose share of the SECOND path ramps up linearly."""
    max_samples: int | None = Field(None, ge=1)
    """Use at most this many records per path: a seeded sample stratified by task (an equal share per task, the
    rest from tasks with more records), so a small budget still covers every task. EHR-Ins files run task by task:
    the first N records would hold a handful of tasks."""
    max_seq_length: int = Field(8192, ge=16)
    packing: bool = True
    """Pack several examples per row (block-diagonal attention via per-example position_ids) instead of padding."""
    pack_chunk: int = Field(1024, ge=1)
    """Examples packed together (first-fit decreasing): larger = fuller rows; order is kept across chunks only."""
    completion_only_loss: bool = False
    """Loss on the assistant turn only (labels -100 on the prompt). The reference trains on the full sequence."""
    prep_concurrency: int = Field(2, ge=1)
    """Ray Data actors that tokenize (``training.prepare``); each loads the tokenizer once."""
    prep_block_mb: int = Field(256, ge=1)
    """Tokens a preparation task holds at most (worst case: every example max_seq_length long): bounds the
    workers' memory whatever the dataset's size. Larger = fewer intermediate files."""
    toy_data_if_missing: int | None = Field(None, ge=1)
    """Demo only: write this many synthetic records (training.toy_data) at each missing path; with
    format: reasoning the first path gets reasoning records."""


class TrainSpec(_Strict):
    learning_rate: float = Field(2e-5, gt=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    """> 0 overrides num_train_epochs."""
    global_batch_size: int = Field(8, ge=1)
    """Rows per optimizer step over all workers. The reference's ``per_device_train_batch_size`` acted as the GLOBAL
    batch (accelerate split_batches): 8 in stage 1 and 64 in stage 2. With packing a row holds several examples."""
    per_device_train_batch_size: int = Field(1, ge=1)
    """Rows per worker per forward pass; gradient accumulation = global / (per_device * num_workers)."""
    gradient_checkpointing: bool = False
    bf16: bool = False
    deepspeed: str | None = None
    """Path of a DeepSpeed JSON (e.g. training/deepspeed/zero3.json); on CPU workers it is adapted (see
    training.deepspeed.load_deepspeed_config)."""
    logging_steps: int = Field(10, ge=1)
    save_steps: int = Field(1000, ge=1)
    seed: int = 42


class ScalingSpec(_Strict):
    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None


class RunSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    storage_path: str = "~/ray_results"
    """Shared filesystem path (NFS on multi-node). Holds checkpoints, prepared data and ``{name}/final_model``."""
    num_to_keep: int = Field(2, ge=1)
    max_failures: int = Field(1, ge=0)
    """Worker-group restarts from the latest checkpoint before the job fails."""
    on_change: Literal["rerun", "refuse"] = "rerun"
    """When ``{name}`` holds a run of another config or other inputs (``jobkit.stage_state``): move it aside to
    ``{name}.replaced-N`` and re-run, or refuse with the changed keys. The same config resumes or skips either way."""
    mlflow_tracking_uri: str | None = None
    """Where rank 0 logs metrics with MLflow: a directory (a local file store; mlflow 3.x keeps it in maintenance
    mode, so MLFLOW_ALLOW_FILE_STORE=true is set for it), or any MLflow URI (sqlite:///x.db, http://...).
    None = no MLflow."""


class FaultInjection(_Strict):
    """Testing only: rank 0 raises once (per run directory) right after optimizer step ``fail_at_step``."""

    fail_at_step: int | None = Field(None, ge=1)


class SFTJobConfig(_Strict):
    stage: Literal[1, 2] = 1
    model_path: str | None = None
    """Any HF causal-LM checkpoint; in stage 2 the stage-1 ``final_model``."""
    tiny_model: TinyModelSpec | None = None
    data: DataSpec
    train: TrainSpec = TrainSpec()
    scaling: ScalingSpec = ScalingSpec()
    run: RunSpec
    fault_injection: FaultInjection = FaultInjection()
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _cross_field(self) -> SFTJobConfig:
        errors: list[str] = []
        if (self.model_path is None) == (self.tiny_model is None):
            errors.append("model_path / tiny_model: set exactly one (a checkpoint path, or tiny_model: {output_dir: ...})")
        if self.stage == 2 and self.model_path is None:
            errors.append("model_path: stage 2 starts from the stage-1 checkpoint; set model_path to its final_model "
                          "directory (tiny_model is for stage 1)")
        if len(self.data.paths) == 2 and self.data.format != "reasoning":
            errors.append("data.paths: two datasets are only mixed in stage 2; set data.format: reasoning or keep one path")
        if self.data.mix == "curriculum" and len(self.data.paths) != 2:
            errors.append("data.mix: curriculum ramps in a second dataset; add a second data.paths entry or use shuffle")
        t, s = self.train, self.scaling
        per_step = t.per_device_train_batch_size * s.num_workers
        if t.global_batch_size % per_step:
            errors.append(f"train.global_batch_size: {t.global_batch_size} is not a multiple of "
                          f"per_device_train_batch_size * scaling.num_workers = {per_step}; change one of them")
        if t.save_steps % t.logging_steps:
            errors.append(f"train.save_steps: {t.save_steps} must be a multiple of train.logging_steps "
                          f"({t.logging_steps}) so every checkpoint carries fresh metrics")
        if t.bf16 and not s.use_gpu:
            errors.append("train.bf16: not supported on CPU workers (DeepSpeed-CPU and the tests run fp32); "
                          "set train.bf16: false or scaling.use_gpu: true")
        if t.num_train_epochs != int(t.num_train_epochs) and t.max_steps <= 0:
            errors.append("train.num_train_epochs: fractional epochs need train.max_steps; use a whole number")
        fail = self.fault_injection.fail_at_step
        if fail is not None and self.run.max_failures < 1:
            errors.append("fault_injection.fail_at_step: needs run.max_failures >= 1 to recover; raise it or unset")
        if fail is not None and t.max_steps > 0 and fail >= t.max_steps:
            errors.append(f"fault_injection.fail_at_step: {fail} is not before train.max_steps ({t.max_steps})")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def gradient_accumulation_steps(self) -> int:
        return self.train.global_batch_size // (self.train.per_device_train_batch_size * self.scaling.num_workers)
