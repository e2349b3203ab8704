"""Strict configs of the dataset build: sampling presets (``ehr_ins``, ``ehr_bench``) and the job config.

Defaults live here only; a preset YAML (``data_pipeline/datasets/presets/<name>.yaml``) sets what differs, and
a job YAML (``ray_jobs/configs/build_datasets/*.yaml``) names presets and may override their sampling fields.
Every check runs at validation time, before any work, and all problems are reported together.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESETS_DIR = Path(__file__).with_name("presets")


class RayConfig(BaseModel):
    """Where to run (same shape as the timeline build's ``ray`` section)."""

    model_config = ConfigDict(extra="forbid")
    address: str | None = None
    #: CPUs of a private local instance (ignored when joining a cluster).
    num_cpus: int | None = Field(None, ge=1)
Mode = Literal["uniform", "weighted", "balanced"]


class TaskSampling(BaseModel):
    """How one task is drawn: ``cap`` samples at most (-1 = all), ``mode`` see :mod:`sampling`."""

    model_config = ConfigDict(extra="forbid")
    cap: int = Field(-1, ge=-1)
    mode: Mode = "uniform"


class TaskSamplingOverride(BaseModel):
    """Per-task override of the kind default; an unset field keeps the default."""

    model_config = ConfigDict(extra="forbid")
    cap: int | None = Field(None, ge=-1)
    mode: Mode | None = None


class DatasetPreset(BaseModel):
    """One dataset: which patients it draws from, the reference's filters and the per-task sampling plan."""

    model_config = ConfigDict(extra="forbid")
    name: str
    split: Literal["train", "test"]
    #: Keep samples with min < shown context events < max (reference defaults 10 and 100; None = no maximum).
    min_context_events: int = Field(10, ge=-1)
    max_context_events: int | None = Field(100, ge=1)
    #: Patients with more events than this are dropped (reference: 1200; None = keep all).
    max_patient_events: int | None = Field(1200, ge=1)
    #: The reference's filter for procedure and diagnosis samples: the 24 h window covers the admission event
    #: (``data_index_gen.py``: admissions_id > context_begin or NaN). False keeps every such sample.
    admission_window_filter: bool = True
    #: Left-truncate inputs to the build's ``max_input_tokens``. EHR-Bench: false (the evaluator truncates to
    #: its model's own budget; the reference truncated only at the model).
    truncate: bool = True
    #: Tasks this dataset leaves out (EHR-Bench: the ``discharge`` generation task, as in the reference's 45).
    exclude_tasks: list[str] = []
    decision_making: TaskSampling = TaskSampling()
    risk_prediction: TaskSampling = TaskSampling()
    tasks: dict[str, TaskSamplingOverride] = {}

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: dict[str, TaskSamplingOverride]) -> dict[str, TaskSamplingOverride]:
        from data_pipeline.tasks import canonical_name, task_names

        out, unknown = {}, []
        for name, override in value.items():
            try:
                out[canonical_name(name)] = override
            except KeyError:
                unknown.append(name)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(task_names())}")
        return out

    @field_validator("exclude_tasks")
    @classmethod
    def _known_excluded(cls, value: list[str]) -> list[str]:
        from data_pipeline.tasks import canonical_name, task_names

        out, unknown = [], []
        for name in value:
            try:
                out.append(canonical_name(name))
            except KeyError:
                unknown.append(name)
        if unknown:
            raise ValueError(f"unknown task(s) {unknown} in exclude_tasks; known tasks: {', '.join(task_names())}")
        return out

    def includes(self, task: str) -> bool:
        return task not in self.exclude_tasks

    @model_validator(mode="after")
    def _window(self) -> "DatasetPreset":
        if self.max_context_events is not None and self.max_context_events <= self.min_context_events + 1:
            raise ValueError(f"max_context_events={self.max_context_events} leaves no room above "
                             f"min_context_events={self.min_context_events}: samples need min < n < max")
        return self

    def sampling_for(self, task: str) -> tuple[int, str]:
        from data_pipeline.tasks import get_task

        spec = get_task(task)
        base = self.risk_prediction if spec.is_risk else self.decision_making
        over = self.tasks.get(spec.name, TaskSamplingOverride())
        return (base.cap if over.cap is None else over.cap), (base.mode if over.mode is None else over.mode)

    def plan(self, tasks: list[str]) -> dict[str, tuple[int, str]]:
        return {t: self.sampling_for(t) for t in tasks}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _preset_data(name: str) -> dict:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown dataset preset {name!r}; shipped presets: {preset_names()} (in {PRESETS_DIR})")
    return yaml.safe_load(path.read_text()) or {}


