"""The SFT job on the driver: preflight checks, data preparation, then a Ray Train ``TorchTrainer``.

Layout of a run (``{run.storage_path}/{run.name}/``, shared storage on multi-node clusters)::

    checkpoint_*/checkpoint/     HF checkpoints reported by the workers (Ray keeps run.num_to_keep)
    prepared_data/rows/          tokenized, packed rows as parquet shards (``training.prepare``, on Ray Data)
    prepared_data/stats.json     their statistics and fingerprint (reused when the inputs did not change)
    attempts.jsonl               the step each attempt started from
    final_model/                 the trained model in HF format (AutoModelForCausalLM.from_pretrained)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from training.config import SFTJobConfig
from training.deepspeed import resolve_config_path

log = logging.getLogger(__name__)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


@dataclass
class SFTResult:
    final_model: Path
    run_dir: Path
    metrics: dict
    data_stats: dict


def ensure_toy_data(cfg: SFTJobConfig) -> None:
    n = cfg.data.toy_data_if_missing
    if n is None:
        return
    from training.toy_data import write_toy_data

    for k, p in enumerate(cfg.data.paths):
        if not Path(p).is_file():
            reasoning = cfg.data.format == "reasoning" and k == 0
            log.info("writing %d toy records (reasoning=%s) to %s", n, reasoning, p)
            write_toy_data(p, n=n, reasoning=reasoning, seed=cfg.train.seed + k)


def resolve_model(cfg: SFTJobConfig) -> Path:
    """The checkpoint to train: ``model_path``, or the tiny model (built from the training data if missing)."""
    if cfg.tiny_model is not None:
        from training.data import corpus_lines
        from training.tiny_model import build_tiny_model

        spec = cfg.tiny_model
        return build_tiny_model(spec.output_dir, corpus=corpus_lines(cfg.data.paths, cfg.data.max_samples,
                                                                     cfg.train.seed),
                                vocab_size=spec.vocab_size, seed=spec.seed, hidden_size=spec.hidden_size,
                                intermediate_size=spec.intermediate_size, num_hidden_layers=spec.num_hidden_layers,
                                num_attention_heads=spec.num_attention_heads,
                                max_position_embeddings=spec.max_position_embeddings)
    return Path(cfg.model_path).expanduser()


def preflight(cfg: SFTJobConfig, model_path: Path) -> None:
    """Filesystem checks before any worker starts; every problem is reported together."""
    errors = []
    for p in cfg.data.paths:
        if not Path(p).is_file():
            errors.append(f"data.paths: {p} does not exist")
    if not (model_path / "config.json").is_file():
        what = "the stage-1 checkpoint (its final_model directory)" if cfg.stage == 2 else "an HF checkpoint"
        errors.append(f"model_path: {model_path} is not {what}: no config.json")
    elif not any((model_path / f).is_file() for f in WEIGHT_FILES):
        errors.append(f"model_path: {model_path} has a config.json but no weights ({' / '.join(WEIGHT_FILES)})")
    else:
        from transformers import AutoConfig, AutoTokenizer

        try:
            mcfg = AutoConfig.from_pretrained(model_path)
            tok = AutoTokenizer.from_pretrained(model_path)
        except Exception as exc:  # noqa: BLE001 - reported with the field name
            errors.append(f"model_path: {model_path} does not load ({type(exc).__name__}: {exc})")
        else:
            limit = getattr(mcfg, "max_position_embeddings", None)
            if limit and cfg.data.max_seq_length > limit:
                errors.append(f"data.max_seq_length: {cfg.data.max_seq_length} > the model's "
                              f"max_position_embeddings {limit}; lower it")
            if not tok.chat_template:
                errors.append(f"model_path: {model_path} has no chat template; use a Qwen3/ChatML checkpoint")
    if cfg.train.deepspeed and not resolve_config_path(cfg.train.deepspeed).is_file():
        errors.append(f"train.deepspeed: {cfg.train.deepspeed} does not exist")
    if errors:
        raise ValueError("cannot start the SFT job:\n  - " + "\n  - ".join(errors))


#: settings that do not change what a stage trains: free to change on resume (``jobkit.stage_state``)
SFT_VOLATILE = ("log_level", "run.max_failures", "run.num_to_keep", "run.on_change", "run.mlflow_tracking_uri",
                "fault_injection", "data.prep_concurrency", "data.prep_block_mb", "data.toy_data_if_missing",
                "scaling.resources_per_worker", "tiny_model.output_dir", "model_path")
#: settings whose change continues the run from its latest checkpoint rather than starting over
SFT_EXTENDABLE = ("train.max_steps",)


def sft_stage_key(cfg: SFTJobConfig, model_path: Path) -> dict:
    """The stage's config and the fingerprints of the model it starts from and of its data files."""
    from jobkit.stage_state import stage_key

    inputs = {"model": model_path, **{f"data.paths[{k}]": p for k, p in enumerate(cfg.data.paths)}}
    return stage_key(cfg.model_dump(mode="json"), inputs, SFT_VOLATILE)


