"""One evaluation run: samples -> Ray Data inference (resumable) -> scores -> metrics.json, report, MLflow.

Layout of ``<output_dir>/<run_name>/``::

    run.json           what the predictions depend on (model, benchmark selection, prompts, generation); a re-run
                       with a different one is refused instead of mixing predictions
    predictions/       part-*.parquet, written as batches finish (resume point)
    scores.parquet     per-sample metrics (no EHR text)
    metrics.json       per-task / per-family / overall metrics with bootstrap intervals, and the run description
    report.md, report.html   the report (HTML self-contained, plots embedded)
    comparison.md/.html      with ``compare_with``: this run next to the others
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from evaluation.config import EvaluateConfig
from evaluation.samples import add_prompts, select_samples

log = logging.getLogger(__name__)


class EvaluationIncomplete(RuntimeError):
    """Some samples failed after their retries; the others are kept and a re-run retries only the failed ones."""


@dataclass
class EvaluationResult:
    run_dir: Path
    metrics: dict
    report_md: Path
    report_html: Path
    comparison: Path | None = None


def load_samples(cfg: EvaluateConfig) -> pd.DataFrame:
    b = cfg.benchmark
    if b.kind == "ehr_bench":
        from evaluation.samples import load_ehr_bench

        frame = load_ehr_bench(b.paths)
    elif b.kind == "medcalc":
        from evaluation.medcalc_bench import load_medcalc

        frame = load_medcalc(b.paths)
    else:
        from evaluation.ehrshot import load_ehrshot

        frame = load_ehrshot(b.paths[0], labels=b.ehrshot.labels, split=b.ehrshot.split,
                             max_events=b.ehrshot.max_events, tasks=b.tasks, max_per_task=b.max_samples_per_task)
    frame = select_samples(frame, b.max_samples_per_task, b.max_samples, b.tasks, seed=b.seed,
                           balance_risk=b.balance_risk)
    frame = add_prompts(frame, cfg.prompting.mode, cfg.prompting.thinking)
    frame["max_new_tokens"] = decoding_budgets(cfg, frame)
    return frame


def token_counter(cfg: EvaluateConfig):
    """The model's tokenizer where the run has one, else the dataset build's approximate counter."""
    if cfg.model.path and (Path(cfg.model.path).expanduser() / "tokenizer_config.json").is_file():
        from data_pipeline.datasets.truncation import hf_token_counter

        return hf_token_counter(cfg.model.path)
    from data_pipeline.datasets.truncation import approx_token_count

    return approx_token_count


def decoding_budgets(cfg: EvaluateConfig, frame: pd.DataFrame) -> list[int]:
    """Each sample's ``max_new_tokens`` (``decoding``; see evaluation.budget)."""
    from evaluation.budget import per_sample_budgets, target_length_quantiles

    cap = cfg.backend.max_new_tokens
    thinking = [None if v is pd.NA else bool(v) for v in frame["thinking"]]
    if cfg.decoding.budget == "fixed" or cfg.backend.kind == "baseline":
        return [1 if k == "risk" and t is False else cap for k, t in zip(frame["kind"], thinking)]
    count = token_counter(cfg)
    modes = {bool(t) for t, k in zip(thinking, frame["kind"]) if not (k == "risk" and t is False)}
    quantiles = {mode: target_length_quantiles(cfg.decoding.training_data, count, thinking=mode,
                                               quantile=cfg.decoding.quantile) for mode in modes}
    budgets = per_sample_budgets(list(frame["task"]), list(frame["kind"]), thinking, quantiles,
                                 margin=cfg.decoding.margin, cap=cap)
    log.info("decoding budget per task (p%g of the trained length + %d, at most %d): %s",
             cfg.decoding.quantile * 100, cfg.decoding.margin, cap,
             dict(sorted(pd.Series(budgets, index=frame["task"]).groupby(level=0).max().items())))
    return budgets


