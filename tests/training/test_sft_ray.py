"""Slow: both SFT stages on Ray Train with 2 CPU workers and the tiny model.

Two Ray Train runs in all (each ~1 min on 2 shared cores): stage 1 with an injected worker crash (resume, loss,
HF loading, MLflow) and stage 2 continuing from stage 1's final model.
"""

from __future__ import annotations

import json

import pytest
import transformers

from tests.engines import require_engine

from training.config import SFTJobConfig
from training.toy_data import write_toy_data

pytestmark = pytest.mark.slow

COMMON = {
    "data": {"max_seq_length": 512, "max_samples": 96},
    "train": {"learning_rate": 3e-3, "global_batch_size": 4, "per_device_train_batch_size": 1,
              "logging_steps": 2, "save_steps": 4, "warmup_ratio": 0.0},
    "scaling": {"num_workers": 2},
}


def _cfg(tmp, **kw) -> SFTJobConfig:
    data = {**COMMON["data"], **kw.pop("data")}
    train = {**COMMON["train"], **kw.pop("train")}
    return SFTJobConfig.model_validate({**COMMON, "data": data, "train": train,
                                        "run": {"storage_path": str(tmp / "runs"), "max_failures": 1,
                                                "mlflow_tracking_uri": str(tmp / "mlruns"), **kw.pop("run")}, **kw})


