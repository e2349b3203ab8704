"""Prompt selection by the start model's pass rate, and the before/after recheck in rl_check.json."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rl.config import RLJobConfig
from rl.grpo.check import check_rl_run
from rl.grpo.pass_rate import SamplingSettings, max_total_reward, sample_pass_rates, select_by_pass_rate


def _recs(tasks: str) -> list[dict]:
    return [{"id": str(i), "task": t} for i, t in enumerate(tasks)]


@pytest.mark.parametrize("tasks, rates, keep, min_keep, max_reward, expect_ids, expect_filled", [
    # only mixed outcomes, nearest half-way first
    ("abcd", [0.5, 0.0, 1.0, 0.9], 4, 1, 1.0, ["0", "3"], 0),
    # one task at a time: task a's second prompt waits for task b's first
    ("aab", [0.5, 0.4, 0.2], 2, 1, 1.0, ["0", "2"], 0),
    # keep caps the count
    ("abc", [0.5, 0.5, 0.5], 1, 1, 1.0, ["0"], 0),
    # too few mixed: filled up to min_keep with those nearest the band, and counted
    ("abc", [0.0, 1.0, 0.25], 3, 2, 1.0, ["2", "0"], 1),
    # a total reward out of 1.2 (task 1.0 + format 0.2): 1.0 is mixed, 1.2 is always max
    ("ab", [1.0, 1.2], 2, 1, 1.2, ["0"], 0),
    # nothing mixed, min_keep 0: nothing kept
    ("ab", [0.0, 0.0], 2, 0, 1.0, [], 0),
])
def test_select_by_pass_rate(tasks, rates, keep, min_keep, max_reward, expect_ids, expect_filled):
    kept, stats = select_by_pass_rate(_recs(tasks), rates, keep, max_reward, min_keep)
    assert [r["id"] for r in kept] == expect_ids
    assert stats["filled"] == expect_filled and stats["kept"] == len(expect_ids)
    assert all(r["pass_rate"] == rates[int(r["id"])] for r in kept)
    assert stats["always_zero"] == sum(r == 0 for r in rates)


def test_select_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 prompts but 1 pass rates"):
        select_by_pass_rate(_recs("ab"), [0.5], 1, 1.0, 1)


def test_max_total_reward():
    assert max_total_reward({"task": 1.0, "ehr_format": 0.2}) == pytest.approx(1.2)
    assert max_total_reward({"task": 1.0, "penalty": -0.5}) == 1.0


def test_sample_pass_rates_are_bounded_and_reproducible(tmp_path):
    from rl.prompts import export_prompts
    from rl.config import PromptSourceSpec
    from rl.grpo.pass_rate import read_records
    from training.tiny_model import build_tiny_model
    from training.toy_data import write_toy_data

    model = build_tiny_model(tmp_path / "tiny")
    data = write_toy_data(tmp_path / "toy.jsonl", n=6, seed=1)
    export_prompts([PromptSourceSpec(kind="ehr_ins", path=str(data))], tmp_path / "p.jsonl")
    records = read_records(tmp_path / "p.jsonl")
    spec = {"task": 1.0, "ehr_format": 0.5}
    settings = SamplingSettings(samples=3, max_new_tokens=8, temperature=1.0, top_p=1.0, top_k=0, seed=5,
                                batch_size=4)
    rates = sample_pass_rates(str(model), records, spec, settings)
    assert len(rates) == len(records)
    assert all(0.0 <= r <= max_total_reward(spec) for r in rates)
    assert sample_pass_rates(str(model), records, spec, settings) == rates


def test_openrlhf_refuses_the_offline_selection():
    with pytest.raises(ValueError, match="dynamic_filtering"):
        RLJobConfig.model_validate({
            "backend": "openrlhf", "model_path": "m", "run": {"name": "x", "storage_path": "/tmp"},
            "openrlhf": {"actor_gpus_per_node": 1, "ref_gpus_per_node": 1, "vllm_num_engines": 1},
            "data": {"sources": [{"kind": "ehr_ins", "path": "p"}], "select_by_pass_rate": {"keep": 4}}})


def _model(d, value: float):
    d.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.full((2, 2), value)}, str(d / "model.safetensors"))
    return d


@pytest.mark.parametrize("start_rate, final_rate, noted", [(0.4, 0.6, False), (0.5, 0.5, True), (0.6, 0.3, True)])
def test_recheck_notes_a_reward_that_did_not_rise_and_plots_the_steps(tmp_path, start_rate, final_rate, noted):
    start, final = _model(tmp_path / "start", 1.0), _model(tmp_path / "run" / "final_model", 1.1)
    history = [{"step": i, "reward": 0.1 * i, "reward_std": 0.2, "frac_reward_zero_std": 0.5, "kl": 0.01 * i,
                "completions/mean_length": 4.0} for i in range(1, 5)]
    (final / "training_state.json").write_text(json.dumps({"log_history": history}))
    recheck = {"prompts": 3, "samples": 8, "pass_rate_start": start_rate, "pass_rate_final": final_rate,
               "per_prompt": []}
    report = check_rl_run(start, final, recheck)
    assert report["warnings"] == []
    assert bool(report["notes"]) == noted
    if noted:
        assert "did not rise" in report["notes"][0] and f"{start_rate:.3f}" in report["notes"][0]
    png = tmp_path / "run" / "rl_steps.png"
    assert report["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "run" / "rl_check.json").read_text())["recheck"]["pass_rate_final"] == final_rate


def test_summary_line_shows_the_rise_and_the_notes():
    from orchestration.summary import rl_check_line

    line = rl_check_line({"recheck": {"prompts": 16, "samples": 8, "pass_rate_start": 0.5, "pass_rate_final": 0.7},
                          "notes": [], "plot": "/x/rl_steps.png"})
    assert "0.500 (stage 2) -> 0.700 (RL)" in line and "/x/rl_steps.png" in line
    assert "NOTE: it fell" in rl_check_line({"notes": ["it fell"]})
