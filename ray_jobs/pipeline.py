"""The main job: synthetic (or real) MIMIC-IV -> timelines -> EHR-Ins/EHR-Bench -> thinking graph -> SFT stage 1
-> SFT stage 2 -> RL -> evaluation report (orchestration.chain).

    python -m ray_jobs.pipeline --config ray_jobs/configs/pipeline/demo.yaml
    ray job submit --working-dir . --runtime-env cluster/runtime_env/default.yaml \
        -- python -m ray_jobs.pipeline --config ray_jobs/configs/pipeline/demo.yaml output_dir=/tmp/ehr_r1_pipeline
"""

from __future__ import annotations

from jobkit.config import parse_job_args
from jobkit.ray_runtime import setup_logging
from orchestration.chain import run_pipeline
from orchestration.config import PipelineConfig
from orchestration.summary import describe


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(PipelineConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    print(describe(cfg, run_pipeline(cfg)))


if __name__ == "__main__":
    main()
