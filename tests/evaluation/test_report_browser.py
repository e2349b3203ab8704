"""The reports as a person sees them: rendered by a real headless Chromium, screenshotted, no page errors.

Needs the system Chromium (Debian package ``chromium``; ``.ci/run`` installs it) and playwright (dev extra), which
drives it without downloading a browser of its own. CI fails when either is missing (``tests/engines.py``)."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.engines import engines_required, require_engine

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        message = "no system Chromium: install the Debian package `chromium` (apt-get install chromium)"
        if engines_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def _scored(seed: int, good: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(20):
        for task, kind in (("diagnoses_icd", "decision"), ("labevents", "decision"), ("Inpatient_Mortality", "risk"),
                           ("ICU_Mortality_1day", "risk")):
            label = float(rng.random() < 0.4) if kind == "risk" else -1.0
            f1 = float(rng.random() < good) if kind == "decision" else math.nan
            p_yes = float(np.clip(rng.normal(0.4 + good * 0.3 * label, 0.2), 0, 1)) if kind == "risk" else math.nan
            outcome = "truncated" if kind == "decision" and rng.random() < 0.1 else "answered"
            rows.append({"sample_id": f"{task}-{p}", "task": task, "kind": kind, "patient": f"p{p}",
                         "family": f"{kind}: hosp", "benchmark": "ehr_bench", "outcome": outcome,
                         "precision": f1, "recall": f1, "f1": f1, "task_metric": f1 if kind == "decision" else 1.0,
                         "accuracy": 1.0, "p_yes": p_yes, "label": label})
    return pd.DataFrame(rows)


def _write_run(root: Path, name: str, seed: int, good: float) -> Path:
    from evaluation.report import write_report
    from evaluation.scores import aggregate

    run_dir = root / name
    run_dir.mkdir(parents=True)
    scored = _scored(seed, good)
    scored.to_parquet(run_dir / "scores.parquet")
    metrics = aggregate(scored, n_bootstrap=50)
    counts = scored["outcome"].value_counts()
    run = {"name": name, "model": name, "benchmark": "ehr_bench", "backend": "transformers", "total": len(scored),
           "scored": len(scored), "patients": 20, "answered": int(counts.get("answered", 0)),
           "truncated": int(counts.get("truncated", 0)), "no_answer": 0, "refused": 0, "history_cut": 3,
           "finished": "now", "config": {"model": {"path": name}}}
    (run_dir / "metrics.json").write_text(json.dumps({"run": run, "metrics": metrics}))
    write_report(run_dir, metrics, run, scored)
    return run_dir


def test_reports_render_in_headless_chromium_without_errors(tmp_path):
    chromium = _chromium()
    sync_api = require_engine("playwright.sync_api", "pip install -e '.[dev]'")
    from evaluation.compare import compare_runs

    weak, strong = _write_run(tmp_path, "stage1", 0, 0.2), _write_run(tmp_path, "stage2", 1, 0.8)
    _, comparison = compare_runs([weak, strong], tmp_path / "cmp", n_bootstrap=50)
    pages = {"report": strong / "report.html", "comparison": comparison}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, page_path in pages.items():
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
                page.goto(page_path.as_uri())
                shot = tmp_path / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert not errors, f"{name}: {errors}"
                images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
                assert images and all(done and width > 100 for done, width in images), images
                text = page.inner_text("body")
                if name == "report":
                    assert "Read this first" in text and "patient-level bootstrap" in text
                    assert "truncated" in text and "not scoreable" not in text.split("Tasks: risk")[0]
                else:
                    assert "stage2 − stage1" in text and "Paired differences" in text
                assert shot.stat().st_size > 20_000  # a rendered page with its plots, not a blank one
                page.close()
        finally:
            browser.close()
