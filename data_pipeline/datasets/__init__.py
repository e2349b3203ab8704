"""EHR-Ins / EHR-Bench: sampling presets, patient split, truncation, export and the Ray Data build.

Import-light: Ray is imported only inside :func:`data_pipeline.datasets.build.build_datasets`. Entry point:
``python -m ray_jobs.build_datasets --config ray_jobs/configs/build_datasets/demo.yaml``.
"""