def input_token_budget(cfg: EvaluateConfig, max_new_tokens: int) -> int:
    """``backend.max_input_tokens`` within the model's context minus the largest decoding budget."""
    from evaluation.budget import input_budget, model_context

    context = model_context(cfg.model.path)
    budget = input_budget(cfg.backend.max_input_tokens, max_new_tokens, context)
    if budget < cfg.backend.max_input_tokens:
        log.info("input budget %d tokens: the model's context %d minus %d new tokens (backend.max_input_tokens "
                 "%d); longer histories lose their oldest events", budget, context, max_new_tokens,
                 cfg.backend.max_input_tokens)
    return budget


def build_backend(cfg: EvaluateConfig, max_new_tokens: int | None = None):
    from evaluation import backends

    be = cfg.backend
    new_tokens = max_new_tokens or be.max_new_tokens
    if be.kind == "baseline":
        from evaluation.baselines import BaselineBackend

        b = be.baseline
        return BaselineBackend(b.method, b.training_data, b.max_train_per_task, b.max_items_per_task, b.seed,
                               be.batch_size)
    if be.kind == "transformers":
        t = be.transformers
        return backends.TransformersBackend(cfg.model.path, max_new_tokens=new_tokens,
                                            max_input_tokens=input_token_budget(cfg, new_tokens),
                                            batch_size=be.batch_size,
                                            num_actors=t.num_actors, num_cpus_per_actor=t.num_cpus_per_actor,
                                            dtype=t.dtype, torch_threads=t.torch_threads)
    if be.kind == "vllm":
        v = be.vllm
        return backends.VLLMBackend(cfg.model.path, max_new_tokens=new_tokens,
                                    max_input_tokens=input_token_budget(cfg, new_tokens), batch_size=be.batch_size,
                                    num_engines=v.num_engines, engine_kwargs=v.engine_kwargs, env=v.env,
                                    num_cpus_per_engine=v.num_cpus_per_engine, use_gpu=v.use_gpu)
    h = be.http
    return backends.HttpBackend(h.base_url, api=h.api, model=h.model, max_new_tokens=be.max_new_tokens,
                                batch_size=be.batch_size, concurrency=h.concurrency, timeout_s=h.timeout_s,
                                max_retries=h.max_retries, backoff_s=h.backoff_s, api_key_env=h.api_key_env,
                                num_actors=h.num_actors, max_consecutive_failures=h.max_consecutive_failures)


def prediction_fingerprint(cfg: EvaluateConfig, samples: pd.DataFrame) -> dict:
    """What the stored predictions depend on. Retry and parallelism settings are free to change on resume."""
    ids = hashlib.sha256("\n".join(sorted(samples["sample_id"])).encode()).hexdigest()[:16]
    prompts = hashlib.sha256("\n".join(samples["messages"]).encode()).hexdigest()[:16]
    budgets = hashlib.sha256(",".join(map(str, samples["max_new_tokens"])).encode()).hexdigest()[:16]
    from jobkit.stage_state import path_fingerprint

    # the weights themselves: a retrained model at the same path is another model
    weights = path_fingerprint(cfg.model.path) if cfg.model.path and cfg.backend.kind in ("transformers", "vllm") \
        else None
    fitted_on = ({p: path_fingerprint(p) for p in cfg.backend.baseline.training_data}
                 if cfg.backend.kind == "baseline" else None)
    return {"model": cfg.model_name, "weights": weights, "baseline_training_data": fitted_on, "backend": cfg.backend.kind, "max_new_tokens": cfg.backend.max_new_tokens,
            "max_input_tokens": cfg.backend.max_input_tokens, "decoding": cfg.decoding.model_dump(),
            "baseline": cfg.backend.baseline.model_dump() if cfg.backend.kind == "baseline" else None,
            "prompting": cfg.prompting.model_dump(), "benchmark": cfg.benchmark.kind, "prompts_sha256": prompts,
            "samples_sha256": ids, "budgets_sha256": budgets}


