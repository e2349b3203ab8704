"""The whole EHR-R1 recipe in one job, on the embedded default or real data.

    MIMIC-IV (or the synthetic cohort) -> timelines -> EHR-Ins / EHR-Bench -> stage-2 reasoning records
    -> SFT stage 1 (domain adaptation) -> SFT stage 2 (reasoning enhancement) [-> RL (GRPO), when ``rl`` is set]

Each stage keeps its own strict config class; this config embeds them and fills in the paths that connect them
(everything lives under ``output_dir``), so every stage's config is validated before the first one starts.
Every stage is resumable: finished datasets are skipped by fingerprint, a finished SFT run (its ``final_model``
exists) is skipped, and an interrupted one resumes from its latest checkpoint.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

log = logging.getLogger(__name__)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class ReasoningSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Reasoning records written for stage 2 by the thinking graph (data_pipeline.thinking_graph).
    max_samples: int = Field(512, ge=1)


class PipelineConfig(BaseModel):
    """``datasets``, ``stage1`` and ``stage2`` take the keys of BuildDatasetsConfig and SFTJobConfig, minus the
    paths this pipeline wires together (datasets.output_dir, stageN.data.paths, stageN.run.storage_path,
    stage2.model_path)."""

    model_config = ConfigDict(extra="forbid")

    output_dir: str = "outputs/pipeline"
    datasets: dict[str, Any] = Field(default_factory=dict)
    reasoning: ReasoningSpec = Field(default_factory=ReasoningSpec)
    #: Keys of ThinkingGraphConfig minus the wired paths (timelines_dir, ehr_ins_dir, output_dir, output_name).
    thinking_graph: dict[str, Any] = Field(default_factory=dict)
    stage1: dict[str, Any] = Field(default_factory=dict)
    stage2: dict[str, Any] = Field(default_factory=dict)
    #: Evaluate the stage-2 model on the EHR-Bench built above (keys of evaluation.config.EvaluateConfig minus
    #: output_dir, model.path and benchmark.paths, which are wired here); null skips the evaluation.
    evaluation: dict[str, Any] | None = None
    rl: dict[str, Any] | None = None
    """The RL stage after stage 2 (keys of rl.config.RLJobConfig minus model_path and run.storage_path; data
    defaults to the EHR-Ins export). None = no RL stage."""
    ray_address: str | None = None
    ray_num_cpus: int | None = Field(None, ge=1)
    log_level: str = "INFO"

    _datasets_cfg: Any = PrivateAttr(None)
    _thinking_graph_cfg: Any = PrivateAttr(None)
    _stage_cfgs: dict[int, Any] = PrivateAttr(default_factory=dict)
    _evaluation_cfg: Any = PrivateAttr(None)
    _rl_cfg: Any = PrivateAttr(None)

    @property
    def out(self) -> Path:
        return Path(self.output_dir).expanduser().resolve()

    @property
    def ehr_ins_jsonl(self) -> Path:
        return self.out / "datasets" / "ehr_ins" / "ehr_ins.jsonl"

    @property
    def reasoning_jsonl(self) -> Path:
        return self.out / "datasets" / "ehr_ins_reasoning" / "ehr_ins_reasoning.jsonl"

    def final_model(self, stage: int) -> Path:
        cfg = self.stage_config(stage)
        return Path(cfg.run.storage_path).expanduser() / cfg.run.name / "final_model"

    @model_validator(mode="after")
    def _build_stage_configs(self) -> "PipelineConfig":
        from data_pipeline.datasets.config import BuildDatasetsConfig
        from training.config import SFTJobConfig

        errors: list[str] = []

        def validate(section: str, model, data):
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                for e in exc.errors():
                    where = ".".join(str(p) for p in e["loc"])
                    errors.append(f"{section}{'.' + where if where else ''}: {e['msg']}")
            except ValueError as exc:
                errors.append(f"{section}: {exc}")
            return None

        runs = str(self.out / "runs")
        self._datasets_cfg = validate("datasets", BuildDatasetsConfig,
                                      _merge(self.datasets, {"output_dir": str(self.out / "datasets")}))
        if self._datasets_cfg is not None:
            self._thinking_graph_cfg = validate("thinking_graph", _thinking_graph_config_class(),
                                                self._thinking_graph_fields())
        stage1 = _merge(self._defaults_under_output(self.stage1), {
            "stage": 1, "data": {"paths": [str(self.ehr_ins_jsonl)]}, "run": {"storage_path": runs}})
        s1 = validate("stage1", SFTJobConfig, stage1)
        if s1 is not None:
            stage1_final = Path(runs) / s1.run.name / "final_model"
            s2 = validate("stage2", SFTJobConfig, _merge(self._defaults_under_output(self.stage2), {
                "stage": 2, "model_path": str(stage1_final),
                "data": {"paths": [str(self.reasoning_jsonl), str(self.ehr_ins_jsonl)], "format": "reasoning"},
                "run": {"storage_path": runs}}))
            if s2 is not None and s2.run.name == s1.run.name:
                errors.append("stage2.run.name: must differ from stage1.run.name, or stage 2 overwrites stage 1")
            self._stage_cfgs = {1: s1, 2: s2}
            if self.evaluation is not None and s2 is not None:
                from evaluation.config import EvaluateConfig

                if self._datasets_cfg is not None and "ehr_bench" not in self._datasets_cfg.presets:
                    errors.append("evaluation: needs the ehr_bench dataset; add it to datasets.presets or set "
                                  "evaluation=null")

                evaluation = copy.deepcopy(self.evaluation)
                evaluation.setdefault("mlflow_tracking_uri", str(self.out / "mlruns"))
                self._evaluation_cfg = validate("evaluation", EvaluateConfig, _merge(evaluation, {
                    "output_dir": str(self.out / "evaluation"),
                    "model": {"path": str(Path(runs) / s2.run.name / "final_model")},
                    "benchmark": {"kind": "ehr_bench",
                                  "paths": [str(self.out / "datasets" / "ehr_bench" / "ehr_bench.jsonl")]}}))
            if self.rl is not None and s2 is not None:
                self._rl_cfg = validate("rl", _rl_job_config(), self._rl_section(s2, runs))
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _defaults_under_output(self, stage: dict[str, Any]) -> dict[str, Any]:
        """Paths the user left unset (MLflow store, tiny-model folder) go under output_dir too."""
        stage = copy.deepcopy(stage)
        run = stage.setdefault("run", {})
        run.setdefault("mlflow_tracking_uri", str(self.out / "mlruns"))
        if isinstance(stage.get("tiny_model"), dict):
            stage["tiny_model"].setdefault("output_dir", str(self.out / "tiny_model"))
        return stage

    def _rl_section(self, s2, runs: str) -> dict[str, Any]:
        rl = self._defaults_under_output(self.rl or {})
        rl.setdefault("data", {"sources": [{"kind": "ehr_ins", "path": str(self.ehr_ins_jsonl), "max_samples": 64}]})
        rl.setdefault("backend", "trl")
        return _merge(rl, {"model_path": str(Path(runs) / s2.run.name / "final_model"),
                           "run": {"storage_path": runs}})

    def rl_config(self):
        return self._rl_cfg

    def datasets_config(self):
        return self._datasets_cfg

    def thinking_graph_config(self):
        return self._thinking_graph_cfg

    def _thinking_graph_fields(self) -> dict[str, Any]:
        from data_pipeline.datasets.config import timeline_config

        d = self._datasets_cfg
        timelines = d.timelines_dir or timeline_config(d.timelines, d.output_dir).output_dir
        return _merge({"max_samples": self.reasoning.max_samples, "ray": {"address": self.ray_address,
                                                                          "num_cpus": self.ray_num_cpus}},
                      _merge(self.thinking_graph, {
                          "timelines_dir": str(timelines), "ehr_ins_dir": str(self.ehr_ins_jsonl.parent),
                          "output_dir": str(self.reasoning_jsonl.parent), "output_name": self.reasoning_jsonl.name}))

    def stage_config(self, stage: int):
        return self._stage_cfgs[stage]

    def evaluation_config(self):
        return self._evaluation_cfg


def _rl_job_config():
    from rl.config import RLJobConfig

    return RLJobConfig


def _thinking_graph_config_class():
    from data_pipeline.thinking_graph.config import ThinkingGraphConfig

    return ThinkingGraphConfig


@dataclass
class PipelineResult:
    datasets: dict[str, dict]
    reasoning_jsonl: Path
    stage1_model: Path
    stage2_model: Path
    report: Path | None = None
    rl_model: Path | None = None


def run_pipeline(cfg: PipelineConfig) -> PipelineResult:
    from data_pipeline.datasets.build import build_datasets
    from data_pipeline.thinking_graph.pipeline import build as build_thinking_graph
    from ray_jobs.runtime import init_ray

    init_ray(cfg.ray_address, cfg.ray_num_cpus)
    log.info("[1/4] timelines + datasets -> %s", cfg.out / "datasets")
    summaries = build_datasets(cfg.datasets_config())

    tg = cfg.thinking_graph_config()
    log.info("[2/4] stage-2 reasoning records (thinking graph, %s) -> %s", tg.synthesis.mode, cfg.reasoning_jsonl)
    if build_thinking_graph(tg)["records"] == 0:
        raise RuntimeError(f"the thinking graph wrote no reasoning records to {cfg.reasoning_jsonl}; lower "
                           "thinking_graph.evidence.min_support / threshold or set evidence.require_graph: false")

    models = {}
    for stage in (1, 2):
        final = cfg.final_model(stage)
        log.info("[%d/4] SFT stage %d -> %s", stage + 2, stage, final)
        if (final / "config.json").is_file():
            log.info("stage %d already trained, skipping (delete %s to retrain)", stage, final.parent)
            models[stage] = final
            continue
        from training.sft import run_sft

        models[stage] = run_sft(cfg.stage_config(stage)).final_model
    report = None
    if cfg.evaluation_config() is not None:
        from evaluation.run import evaluate

        log.info("evaluation of the stage-2 model on EHR-Bench -> %s", cfg.evaluation_config().output_dir)
        report = evaluate(cfg.evaluation_config()).report_html
    return PipelineResult(summaries, cfg.reasoning_jsonl, models[1], models[2], report,
                          rl_model=run_rl_stage(cfg))


def run_rl_stage(cfg: PipelineConfig) -> Path | None:
    """GRPO from the stage-2 model (TRL on Ray Train), skipped when not configured or already trained."""
    rl = cfg.rl_config()
    if rl is None:
        return None
    final = Path(rl.run.storage_path).expanduser().resolve() / rl.run.name / "final_model"
    log.info("[RL] GRPO from stage 2 -> %s", final)
    if (final / "config.json").is_file():
        log.info("RL stage already trained, skipping (delete %s to retrain)", final.parent)
        return final
    if rl.backend != "trl":
        raise ValueError("rl.backend: the pipeline runs the RL stage in-process with backend trl; submit OpenRLHF "
                         "runs with ray_jobs.train_rl")
    from rl.grpo.run import run_grpo

    return run_grpo(rl).final_model


def describe(cfg: PipelineConfig, result: PipelineResult) -> str:
    """What was produced and how to look at it (printed at the end of the job)."""
    datasets = "\n".join(f"  {name:<10} {s.get('samples', '?'):>7} samples  {cfg.out / 'datasets' / name}"
                         for name, s in result.datasets.items())
    timelines = cfg.datasets_config().output_dir
    report = f"Evaluation report:      {result.report}\n" if result.report else ""
    return f"""
EHR-R1 pipeline finished. Outputs under {cfg.out}
datasets:
{datasets}
  reasoning  {result.reasoning_jsonl}
models:
  stage 1    {result.stage1_model}
  stage 2    {result.stage2_model}{f"{chr(10)}  RL (GRPO) {result.rl_model}" if result.rl_model else ""}

Look at one sample:      .venv/bin/python -c "import datasets; print(datasets.load_dataset('json', data_files='{cfg.ehr_ins_jsonl}')['train'][0]['input'][:2000])"
Per-task counts:         cat {Path(timelines) / 'summary.json'}
{report}Serve the stage-2 model: .venv/bin/python -m ray_jobs.serve --config ray_jobs/configs/serve/demo.yaml model.tiny_model=null model.path={result.stage2_model}
"""
