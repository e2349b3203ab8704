"""Several evaluation runs on the same samples, compared the way a reviewer would: paired, by patient.

``compare_runs`` reads each run's ``metrics.json`` and ``scores.parquet`` and writes ``comparison.md`` / ``.html``
and ``comparison.json``:

- a headline table, one row per run (decision F1, risk AUROC with their patient-level intervals, outcomes);
- **paired differences** (``b - a``) of the headline metrics over the sample ids both runs scored: one
  patient-level (cluster) bootstrap draws patients and recomputes both runs' metrics on the same resampled
  samples, so the interval of the difference accounts for the pairing; a difference whose interval excludes zero
  is marked, one that does not is "not distinguishable";
- per task, each run's headline metric; plots of both; and the config keys that differ between the runs.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.scores import (HEADLINE, SCORE_COLUMNS, cluster_replicates, interval, patient_codes, resample,
                               task_metrics)

IGNORED_CONFIG_KEYS = ("output_dir", "run_name", "compare_with", "progress", "mlflow_tracking_uri", "log_level")


def load_run(run_dir: Path) -> tuple[dict, dict, pd.DataFrame]:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not an evaluation run (no metrics.json); run ray_jobs.evaluate first")
    data = json.loads(path.read_text())
    scores = Path(run_dir) / "scores.parquet"
    scored = pd.read_parquet(scores) if scores.is_file() else pd.DataFrame()
    return data["run"], data["metrics"], scored


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, *, n_bootstrap: int = 1000, confidence: float = 0.95,
                      seed: int = 0) -> dict:
    """Headline-metric differences ``b - a`` per task and per kind over the samples both runs scored."""
    keep = ["sample_id", "task", "kind", "patient", *SCORE_COLUMNS]
    if "patient" not in a:
        a = a.assign(patient=a["sample_id"])
    shared = a[keep].merge(b[["sample_id", *SCORE_COLUMNS]], on="sample_id", suffixes=("_a", "_b"))
    shared = shared.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    codes = patient_codes(shared)
    counts = cluster_replicates(codes, n_bootstrap, rng)
    arrays = {side: {c: shared[f"{c}_{side}"].to_numpy(dtype=float) for c in SCORE_COLUMNS} for side in "ab"}
    tasks: dict[str, dict] = {}
    reps: dict[str, np.ndarray] = {}
    for task, group in shared.groupby("task", sort=True):
        kind, idx = group["kind"].iloc[0], group.index.to_numpy()
        metric = HEADLINE[kind]

        def diff(rows: np.ndarray) -> tuple[float, float, float]:
            va = task_metrics(kind, {c: v[rows] for c, v in arrays["a"].items()}).get(metric, math.nan)
            vb = task_metrics(kind, {c: v[rows] for c, v in arrays["b"].items()}).get(metric, math.nan)
            return va, vb, vb - va

        va, vb, d = diff(idx)
        reps[task] = np.array([diff(resample(idx, codes, counts[r]))[2] for r in range(n_bootstrap)])
        lo, hi = interval(reps[task], confidence)
        tasks[task] = {"kind": kind, "metric": metric, "a": va, "b": vb, "diff": d, "diff_lo": lo, "diff_hi": hi,
                       "n": int(len(idx)), "excludes_zero": _excludes_zero(lo, hi)}
    overall = {}
    for kind in sorted({t["kind"] for t in tasks.values()}):
        members = [t for t, s in tasks.items() if s["kind"] == kind and not math.isnan(s["diff"])]
        if not members:
            continue
        point = float(np.mean([tasks[t]["diff"] for t in members]))
        stacked = np.stack([reps[t] for t in members]) if n_bootstrap else np.zeros((len(members), 0))
        with np.errstate(all="ignore"):
            replicate_means = [np.nanmean(col) if not np.all(np.isnan(col)) else math.nan for col in stacked.T]
        lo, hi = interval(replicate_means, confidence)
        overall[kind] = {"metric": HEADLINE[kind], "a": float(np.mean([tasks[t]["a"] for t in members])),
                         "b": float(np.mean([tasks[t]["b"] for t in members])), "diff": point, "diff_lo": lo,
                         "diff_hi": hi, "tasks": len(members), "n": int(sum(tasks[t]["n"] for t in members)),
                         "excludes_zero": _excludes_zero(lo, hi)}
    return {"tasks": tasks, "overall": overall, "shared_samples": int(len(shared)),
            "patients": int(codes.max()) + 1 if len(codes) else 0,
            "bootstrap": {"replicates": n_bootstrap, "confidence": confidence, "seed": seed, "unit": "patient"}}


def _excludes_zero(lo: float, hi: float) -> bool:
    return not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(value, default=str) if isinstance(value, list) else value}


def config_differences(configs: list[dict]) -> dict[str, list]:
    """Dotted config keys whose values differ between the runs (paths of the outputs left out)."""
    flat = [_flatten(c) for c in configs]
    keys = sorted({k for f in flat for k in f})
    return {k: [f.get(k) for f in flat] for k in keys
            if not k.split(".")[0] in IGNORED_CONFIG_KEYS and len({json.dumps(f.get(k), default=str)
                                                                   for f in flat}) > 1}


def describe_difference(d: dict) -> str:
    if math.isnan(d.get("diff", math.nan)):
        return "–"
    text = f"{d['diff']:+.3f} [{d['diff_lo']:+.3f}, {d['diff_hi']:+.3f}]"
    return text + (" *" if d["excludes_zero"] else " (not distinguishable)")


def verdict(label: str, d: dict) -> str:
    """One sentence per paired difference: better, worse or not distinguishable, per task kind."""
    from evaluation.report import LABELS

    b, a = label.split(" - ", 1)
    parts = []
    for kind, o in d["overall"].items():
        metric = LABELS[HEADLINE[kind]]
        if not o["excludes_zero"]:
            parts.append(f"not distinguishable on {kind} {metric} ({describe_difference(o).split(' (')[0]})")
        else:
            word = "better" if o["diff"] > 0 else "worse"
            parts.append(f"{word} on {kind} {metric} ({describe_difference(o).rstrip(' *')})")
    return f"{b} vs {a}: " + "; ".join(parts) + "."


def compare_runs(run_dirs: list[Path], out_dir: Path, *, pairs: list[tuple[str, str]] | None = None,
                 n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
                 title: str = "Evaluation runs compared", targets_for: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``comparison.{md,html,json}`` for ``run_dirs`` (in that order) under ``out_dir``.

    ``pairs``: (a, b) run names whose paired difference ``b - a`` is reported; default each run against the one
    before it. ``targets_for``: the trained models judged against :mod:`evaluation.targets` (a "Targets" section)."""
    from evaluation.report import LABELS, _atomic_write, fmt

    loaded = [load_run(Path(d)) for d in run_dirs]
    names = [run["name"] for run, _, _ in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must be unique to compare them, got {names}")
    by_name = {run["name"]: (run, metrics, scored) for run, metrics, scored in loaded}
    pairs = pairs if pairs is not None else list(zip(names, names[1:]))
    kinds = [k for k in ("decision", "risk", "calc") if any(k in m["overall"] for _, m, _ in loaded)]
    headline_rows = []
    for run, metrics, _ in loaded:
        cells = []
        for kind in kinds:
            s = metrics["overall"].get(kind)
            cells.append(fmt(s, HEADLINE[kind]) + f" ({int(s['tasks'])} tasks)" if s else "–")
        headline_rows.append([run["name"], run["model"], *cells,
                              f"{run.get('answered', '?')}/{run.get('total', '?')}", str(run.get("truncated", "?"))])
    headline_header = ["run", "model", *[f"{k} {LABELS[HEADLINE[k]]}" for k in kinds], "answered", "truncated"]
    differences = {}
    diff_rows = []
    for a, b in pairs:
        if a not in by_name or b not in by_name:
            raise ValueError(f"pairs: {a!r} or {b!r} is not one of the runs {names}")
        if by_name[a][2].empty or by_name[b][2].empty:
            continue
        d = paired_difference(by_name[a][2], by_name[b][2], n_bootstrap=n_bootstrap, confidence=confidence,
                              seed=seed)
        differences[f"{b} - {a}"] = d
        diff_rows.append([f"{b} − {a}", str(d["shared_samples"]), str(d["patients"]),
                          *[describe_difference(d["overall"][k]) if k in d["overall"] else "–" for k in kinds]])
    diff_header = ["difference", "shared samples", "patients", *[f"Δ {k} {LABELS[HEADLINE[k]]}" for k in kinds]]
    task_names = sorted({t for _, m, _ in loaded for t in m["tasks"]})
    task_rows = []
    for t in task_names:
        kind = next(m["tasks"][t]["kind"] for _, m, _ in loaded if t in m["tasks"])
        task_rows.append([t, LABELS[HEADLINE[kind]], *[fmt(m["tasks"].get(t, {}), HEADLINE[kind]) for _, m, _ in loaded]])
    config_diff = config_differences([run.get("config", {}) for run, _, _ in loaded])
    config_rows = [[k, *[str(v) for v in values]] for k, values in config_diff.items()]
    conf = int(round(confidence * 100))
    legend = (f"Intervals: {conf}% patient-level bootstrap ({n_bootstrap} replicates). Differences are paired over "
              "the samples both runs scored; * = the interval excludes zero.")
    verdicts = [verdict(label, d) for label, d in differences.items()]
    verdicts += [f"{run['name']}: AUROC >= 0.95 on {', '.join(run['leakage_review'])}; review these tasks for label "
                 "leakage before trusting any model's score on them." for run, _, _ in loaded
                 if run.get("leakage_review")]
    targets = []
    if targets_for:
        from evaluation.targets import summary, target_rows

        targets = target_rows({run["name"]: m["overall"] for run, m, _ in loaded}, differences, targets_for)
        verdicts.append(summary(targets))
    target_table = [[r["target"], r["run"], r["measured"], {True: "met", False: "NOT MET", None: "–"}[r["met"]]]
                    for r in targets]
    sections = [("Headline", headline_header, headline_rows),
                ("Paired differences", diff_header, diff_rows),
                *([("Targets", ["target", "run", "measured", ""], target_table)] if targets_for else []),
                ("Per task", ["task", "metric", *names], task_rows),
                ("Config keys that differ", ["key", *names], config_rows)]
    plots = [p for p in (_headline_plot(loaded, kinds), _difference_plot(differences, kinds)) if p]
    out_dir.mkdir(parents=True, exist_ok=True)
    from evaluation.report import _CSS, _html_table, _md_table

    md = [f"# {title}", "", legend, "", "## Verdict", "", *[f"- {v}" for v in verdicts], ""]
    page = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(legend)}</p>", "<h2>Verdict</h2>",
            "<ul class='notes'>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts) + "</ul>"]
    for name, header, rows in sections:
        md += [f"## {name}", "", _md_table(header, rows) if rows else "(none)", ""]
        page += [f"<h2>{html.escape(name)}</h2>", _html_table(header, rows) if rows else "<p>(none)</p>"]
    for name, png in plots:
        page += [f"<h2>{html.escape(name)}</h2>", f"<img alt='{html.escape(name)}' src='data:image/png;base64,{png}'>"]
    md_path, html_path = out_dir / "comparison.md", out_dir / "comparison.html"
    _atomic_write(md_path, "\n".join(md))
    _atomic_write(html_path, f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                             f"<style>{_CSS}</style></head><body>{''.join(page)}</body></html>")
    _atomic_write(out_dir / "comparison.json", json.dumps({
        "runs": names, "headline": {run["name"]: metrics["overall"] for run, metrics, _ in loaded},
        "differences": differences, "verdicts": verdicts, "targets": targets, "config_differences": config_diff},
        indent=2,
        default=str))
    return md_path, html_path


