"""Configuration of the synthetic MIMIC-IV v2.2 cohort (the project's default input).

Other stages embed :class:`SyntheticCohortConfig` in their own configs, e.g.
``source: {synthetic: {num_patients: 200}}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from data_pipeline.mimic.schema import MODULES

#: Largest cohort the id scheme supports (8-digit subject/hadm/stay ids stay unique below this).
MAX_PATIENTS = 300_000


class VolumePreset(BaseModel):
    """How many rows the high-volume tables get. ``demo`` keeps the 200-patient cohort fast; ``realistic``
    approaches real MIMIC-IV densities (hundreds of labs per admission, thousands of chart rows per ICU stay)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: hours between routine lab draws on the ward / in the ICU (a draw is one panel of items).
    ward_lab_interval_h: float = Field(24.0, gt=0)
    icu_lab_interval_h: float = Field(12.0, gt=0)
    #: maximum number of lab draws per admission (the admission panel counts as one).
    max_lab_draws: int = Field(3, gt=0)
    #: extra lab items per draw beyond the core panel (0 = condition panel only).
    extra_lab_items: int = Field(0, ge=0)
    #: hours between vital-sign charting rows (per item) in the ICU, and between slower assessments.
    icu_vitals_interval_h: float = Field(4.0, gt=0)
    icu_assess_interval_h: float = Field(12.0, gt=0)
    #: cap of chart rows per ICU stay (after the intervals above).
    max_chart_rows: int = Field(300, gt=0)
    #: hours between re-timed segments of continuous infusions (inputevents).
    infusion_segment_h: float = Field(12.0, gt=0)
    #: hours between urine-output rows.
    output_interval_h: float = Field(8.0, gt=0)
    #: maximum eMAR administrations charted per prescription.
    max_emar_per_rx: int = Field(3, gt=0)
    #: hours between ED vital-sign rows.
    ed_vitals_interval_h: float = Field(2.0, gt=0)


VOLUME_PRESETS: dict[str, VolumePreset] = {
    "demo": VolumePreset(),
    "realistic": VolumePreset(
        ward_lab_interval_h=8.0, icu_lab_interval_h=4.0, max_lab_draws=200, extra_lab_items=10,
        icu_vitals_interval_h=0.5, icu_assess_interval_h=2.0, max_chart_rows=50_000, infusion_segment_h=1.0,
        output_interval_h=1.0, max_emar_per_rx=1_000, ed_vitals_interval_h=1.0,
    ),
}


class SyntheticCohortConfig(BaseModel):
    """What to generate. Same config -> byte-identical files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_patients: int = Field(200, ge=1, le=MAX_PATIENTS)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    volume: Literal["demo", "realistic"] = "demo"
    #: MIMIC-IV modules to write; ``hosp`` is mandatory (it holds patients and admissions).
    modules: tuple[str, ...] = MODULES
    #: patients generated between two flushes of the gzip writers (bounds memory; does not change the output).
    chunk_size: int = Field(256, ge=1, le=100_000)
    #: gzip level of the written ``*.csv.gz`` files (does not change their content).
    compresslevel: int = Field(5, ge=1, le=9)

    @field_validator("modules", mode="before")
    @classmethod
    def _modules(cls, value):
        if isinstance(value, str):
            value = (value,)
        mods = tuple(value)
        unknown = [m for m in mods if m not in MODULES]
        if unknown:
            raise ValueError(f"unknown module(s) {unknown}; choose from {list(MODULES)}")
        if "hosp" not in mods:
            raise ValueError("'hosp' is required (patients/admissions live there); add it to modules")
        if len(set(mods)) != len(mods):
            raise ValueError(f"duplicate module in {list(mods)}; list each module once")
        # canonical order so that ("icu", "hosp") and ("hosp", "icu") are the same cohort
        return tuple(m for m in MODULES if m in mods)

    @property
    def preset(self) -> VolumePreset:
        return VOLUME_PRESETS[self.volume]

    def manifest_key(self) -> dict:
        """The fields that determine the files (chunk_size and compresslevel do not change the CSV content,
        but compresslevel changes the bytes, so it is part of the key)."""
        return self.model_dump(mode="json", exclude={"chunk_size"})
