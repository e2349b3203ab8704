"""What the chain produced and how to look at it: the text ``ray_jobs.pipeline`` prints at the end."""

from __future__ import annotations

from pathlib import Path

from orchestration.chain import PipelineResult
from orchestration.config import PipelineConfig

SERVE_CONFIG = "ray_jobs/configs/serve/demo.yaml"
SERVED_NAME = "ehr-r1-tiny"  # serve/demo.yaml's model.served_name
SERVE_URL = "http://127.0.0.1:8000"


def evaluation_lines(metrics: dict | None) -> str:
    """The headline metric per task kind, or why there is none."""
    if not metrics:
        return "  (evaluation is off: set `evaluation` in the pipeline config)"
    from evaluation.run import headline

    return headline(metrics)


def comparison_table(headline: dict[str, dict]) -> str:
    """One line per evaluated model: the headline metric of each task kind with its patient-level interval."""
    from evaluation.report import LABELS, fmt
    from evaluation.scores import HEADLINE

    kinds = [k for k in ("decision", "risk", "calc") if any(k in h for h in headline.values())]
    head = f"  {'model':<20}" + "".join(f"{k + ' ' + LABELS[HEADLINE[k]]:<30}" for k in kinds)
    rows = [f"  {name:<20}" + "".join(f"{fmt(h.get(k, {}), HEADLINE[k]):<30}" for k in kinds)
            for name, h in headline.items()]
    return "\n".join([head, *rows])


def rl_check_line(check: dict) -> str:
    """What RL did to its own prompts' mean reward, and anything it did not do."""
    out = ""
    recheck = check.get("recheck")
    if recheck:
        out += (f"\n             mean reward on its {recheck['prompts']} prompts: {recheck['pass_rate_start']:.3f} "
                f"(stage 2) -> {recheck['pass_rate_final']:.3f} (RL), {recheck['samples']} samples each")
    for note in check.get("notes", []):
        out += f"\n             NOTE: {note}"
    if check.get("plot"):
        out += f"\n             per step: {check['plot']}"
    return out


def describe(cfg: PipelineConfig, result: PipelineResult) -> str:
    """The closing summary: datasets, models, evaluation, the report, the dashboard and how to serve the model."""
    datasets = "\n".join(f"  {name:<10} {s.get('samples', '?'):>7} samples  {cfg.out / 'datasets' / name}"
                         for name, s in result.datasets.items())
    timelines = cfg.datasets_config().output_dir
    rl = f"\n  RL (GRPO)  {result.rl_model}" if result.rl_model else ""
    if result.rl_model and result.rl_warnings:
        rl = (f"\n  RL (GRPO)  {result.rl_model}\n             NOT AN RL MODEL: " +
              "; ".join(result.rl_warnings) + f" (see {result.rl_model.parent / 'rl_check.json'})")
    elif result.rl_model and result.rl_check:
        rl += rl_check_line(result.rl_check)
    report = f"Evaluation report:       {result.report}\n" if result.report else ""
    if result.comparison:
        report = (f"Every model, same samples (paired differences, patient-level intervals):\n"
                  f"{comparison_table(result.headline or {})}\n"
                  f"Comparison report:       {result.comparison}\n{report}")
    dashboard = result.dashboard_url or "not running (start Ray with `ray start --head` to keep one)"
    final = result.final_model
    return f"""
EHR-R1 pipeline finished. Everything is under {cfg.out}
  (resolved config of every stage: {cfg.out / 'run_configs'})
datasets:
{datasets}
  reasoning  {result.reasoning_jsonl}
models:
  stage 1    {result.stage1_model}
  stage 2    {result.stage2_model}{rl}
evaluation of {final.name if final.name != 'final_model' else final.parent.name} on EHR-Bench:
{evaluation_lines(result.metrics)}
{report}Ray dashboard:           {dashboard} (while this Ray instance runs)
Training metrics:        MLFLOW_ALLOW_FILE_STORE=true .venv/bin/mlflow ui --backend-store-uri {cfg.out / 'mlruns'}
Look at one sample:      .venv/bin/python -c "import datasets; print(datasets.load_dataset('json', data_files='{cfg.ehr_ins_jsonl}')['train'][0]['input'][:2000])"
Per-task counts:         cat {Path(timelines) / 'summary.json'}

Serve the trained model (OpenAI-compatible endpoint on {SERVE_URL}):
  .venv/bin/python -m ray_jobs.serve --config {SERVE_CONFIG} model.tiny_model=null model.path={final}
then, from another shell:
  curl {SERVE_URL}/v1/ehr/predict -H 'Content-Type: application/json' \\
       -d '{{"ehr": "## Admissions [2150-01-01 08:00:00]\\n- Admission_Type: URGENT", "task": "Inpatient_Mortality"}}'
  .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='{SERVE_URL}/v1', api_key='none'); \\
print(c.chat.completions.create(model='{SERVED_NAME}', messages=[{{'role': 'user', 'content': 'Hello'}}], max_tokens=16).choices[0].message.content)"
"""