def _headline_plot(loaded, kinds) -> tuple[str, str] | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluation.report import LABELS, _png

    if not kinds:
        return None
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        metric = HEADLINE[kind]
        names, values, err_lo, err_hi = [], [], [], []
        for run, metrics, _ in loaded:
            s = metrics["overall"].get(kind, {})
            v = s.get(metric, math.nan)
            names.append(run["name"])
            values.append(0.0 if math.isnan(v) else v)
            err_lo.append(max(0.0, v - s.get(f"{metric}_lo", v)) if not math.isnan(v) else 0.0)
            err_hi.append(max(0.0, s.get(f"{metric}_hi", v) - v) if not math.isnan(v) else 0.0)
        ax.bar(range(len(names)), values, yerr=[err_lo, err_hi], capsize=3, color="#4C72B0")
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        if kind == "risk":
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{kind}: {LABELS[metric]}")
    return "Headline per run", _png(fig)


def _difference_plot(differences: dict, kinds) -> tuple[str, str] | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evaluation.report import LABELS, _png

    rows = [(label, k, d["overall"][k]) for label, d in differences.items() for k in kinds if k in d["overall"]]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(rows) + 1.2))
    for i, (label, kind, d) in enumerate(rows):
        color = "#2a7f2a" if d["excludes_zero"] and d["diff"] > 0 else "#b03030" if d["excludes_zero"] else "#777"
        ax.errorbar(d["diff"], i, xerr=[[max(0.0, d["diff"] - d["diff_lo"])], [max(0.0, d["diff_hi"] - d["diff"])]],
                    fmt="o", color=color, capsize=3)
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_yticks(range(len(rows)), [f"{label}: {LABELS[HEADLINE[k]]}" for label, k, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference (patient-level bootstrap interval)")
    return "Paired differences", _png(fig)