def _losses(final_model):
    history = json.loads((final_model / "training_state.json").read_text())["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


@pytest.fixture(scope="module")
def stage1(ray_session, tmp_path_factory):
    require_engine("ray.train", "pip install 'ray[train]==2.60.0'")
    from training.sft import run_sft

    tmp = tmp_path_factory.mktemp("sft")
    ins = write_toy_data(tmp / "ins.jsonl", n=96, seed=1)
    cfg = _cfg(tmp, stage=1, tiny_model={"output_dir": str(tmp / "tiny")},
               data={"paths": [str(ins)]}, train={"max_steps": 16}, run={"name": "s1"},
               fault_injection={"fail_at_step": 6})
    return tmp, run_sft(cfg)


def test_crash_resumes_from_checkpoint_not_from_zero(stage1):
    _, result = stage1
    attempts = [json.loads(line)["start_step"] for line in (result.run_dir / "attempts.jsonl").read_text().splitlines()]
    assert attempts == [0, 4]  # crashed after step 6; the retry starts at the step-4 checkpoint, not at 0
    assert (result.run_dir / ".fault_injected").read_text() == "6"
    state = json.loads((result.final_model / "training_state.json").read_text())
    assert state["global_step"] == 16
    steps = [s for s, _ in _losses(result.final_model)]
    assert steps == sorted(set(steps))  # the restored history has each logged step once
    assert result.metrics["step"] == 16


def test_stage1_loss_falls_and_metrics_reported(stage1):
    _, result = stage1
    losses = _losses(result.final_model)
    assert len(losses) >= 6
    assert losses[-1][1] < losses[0][1] - 0.5
    for key in ("loss", "learning_rate", "tokens_per_sec_per_worker", "padding_fraction"):
        assert key in result.metrics, key
    assert 0 <= result.metrics["padding_fraction"] < 0.2
    assert result.data_stats["packing"] and result.data_stats["examples"] == 96


def test_final_model_loads_with_plain_hf(stage1):
    _, result = stage1
    model = transformers.AutoModelForCausalLM.from_pretrained(result.final_model)
    tok = transformers.AutoTokenizer.from_pretrained(result.final_model)
    out = model.generate(**tok("<|im_start|>user\nhi", return_tensors="pt"), max_new_tokens=2, do_sample=False)
    assert out.shape[1] >= 1 and model.config.model_type == "qwen3"


def test_metrics_written_to_mlflow(stage1, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # mlflow 3.x: file stores are opt-in
    tmp, _ = stage1
    client = MlflowClient(tracking_uri=(tmp / "mlruns").as_uri())
    exp = client.get_experiment_by_name("ehr-r1-sft-stage1")
    runs = client.search_runs([exp.experiment_id])
    history = [m for r in runs for m in client.get_metric_history(r.info.run_id, "tokens_per_sec_per_worker")]
    assert history and all(m.value > 0 for m in history)


def test_stage2_continues_from_stage1(stage1):
    from training.sft import run_sft

    tmp, s1 = stage1
    reasoning = write_toy_data(tmp / "reasoning.jsonl", n=48, reasoning=True, seed=2)
    plain = write_toy_data(tmp / "plain.jsonl", n=48, seed=3)
    cfg = _cfg(tmp, stage=2, model_path=str(s1.final_model),
               data={"paths": [str(reasoning), str(plain)], "format": "reasoning", "mix": "curriculum",
                     "completion_only_loss": True},
               train={"max_steps": 12, "learning_rate": 2e-3}, run={"name": "s2"})
    result = run_sft(cfg)
    losses = _losses(result.final_model)
    assert losses[-1][1] < losses[0][1]
    assert transformers.AutoModelForCausalLM.from_pretrained(result.final_model).config.model_type == "qwen3"
    # Stage 2 started from stage 1's weights, not from the untrained model: it moved its weights away from stage
    # 1's final ones by its own 12 steps only, while the untrained weights lie 16 (stage 1) + 12 steps away. Had it
    # started from the untrained model, the two distances would be the other way round.
    w0, w1, w2 = (_weights(p) for p in (tmp / "tiny", s1.final_model, result.final_model))
    from_stage1, from_untrained = _distance(w2, w1), _distance(w2, w0)
    assert 0 < from_stage1 < 0.8 * from_untrained, (from_stage1, from_untrained)


def _weights(path) -> dict:
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    return {name: p.detach().double() for name, p in model.state_dict().items()}


def _distance(a: dict, b: dict) -> float:
    return sum(float(((a[k] - b[k]) ** 2).sum()) for k in a) ** 0.5


def test_a_changed_config_reruns_the_stage_and_the_same_one_skips(ray_session, tmp_path):
    """Stage fingerprints (``jobkit.stage_state``): the same config returns the finished model without training, a
    changed learning rate re-runs the stage and keeps the earlier run aside, ``on_change: refuse`` names the key."""
    import pytest as _pytest

    from jobkit.stage_state import StageChanged
    from training.sft import run_sft

    ins = write_toy_data(tmp_path / "ins.jsonl", n=24, seed=3)
    base = {"stage": 1, "tiny_model": {"output_dir": str(tmp_path / "tiny")},
            "data": {"paths": [str(ins)], "max_seq_length": 256},
            "train": {"max_steps": 2, "global_batch_size": 2, "logging_steps": 1, "save_steps": 2},
            "scaling": {"num_workers": 1}, "run": {"name": "fp", "storage_path": str(tmp_path / "runs")}}
    first = run_sft(SFTJobConfig.model_validate(base))
    stamp = (first.final_model / "model.safetensors").stat().st_mtime_ns
    again = run_sft(SFTJobConfig.model_validate({**base, "run": {**base["run"], "max_failures": 3}}))
    assert (again.final_model / "model.safetensors").stat().st_mtime_ns == stamp  # skipped: nothing retrained
    changed = {**base, "train": {**base["train"], "learning_rate": 1e-3}}
    with _pytest.raises(StageChanged, match="train.learning_rate"):
        run_sft(SFTJobConfig.model_validate({**changed, "run": {**base["run"], "on_change": "refuse"}}))
    rerun = run_sft(SFTJobConfig.model_validate(changed))
    assert (rerun.final_model / "model.safetensors").stat().st_mtime_ns != stamp
    assert (tmp_path / "runs" / "fp.replaced-1" / "final_model" / "model.safetensors").is_file()
