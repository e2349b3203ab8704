"""Reports people want to read: markdown and one self-contained HTML page per run, and a side-by-side comparison.

A run report has the headline figures (decision F1, risk AUROC / AUPRC, calculator accuracy, each with its
bootstrap interval), per-family and per-task tables, PNG plots embedded as base64 (per-task bars with interval
whiskers, ROC curves of the risk tasks), the model and the run's full config. Per task it says how many samples,
patients and positives there are and what happened to every sample (answered, truncated without an answer, stopped
without one, refused), so no miss is silent. Several runs on the same samples: ``evaluation.compare``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import pandas as pd

from evaluation.scores import HEADLINE, WIDE_INTERVAL

LABELS = {"f1": "F1", "precision": "precision", "recall": "recall", "task_metric": "task metric",
          "accuracy": "accuracy", "auroc": "AUROC", "auprc": "AUPRC"}
COLUMNS_BY_KIND = {"decision": ["f1", "precision", "recall", "task_metric"], "risk": ["auroc", "auprc", "accuracy"],
                   "calc": ["accuracy"]}


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


def _outcome_cells(s: dict) -> list[str]:
    return [str(int(s.get(o, 0))) for o in ("answered", "truncated", "no_answer", "refused")]


OUTCOME_HEADER = ["answered", "truncated", "no answer", "refused"]


def headline_note(kind: str, s: dict) -> str:
    """What the headline averages, and what it leaves out."""
    left = int(s.get("tasks_total", s["tasks"]) - s["tasks"])
    text = f"macro mean over {int(s['tasks'])} tasks, {int(s['n'])} samples"
    if left:
        text += f"; {left} task(s) not scoreable (one class among the samples) left out"
    return text


def wide(s: dict, metric: str) -> bool:
    lo, hi = s.get(f"{metric}_lo"), s.get(f"{metric}_hi")
    return lo is not None and hi is not None and not math.isnan(lo) and not math.isnan(hi) and hi - lo > WIDE_INTERVAL


def _sections(metrics: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the markdown and the HTML."""
    conf = int(round(metrics["bootstrap"]["confidence"] * 100))
    out = []
    overall_rows = [[kind, LABELS[HEADLINE[kind]], fmt(s, HEADLINE[kind]) + (" (wide)" if wide(s, HEADLINE[kind])
                                                                             else ""),
                     headline_note(kind, s), *_outcome_cells(s),
                     "; ".join(f"{LABELS[m]} {fmt(s, m)}" for m in COLUMNS_BY_KIND[kind] if m != HEADLINE[kind])]
                    for kind, s in metrics["overall"].items()]
    unit = metrics["bootstrap"].get("unit", "sample")
    out.append((f"Overall ({conf}% {unit}-level bootstrap interval, {metrics['bootstrap'].get('patients', '?')} "
                "patients)", ["kind", "headline", "value", "averages", *OUTCOME_HEADER, "other metrics"],
                overall_rows))
    for kind in ("decision", "risk", "calc"):
        fams = {f: s for f, s in metrics["families"].items() if s["kind"] == kind}
        if fams:
            cols = COLUMNS_BY_KIND[kind]
            out.append((f"Families: {kind}", ["family", "tasks", "samples", *[LABELS[c] for c in cols]],
                        [[f, f"{int(s['tasks'])} of {int(s.get('tasks_total', s['tasks']))}",
                          str(int(s.get("n_total", s["n"]))), *[fmt(s, c) for c in cols]] for f, s in fams.items()]))
        tasks = {t: s for t, s in metrics["tasks"].items() if s["kind"] == kind}
        if tasks:
            cols = COLUMNS_BY_KIND[kind]
            extra = ["positives"] if kind == "risk" else []
            out.append((f"Tasks: {kind}", ["task", "samples", "patients", *extra, *OUTCOME_HEADER,
                                           *[LABELS[c] for c in cols]],
                        [[t, str(int(s.get("n_total", s["n"]))), str(int(s.get("patients", 0))),
                          *([str(int(s.get("positives", 0)))] if kind == "risk" else []), *_outcome_cells(s),
                          *[fmt(s, c) if (c != HEADLINE[kind] or s.get("scoreable", True)) else
                            "not scoreable (one class)" for c in cols]] for t, s in tasks.items()]))
    return out


