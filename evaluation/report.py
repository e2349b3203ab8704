"""Reports people want to read: markdown and one self-contained HTML page per run, and a side-by-side comparison.

A run report has the headline figures (decision F1, risk AUROC / AUPRC, calculator accuracy, each with its
bootstrap interval), per-family and per-task tables, PNG plots embedded as base64 (per-task bars with interval
whiskers, ROC curves of the risk tasks), the model and the run's full config. ``compare_runs`` puts several runs'
``metrics.json`` side by side (per task and overall), e.g. stage 1 vs stage 2 vs a baseline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import pandas as pd

LABELS = {"f1": "F1", "precision": "precision", "recall": "recall", "task_metric": "task metric",
          "accuracy": "accuracy", "auroc": "AUROC", "auprc": "AUPRC"}
COLUMNS_BY_KIND = {"decision": ["f1", "precision", "recall", "task_metric"], "risk": ["auroc", "auprc", "accuracy"],
                   "calc": ["accuracy"]}
HEADLINE = {"decision": "f1", "risk": "auroc", "calc": "accuracy"}


def fmt(stats: dict, metric: str) -> str:
    value = stats.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    lo, hi = stats.get(f"{metric}_lo"), stats.get(f"{metric}_hi")
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{value:.3f}"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _sections(metrics: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the markdown and the HTML."""
    conf = int(round(metrics["bootstrap"]["confidence"] * 100))
    out = []
    overall_rows = [[kind, str(int(s["tasks"])), str(int(s["n"])), LABELS[HEADLINE[kind]], fmt(s, HEADLINE[kind]),
                     "; ".join(f"{LABELS[m]} {fmt(s, m)}" for m in COLUMNS_BY_KIND[kind] if m != HEADLINE[kind])]
                    for kind, s in metrics["overall"].items()]
    out.append((f"Overall (macro mean over tasks, {conf}% bootstrap interval)",
                ["kind", "tasks", "samples", "headline", "value", "other metrics"], overall_rows))
    for kind in ("decision", "risk", "calc"):
        fams = {f: s for f, s in metrics["families"].items() if s["kind"] == kind}
        if fams:
            cols = COLUMNS_BY_KIND[kind]
            out.append((f"Families: {kind}", ["family", "tasks", "samples", *[LABELS[c] for c in cols]],
                        [[f, str(int(s["tasks"])), str(int(s["n"])), *[fmt(s, c) for c in cols]]
                         for f, s in fams.items()]))
        tasks = {t: s for t, s in metrics["tasks"].items() if s["kind"] == kind}
        if tasks:
            cols = COLUMNS_BY_KIND[kind]
            extra = ["positives"] if kind == "risk" else []
            out.append((f"Tasks: {kind}", ["task", "family", "samples", *extra, *[LABELS[c] for c in cols]],
                        [[t, s["family"], str(int(s["n"])),
                          *([str(int(s.get("positives", 0)))] if kind == "risk" else []),
                          *[fmt(s, c) for c in cols]] for t, s in tasks.items()]))
    return out


# -- plots ----------------------------------------------------------------------------------------------------
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def task_bar_plot(metrics: dict, kind: str) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = HEADLINE[kind]
    tasks = [(t, s) for t, s in metrics["tasks"].items() if s["kind"] == kind and not math.isnan(s.get(metric,
                                                                                                       math.nan))]
    if not tasks:
        return None
    names = [t for t, _ in tasks]
    values = [s[metric] for _, s in tasks]
    lo = [max(0.0, v - s.get(f"{metric}_lo", v)) if not math.isnan(s.get(f"{metric}_lo", math.nan)) else 0.0
          for v, (_, s) in zip(values, tasks)]
    hi = [max(0.0, s.get(f"{metric}_hi", v) - v) if not math.isnan(s.get(f"{metric}_hi", math.nan)) else 0.0
          for v, (_, s) in zip(values, tasks)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 3.4))
    ax.bar(range(len(names)), values, yerr=[lo, hi], capsize=3, color="#4C72B0")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(LABELS[metric])
    if kind == "risk":
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_title(f"{kind}: {LABELS[metric]} per task")
    return _png(fig)


def roc_plot(scored: pd.DataFrame) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    from evaluation.metrics import auroc

    risk = scored[(scored["kind"] == "risk") & scored["p_yes"].notna()]
    groups = [(t, g) for t, g in risk.groupby("task") if g["label"].nunique() == 2]
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    for task, g in groups:
        fpr, tpr, _ = roc_curve(g["label"].astype(int), g["p_yes"])
        area = auroc(g["p_yes"].tolist(), g["label"].astype(int).tolist())
        ax.plot(fpr, tpr, lw=1.2, label=f"{task} (AUROC {area:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves (risk tasks)")
    ax.legend(fontsize=6, loc="lower right")
    return _png(fig)