def _check_fingerprint(run_dir: Path, fingerprint: dict, on_change: str = "refuse") -> Path:
    """Write ``run.json``; returns the run directory to use (a fresh one when ``on_change`` replaces a stale run)."""
    path = run_dir / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        # a smaller or larger sample cap keeps the predictions of the samples both selections share
        keys = [k for k in fingerprint if k not in ("samples_sha256", "prompts_sha256", "budgets_sha256")]
        changed = [k for k in keys if old.get(k) != fingerprint[k]]
        if changed and on_change == "replace":
            from jobkit.stage_state import free_name

            aside = free_name(run_dir, "replaced")
            os.replace(run_dir, aside)
            run_dir.mkdir(parents=True)
            log.warning("%s held predictions of a different %s; kept at %s, predicting afresh", run_dir,
                        ", ".join(changed), aside)
        elif changed:
            raise ValueError(f"{run_dir} holds predictions made with a different {', '.join(changed)} "
                             f"({ {k: old.get(k) for k in changed} } vs { {k: fingerprint[k] for k in changed} }); "
                             "choose another run_name, delete the folder or set on_change: replace")
    tmp = path.with_name(".run.json.tmp")
    tmp.write_text(json.dumps(fingerprint, indent=2))
    os.replace(tmp, path)
    return run_dir


def log_to_mlflow(cfg: EvaluateConfig, metrics: dict, run: dict, files: list[Path]) -> None:
    import mlflow

    _mlflow_store(cfg)
    values: dict[str, float] = {}
    for level in ("overall", "families", "tasks"):
        for key, stats in metrics[level].items():
            for m, v in stats.items():
                if isinstance(v, float) and v == v and not m.endswith(("_lo", "_hi")) and m not in ("tasks",):
                    values[f"{level}/{key}/{m}".replace(":", "").replace(" ", "_")] = v
    with mlflow.start_run(run_name=cfg.run_name):
        mlflow.log_params({"model": run["model"], "benchmark": run["benchmark"], "backend": run["backend"],
                           "prompting": cfg.prompting.mode, "thinking": cfg.prompting.thinking,
                           "samples": run["scored"]})
        mlflow.log_metrics(values)
        for f in files:
            mlflow.log_artifact(str(f))


def log_comparison_to_mlflow(cfg: EvaluateConfig, comparison_json: Path, files: list[Path]) -> None:
    """The paired differences of a comparison as one MLflow run (``diff/<b - a>/<kind>/{diff,lo,hi}``)."""
    import mlflow

    data = json.loads(Path(comparison_json).read_text())
    _mlflow_store(cfg)
    values = {}
    for label, d in data["differences"].items():
        key = label.replace(" - ", "_minus_").replace(" ", "_").replace(":", "")
        for kind, stats in d["overall"].items():
            for field, name in (("diff", "diff"), ("diff_lo", "lo"), ("diff_hi", "hi")):
                if stats[field] == stats[field]:
                    values[f"diff/{key}/{kind}/{name}"] = float(stats[field])
    with mlflow.start_run(run_name="comparison"):
        mlflow.log_params({"runs": ",".join(data["runs"])})
        mlflow.log_metrics(values)
        for f in [comparison_json, *files]:
            mlflow.log_artifact(str(f))


def _mlflow_store(cfg: EvaluateConfig) -> None:
    import mlflow

    uri = cfg.mlflow_tracking_uri
    if "://" not in uri and not uri.startswith("file:"):
        uri = Path(uri).expanduser().resolve().as_uri()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3 keeps file stores in maintenance mode
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.mlflow_experiment)