def finished_result(run_dir: Path) -> SFTResult:
    import json

    final = run_dir / "final_model"
    stats_file = run_dir / "prepared_data" / "stats.json"
    state = json.loads((final / "training_state.json").read_text()) if (final / "training_state.json").is_file() else {}
    metrics = next((h for h in reversed(state.get("log_history", [])) if "loss" in h), {})
    return SFTResult(final_model=final, run_dir=run_dir, metrics=dict(metrics),
                     data_stats=json.loads(stats_file.read_text()) if stats_file.is_file() else {})


def run_sft(cfg: SFTJobConfig) -> SFTResult:
    """Prepare, train on Ray, and return where the final model is (at once when this config already finished)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from jobkit.stage_state import begin_stage, finish_stage
    from training.prepare import prepare_rows, shard_files
    from training.stream import ROW_COLUMNS, planned_steps, rows_dataset
    from training.worker import train_loop_per_worker

    ensure_toy_data(cfg)
    model_path = resolve_model(cfg).resolve()  # workers run in another cwd: pass absolute paths only
    preflight(cfg, model_path)
    ds_config = None
    if cfg.train.deepspeed:
        from training.deepspeed import load_deepspeed_config

        ds_config = load_deepspeed_config(cfg.train.deepspeed, on_cpu=not cfg.scaling.use_gpu)
    storage = Path(cfg.run.storage_path).expanduser().resolve()
    run_dir = storage / cfg.run.name
    if begin_stage(run_dir, sft_stage_key(cfg, model_path), cfg.run.on_change, f"SFT stage {cfg.stage}",
                   extendable=SFT_EXTENDABLE) == "done":
        return finished_result(run_dir)
    rows_dir, stats = prepare_rows(cfg.data, model_path, run_dir / "prepared_data", cfg.train.seed)
    scaling = cfg.scaling
    max_steps = planned_steps(stats["rows"], scaling.num_workers, cfg.train.per_device_train_batch_size,
                              cfg.gradient_accumulation_steps, cfg.train.num_train_epochs, cfg.train.max_steps)
    log.info("data: %d rows (%d examples, %d truncated, %d dropped) in %d shards; %d steps; stage %d from %s",
             stats["rows"], stats["examples"], stats["truncated"], stats["dropped_too_long"], stats["shards"],
             max_steps, cfg.stage, model_path)
    columns = [c for c in ROW_COLUMNS if c != "position_ids" or cfg.data.packing]
    train_rows = rows_dataset(shard_files(rows_dir), columns)

    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.model_dump(), "model_path": str(model_path), "max_steps": max_steps,
                           "run_dir": str(run_dir), "deepspeed": ds_config},
        datasets={"train": train_rows},
        scaling_config=ray.train.ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                               resources_per_worker=scaling.resources_per_worker),
        run_config=ray.train.RunConfig(
            name=cfg.run.name, storage_path=str(storage),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.run.num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures),
        ),
    )
    result = trainer.fit()
    final = run_dir / "final_model"
    if not (final / "config.json").is_file():
        raise RuntimeError(f"training finished but {final} holds no model; see the worker logs")
    finish_stage(run_dir)
    log.info("final model: %s (last checkpoint: %s)", final, result.checkpoint and result.checkpoint.path)
    return SFTResult(final_model=final, run_dir=run_dir, metrics=dict(result.metrics or {}), data_stats=stats)