# -- one run --------------------------------------------------------------------------------------------------
def render_markdown(metrics: dict, run: dict) -> str:
    parts = [f"# Evaluation: {run['name']}", "",
             f"- model: `{run['model']}`", f"- benchmark: {run['benchmark']}", f"- backend: {run['backend']}",
             f"- samples scored: {run['scored']} of {run['total']} ({run['skipped']} skipped: scored as misses)",
             f"- finished: {run['finished']}", ""]
    for title, header, rows in _sections(metrics):
        parts += [f"## {title}", "", _md_table(header, rows), ""]
    parts += ["## Config", "", "```json", json.dumps(run["config"], indent=2, default=str), "```", ""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left}th{background:#f3f5f8}tr:nth-child(even) td{background:#fafafa}code,pre{background:#f6f8fa}
pre{padding:0.8rem;overflow:auto;font-size:0.8rem}.meta li{margin:2px 0}img{max-width:100%;margin:0.5rem 0}"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(metrics: dict, run: dict, plots: list[tuple[str, str]]) -> str:
    meta = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(run[k]))}</li>"
                   for k in ("model", "benchmark", "backend", "scored", "total", "skipped", "finished"))
    body = [f"<h1>Evaluation: {html.escape(run['name'])}</h1>", f"<ul class='meta'>{meta}</ul>"]
    for title, header, rows in _sections(metrics):
        body += [f"<h2>{html.escape(title)}</h2>", _html_table(header, rows)]
    for title, png in plots:
        body += [f"<h2>{html.escape(title)}</h2>", f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"]
    body += ["<h2>Config</h2>", f"<pre>{html.escape(json.dumps(run['config'], indent=2, default=str))}</pre>"]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run['name'])}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")


def write_report(run_dir: Path, metrics: dict, run: dict, scored: pd.DataFrame) -> tuple[Path, Path]:
    plots = [(f"{kind}: per-task {LABELS[HEADLINE[kind]]}", png) for kind in ("decision", "risk", "calc")
             if (png := task_bar_plot(metrics, kind))]
    if (roc := roc_plot(scored)) is not None:
        plots.append(("ROC curves", roc))
    md, page = run_dir / "report.md", run_dir / "report.html"
    _atomic_write(md, render_markdown(metrics, run))
    _atomic_write(page, render_html(metrics, run, plots))
    return md, page


def _atomic_write(path: Path, text: str) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# -- several runs ---------------------------------------------------------------------------------------------
def compare_runs(run_dirs: list[Path], out_dir: Path) -> tuple[Path, Path]:
    """Side-by-side markdown + HTML of several runs' headline metrics (overall, per family, per task)."""
    runs = []
    for d in run_dirs:
        path = Path(d) / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not an evaluation run (no metrics.json); run ray_jobs.evaluate first")
        data = json.loads(path.read_text())
        runs.append((data["run"]["name"], data))
    names = [n for n, _ in runs]
    sections: list[tuple[str, list[str], list[list[str]]]] = []
    for level in ("overall", "families", "tasks"):
        keys = sorted({k for _, d in runs for k in d["metrics"][level]})
        rows = []
        for key in keys:
            kind = next(d["metrics"][level][key].get("kind", key) for _, d in runs if key in d["metrics"][level])
            metric = HEADLINE.get(kind, "accuracy")
            rows.append([key, LABELS[metric], *[fmt(d["metrics"][level].get(key, {}), metric) for _, d in runs]])
        sections.append((level, ["", "metric", *names], rows))
    models = [["model", "", *[d["run"]["model"] for _, d in runs]],
              ["benchmark", "", *[d["run"]["benchmark"] for _, d in runs]]]
    md = ["# Evaluation runs compared", "", _md_table(["", "", *names], models), ""]
    page = [f"<h1>Evaluation runs compared</h1>", _html_table(["", "", *names], models)]
    for title, header, rows in sections:
        md += [f"## {title}", "", _md_table(header, rows), ""]
        page += [f"<h2>{html.escape(title)}</h2>", _html_table(header, rows)]
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out_dir / "comparison.md", out_dir / "comparison.html"
    _atomic_write(md_path, "\n".join(md))
    _atomic_write(html_path, f"<!doctype html><html><head><meta charset='utf-8'><title>comparison</title>"
                             f"<style>{_CSS}</style></head><body>{''.join(page)}</body></html>")
    return md_path, html_path