def load_preset(name: str, overrides: dict[str, Any] | None = None) -> DatasetPreset:
    """A shipped preset by name, with optional field overrides (e.g. ``{"min_context_events": 0}``)."""
    data = {"name": name, **_preset_data(name), **(overrides or {})}
    return DatasetPreset.model_validate(data)


class LeakageRulesConfig(BaseModel):
    """The history cut's leakage rules (:class:`data_pipeline.tasks.availability.LeakageRules`). Switching
    one off reproduces the reference's leaks (for studies of them); the audit then refuses the build unless
    ``audit.allow_leaks``."""

    model_config = ConfigDict(extra="forbid")
    #: Cut on when information is available (storetime, discharge, end of a date-only day), not when charted.
    availability: bool = True
    #: ED windows hold nothing of the admission the ED stay led to; admission/ICU windows nothing of its
    #: discharge note, diagnoses, DRG codes.
    window_rules: bool = True


class AuditConfig(BaseModel):
    """The leakage audit the build runs on every rendered sample (:mod:`data_pipeline.datasets.audit`)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    #: Finish (and write) even when samples leak; the summary still counts them. Off: the build stops.
    allow_leaks: bool = False


class BuildDatasetsConfig(BaseModel):
    """``ray_jobs/build_datasets.py``: timelines -> EHR-Ins / EHR-Bench."""

    model_config = ConfigDict(extra="forbid")
    #: Output of ``ray_jobs.build_timelines`` (parquet shards). Exactly one of this and ``timelines``.
    timelines_dir: str | None = None
    #: An embedded build_timelines config: build the timelines first (into ``<output_dir>/timelines`` unless it
    #: names its own output), then the datasets. Validated against the timeline builder's own config class.
    timelines: dict[str, Any] | None = None
    output_dir: str
    presets: list[str] = ["ehr_ins", "ehr_bench"]
    #: Overrides applied to every preset's fields (``min_context_events``, ``tasks``, ...).
    sampling: dict[str, Any] = {}
    #: Build only these tasks (default: all 46). Aliases are accepted.
    tasks: list[str] | None = None
    seed: int = 0
    #: Fraction of patients in the test split (EHR-Bench); the rest is the train split (EHR-Ins).
    test_ratio: float = Field(0.1, gt=0.0, lt=1.0)
    split_salt: str = "ehr-r1"
    #: Token budget of ``input + "\n" + instruction`` (8192-token SFT sequences minus room for the answer).
    max_input_tokens: int = Field(7680, ge=64)
    #: Local HF tokenizer for exact counts; None = the documented approximate counter.
    tokenizer_path: str | None = None
    max_candidates: int = Field(100, ge=2)
    #: ``reference``: the published EHR-R1 instruction strings (typos included; what the released weights saw);
    #: ``clean``: plain rewording.
    instruction_style: Literal["reference", "clean"] = "reference"
    leakage_rules: LeakageRulesConfig = Field(default_factory=LeakageRulesConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    #: Parallel index tasks / rendering actors and the CPU each reserves (keep the total below the cluster's,
    #: or the shard reads starve).
    num_workers: int = Field(2, ge=1)
    worker_cpus: float = Field(0.5, gt=0.0)
    #: None address: join the cluster of ``ray job submit`` (RAY_ADDRESS) or start a private local one.
    ray: RayConfig = Field(default_factory=RayConfig)
    #: Rebuild even when finished outputs with the same fingerprint exist.
    overwrite: bool = False
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> "BuildDatasetsConfig":
        errors: list[str] = []
        if (self.timelines_dir is None) == (self.timelines is None):
            errors.append("set exactly one of timelines_dir (existing timelines) and timelines (a build_timelines "
                          "config to build them first)")
        if self.timelines is not None:
            try:
                timeline_config(self.timelines, self.output_dir)
            except (ValidationError, ValueError) as exc:
                errors.append(f"timelines: {exc}")
        if not self.presets:
            errors.append("presets is empty; name at least one of " + ", ".join(preset_names()))
        for name in self.presets:
            try:
                load_preset(name, self.sampling)
            except ValidationError as exc:
                errors.extend(f"preset {name!r} with sampling overrides: {'.'.join(map(str, e['loc']))}: {e['msg']}"
                              for e in exc.errors())
            except ValueError as exc:
                errors.append(str(exc))
        if self.tasks is not None:
            from data_pipeline.tasks import get_task

            for t in self.tasks:
                try:
                    get_task(t)
                except KeyError as exc:
                    errors.append(f"tasks: {exc.args[0]}")
        if self.tokenizer_path is not None and not Path(self.tokenizer_path).exists():
            errors.append(f"tokenizer_path={self.tokenizer_path!r} does not exist; point it at a local "
                          "tokenizer directory or unset it to use the approximate counter")
        if len(set(self.presets)) != len(self.presets):
            errors.append(f"presets {self.presets} name a preset twice")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def task_list(self) -> list[str]:
        from data_pipeline.tasks import canonical_name, task_names

        return task_names() if self.tasks is None else list(dict.fromkeys(canonical_name(t) for t in self.tasks))

    def preset_objects(self) -> list[DatasetPreset]:
        return [load_preset(n, self.sampling) for n in self.presets]


def timeline_config(data: dict[str, Any], output_dir: str):
    """Validate an embedded build_timelines config with the timeline builder's own class (imported lazily)."""
    from data_pipeline.timeline.config import TimelineConfig  # noqa: PLC0415

    data = dict(data)
    data.setdefault("output_dir", str(Path(output_dir) / "timelines"))
    return TimelineConfig.model_validate(data)


