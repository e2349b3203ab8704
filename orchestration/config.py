"""The config of the whole EHR-R1 chain (``ray_jobs.pipeline``), on the embedded default or real data.

    MIMIC-IV (or the synthetic cohort) -> timelines -> EHR-Ins / EHR-Bench (leakage-audited) -> thinking graph
    -> stage-2 reasoning records -> SFT stage 1 (domain adaptation) -> SFT stage 2 (reasoning enhancement)
    [-> RL (GRPO), when ``rl`` is set] [-> evaluation report of the last model, when ``evaluation`` is set]

Each stage keeps its own strict config class; this config embeds them and fills in the paths that connect them
(everything lives under ``output_dir``), so every stage's config is validated before the first one starts.
Every stage is resumable: finished datasets are skipped by fingerprint, a training run that finished with the same
config and inputs is skipped (a changed one re-runs, ``jobkit.stage_state``), and an interrupted one resumes from
its latest checkpoint.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator


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


class ComparisonSpec(BaseModel):
    """Which models the evaluation stage puts side by side, on the same samples, with paired differences."""

    model_config = ConfigDict(extra="forbid")
    untrained: bool = True
    """The model stage 1 starts from (the demo's random tiny Qwen3; a real run's base checkpoint)."""
    stages: bool = True
    """Stage 1 and stage 2 (and RL when it is on); false evaluates the last model only."""
    baselines: list[Literal["prior", "count_lr", "count_gbm"]] = Field(default_factory=lambda: ["prior",
                                                                                              "count_lr"])
    """Non-LLM baselines fitted on EHR-Ins (evaluation.baselines)."""


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
    #: Evaluate the chain's last model (RL's, else stage 2's) on the EHR-Bench built above (keys of
    #: evaluation.config.EvaluateConfig minus output_dir, model.path and benchmark.paths, which are wired here);
    #: null skips the evaluation.
    evaluation: dict[str, Any] | None = None
    #: What the evaluation stage compares with the last model (all on the same samples); its run names are set
    #: per model (untrained, stage1, stage2, rl, baseline_<method>).
    compare: ComparisonSpec = Field(default_factory=ComparisonSpec)
    rl: dict[str, Any] | None = None
    """The RL stage after stage 2 (keys of rl.config.RLJobConfig minus model_path and run.storage_path; data
    defaults to the EHR-Ins export). None = no RL stage."""
    ray_address: str | None = None
    ray_num_cpus: int | None = Field(None, ge=1)
    log_level: str = "INFO"

    _datasets_cfg: Any = PrivateAttr(None)
    _thinking_graph_cfg: Any = PrivateAttr(None)
    _stage_cfgs: dict[int, Any] = PrivateAttr(default_factory=dict)
    _evaluation_cfgs: dict[str, Any] = PrivateAttr(default_factory=dict)
    _rl_cfg: Any = PrivateAttr(None)
    _last_evaluated: str = PrivateAttr("")

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
            if s1.tiny_model is not None:  # one token budget: no stage trains past the model's context
                context = s1.tiny_model.max_position_embeddings
                for name, stage in (("stage1", s1), ("stage2", s2)):
                    if stage is not None and stage.data.max_seq_length > context:
                        errors.append(f"{name}.data.max_seq_length: {stage.data.max_seq_length} > the tiny model's "
                                      f"context stage1.tiny_model.max_position_embeddings={context}; lower it or "
                                      "raise the context")
            self._stage_cfgs = {1: s1, 2: s2}
            if self.rl is not None and s2 is not None:
                self._rl_cfg = validate("rl", _rl_job_config(), self._rl_section(s2, runs))
            if self.evaluation is not None and s2 is not None:
                from evaluation.config import EvaluateConfig

                if self._datasets_cfg is not None and "ehr_bench" not in self._datasets_cfg.presets:
                    errors.append("evaluation: needs the ehr_bench dataset; add it to datasets.presets or set "
                                  "evaluation=null")
                self._evaluation_cfgs = self._evaluation_section(s1, s2, runs, validate, EvaluateConfig)
        if errors:  # one evaluation section makes several runs: say each problem once
            raise ValueError("; ".join(dict.fromkeys(errors)))
        return self

    def _evaluation_section(self, s1, s2, runs: str, validate, config_class) -> dict[str, Any]:
        """One EvaluateConfig per compared model, in the report's order (the last model's is ``final``)."""
        template = copy.deepcopy(self.evaluation or {})
        template.setdefault("mlflow_tracking_uri", str(self.out / "mlruns"))
        # a re-run after a stage was retrained re-evaluates it (the stale predictions are kept aside)
        template.setdefault("on_change", "replace")
        wired = {"output_dir": str(self.out / "evaluation"),
                 "benchmark": {"kind": "ehr_bench",
                               "paths": [str(self.out / "datasets" / "ehr_bench" / "ehr_bench.jsonl")]}}
        if (template.get("decoding") or {}).get("budget") == "from_training":
            template["decoding"].setdefault("training_data", [str(self.ehr_ins_jsonl)])
        models: dict[str, str] = {}
        if self.compare.untrained:
            models["untrained"] = s1.tiny_model.output_dir if s1.tiny_model is not None else s1.model_path
        if self.compare.stages:
            models["stage1"] = str(Path(runs) / s1.run.name / "final_model")
            models["stage2"] = str(Path(runs) / s2.run.name / "final_model")
        # the chain's last model: RL's when the RL stage is on, else stage 2's
        last = ("rl", Path(runs) / self._rl_cfg.run.name) if self._rl_cfg is not None else \
            ("stage2", Path(runs) / s2.run.name)
        models[last[0]] = str(last[1] / "final_model")
        out: dict[str, Any] = {}
        for name, path in models.items():
            out[name] = validate("evaluation", config_class, _merge(template, {
                **wired, "run_name": name, "model": {"path": path}}))
        for method in self.compare.baselines:
            backend = {"kind": "baseline", "baseline": {"method": method, "training_data": [str(self.ehr_ins_jsonl)]}}
            section = _merge({k: v for k, v in template.items() if k not in ("decoding",)}, {
                **wired, "run_name": f"baseline_{method}", "model": {"name": f"baseline: {method}"},
                "backend": backend})
            out[f"baseline_{method}"] = validate("evaluation", config_class, section)
        self._last_evaluated = last[0]
        return out

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
        rl.setdefault("data", {"sources": [{"kind": "ehr_ins", "max_samples": 64}]})
        for source in rl["data"].get("sources") or []:  # an ehr_ins source without a path reads the chain's export
            if isinstance(source, dict) and source.get("kind") == "ehr_ins" and not source.get("path"):
                source["path"] = str(self.ehr_ins_jsonl)
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
        """The last model's evaluation (RL's, else stage 2's), or None when evaluation is off."""
        return self._evaluation_cfgs.get(self._last_evaluated) if self._evaluation_cfgs else None

    def evaluation_configs(self) -> dict[str, Any]:
        """Every compared model's evaluation, in the report's order: untrained, stage1, stage2, rl, baselines."""
        return dict(self._evaluation_cfgs)

    def comparison_pairs(self) -> list[tuple[str, str]]:
        """(a, b) run names whose paired difference b - a the report shows: stage over stage, every stage over the
        untrained model, and the last model over every baseline."""
        names = [n for n in self._evaluation_cfgs if not n.startswith("baseline_")]
        pairs = list(zip(names, names[1:]))
        last = self._last_evaluated
        if "untrained" in names:  # every trained model against its starting point
            pairs += [("untrained", n) for n in names[2:]]
        pairs += [(b, last) for b in self._evaluation_cfgs if b.startswith("baseline_")]
        return pairs

    def resolved_stage_configs(self) -> dict[str, Any]:
        """Every stage's validated config, in run order (stages that are off are left out)."""
        stages = {"datasets": self._datasets_cfg, "thinking_graph": self._thinking_graph_cfg,
                  "sft_stage1": self._stage_cfgs.get(1), "sft_stage2": self._stage_cfgs.get(2),
                  "rl": self._rl_cfg, "evaluation": self.evaluation_config()}
        stages |= {f"evaluation_{name}": c for name, c in self._evaluation_cfgs.items() if name != self._last_evaluated}
        return {name: cfg for name, cfg in stages.items() if cfg is not None}


def _rl_job_config():
    from rl.config import RLJobConfig

    return RLJobConfig


def _thinking_graph_config_class():
    from data_pipeline.thinking_graph.config import ThinkingGraphConfig

    return ThinkingGraphConfig


