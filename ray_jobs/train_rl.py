"""RL stage (GRPO with verifiable rewards) from the stage-2 model: TRL on Ray Train here, or OpenRLHF on a GPU cluster.

    python -m ray_jobs.train_rl --config ray_jobs/configs/train_rl/demo_tiny.yaml                  # backend trl
    python -m ray_jobs.train_rl --backend openrlhf --config ray_jobs/configs/train_rl/ehr_r1_qwen3_8b.yaml
    python -m ray_jobs.train_rl --backend openrlhf --dry-run --config ...     # print the OpenRLHF command only

``--backend`` overrides the config's ``backend``. The OpenRLHF backend exports and fits the prompts, writes the
run's reward hook, checks the argv with OpenRLHF's own parser and the runtime env with Ray's own merge, then runs
``python -m openrlhf.cli.train_ppo_ray ...`` in this job (``openrlhf.launch: in_job``, the RL RayJob) or submits
it to the dashboard at ``openrlhf.address`` and follows it (``launch: submit``). Either way the exit status is the
run's: non-zero unless OpenRLHF succeeded and wrote its final model. ``--dry-run`` prints the command and writes
nothing.
"""

from __future__ import annotations

import sys

from ray_jobs.config_loader import parse_job_args
from ray_jobs.runtime import init_ray, setup_logging
from rl.config import RLJobConfig


def _split_flags(argv: list[str]) -> tuple[list[str], str | None, bool]:
    """Pull ``--backend X`` / ``--backend=X`` and ``--dry-run`` out of argv (the rest is the shared job syntax)."""
    rest, backend, dry_run, i = [], None, False, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--backend" and i + 1 < len(argv):
            backend, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--backend="):
            backend = arg.split("=", 1)[1]
        elif arg == "--dry-run":
            dry_run = True
        else:
            rest.append(arg)
        i += 1
    return rest, backend, dry_run


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, backend, dry_run = _split_flags(argv)
    if backend is not None:
        rest.append(f"backend={backend}")
    cfg = parse_job_args(RLJobConfig, rest, description=__doc__)
    setup_logging(cfg.log_level)
    if cfg.backend == "openrlhf":
        from rl.openrlhf.submit import RLRunFailed, prepare_submission, run_in_job, submit

        if dry_run:
            sub = prepare_submission(cfg, write=False)
            print(f"entrypoint: {sub.entrypoint}\nlaunch: {cfg.openrlhf.launch}\nruntime_env: {sub.runtime_env}\n"
                  f"address: {sub.address}")
            return
        try:
            final = run_in_job(cfg) if cfg.openrlhf.launch == "in_job" else submit(cfg)
        except RLRunFailed as exc:
            sys.exit(f"RL run failed: {exc}")
        print(f"final model: {final}")
        return
    init_ray()
    from rl.grpo.run import run_grpo

    result = run_grpo(cfg)
    print(f"final model: {result.final_model}")


if __name__ == "__main__":
    main()
