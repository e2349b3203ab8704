"""The TRL backend on the driver: export and fit the prompts, preflight, then a Ray Train ``TorchTrainer``.

Layout of a run (``{run.storage_path}/{run.name}/``)::

    prompts.jsonl          the exported prompts (all sources, one schema)
    prompts.fit.jsonl      the same, fitted to grpo.max_prompt_length with the actor's chat template
    prompts.selected.jsonl with data.select_by_pass_rate: the prompts the start model sometimes solves (+ .stats.json)
    checkpoint_*/          HF checkpoints reported by the workers
    attempts.jsonl         the step each attempt started from
    final_model/           the policy in HF format (+ training_state.json with the per-step log)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rl.config import RLJobConfig

log = logging.getLogger(__name__)


@dataclass
class RLResult:
    final_model: Path
    run_dir: Path
    metrics: dict
    prompts: dict
    #: ``rl.grpo.check.check_rl_run``: per-step reward statistics, the weight change, warnings
    check: dict | None = None


def run_dir_of(cfg: RLJobConfig) -> Path:
    return Path(cfg.run.storage_path).expanduser().resolve() / cfg.run.name


def prompts_path_of(cfg: RLJobConfig) -> Path:
    return Path(cfg.data.prompts_path).expanduser().resolve() if cfg.data.prompts_path else (
        run_dir_of(cfg) / "prompts.jsonl")


def preflight_model(model_path: Path, max_prompt_length: int, max_completion_length: int) -> None:
    """The starting checkpoint loads and has a chat template; every problem reported together."""
    from training.sft import WEIGHT_FILES

    errors = []
    if not (model_path / "config.json").is_file():
        errors.append(f"model_path: {model_path} is not an HF checkpoint (no config.json); point it to the stage-2 "
                      "final_model directory")
    elif not any((model_path / f).is_file() for f in WEIGHT_FILES):
        errors.append(f"model_path: {model_path} has no weights ({' / '.join(WEIGHT_FILES)})")
    else:
        from transformers import AutoConfig, AutoTokenizer

        mcfg, tok = AutoConfig.from_pretrained(model_path), AutoTokenizer.from_pretrained(model_path)
        limit = getattr(mcfg, "max_position_embeddings", None)
        if limit and max_prompt_length + max_completion_length > limit:
            errors.append(f"grpo.max_prompt_length + grpo.max_completion_length = "
                          f"{max_prompt_length + max_completion_length} > the model's max_position_embeddings "
                          f"{limit}; lower them")
        if not tok.chat_template:
            errors.append(f"model_path: {model_path} has no chat template; use the stage-2 checkpoint")
    if errors:
        raise ValueError("cannot start the RL job:\n  - " + "\n  - ".join(errors))


def prepare_prompts(cfg: RLJobConfig, model_path: Path) -> tuple[Path, dict]:
    from transformers import AutoTokenizer

    from rl.grpo.data import fit_prompts
    from rl.prompts import export_prompts

    raw = prompts_path_of(cfg)
    counts = export_prompts(cfg.data.sources, raw, cfg.data.seed)
    fitted = raw.with_name(raw.stem + ".fit.jsonl")
    stats = fit_prompts(raw, AutoTokenizer.from_pretrained(model_path), cfg.grpo.max_prompt_length, fitted)
    log.info("prompts: %d (%d cut to %d tokens, %d dropped)", stats.prompts, stats.truncated,
             cfg.grpo.max_prompt_length, stats.dropped)
    if cfg.data.select_by_pass_rate is None:
        return fitted, counts
    return select_prompts(cfg, model_path, fitted), counts


def sampling_settings(cfg: RLJobConfig, samples: int, seed: int):
    from rl.grpo.pass_rate import SamplingSettings

    g = cfg.grpo
    return SamplingSettings(samples=samples, max_new_tokens=g.max_completion_length, temperature=g.temperature,
                            top_p=g.top_p, top_k=g.top_k, seed=seed)


def select_prompts(cfg: RLJobConfig, model_path: Path, fitted: Path) -> Path:
    """Keep the prompts the start model sometimes solves; a re-run with the same inputs reuses the selection."""
    import hashlib
    import json

    from rl.grpo.pass_rate import max_total_reward, read_records, remote_pass_rates, select_by_pass_rate, \
        write_records

    spec = cfg.data.select_by_pass_rate
    out = fitted.with_name("prompts.selected.jsonl")
    stats_path = out.with_suffix(".stats.json")
    settings = sampling_settings(cfg, spec.samples, cfg.grpo.seed)
    key = hashlib.sha256(fitted.read_bytes() + json.dumps(
        [str(model_path), spec.model_dump(), repr(settings), cfg.reward]).encode()).hexdigest()
    if out.is_file() and stats_path.is_file() and json.loads(stats_path.read_text()).get("key") == key:
        log.info("prompts: reusing the pass-rate selection %s", out)
        return out
    records = read_records(fitted)
    log.info("prompts: sampling %d completions for each of %d candidates with the start model (pass rates)",
             spec.samples, len(records))
    rates = remote_pass_rates(str(model_path), records, cfg.reward, settings, cfg.scaling.use_gpu)
    kept, stats = select_by_pass_rate(records, rates, spec.keep, max_total_reward(cfg.reward),
                                      min_keep=cfg.grpo.prompts_per_step, seed=cfg.data.seed)
    write_records(kept, out)
    stats_path.write_text(json.dumps({**stats, "key": key, "rates": {r["id"]: r["pass_rate"] for r in kept}},
                                     indent=1))
    log.info("prompts: kept %d of %d candidates (%d with mixed outcomes, %d always 0, %d always max; mean pass "
             "rate %.2f -> %.2f)", stats["kept"], stats["candidates"], stats["mixed"], stats["always_zero"],
             stats["always_max"], stats["mean_candidate_rate"], stats["mean_kept_rate"])
    if stats["filled"]:
        log.warning("prompts: only %d candidates have mixed outcomes; %d more give no gradient. Raise the sources' "
                    "max_samples or grpo.temperature", stats["mixed"], stats["filled"])
    return out


def recheck_pass_rates(cfg: RLJobConfig, start: Path, final: Path, prompts: Path) -> dict:
    """The start model and the final policy on the kept prompts, fresh seeds: did RL raise the mean reward?"""
    from rl.grpo.pass_rate import mean, read_records, remote_pass_rates

    records = read_records(prompts)
    settings = sampling_settings(cfg, cfg.data.select_by_pass_rate.recheck_samples, cfg.grpo.seed + 1)
    before = remote_pass_rates(str(start), records, cfg.reward, settings, cfg.scaling.use_gpu)
    after = remote_pass_rates(str(final), records, cfg.reward, settings, cfg.scaling.use_gpu)
    return {"prompts": len(records), "samples": settings.samples, "pass_rate_start": mean(before),
            "pass_rate_final": mean(after), "per_prompt": [
                {"id": r["id"], "task": r["task"], "start": b, "final": a} for r, b, a in zip(records, before, after)]}


#: settings that do not change what the RL stage trains (``jobkit.stage_state``)
RL_VOLATILE = ("log_level", "run.max_failures", "run.num_to_keep", "run.on_change", "run.mlflow_tracking_uri",
               "scaling.resources_per_worker", "model_path", "openrlhf")
#: settings whose change continues the run from its latest checkpoint rather than starting over
RL_EXTENDABLE = ("grpo.max_steps",)


def rl_stage_key(cfg: RLJobConfig, model_path: Path) -> dict:
    """The RL config and the fingerprints of the policy it starts from and of its prompt sources."""
    from jobkit.stage_state import stage_key

    inputs: dict[str, Path] = {"model": model_path}
    for k, src in enumerate(cfg.data.sources):
        root = Path(src.path).expanduser()
        inputs[f"data.sources[{k}]"] = root
        for sub in ([src.labels] if src.labels else []) + ([src.qrels] if src.kind == "trial_matching" else []):
            inputs[f"data.sources[{k}].{sub}"] = root / sub if not Path(sub).is_absolute() else Path(sub)
    return stage_key(cfg.model_dump(mode="json"), inputs, RL_VOLATILE)


def finished_rl_result(cfg: RLJobConfig, run_dir: Path) -> RLResult:
    import json

    check_file = run_dir / "rl_check.json"
    check = json.loads(check_file.read_text()) if check_file.is_file() else None
    return RLResult(final_model=run_dir / "final_model", run_dir=run_dir, metrics={}, prompts={}, check=check)


def run_grpo(cfg: RLJobConfig) -> RLResult:
    """Export prompts, then GRPO with TRL on Ray Train; returns where the final model is."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from rl.grpo.worker import train_loop_per_worker

    if cfg.backend != "trl":
        raise ValueError(f"run_grpo runs backend 'trl'; this config says {cfg.backend!r} (use rl.openrlhf.submit)")
    model_path = Path(cfg.model_path).expanduser().resolve()
    preflight_model(model_path, cfg.grpo.max_prompt_length, cfg.grpo.max_completion_length)
    run_dir = run_dir_of(cfg)
    from jobkit.stage_state import begin_stage, finish_stage

    if begin_stage(run_dir, rl_stage_key(cfg, model_path), cfg.run.on_change, "RL stage",
                   extendable=RL_EXTENDABLE) == "done":
        return finished_rl_result(cfg, run_dir)
    prompts, counts = prepare_prompts(cfg, model_path)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.model_dump(), "model_path": str(model_path), "prompts_path": str(prompts),
                           "run_dir": str(run_dir)},
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.scaling.num_workers, use_gpu=cfg.scaling.use_gpu,
                                               resources_per_worker=cfg.scaling.resources_per_worker),
        run_config=ray.train.RunConfig(
            name=cfg.run.name, storage_path=str(run_dir.parent),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.run.num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=cfg.run.max_failures)),
    )
    result = trainer.fit()
    final = run_dir / "final_model"
    if not (final / "config.json").is_file():
        raise RuntimeError(f"GRPO finished but {final} holds no model; see the worker logs")
    log.info("final model: %s", final)
    from rl.grpo.check import check_rl_run

    recheck = recheck_pass_rates(cfg, model_path, final, prompts) if cfg.data.select_by_pass_rate else None
    check = check_rl_run(model_path, final, recheck)
    finish_stage(run_dir)
    return RLResult(final_model=final, run_dir=run_dir, metrics=dict(result.metrics or {}), prompts=counts,
                    check=check)