class AuditDatasetConfig(BaseModel):
    """``ray_jobs/audit_dataset.py``: audit exported datasets against the timelines they were built from."""

    model_config = ConfigDict(extra="forbid")
    #: Output folder of ``ray_jobs.build_datasets`` (holding ``<name>/provenance.parquet`` per dataset).
    datasets_dir: str
    #: Which datasets of ``datasets_dir`` to audit.
    datasets: list[str] = ["ehr_ins", "ehr_bench"]
    #: The timeline shards the datasets were built from (``build_timelines`` output or its ``timelines/``);
    #: None = ``<datasets_dir>/timelines`` (where an embedded timelines build writes them).
    timelines_dir: str | None = None
    #: Where to write the report as JSON (None = ``<datasets_dir>/audit.json``).
    report_path: str | None = None
    #: Exit with an error when any sample leaks (for CI and pipelines); false only prints the table.
    fail_on_leaks: bool = True
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> "AuditDatasetConfig":
        errors = []
        if not self.datasets:
            errors.append("datasets is empty; name at least one dataset folder of datasets_dir")
        if len(set(self.datasets)) != len(self.datasets):
            errors.append(f"datasets {self.datasets} name a dataset twice")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def resolved_timelines_dir(self) -> Path:
        return Path(self.timelines_dir) if self.timelines_dir else Path(self.datasets_dir) / "timelines"
