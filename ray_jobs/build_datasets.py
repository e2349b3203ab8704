"""Build EHR-Ins and EHR-Bench (jsonl + parquet) from patient timelines.

    python -m ray_jobs.build_datasets --config ray_jobs/configs/build_datasets/demo.yaml
    ray job submit --working-dir . -- python -m ray_jobs.build_datasets \
        --config ray_jobs/configs/build_datasets/ehr_ins.yaml timelines_dir=/data/timelines output_dir=/data/ehr_ins
"""

from __future__ import annotations

from data_pipeline.datasets.config import BuildDatasetsConfig
from jobkit.config import parse_job_args
from jobkit.ray_runtime import setup_logging


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(BuildDatasetsConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    from data_pipeline.datasets.build import build_datasets

    summaries = build_datasets(cfg)
    print("datasets: " + ", ".join(f"{n} ({s['samples']} samples)" for n, s in summaries.items()))


if __name__ == "__main__":
    main()
