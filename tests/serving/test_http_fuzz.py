"""Fuzz-style inputs to every route of the FastAPI app (in-process; the Serve path runs the same app): malformed,
oversized, wrongly typed and unknown-table bodies must be answered with a 4xx in the OpenAI error shape, never a
5xx. The cases are a fixed, bounded list (about 200 requests), so the test is deterministic."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

KEY = "fuzz-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_BODY = 20_000

#: values of the wrong type (or out of range) for any field
WRONG = [None, True, -1, 0, 2**70, 1.5, float("inf"), "", "x" * 300, [], [1, "a"], {}, {"a": {"b": []}}]
EVENT = {"file_name": "labevents", "starttime": "2180-06-27 05:10:00", "items": [{"item_name": "Creatinine"}]}


def _call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go():
        # raise_app_exceptions=False: an unhandled server error becomes the 500 a client would see
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.request(method, path, **kwargs)
    return asyncio.run(go())


@pytest.fixture(scope="module")
def app(tiny_model_dir):
    from serving.config import LimitsConfig
    from serving.engines.transformers_engine import TransformersEngine
    from serving.http_api import make_api
    from serving.prompts import PromptCodec
    from serving.service import InferenceService

    limits = LimitsConfig(max_body_bytes=MAX_BODY, max_input_tokens=600, max_new_tokens=8, default_max_tokens=2,
                          predict_max_new_tokens=2)
    engine = TransformersEngine(tiny_model_dir)
    service = InferenceService(engine, PromptCodec(tiny_model_dir, limits.max_input_tokens), "tiny", limits)
    return make_api(service, [KEY], limits.max_body_bytes)


def _mutations(valid: dict) -> list:
    """Each field of a valid body replaced by every wrong value, dropped, and an unknown field added."""
    out: list = []
    for field in valid:
        out += [{**valid, field: w} for w in WRONG]
        out.append({k: v for k, v in valid.items() if k != field})
    return out + [{**valid, "unknown_field": 1}]


CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
COMPLETION = {"model": "tiny", "prompt": "Sodium", "max_tokens": 2}
PREDICT = {"events": [EVENT], "task": "Inpatient_Mortality"}

#: route -> bodies beyond the generic mutations (the structure inside messages, events, items)
SPECIFIC = {
    "/v1/chat/completions": [
        {**CHAT, "messages": [{"role": "robot", "content": "hi"}]},
        {**CHAT, "messages": [{"content": "hi"}]},
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
        {**CHAT, "messages": [{"role": "user", "content": ["not a part"]}]},
        {**CHAT, "messages": [{"role": "user", "content": "\ud800 lone surrogate"}]},
        {**CHAT, "messages": [{"role": "assistant", "content": "no user turn"}]},
        {**CHAT, "messages": [{"role": "user", "content": "Sodium " * 2000}]},  # > max_input_tokens
        {**CHAT, "stop": ["", "x"]}, {**CHAT, "stop": [1]}, {**CHAT, "n": 3}, {**CHAT, "logprobs": "yes"},
        {**CHAT, "top_logprobs": 3}, {**CHAT, "logprobs": True, "top_logprobs": 21},
        {**CHAT, "logprobs": True, "stream": True},
        {**CHAT, "tools": [{"type": "function"}]}, {**CHAT, "stream": "yes"}, {**CHAT, "stream_options": []},
        {**CHAT, "chat_template_kwargs": {"tokenize": True}},
        {**CHAT, "chat_template_kwargs": {"add_generation_prompt": "x", "conversation": 1}},
        {**CHAT, "max_tokens": 10_000}, {**CHAT, "max_completion_tokens": 10_000}, {**CHAT, "model": "other"},
        {**CHAT, "seed": -2**70}, {**CHAT, "top_k": 10**12}, {**CHAT, "temperature": 3},
    ],
    "/v1/completions": [
        {**COMPLETION, "prompt": ["a", "b"]}, {**COMPLETION, "prompt": [1]}, {**COMPLETION, "prompt": ""},
        {**COMPLETION, "prompt": "Sodium " * 2000}, {**COMPLETION, "echo": "no"},
        {**COMPLETION, "stream": True, "max_tokens": 10_000},
    ],
    "/v1/ehr/predict": [
        {**PREDICT, "events": [{**EVENT, "file_name": "not_a_table"}]},
        {**PREDICT, "events": [{**EVENT, "file_name": "../../etc/passwd"}]},
        {**PREDICT, "events": [{**EVENT, "file_name": "d_labitems"}]},  # a real table, but not an event table
        {**PREDICT, "events": [{**EVENT, "items": [{"item_name": ["nested"]}]}]},
        {**PREDICT, "events": [{**EVENT, "items": "Creatinine"}]},
        {**PREDICT, "events": [{**EVENT, "extra": 1}]},
        {**PREDICT, "events": [{**EVENT, "starttime": 5}]},
        {**PREDICT, "events": [{}]}, {**PREDICT, "events": []}, {**PREDICT, "events": [EVENT] * 5000},
        {**PREDICT, "ehr": "x"}, {"task": "Inpatient_Mortality"}, {"ehr": "x"},
        {"ehr": "x", "task": "no_such_task"}, {"ehr": "x", "instruction": "y", "kind": "maybe"},
        {"ehr": "x", "task": "Inpatient_Mortality", "kind": "risk"},
        {"ehr": "x", "instruction": "i", "max_tokens": 10**6},
        {"ehr": "Sodium " * 2000, "task": "Inpatient_Mortality"},
    ],
}
RAW = [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a": 1e999999}', b"x" * (MAX_BODY + 1), b'"string"', b"[1, 2]"]


def _cases() -> list[tuple[str, str, dict]]:
    cases = []
    for path, valid in (("/v1/chat/completions", CHAT), ("/v1/completions", COMPLETION),
                        ("/v1/ehr/predict", PREDICT)):
        cases += [("POST", path, {"json": body}) for body in _mutations(valid) + SPECIFIC[path]]
        cases += [("POST", path, {"content": raw, "headers": {"Content-Type": "application/json"}}) for raw in RAW]
        cases += [("POST", path, {"content": b"messages=hi", "headers": {"Content-Type": "text/plain"}}),
                  ("GET", path, {}), ("DELETE", path, {})]
    for path in ("/v1/models", "/v1/models/other", "/v1/models/" + "x" * 5000, "/v1/ehr/tasks", "/health",
                 "/v1/nope", "/nope", "/v1/models/%00", "/v1//models"):
        cases += [("GET", path, {}), ("POST", path, {"json": {"a": 1}})]
    return cases


def test_the_fuzz_list_is_bounded_and_covers_every_route():
    from serving.http_api import METRIC_ROUTES

    cases = _cases()
    assert 150 < len(cases) < 400
    assert {p for _, p, _ in cases} >= METRIC_ROUTES


def test_no_input_gives_a_5xx_and_every_rejection_is_an_openai_error(app):
    answers = []
    for method, path, kwargs in _cases():
        kwargs = {**kwargs, "headers": {**AUTH, **kwargs.get("headers", {})}}
        if "json" in kwargs:  # json.dumps refuses inf/nan by default in httpx; send what a sloppy client would
            kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
            kwargs["headers"]["Content-Type"] = "application/json"
        r = _call(app, method, path, **kwargs)
        answers.append((method, path, r.status_code))
        assert r.status_code < 500, (method, path, str(kwargs.get("content", ""))[:300], r.status_code, r.text[:300])
        if r.status_code >= 400:
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and err["message"], (path, r.text[:300])
    statuses = {s for _, _, s in answers}
    assert {200, 404, 405, 413, 422} <= statuses, statuses  # the list does reach each kind of answer


def test_an_unknown_event_table_is_a_422_naming_the_field(app):
    body = {**PREDICT, "events": [EVENT, {**EVENT, "file_name": "not_a_table"}]}
    r = _call(app, "POST", "/v1/ehr/predict", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert "events.1.file_name" in r.json()["error"]["message"] and "not_a_table" in r.json()["error"]["message"]
