"""The FastAPI app in-process (no Ray): routes, auth, limits, OpenAI error shape, p(yes), prompt assembly.

The same ``make_api`` runs inside the Serve replicas; tests/serving/test_serve_app.py covers the served path.
"""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def stack(tiny_model_dir):
    from serving.config import LimitsConfig
    from serving.engines.transformers_engine import TransformersEngine
    from serving.http_api import make_api
    from serving.prompts import PromptCodec
    from serving.service import InferenceService

    limits = LimitsConfig(max_body_bytes=20_000, max_input_tokens=600, max_new_tokens=64, default_max_tokens=8,
                          predict_max_new_tokens=16)
    engine = TransformersEngine(tiny_model_dir)
    service = InferenceService(engine, PromptCodec(tiny_model_dir, limits.max_input_tokens), "tiny", limits)
    return service, make_api(service, [KEY, "other-key"], limits.max_body_bytes)


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await c.request(method, path, **kwargs)
    return asyncio.run(go())


def assert_openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                                     {"Authorization": "Basic dGVzdC1rZXk="}])
def test_wrong_or_missing_key_is_401(stack, headers):
    err = assert_openai_error(call(stack[1], "GET", "/v1/models", headers=headers), 401)
    assert err["type"] == "authentication_error"


def test_health_needs_no_key_and_models_lists_the_model(stack):
    assert call(stack[1], "GET", "/health").json() == {"status": "ok", "model": "tiny"}
    r = call(stack[1], "GET", "/v1/models", headers={"Authorization": "Bearer other-key"})
    assert [m["id"] for m in r.json()["data"]] == ["tiny"]


def test_oversized_body_is_413(stack):
    err = assert_openai_error(call(stack[1], "POST", "/v1/completions", headers=AUTH,
                                   json={"model": "tiny", "prompt": "x" * 30_000}), 413)
    assert "limits.max_body_bytes" in err["message"]


def test_oversized_chunked_body_is_413(stack):
    async def chunks():
        for _ in range(3):
            yield b"x" * 10_000

    r = call(stack[1], "POST", "/v1/completions", headers=AUTH, content=chunks())
    assert "content-length" not in r.request.headers  # the streamed-body branch of the limit
    assert "limits.max_body_bytes" in assert_openai_error(r, 413)["message"]


def test_too_many_prompt_tokens_is_413(stack):
    err = assert_openai_error(call(stack[1], "POST", "/v1/completions", headers=AUTH,
                                   json={"prompt": "yes " * 700}), 413)
    assert err["code"] == "context_length_exceeded" and "limits.max_input_tokens" in err["message"]


@pytest.mark.parametrize("content, fragment", [
    (b'{"messages": [', "malformed JSON"),
    (b'{"messages": []}', "messages"),
    (b'{"messages": [{"role": "wizard", "content": "hi"}]}', "role"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "n": 2}', "n"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": -1}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "stream": true}', "stream=true"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}', "top_logprobs needs logprobs"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 65}', "limits.max_new_tokens"),
])
def test_malformed_or_invalid_is_422(stack, content, fragment):
    r = call(stack[1], "POST", "/v1/chat/completions", content=content,
             headers=AUTH | {"Content-Type": "application/json"})
    assert fragment in assert_openai_error(r, 422)["message"]


def test_unknown_model_is_404(stack):
    r = call(stack[1], "POST", "/v1/completions", headers=AUTH, json={"model": "gpt-4", "prompt": "hi"})
    assert assert_openai_error(r, 404)["code"] == "model_not_found"


def test_chat_and_completions_shapes(stack):
    r = call(stack[1], "POST", "/v1/chat/completions", headers=AUTH,
             json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] <= 4 and body["choices"][0]["finish_reason"] in ("stop", "length")
    r = call(stack[1], "POST", "/v1/completions", headers=AUTH, json={"prompt": "Sodium", "max_tokens": 3})
    assert r.json()["object"] == "text_completion" and r.json()["usage"]["prompt_tokens"] > 0


def test_streaming_is_openai_sse(stack):
    r = call(stack[1], "POST", "/v1/chat/completions", headers=AUTH,
             json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True,
                   "stream_options": {"include_usage": True}})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: "):] for line in r.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def _direct_p_yes(service, prompt: str) -> float:
    import torch

    model, codec = service.engine.model, service.codec
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([codec.encode(prompt)])).logits[0, -1]
    p = torch.softmax(logits.double(), -1)
    return float(p[codec.yes_id] / (p[codec.yes_id] + p[codec.no_id]))


