"""Inference backends and the resumable Ray Data run: the transformers predictor scores p(yes) like the serving
engine; an OpenAI-compatible endpoint that fails mid-run costs retries and a resumed run, never the samples
already scored (a local fake server on a free loopback port)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evaluation.config import EvaluateConfig
from evaluation.samples import add_prompts, cap_per_task, load_ehr_bench
from tests.loopback import free_port


def test_transformers_predictor_matches_the_serving_scorer(eval_tiny_model, ehr_bench_file):
    """Left-padded batches give the p(yes) the serving engine computes on each prompt alone."""
    from evaluation.backends import TransformersPredictor
    from serving.engines.transformers_engine import TransformersEngine
    from serving.prompts import PromptCodec
    from serving.scoring import p_yes_from_logprobs

    frame = add_prompts(cap_per_task(load_ehr_bench([str(ehr_bench_file)]), 3))
    frame.loc[frame.index[-1], "input"] += "\n- extra event making this prompt longer than the others" * 3
    frame = add_prompts(frame.drop(columns=["messages", "thinking", "prompt_instruction"]))
    out = TransformersPredictor(eval_tiny_model, max_new_tokens=4, max_input_tokens=4096)(frame)
    assert list(out["sample_id"]) == list(frame["sample_id"]) and set(out["status"]) == {"ok"}
    engine, codec = TransformersEngine(eval_tiny_model), PromptCodec(eval_tiny_model, 4096)
    risk = frame[frame["kind"] == "risk"]
    for row, p in zip(risk.itertuples(), out.loc[risk.index, "p_yes"]):
        ids = codec.encode(codec.render_chat(json.loads(row.messages), enable_thinking=False))
        lp_yes, lp_no = asyncio.run(engine.next_token_logprobs(ids, [codec.yes_id, codec.no_id]))
        assert p == pytest.approx(p_yes_from_logprobs(lp_yes, lp_no), abs=1e-5)
    decision = out[frame["kind"] == "decision"]
    assert decision["p_yes"].isna().all() and (decision["completion_tokens"] > 0).all()


def test_prompt_over_the_budget_is_cut_from_the_left_never_refused(eval_tiny_model, ehr_bench_file):
    from evaluation.backends import TransformersPredictor

    frame = add_prompts(cap_per_task(load_ehr_bench([str(ehr_bench_file)]), 1))
    events = "\n\n".join(f"## Labotary Test Events [2150-01-0{d} 08:00:00]\n- Creatinine: 1.{d}" for d in range(1, 9))
    frame["input"] = "## Patient Demographics [None]\n- Anchor_Age: 64\n\n" + events
    frame = add_prompts(frame.drop(columns=["messages", "prompt_instruction", "thinking"]))
    frame["max_new_tokens"] = 2
    full = TransformersPredictor(eval_tiny_model, max_new_tokens=2, max_input_tokens=4096)(frame)
    budget = int(full["prompt_tokens"].min()) - 20
    out = TransformersPredictor(eval_tiny_model, max_new_tokens=2, max_input_tokens=budget)(frame)
    assert set(out["status"]) == {"ok"} and (out["prompt_tokens"] <= budget).all()
    assert (out["dropped_events"] > 0).all() and (full["dropped_events"] == 0).all()


class FakeOpenAI:
    """/v1/chat/completions: decision -> a fixed item list; risk -> yes/no top_logprobs. ``fail_every`` makes every
    n-th request fail with 500 (transient, retried); after ``down_after`` successes the server answers 503."""

    def __init__(self, fail_every: int = 0, down_after: int | None = None):
        self.requests: Counter[str] = Counter()
        self.successes = 0
        self.calls = 0
        self.fail_every, self.down_after = fail_every, down_after
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = body["messages"][-1]["content"]
                with fake.lock:
                    fake.calls += 1
                    fake.requests[key] += 1
                    down = fake.down_after is not None and fake.successes >= fake.down_after
                    flaky = fake.fail_every and fake.calls % fake.fail_every == 0
                    if not (down or flaky):
                        fake.successes += 1
                if down or flaky:
                    self.send_response(503 if down else 500)
                    self.end_headers()
                    self.wfile.write(b'{"error": "unavailable"}')
                    return
                if body.get("logprobs"):
                    lp_yes = math.log(0.8 if "Mortality" in key else 0.3)
                    msg = {"content": "yes"}
                    logprobs = {"content": [{"token": "yes", "logprob": lp_yes, "top_logprobs": [
                        {"token": "yes", "logprob": lp_yes}, {"token": " No", "logprob": math.log(1 - math.exp(lp_yes))},
                        {"token": "maybe", "logprob": -9.0}]}]}
                else:
                    msg, logprobs = {"content": "Sepsis\nCreatinine"}, None
                payload = json.dumps({"choices": [{"index": 0, "message": msg, "logprobs": logprobs,
                                                   "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 10, "completion_tokens": 2}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _http_config(tmp_path, bench, port, retries=3, max_consecutive_failures=16):
    return EvaluateConfig.model_validate({
        "output_dir": str(tmp_path), "run_name": "http", "model": {"name": "fake"}, "progress": False,
        "benchmark": {"kind": "ehr_bench", "paths": [str(bench)]},
        "backend": {"kind": "http", "batch_size": 4, "max_new_tokens": 8,
                    "http": {"base_url": f"http://127.0.0.1:{port}", "max_retries": retries, "backoff_s": 0.01,
                             "concurrency": 2, "max_consecutive_failures": max_consecutive_failures}},
        "scoring": {"n_bootstrap": 20}})


@pytest.mark.slow
def test_endpoint_failing_mid_run_costs_retries_and_a_resume_not_scored_results(ray_session, tmp_path,
                                                                              ehr_bench_file):
    from evaluation.inference import read_predictions
    from evaluation.run import EvaluationIncomplete, evaluate

    n_samples = len(load_ehr_bench([str(ehr_bench_file)]))
    server = FakeOpenAI(fail_every=5, down_after=10)  # flaky from the start, then down for good
    try:
        cfg = _http_config(tmp_path, ehr_bench_file, server.port, max_consecutive_failures=2)
        with pytest.raises(EvaluationIncomplete, match="Re-run the same command"):
            evaluate(cfg)
        # once down, the samples in flight spent their retries (4 requests each; at most 4 with concurrency 2)
        # and the other 10 were not sent (without the breaker: 14 x 4 = 56 failed requests)
        assert server.calls - server.successes <= 3 + 4 * 4
        kept = read_predictions(tmp_path / "http" / "predictions")
        ok_first = set(kept.loc[kept["status"] == "ok", "sample_id"])
        assert len(ok_first) == 10  # every success was kept despite the 500s (retried) and the outage
        assert set(kept.loc[kept["status"] == "error", "sample_id"]).isdisjoint(ok_first)
        # the endpoint recovers: the re-run sends only what is missing
        server.down_after, server.fail_every = None, 0
        before = sum(server.requests.values())
        result = evaluate(cfg)
        assert sum(server.requests.values()) - before == n_samples - 10
        assert result.metrics["overall"]["decision"]["n"] + result.metrics["overall"]["risk"]["n"] == n_samples
        # the fake gives Mortality p(yes)=0.8 and LengthOfStay 0.3 (top-logprob spellings " No" / "yes" merged)
        scores = __import__("pandas").read_parquet(tmp_path / "http" / "scores.parquet")
        assert scores.loc[scores["task"] == "Inpatient_Mortality", "p_yes"].round(6).eq(0.8).all()
        # a third run has nothing left to ask
        before = sum(server.requests.values())
        evaluate(cfg)
        assert sum(server.requests.values()) == before
    finally:
        server.close()


def test_third_party_endpoint_needs_explicit_opt_in(tmp_path, ehr_bench_file):
    from ray_jobs.config_loader import ConfigError, validate_config

    data = {"benchmark": {"paths": [str(ehr_bench_file)]},
            "backend": {"kind": "http", "http": {"base_url": "https://api.example.com"}}}
    with pytest.raises(ConfigError, match="allow_third_party"):
        validate_config(EvaluateConfig, data)
    validate_config(EvaluateConfig, data, overrides=["backend.http.allow_third_party=true"])
    with pytest.raises(ConfigError, match="model.path"):
        validate_config(EvaluateConfig, {"benchmark": {"paths": ["x"]}})
    with pytest.raises(ConfigError, match="unknown key"):
        validate_config(EvaluateConfig, {"benchmark": {"paths": ["x"], "typo": 1}, "model": {"path": "m"}})
