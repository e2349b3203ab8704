"""SFT stage 1 (domain adaptation) or stage 2 (reasoning) on Ray Train.

    ray job submit --working-dir . -- python -m ray_jobs.train_sft --config ray_jobs/configs/train_sft/demo_stage1.yaml
"""

from __future__ import annotations

from jobkit.config import parse_job_args
from jobkit.ray_runtime import init_ray, setup_logging
from training.config import SFTJobConfig


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(SFTJobConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    init_ray()
    from training.sft import run_sft

    result = run_sft(cfg)
    print(f"final model: {result.final_model}")


if __name__ == "__main__":
    main()
