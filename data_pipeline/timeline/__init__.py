"""Per-patient timelines from MIMIC-IV: partition (phase 1), order + merge + encode (phase 2), shard store.

Public entry points: :func:`data_pipeline.timeline.pipeline.build_timelines`,
:func:`data_pipeline.timeline.store.iter_timelines` and :func:`data_pipeline.timeline.store.list_shards`.
Kept import-light: nothing here imports Ray or pyarrow at package import time.
"""
