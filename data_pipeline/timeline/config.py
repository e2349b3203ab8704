"""Config and result of the timeline build (``python -m ray_jobs.build_timelines --config ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_pipeline.mimic.schema import MODULES
from data_pipeline.mimic.synthetic.config import SyntheticCohortConfig


class RayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: None: join the cluster of ``ray job submit`` (RAY_ADDRESS) or start a private local one.
    address: str | None = None
    #: CPUs of a private local instance (ignored when joining a cluster).
    num_cpus: int | None = Field(None, ge=1)


class TimelineConfig(BaseModel):
    """Where the MIMIC-IV source is, where timelines go and how the work is split.

    Exactly one source: ``mimic_root`` (a MIMIC-IV folder with hosp/ icu/ ed/ note/) or ``synthetic`` (a cohort
    generated into ``<output_dir>/source`` first).
    """

    model_config = ConfigDict(extra="forbid")

    mimic_root: Path | None = None
    #: Per-module folder overrides, e.g. ``{note: /data/physionet.org/files/mimic-iv-note/2.2/note}``.
    module_roots: dict[str, Path] = Field(default_factory=dict)
    #: Folder of the ICD->CCS / NDC->ATC mapping tables; default ``<mimic_root>/mappings``.
    mappings_dir: Path | None = None
    synthetic: SyntheticCohortConfig | None = None
    output_dir: Path
    #: Patient buckets (output shards). None: derived from the source size and ``target_bucket_mb``.
    num_buckets: int | None = Field(None, ge=1, le=65_536)
    #: Approximate uncompressed source megabytes per bucket when ``num_buckets`` is None (bounds worker memory).
    target_bucket_mb: int = Field(64, ge=1)
    #: Fewest buckets when ``num_buckets`` is None, so phase 2 has work for every CPU even on small cohorts.
    min_buckets: int = Field(4, ge=1)
    write_markdown: bool = True
    #: Keep the phase-1 spill files after a successful build (debugging); they are as large as the source.
    keep_staging: bool = False
    #: CSV read block size, and the raw chunk each phase-1 task normalises into one spill file, in MB. Phase-1
    #: memory is about (2 x CPUs chunks in flight) x spill_mb x 3. Small blocks parse with about half the CPU of
    #: 16 MB ones; a block must hold the longest quoted value (note text), so raise it if the reader says a
    #: value straddles two blocks.
    read_block_mb: int = Field(1, ge=1, le=1024)
    spill_mb: int = Field(64, ge=1, le=8192)
    #: Phase-2 buckets built at once (Ray tasks of 1 CPU each). None: the cluster's CPU count.
    max_parallel: int | None = Field(None, ge=1)
    #: Buckets one phase-2 task builds, one after the other. None: about three tasks per CPU, at most 16 each.
    buckets_per_task: int | None = Field(None, ge=1)
    #: Times a phase-1 task is re-run after its worker died (OOM kill, lost node) or another system failure. Its
    #: writes are atomic and idempotent, so a re-run gives the same output; a data error is never retried.
    #: Phase-2 tasks (Ray Data) are re-run after a system failure by Ray Data's own policy (no limit).
    task_retries: int = Field(3, ge=0)
    #: Rows whose subject_id has no row in hosp/patients (the MIMIC-IV demo has some): "keep" them (timelines
    #: without demographics) or "drop" them. Either way they are counted per table in the manifest and the log.
    orphan_rows: Literal["keep", "drop"] = "keep"
    ray: RayConfig = Field(default_factory=RayConfig)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> "TimelineConfig":
        problems = []
        if (self.mimic_root is None) == (self.synthetic is None):
            problems.append("set exactly one source: mimic_root (a MIMIC-IV folder) or synthetic (a generated "
                            "cohort); " + ("both are set, remove one" if self.mimic_root else "neither is set"))
        unknown = [m for m in self.module_roots if m not in MODULES]
        if unknown:
            problems.append(f"module_roots: unknown module(s) {unknown}; use {list(MODULES)}")
        if self.synthetic is not None and (self.module_roots or self.mappings_dir):
            problems.append("module_roots/mappings_dir only apply to mimic_root; remove them for a synthetic source")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def source_dir(self) -> Path:
        return self.mimic_root if self.mimic_root is not None else self.output_dir / "source"

    def fingerprint(self) -> dict:
        """Settings that change the output; a resumed build must match them."""
        return {"source": str(self.mimic_root) if self.mimic_root else self.synthetic.model_dump(mode="json"),
                "module_roots": {k: str(v) for k, v in sorted(self.module_roots.items())},
                "mappings_dir": str(self.mappings_dir) if self.mappings_dir else None,
                # only when not the default, so that builds made before the option existed still resume
                **({"orphan_rows": self.orphan_rows} if self.orphan_rows != "keep" else {})}


class TimelineResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_dir: Path
    timelines_dir: Path
    markdown_dir: Path | None
    num_buckets: int
    buckets_built: int
    buckets_skipped: int
    num_patients: int
    num_events: int
    source_rows: int
    seconds: float