def test_predict_risk_task_gives_p_yes_from_the_forced_token(stack):
    from training.chat_format import build_messages
    from data_pipeline.tasks import get_task

    service, app = stack
    ehr = "## Admissions [2180-06-26 18:27:00]\n- Admission_Type: EW EMER."
    r = call(app, "POST", "/v1/ehr/predict", headers=AUTH, json={"ehr": ehr, "task": "Readmission_30day"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["kind"] == "risk" and body["thinking"] is False and body["reasoning"] is None
    assert 0.0 <= body["p_yes"] <= 1.0
    assert body["items"] == [body["answer"]] and body["answer"] == ("yes" if body["p_yes"] >= 0.5 else "no")
    # the prompt is training's: build_messages + the chat template with thinking off (empty think block)
    prompt = service.codec.render_chat(build_messages(ehr, get_task("Readmission_30day").instruction, False),
                                       enable_thinking=False)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert body["p_yes"] == pytest.approx(_direct_p_yes(service, prompt), rel=1e-5)
    assert body["usage"]["prompt_tokens"] == len(service.codec.encode(prompt))


def test_predict_risk_with_thinking_scores_after_the_think_block(stack):
    r = call(stack[1], "POST", "/v1/ehr/predict", headers=AUTH,
             json={"ehr": "## EHR", "instruction": "Will the patient die? Answer yes or no.", "kind": "risk",
                   "thinking": True, "max_tokens": 6})
    body = r.json()
    assert body["thinking"] is True and 0.0 <= body["p_yes"] <= 1.0 and body["usage"]["completion_tokens"] <= 6


def test_predict_decision_task_from_events_gives_items(stack):
    event = {"file_name": "labevents", "starttime": "2180-06-27 05:10:00",
             "items": [{"item_name": "Creatinine", "valuenum": 2.1}]}
    r = call(stack[1], "POST", "/v1/ehr/predict", headers=AUTH,
             json={"events": [event], "task": "diagnoses_icd", "max_tokens": 12})
    body = r.json()
    assert r.status_code == 200, body
    assert body["kind"] == "decision" and body["thinking"] is True and body["p_yes"] is None
    # the items are the answer part of this very generation (greedy, so the engine reproduces it), one per line
    service = stack[0]
    prompt = service.codec.render_chat(
        ehr_api_messages({"events": [event], "task": "diagnoses_icd"}), enable_thinking=True)
    from serving.engines.protocol import Sampling
    from training.chat_format import parse_answer_items, split_reasoning

    gen = asyncio.run(service.engine.generate(service.codec.encode(prompt), Sampling(max_tokens=12)))
    reasoning, answer = split_reasoning(gen.text)
    assert (body["reasoning"], body["answer"]) == (reasoning, answer)
    assert body["items"] == parse_answer_items(answer)
    assert body["usage"]["completion_tokens"] == gen.completion_tokens


def ehr_api_messages(request: dict) -> list[dict]:
    from serving import ehr_api

    req = ehr_api.PredictRequest.model_validate(request)
    return ehr_api.predict_messages(req, ehr_api.resolve_task(req))[0]


class ScriptedEngine:
    """An engine that always answers ``text`` (to check what the API makes of a known completion)."""

    def __init__(self, text: str):
        self.text = text

    async def generate(self, prompt_ids, sampling):
        from serving.engines.protocol import Generation

        return Generation(self.text, 7, "stop")

    async def check_health(self) -> None:
        return None


@pytest.mark.parametrize("completion,reasoning,items", [
    ("<think>\nHigh creatinine.\n</think>\n\nAcute kidney failure\nSepsis\n\nSepsis\n", "High creatinine.",
     ["Acute kidney failure", "Sepsis"]),
    ("<think>\nr\n</think>\n\n  Hypertension  ", "r", ["Hypertension"]),
    ("<think>\nr\n</think>\n\nA\\nB", "r", ["A", "B"]),  # an escaped label list, as the reference scorer reads it
    ("<think>\nnever closed", "never closed", []),
])
def test_predict_decision_items_are_the_answer_lines_of_the_completion(stack, completion, reasoning, items):
    from serving.http_api import make_api
    from serving.service import InferenceService

    service = stack[0]
    scripted = InferenceService(ScriptedEngine(completion), service.codec, "tiny", service.limits)
    r = call(make_api(scripted, [KEY], 20_000), "POST", "/v1/ehr/predict", headers=AUTH,
             json={"ehr": "## EHR", "task": "diagnoses_icd"})
    body = r.json()
    assert r.status_code == 200, body
    assert body["items"] == items and body["reasoning"] == reasoning and body["usage"]["completion_tokens"] == 7


def test_predict_unknown_task_is_422(stack):
    r = call(stack[1], "POST", "/v1/ehr/predict", headers=AUTH, json={"ehr": "e", "task": "nope"})
    assert assert_openai_error(r, 422)["code"] == "unknown_task"


def test_tasks_route_lists_the_suite(stack):
    data = call(stack[1], "GET", "/v1/ehr/tasks", headers=AUTH).json()["data"]
    assert len(data) == 46 and {t["kind"] for t in data} == {"decision", "risk"}


def test_legacy_completions_refuse_logprobs(stack):
    r = call(stack[1], "POST", "/v1/completions", headers=AUTH, json={"prompt": "hi", "logprobs": True})
    assert "logprobs is not supported on this route" in assert_openai_error(r, 422)["message"]


def test_chat_logprobs_are_the_openai_shape_and_agree_with_predict(stack):
    """What the HTTP evaluation backend reads: p(yes) from top_logprobs of the first answer token equals the
    /v1/ehr/predict score on the same prompt (thinking off)."""
    from serving.openai_schema import ChatCompletionRequest
    from serving.scoring import p_yes_from_logprobs
    from training.chat_format import build_messages

    service, app = stack
    ehr, instruction = "## Admissions [2180-06-26 18:27:00]\n- Admission_Type: URGENT", "Will the patient die?"
    body = {"messages": build_messages(ehr, instruction, False), "max_tokens": 4, "logprobs": True,
            "top_logprobs": 20, "chat_template_kwargs": {"enable_thinking": False}}
    out = call(app, "POST", "/v1/chat/completions", headers=AUTH, json=body).json()
    content = out["choices"][0]["logprobs"]["content"]
    assert "".join(c["token"] for c in content) == out["choices"][0]["message"]["content"]
    for c in content:
        assert set(c) == {"token", "logprob", "bytes", "top_logprobs"} and c["logprob"] <= 0
        tops = [t["logprob"] for t in c["top_logprobs"]]
        assert len(tops) == 20 and tops == sorted(tops, reverse=True) and c["logprob"] <= tops[0] + 1e-6
        assert c["bytes"] == list(c["token"].encode())
    top = {t["token"]: t["logprob"] for t in content[0]["top_logprobs"]}
    vocab = len(service.codec.tokenizer)
    prompt = service.chat_prompt(ChatCompletionRequest(**body))
    exact = dict(asyncio.run(service.engine.token_logprobs(prompt, [service.codec.yes_id], vocab))[0][1])
    predict = call(app, "POST", "/v1/ehr/predict", headers=AUTH,
                   json={"ehr": ehr, "instruction": instruction, "kind": "risk", "thinking": False}).json()
    assert predict["p_yes"] == pytest.approx(p_yes_from_logprobs(exact[service.codec.yes_id],
                                                                 exact[service.codec.no_id]), rel=1e-5)
    if "yes" in top and "no" in top:
        assert predict["p_yes"] == pytest.approx(p_yes_from_logprobs(top["yes"], top["no"]), rel=1e-4)
    assert call(app, "POST", "/v1/chat/completions", headers=AUTH,
                json={**body, "logprobs": False, "top_logprobs": None}).json()["choices"][0]["logprobs"] is None


def test_engine_logprobs_are_normalised(stack):
    service = stack[0]
    ids = service.codec.encode("hello")
    lps = asyncio.run(service.engine.next_token_logprobs(ids, list(range(len(service.codec.tokenizer)))))
    assert sum(math.exp(lp) for lp in lps) == pytest.approx(1.0, abs=1e-4)


def test_auth_runs_before_the_body_limit_and_metrics_see_every_status(stack):
    from serving.http_api import make_api

    service, _ = stack

    class Recorder:
        def __init__(self):
            self.calls = []

        def request(self, route, status, latency_ms):
            self.calls.append((route, status))

        def tokens(self, prompt, completion):
            pass

    original, service.metrics = service.metrics, Recorder()
    try:
        app = make_api(service, [KEY], 1000)
        assert call(app, "POST", "/v1/completions", json={"prompt": "x" * 5000}).status_code == 401
        assert call(app, "POST", "/v1/completions", headers=AUTH, json={"prompt": "x" * 5000}).status_code == 413
        assert call(app, "GET", "/v1/models", headers=AUTH).status_code == 200
        assert call(app, "GET", "/v1/models/x" * 10, headers=AUTH).status_code == 404
        assert service.metrics.calls == [("/v1/completions", 401), ("/v1/completions", 413), ("/v1/models", 200),
                                         ("other", 404)]
    finally:
        service.metrics = original


@pytest.mark.parametrize("path,root", [("/v1/models", ""), ("/ehr/v1/models", "/ehr"), ("/ehr", "/ehr"),
                                       ("/ehrx/health", "/ehr"), ("/a/b/health", "/a/b"), ("/health", "/ehr"),
                                       ("/a/b//v1/models", "/a/b")])
def test_the_key_check_sees_the_path_the_router_routes(path, root):
    """Auth and routing agree on the route under any prefix (Starlette's own rule)."""
    from starlette._utils import get_route_path

    from serving.http_api import needs_key, route_path

    scope = {"type": "http", "path": path, "root_path": root}
    assert route_path(scope) == get_route_path(scope)
    assert needs_key(scope) is (route_path(scope) != "/health")


@pytest.mark.parametrize("path", ["/v1/models", "/nope", "/v1/ehr/tasks", "/health/", "/v2/models"])
def test_every_path_but_health_needs_a_key_in_process(stack, path):
    assert_openai_error(call(stack[1], "GET", path), 401)
