"""The application on Ray Serve (one shared deployment per module): the official openai client, auth, predict,
and overload -> 503 through Serve's max_ongoing_requests + max_queued_requests."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.loopback import free_port

pytestmark = pytest.mark.slow

KEY = "serve-test-key"
APP = "ehr-serve-test"


@pytest.fixture(scope="module")
def served(ray_session, tiny_model_dir, tmp_path_factory):
    from ray import serve

    from serving.app import build_app_from_config
    from serving.config import ServeConfig

    keys = tmp_path_factory.mktemp("keys") / "api_keys"
    keys.write_text(f"{KEY}\n")
    port = free_port()
    cfg = ServeConfig.model_validate({
        "app_name": APP,
        "model": {"path": tiny_model_dir, "served_name": "tiny"},
        "engine": {"kind": "transformers", "transformers": {"torch_threads": 1}},
        "http": {"port": port},
        "auth": {"api_keys_env": None, "api_keys_file": str(keys)},
        "limits": {"max_body_bytes": 50_000, "max_input_tokens": 1024, "max_new_tokens": 256,
                   "default_max_tokens": 16, "predict_max_new_tokens": 16},
        # small queue so that a burst overflows it: 2 running + 2 queued, the rest 503
        "deployment": {"num_cpus": 0.5, "max_ongoing_requests": 2, "max_queued_requests": 2},
    })
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app_from_config(cfg), name=APP, route_prefix="/")
    yield f"http://127.0.0.1:{port}"
    serve.delete(APP)
    serve.shutdown()


@pytest.fixture(scope="module")
def client(served):
    import openai

    return openai.OpenAI(base_url=f"{served}/v1", api_key=KEY, max_retries=0, timeout=120)


def test_openai_client_models_chat_completions(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Sodium?"}],
                                          max_tokens=6)
    assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"
    assert isinstance(chat.choices[0].message.content, str) and 0 < chat.usage.completion_tokens <= 6
    done = client.completions.create(model="tiny", prompt="Creatinine", max_tokens=4)
    assert done.object == "text_completion" and done.usage.completion_tokens <= 4


def test_openai_client_streaming(client):
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=5, stream=True, stream_options={"include_usage": True},
                                            extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 5
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # greedy decoding: the streamed pieces put together are exactly the non-streamed answer to the same request
    whole = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=5,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert whole.usage.completion_tokens == 5 and text == whole.choices[0].message.content and text
    cstream = client.completions.create(model="tiny", prompt="Potassium", max_tokens=3, stream=True)
    assert [c.choices[0].finish_reason for c in cstream][-1] in ("length", "stop")


def test_wrong_key_is_401(served):
    import openai

    bad = openai.OpenAI(base_url=f"{served}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.models.list()
    assert exc.value.status_code == 401


def test_predict_over_serve(served):
    import httpx

    h = {"Authorization": f"Bearer {KEY}"}
    risk = httpx.post(f"{served}/v1/ehr/predict", headers=h, timeout=120,
                      json={"ehr": "## Admissions\n- Admission_Type: URGENT", "task": "Inpatient_Mortality"}).json()
    assert risk["kind"] == "risk" and 0.0 <= risk["p_yes"] <= 1.0
    dm = httpx.post(f"{served}/v1/ehr/predict", headers=h, timeout=120,
                    json={"ehr": "## Admissions\n- Admission_Type: URGENT", "task": "prescriptions"}).json()
    assert dm["kind"] == "decision" and dm["usage"]["completion_tokens"] > 0
    from training.chat_format import parse_answer_items

    assert dm["items"] == parse_answer_items(dm["answer"])  # the answer's lines, as the evaluation scores them
    big = httpx.post(f"{served}/v1/ehr/predict", headers=h, timeout=120,
                     content=json.dumps({"ehr": "x" * 60_000, "task": "prescriptions"}))
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    bad = httpx.post(f"{served}/v1/ehr/predict", headers=h | {"Content-Type": "application/json"}, content=b"{")
    assert bad.status_code == 422


def _answering_model(tiny_model_dir: str, bench, out) -> str:
    """The tiny model after a few steps on the fixture's risk prompts -> yes/no, so that both words are among its
    top log-probs (an untrained model puts neither in its top 20 and the OpenAI route cannot score it)."""
    import torch
    from transformers import AutoModelForCausalLM

    from evaluation.samples import add_prompts, load_ehr_bench
    from serving.prompts import PromptCodec

    codec = PromptCodec(tiny_model_dir, 1024)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    frame = add_prompts(load_ehr_bench([str(bench)]), thinking="off")
    rows = [(codec.encode(codec.render_chat(json.loads(r.messages), enable_thinking=False)),
             codec.yes_id if r.label == 1 else codec.no_id) for r in frame.itertuples() if r.kind == "risk"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    torch.manual_seed(0)
    for _ in range(30):
        loss = sum(torch.nn.functional.cross_entropy(model(input_ids=torch.tensor([ids])).logits[0, -1:],
                                                     torch.tensor([answer])) for ids, answer in rows) / len(rows)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    codec.tokenizer.save_pretrained(out)
    return str(out)


def test_http_evaluation_of_the_served_model_agrees_with_the_in_process_backend(served, tiny_model_dir, tmp_path,
                                                                               monkeypatch):
    """The HTTP baseline path run against the project's own endpoint: decision completions and p(yes) (read from
    the chat route's top_logprobs) are what the transformers backend computes in-process on the same samples."""
    import pandas as pd
    from ray import serve

    from evaluation.config import EvaluateConfig
    from evaluation.run import evaluate
    from jobkit.config import validate_config
    from serving.app import build_app_from_config
    from serving.config import ServeConfig
    from tests.evaluation.ehr_bench_fixture import write_ehr_bench

    bench = write_ehr_bench(tmp_path / "ehr_bench.jsonl", per_task=3)
    model_dir = _answering_model(tiny_model_dir, bench, tmp_path / "answering")
    cfg = ServeConfig.model_validate({
        "app_name": "ehr-eval-http", "model": {"path": model_dir, "served_name": "tiny"},
        "engine": {"kind": "transformers", "transformers": {"torch_threads": 1}},
        "http": {"port": int(served.rsplit(":", 1)[1]), "route_prefix": "/answering"},
        "auth": {"api_keys_env": None, "api_keys_file": None}, "deployment": {"num_cpus": 0.5}})
    serve.run(build_app_from_config(cfg), name="ehr-eval-http", route_prefix="/answering")
    served = f"{served}/answering"
    tiny_model_dir = model_dir
    monkeypatch.setenv("EHR_EVAL_API_KEY", KEY)
    common = {"output_dir": str(tmp_path), "progress": False, "benchmark": {"paths": [str(bench)]},
              "prompting": {"thinking": "off"}, "scoring": {"n_bootstrap": 0}}
    evaluate(validate_config(EvaluateConfig, {**common, "run_name": "http", "model": {"name": "tiny"}, "backend": {
        "kind": "http", "max_new_tokens": 8, "http": {"base_url": served, "model": "tiny", "max_retries": 1}}}))
    evaluate(validate_config(EvaluateConfig, {**common, "run_name": "local", "model": {"path": tiny_model_dir},
                                              "backend": {"kind": "transformers", "max_new_tokens": 8}}))
    http = pd.read_parquet(tmp_path / "http" / "scores.parquet").set_index("sample_id")
    local = pd.read_parquet(tmp_path / "local" / "scores.parquet").set_index("sample_id").loc[http.index]
    decision = http["kind"] == "decision"
    assert (http.loc[decision, "completion"] == local.loc[decision, "completion"]).all()
    risk = http[http["kind"] == "risk"]
    scored = risk[risk["outcome"] == "answered"]
    # a refused risk sample says why (the untrained model may put neither word in its top 20)
    assert risk.loc[risk["outcome"] != "answered", "error"].str.contains("top log-probs").all()
    assert len(scored) > 0
    assert len(scored) == len(risk)  # the answering model puts both words in its top 20 everywhere
    assert scored["p_yes"].to_numpy() == pytest.approx(local.loc[scored.index, "p_yes"].to_numpy(), abs=1e-4)
    serve.delete("ehr-eval-http")


def test_overload_returns_503_not_a_hang(served):
    """24 simultaneous long generations against 2 running + 2 queued slots: the overflow is rejected at once
    with 503 by Serve (Ray 2.60 BackPressureError -> HTTP 503), everything else succeeds."""
    import httpx

    body = {"model": "tiny", "messages": [{"role": "user", "content": "Sodium " * 50}], "max_tokens": 256}

    def one(_):
        return httpx.post(f"{served}/v1/chat/completions", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {KEY}"}).status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(one, range(24)))
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 2, statuses
