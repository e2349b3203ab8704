"""Synthetic MIMIC-IV v2.2 generator: the project's default, credential-free input.

    from data_pipeline.mimic.synthetic import generate_cohort
    root = generate_cohort("/tmp/mimic", num_patients=200, seed=0)   # -> Path with hosp/ icu/ ed/ note/ mappings/

Layout and value formats match real MIMIC-IV v2.2 (see ``data_pipeline.mimic.schema``), so the real-data path
reads it unchanged. CLI: ``python -m data_pipeline.mimic.synthetic --out DIR --patients N --seed S``.
"""

from data_pipeline.mimic.synthetic.config import VOLUME_PRESETS, SyntheticCohortConfig, VolumePreset
from data_pipeline.mimic.synthetic.generate import (MANIFEST, generate_cohort, generate_cohort_from_config,
                                                    is_complete, read_manifest)

__all__ = ["MANIFEST", "VOLUME_PRESETS", "SyntheticCohortConfig", "VolumePreset", "generate_cohort",
           "generate_cohort_from_config", "is_complete", "read_manifest"]
