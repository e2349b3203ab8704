"""MedCalc-Bench and EHRSHOT through the whole evaluation (Ray Data inference, scores, report) on their fixtures."""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evaluation.config import EvaluateConfig

MEDCALC_CSV = Path(__file__).parent / "fixtures" / "medcalc" / "medcalc_bench_test.csv"


def _oracle_server(answers: dict[str, str]) -> ThreadingHTTPServer:
    """An OpenAI-compatible endpoint that answers each MedCalc note with its ground truth in the JSON format."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            answer = next(a for note, a in answers.items() if note in prompt)
            content = json.dumps({"step_by_step_thinking": "computed", "answer": answer})
            payload = json.dumps({"choices": [{"index": 0, "message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
def test_medcalc_run_grades_every_family(ray_session, tmp_path):
    from evaluation.run import evaluate

    rows = list(csv.DictReader(MEDCALC_CSV.open()))
    server = _oracle_server({r["Patient Note"]: r["Ground Truth Answer"] for r in rows})
    try:
        cfg = EvaluateConfig.model_validate({
            "output_dir": str(tmp_path), "run_name": "medcalc", "model": {"name": "oracle"}, "progress": False,
            "benchmark": {"kind": "medcalc", "paths": [str(MEDCALC_CSV)]}, "scoring": {"n_bootstrap": 10},
            "backend": {"kind": "http", "batch_size": 4,
                        "http": {"base_url": f"http://127.0.0.1:{server.server_address[1]}"}}})
        metrics = evaluate(cfg).metrics
    finally:
        server.shutdown()
        server.server_close()
    assert metrics["overall"]["calc"]["accuracy"] == 1.0 and metrics["overall"]["calc"]["n"] == len(rows)
    assert set(metrics["families"]) == {r["Category"] for r in rows}


@pytest.mark.slow
def test_ehrshot_run_on_the_meds_fixture(ray_session, eval_tiny_model, tmp_path, monkeypatch):
    from meds_fixture import write_meds_fixture

    from evaluation.run import evaluate

    monkeypatch.setenv("EHR_R1_MEDS_READER_CACHE", str(tmp_path / "cache"))
    root = write_meds_fixture(tmp_path / "EHRSHOT_MEDS")
    cfg = EvaluateConfig.model_validate({
        "output_dir": str(tmp_path / "eval"), "run_name": "ehrshot", "model": {"path": eval_tiny_model},
        "progress": False, "benchmark": {"kind": "ehrshot", "paths": [str(root)]}, "scoring": {"n_bootstrap": 10},
        "backend": {"kind": "transformers", "batch_size": 8, "max_input_tokens": 4096}})
    result = evaluate(cfg)
    assert set(result.metrics["tasks"]) == {"guo_los", "lab_hyperkalemia", "new_hypertension"}
    assert all(0.0 <= t["auroc"] <= 1.0 for t in result.metrics["tasks"].values())
    assert set(result.metrics["families"]) == {"risk: operational", "risk: lab", "risk: new diagnosis"}
    assert "ROC curves" in result.report_html.read_text()