def evaluate(cfg: EvaluateConfig) -> EvaluationResult:
    from evaluation.inference import read_predictions, run_inference
    from evaluation.compare import compare_runs
    from evaluation.report import write_report
    from evaluation.scores import OUTCOMES, aggregate, score_frame

    run_dir = Path(cfg.output_dir).expanduser().resolve() / cfg.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    samples = load_samples(cfg)
    log.info("evaluating %s on %d %s samples (%d tasks) with the %s backend -> %s", cfg.model_name, len(samples),
             cfg.benchmark.kind, samples["task"].nunique(), cfg.backend.kind, run_dir)
    _check_fingerprint(run_dir, prediction_fingerprint(cfg, samples), cfg.on_change)
    summary = run_inference(samples, build_backend(cfg, int(samples["max_new_tokens"].max())), run_dir,
                            batch_size=cfg.backend.batch_size, progress=cfg.progress)
    log.info("inference: %d reused, %d run, %d failed in %.1f s", summary.reused, summary.ran, summary.errors,
             summary.seconds)
    if summary.errors:
        retries = f" after {cfg.backend.http.max_retries} retries" if cfg.backend.kind == "http" else ""
        raise EvaluationIncomplete(
            f"{summary.errors} of {summary.total} samples failed{retries} (see "
            f"the `error` column in {run_dir / 'predictions'}); the {summary.total - summary.errors} predictions "
            "made are kept. Re-run the same command to retry only the failed samples.")
    predictions = read_predictions(run_dir / "predictions")
    predictions = predictions[predictions["sample_id"].isin(samples["sample_id"])]
    scored = score_frame(samples, predictions)
    metrics = aggregate(scored, n_bootstrap=cfg.scoring.n_bootstrap, confidence=cfg.scoring.confidence,
                        seed=cfg.scoring.seed)
    outcomes = scored["outcome"].value_counts()
    run = {"name": cfg.run_name, "model": cfg.model_name, "benchmark": cfg.benchmark.kind,
           "backend": cfg.backend.kind, "total": len(samples), "scored": len(scored),
           "patients": int(scored["patient"].nunique()),
           **{o: int(outcomes.get(o, 0)) for o in OUTCOMES},
           "history_cut": int((scored["dropped_events"] > 0).sum()),
           "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
           "config": cfg.model_dump(mode="json")}
    if cfg.backend.kind == "baseline" and cfg.backend.baseline.method != "prior":
        from evaluation.baselines import leakage_suspects

        run["leakage_review"] = leakage_suspects(metrics)
    per_sample = scored.drop(columns=["input", "messages", "instruction", "prompt_instruction", "candidates"])
    per_sample["target"] = per_sample["target"].map(list)
    per_sample.to_parquet(run_dir / ".scores.parquet.tmp", index=False)
    os.replace(run_dir / ".scores.parquet.tmp", run_dir / "scores.parquet")
    (run_dir / ".metrics.json.tmp").write_text(json.dumps({"run": run, "metrics": metrics}, indent=2, default=str))
    os.replace(run_dir / ".metrics.json.tmp", run_dir / "metrics.json")
    md, page = write_report(run_dir, metrics, run, scored)
    comparison = None
    if cfg.compare_with:
        comparison, _ = compare_runs([*map(Path, cfg.compare_with), run_dir], run_dir,
                                     n_bootstrap=cfg.scoring.n_bootstrap, confidence=cfg.scoring.confidence,
                                     seed=cfg.scoring.seed)
    if cfg.mlflow_tracking_uri:
        log_to_mlflow(cfg, metrics, run, [md, page, run_dir / "metrics.json"])
        if comparison is not None:
            log_comparison_to_mlflow(cfg, run_dir / "comparison.json", [comparison])
    return EvaluationResult(run_dir, metrics, md, page, comparison)


def headline(metrics: dict) -> str:
    """One line per kind for the console: the macro mean over the tasks that have the metric, and how many."""
    from evaluation.report import HEADLINE, LABELS, fmt

    lines = []
    for kind, s in metrics["overall"].items():
        left_out = int(s.get("tasks_total", s["tasks"]) - s["tasks"])
        note = f"; {left_out} not scoreable" if left_out else ""
        lines.append(f"  {kind:<9} {LABELS[HEADLINE[kind]]:<9} {fmt(s, HEADLINE[kind])}  ({int(s['tasks'])} tasks, "
                     f"{int(s['n'])} samples{note})")
    return "\n".join(lines)
