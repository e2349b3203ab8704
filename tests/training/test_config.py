"""SFT config: every shipped preset loads, cross-field errors name the field and the fix, preflight catches files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ray_jobs.config_loader import ConfigError, load_config
from training.config import SFTJobConfig

PRESETS = sorted((Path(__file__).parents[2] / "ray_jobs" / "configs" / "train_sft").rglob("*.yaml"))


def test_all_presets_found():
    assert [p.name for p in PRESETS] == ["demo_stage1.yaml", "demo_stage2.yaml", "stage1_domain_adaptation.yaml",
                                         "stage2_reasoning.yaml"]


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_loads(path):
    cfg = load_config(SFTJobConfig, path)
    assert cfg.gradient_accumulation_steps >= 1


def test_reference_presets_match_the_reference():
    s1 = load_config(SFTJobConfig, PRESETS[2])
    s2 = load_config(SFTJobConfig, PRESETS[3])
    for cfg in (s1, s2):
        assert (cfg.train.learning_rate, cfg.train.lr_scheduler_type, cfg.train.warmup_ratio) == (2e-5, "cosine", 0.03)
        assert cfg.train.bf16 and cfg.train.deepspeed.endswith("zero3.json") and cfg.scaling.use_gpu
    assert (s1.data.max_seq_length, s1.train.num_train_epochs, s1.train.global_batch_size) == (8192, 1, 8)
    assert (s2.data.max_seq_length, s2.train.num_train_epochs, s2.train.global_batch_size) == (12288, 5, 64)
    assert s2.stage == 2 and s2.model_path and s2.data.format == "reasoning"


BASE = {"model_path": "/m", "data": {"paths": ["/d.jsonl"]}, "run": {"name": "r"}}


def _with(**over):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for dotted, value in over.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DROP:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


_DROP = object()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"model_path": _DROP}, "model_path / tiny_model: set exactly one"),
        ({"tiny_model": {"output_dir": "/t"}}, "model_path / tiny_model: set exactly one"),
        ({"stage": 2, "model_path": _DROP, "tiny_model": {"output_dir": "/t"}}, "model_path: stage 2 starts from"),
        ({"data__paths": ["/a", "/b"]}, "data.paths: two datasets are only mixed in stage 2"),
        ({"data__mix": "curriculum", "data__format": "reasoning"}, "data.mix: curriculum ramps in a second"),
        ({"train__global_batch_size": 3}, "train.global_batch_size: 3 is not a multiple of"),
        ({"train__save_steps": 15, "train__logging_steps": 10}, "train.save_steps: 15 must be a multiple"),
        ({"train__bf16": True}, "train.bf16: not supported on CPU workers"),
        ({"fault_injection__fail_at_step": 3, "run__max_failures": 0}, "fault_injection.fail_at_step: needs"),
        ({"fault_injection__fail_at_step": 5, "train__max_steps": 5}, "is not before train.max_steps"),
        ({"train__num_train_epochs": 1.5}, "fractional epochs need train.max_steps"),
    ],
)
def test_cross_field_errors(over, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("/", r"\/")):
        SFTJobConfig.model_validate(_with(**over))


def test_valid_base_config():
    cfg = SFTJobConfig.model_validate(_with(**{"train__global_batch_size": 8, "train__per_device_train_batch_size": 2}))
    assert cfg.gradient_accumulation_steps == 2


def test_unknown_key_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model_path: /m\ndata: {paths: [/d.jsonl], packed: true}\nrun: {name: r}\n")
    with pytest.raises(ConfigError, match=r"data\.packed: unknown key"):
        load_config(SFTJobConfig, f)


def test_all_errors_reported_together():
    with pytest.raises(ValueError) as err:
        SFTJobConfig.model_validate(_with(**{"train__bf16": True, "train__global_batch_size": 3}))
    assert "train.bf16" in str(err.value) and "train.global_batch_size" in str(err.value)


def test_preflight_names_missing_files(tmp_path):
    from training.sft import preflight

    cfg = SFTJobConfig.model_validate(
        _with(stage=2, data__paths=[str(tmp_path / "nope.jsonl")], train__deepspeed=str(tmp_path / "ds.json"),
              data__format="reasoning"))
    with pytest.raises(ValueError) as err:
        preflight(cfg, tmp_path / "no_model")
    msg = str(err.value)
    assert "data.paths" in msg and "nope.jsonl" in msg
    assert "model_path" in msg and "stage-1 checkpoint" in msg
    assert "train.deepspeed" in msg
