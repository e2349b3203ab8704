"""Run the whole chain (``ray_jobs.pipeline``): every stage in order, each skipping work already done.

    datasets (timelines + EHR-Ins / EHR-Bench, leakage-audited) -> thinking graph (stage-2 reasoning records)
    -> SFT stage 1 -> SFT stage 2 -> RL (optional) -> evaluation (optional): the untrained model, every stage and
    the baselines on the same samples, one comparison report with paired differences stage over stage

One run directory (``output_dir``) holds every stage's resolved config (``run_configs/<stage>.yaml``, written
before the first stage starts), data manifests, checkpoints, the MLflow store and the report. A killed job
re-run with the same config resumes from the last finished stage: finished datasets are skipped by fingerprint,
the thinking graph skips finished parts, a training stage is skipped when it finished with the same config and
inputs (``jobkit.stage_state``; a changed config or a retrained upstream model re-runs it), an interrupted one
resumes from its latest checkpoint, and evaluation reuses a prediction only for the same weights and prompt.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestration.config import PipelineConfig

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    datasets: dict[str, dict]
    reasoning_jsonl: Path
    stage1_model: Path
    stage2_model: Path
    report: Path | None = None
    rl_model: Path | None = None
    #: evaluation metrics of the last model (``evaluation.run.EvaluationResult.metrics``) when evaluation ran
    metrics: dict | None = None
    dashboard_url: str | None = None
    #: the comparison of every evaluated model (``comparison.html``) and its headline rows (name -> overall)
    comparison: Path | None = None
    headline: dict[str, dict] | None = None
    #: what ``rl.grpo.check`` found wrong with the RL run (zero-variance groups, unchanged weights); empty = fine
    rl_warnings: list[str] | None = None
    #: the whole ``rl_check.json`` (per-step log, pass rates before/after, notes, plot)
    rl_check: dict | None = None

    @property
    def final_model(self) -> Path:
        return self.rl_model or self.stage2_model


def write_resolved_configs(cfg: PipelineConfig) -> Path:
    """``<output_dir>/run_configs/<stage>.yaml``: what each stage runs with, paths wired (atomic writes)."""
    folder = cfg.out / "run_configs"
    folder.mkdir(parents=True, exist_ok=True)
    stages = {"pipeline": cfg.model_dump(mode="json"),
              **{name: stage.model_dump(mode="json") for name, stage in cfg.resolved_stage_configs().items()}}
    for name, data in stages.items():
        tmp = folder / f".{name}.yaml.tmp"
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(tmp, folder / f"{name}.yaml")
    return folder


def _dashboard_url() -> str | None:
    import ray

    url = getattr(ray.get_runtime_context(), "dashboard_url", None) or os.environ.get("RAY_DASHBOARD_URL")
    if not url:
        try:
            from ray._private.worker import get_dashboard_url  # private, but what `ray.init` prints

            url = get_dashboard_url()
        except Exception:  # noqa: BLE001 - the address is a convenience in the summary, never a failure
            url = None
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return url or None


def _sft_stage(cfg: PipelineConfig, stage: int, step: str) -> Path:
    final = cfg.final_model(stage)
    log.info("%s SFT stage %d -> %s", step, stage, final)
    from training.sft import run_sft  # skips the stage when this config and its inputs already finished

    return run_sft(cfg.stage_config(stage)).final_model


def run_rl_stage(cfg: PipelineConfig, step: str = "[RL]") -> Path | None:
    """GRPO from the stage-2 model (TRL on Ray Train); None when not configured. ``run_grpo`` skips a run that
    finished with this config and these inputs and re-runs one whose config or inputs changed."""
    rl = cfg.rl_config()
    if rl is None:
        return None
    final = Path(rl.run.storage_path).expanduser().resolve() / rl.run.name / "final_model"
    log.info("%s GRPO from stage 2 -> %s", step, final)
    if rl.backend != "trl":
        raise ValueError("rl.backend: the pipeline runs the RL stage in-process with backend trl; submit OpenRLHF "
                         "runs with ray_jobs.train_rl")
    from rl.grpo.run import run_grpo

    return run_grpo(rl).final_model


def run_pipeline(cfg: PipelineConfig) -> PipelineResult:
    from data_pipeline.datasets.build import build_datasets
    from data_pipeline.thinking_graph.pipeline import build as build_thinking_graph
    from jobkit.ray_runtime import init_ray

    configs = write_resolved_configs(cfg)
    log.info("resolved config of every stage -> %s", configs)
    init_ray(cfg.ray_address, cfg.ray_num_cpus)
    steps = 4 + (cfg.rl_config() is not None) + (cfg.evaluation_config() is not None)
    log.info("[1/%d] timelines + datasets -> %s", steps, cfg.out / "datasets")
    summaries = build_datasets(cfg.datasets_config())

    tg = cfg.thinking_graph_config()
    log.info("[2/%d] stage-2 reasoning records (thinking graph, %s) -> %s", steps, tg.synthesis.mode,
             cfg.reasoning_jsonl)
    if build_thinking_graph(tg)["records"] == 0:
        raise RuntimeError(f"the thinking graph wrote no reasoning records to {cfg.reasoning_jsonl}; lower "
                           "thinking_graph.evidence.min_support / threshold or set evidence.require_graph: false")

    stage1 = _sft_stage(cfg, 1, f"[3/{steps}]")
    stage2 = _sft_stage(cfg, 2, f"[4/{steps}]")
    rl_model = run_rl_stage(cfg, f"[5/{steps}]")

    rl_warnings = rl_check = None
    if rl_model is not None:
        import json

        check = rl_model.parent / "rl_check.json"
        rl_check = json.loads(check.read_text()) if check.is_file() else {}
        rl_warnings = rl_check.get("warnings", [])
    report = metrics = comparison = headline = None
    if cfg.evaluation_config() is not None:
        report, metrics, comparison, headline = run_evaluation_stage(cfg, f"[{steps}/{steps}]")
    return PipelineResult(summaries, cfg.reasoning_jsonl, stage1, stage2, report, rl_model=rl_model,
                          metrics=metrics, dashboard_url=_dashboard_url(), comparison=comparison, headline=headline,
                          rl_warnings=rl_warnings, rl_check=rl_check)


def run_evaluation_stage(cfg: PipelineConfig, step: str):
    """Every compared model on the same samples, then one comparison with paired differences."""
    from evaluation.compare import compare_runs
    from evaluation.run import evaluate

    configs = cfg.evaluation_configs()
    final = cfg.evaluation_config()
    results = {}
    for i, (name, ev) in enumerate(configs.items(), 1):
        log.info("%s evaluation %d/%d: %s (%s) on EHR-Bench -> %s", step, i, len(configs), name,
                 ev.model.path or ev.model_name, Path(ev.output_dir) / ev.run_name)
        results[name] = evaluate(ev)
    out = Path(final.output_dir)
    md, page = compare_runs([r.run_dir for r in results.values()], out, pairs=cfg.comparison_pairs(),
                            n_bootstrap=final.scoring.n_bootstrap, confidence=final.scoring.confidence,
                            seed=final.scoring.seed, title="EHR-R1 chain: every stage and the baselines, same samples",
                            targets_for=[n for n in configs if n != "untrained" and not n.startswith("baseline_")])
    log.info("comparison of %d models -> %s", len(results), page)
    if final.mlflow_tracking_uri:
        from evaluation.run import log_comparison_to_mlflow

        log_comparison_to_mlflow(final, out / "comparison.json", [md, page])
    last = next(r for name, r in results.items() if configs[name] is final)
    headline = {name: r.metrics["overall"] for name, r in results.items()}
    return last.report_html, last.metrics, page, headline