def notes(metrics: dict, run: dict) -> list[str]:
    """Plain-language warnings a reader needs before trusting the numbers."""
    out = []
    for kind, s in metrics["overall"].items():
        if wide(s, HEADLINE[kind]):
            out.append(f"The {kind} {LABELS[HEADLINE[kind]]} interval is wider than {WIDE_INTERVAL}: too wide to "
                       "rank two models whose scores differ by less; evaluate more samples or patients.")
    truncated = int(run.get("truncated", 0))
    if truncated:
        out.append(f"{truncated} completion(s) ran out of decoding budget before an answer (scored 0): raise "
                   "backend.max_new_tokens or use decoding.budget=from_training.")
    if int(run.get("refused", 0)):
        out.append(f"{run['refused']} sample(s) were refused by the backend (see the error column of "
                   "scores.parquet); refused risk samples have no p(yes) and are not in the AUROC.")
    if run.get("history_cut"):
        out.append(f"{run['history_cut']} prompt(s) were longer than the input budget and lost their oldest "
                   "history events (whole events, counted per sample in scores.parquet `dropped_events`).")
    if run.get("leakage_review"):
        out.append(f"Baseline AUROC >= 0.95 on {', '.join(run['leakage_review'])}: review these tasks for label "
                   "leakage.")
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
def outcome_line(run: dict) -> str:
    return (f"{run.get('answered', 0)} answered, {run.get('truncated', 0)} truncated without an answer, "
            f"{run.get('no_answer', 0)} stopped without an answer, {run.get('refused', 0)} refused")


def render_markdown(metrics: dict, run: dict) -> str:
    parts = [f"# Evaluation: {run['name']}", "",
             f"- model: `{run['model']}`", f"- benchmark: {run['benchmark']}", f"- backend: {run['backend']}",
             f"- samples: {run['total']} from {run.get('patients', '?')} patients; {outcome_line(run)}",
             f"- finished: {run['finished']}", ""]
    if notes(metrics, run):
        parts += ["## Read this first", "", *[f"- {n}" for n in notes(metrics, run)], ""]
    for title, header, rows in _sections(metrics):
        parts += [f"## {title}", "", _md_table(header, rows), ""]
    parts += ["## Config", "", "```json", json.dumps(run["config"], indent=2, default=str), "```", ""]
    return "\n".join(parts)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem;font-size:0.9rem}th,td{border:1px solid #ddd;padding:4px 8px;
text-align:left}th{background:#f3f5f8}tr:nth-child(even) td{background:#fafafa}code,pre{background:#f6f8fa}
pre{padding:0.8rem;overflow:auto;font-size:0.8rem}.meta li{margin:2px 0}img{max-width:100%;margin:0.5rem 0}
.notes li{color:#8a4b00}.yes{color:#116611;font-weight:600}.no{color:#666}"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(metrics: dict, run: dict, plots: list[tuple[str, str]]) -> str:
    meta = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                   for k, v in (("model", run["model"]), ("benchmark", run["benchmark"]), ("backend", run["backend"]),
                                ("samples", f"{run['total']} from {run.get('patients', '?')} patients"),
                                ("outcomes", outcome_line(run)), ("finished", run["finished"])))
    body = [f"<h1>Evaluation: {html.escape(run['name'])}</h1>", f"<ul class='meta'>{meta}</ul>"]
    if notes(metrics, run):
        body += ["<h2>Read this first</h2>",
                 "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes(metrics, run)) + "</ul>"]
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


