"""Build per-patient timelines (and their markdown) from MIMIC-IV or a synthetic cohort.

    python -m ray_jobs.build_timelines --config ray_jobs/configs/build_timelines/demo.yaml

On a cluster started with ``ray start --head`` (Ray 2.60 token auth: the client needs RAY_AUTH_MODE=token, and
``python`` must be the project's venv on the head's PATH):

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python -m ray_jobs.build_timelines --config ray_jobs/configs/build_timelines/demo.yaml
"""

from __future__ import annotations

import sys

from data_pipeline.mimic.reader import MimicDataError
from data_pipeline.timeline.config import TimelineConfig
from jobkit.config import parse_job_args
from jobkit.ray_runtime import setup_logging


def main(argv: list[str] | None = None) -> None:
    cfg = parse_job_args(TimelineConfig, argv, description=__doc__)
    setup_logging(cfg.log_level)
    from data_pipeline.timeline.pipeline import build_timelines

    try:
        result = build_timelines(cfg)
    except MimicDataError as exc:  # bad source data: the message names the file, row/column and the fix
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"timelines: {result.timelines_dir} ({result.num_patients} patients, {result.num_events} events)")


if __name__ == "__main__":
    main()
