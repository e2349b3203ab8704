"""The evaluation's token budget: context rules, left truncation by whole events, per-task decoding budgets."""

from __future__ import annotations

import json

import pytest

from evaluation.budget import (budget_errors, fit_history, input_budget, model_context, per_sample_budgets,
                               split_blocks, target_length_quantiles)


def words(text: str) -> int:
    return len(text.split())


HEAD = "## Patient Demographics [None]\n- Anchor_Age: 64"
EVENTS = [f"## Labotary Test Events [2150-01-0{d} 08:00:00]\n- Creatinine: 1.{d}" for d in range(1, 6)]
TEXT = "\n\n".join([HEAD, *EVENTS])  # 7 + 5 * 9 words


@pytest.mark.parametrize("budget, dropped, kept_last", [
    (100, 0, 5),   # fits: unchanged
    (52, 0, 5),    # exactly fits
    (51, 1, 5),    # one word over: the oldest event goes
    (34, 2, 5),
    (16, 4, 5),    # header + the newest event
])
def test_fit_history_drops_whole_events_oldest_first(budget, dropped, kept_last):
    kept, n_dropped, n = fit_history(TEXT, words, budget)
    assert n_dropped == dropped and n <= budget and kept.startswith(HEAD)
    blocks = split_blocks(kept)
    assert all(b in EVENTS or b == HEAD for b in blocks), "no event is cut in the middle"
    if kept_last is not None:
        assert blocks[-1] == EVENTS[kept_last - 1] and len(blocks) == 1 + 5 - dropped


@pytest.mark.parametrize("budget", [15, 9, 3])
def test_fit_history_cuts_text_only_when_header_and_newest_event_do_not_fit(budget):
    kept, dropped, n = fit_history(TEXT, words, budget)
    assert 0 < n <= budget and TEXT.endswith(kept) and dropped >= 5  # the newest text survives


@pytest.mark.parametrize("max_in, max_new, context, expected", [
    (4096, 32, 2048, 2016), (4096, 32, None, 4096), (1000, 32, 2048, 1000), (8192, 1024, 40960, 8192)])
def test_input_budget_respects_the_context(max_in, max_new, context, expected):
    assert input_budget(max_in, max_new, context) == expected
    assert expected + max_new <= (context or 10**9)


@pytest.mark.parametrize("max_new, context, bad", [(2048, 2048, True), (2040, 2048, True), (256, 2048, False),
                                                   (10**6, None, False)])
def test_budget_errors_name_the_field(max_new, context, bad):
    errors = budget_errors(4096, max_new, context)
    assert bool(errors) == bad
    if bad:
        assert "backend.max_new_tokens" in errors[0] and "max_position_embeddings" in errors[0]


def test_model_context_reads_config_json_and_text_config(tmp_path):
    assert model_context(None) is None and model_context(str(tmp_path)) is None
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 2048}))
    assert model_context(str(tmp_path)) == 2048
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 32768}}))
    assert model_context(str(tmp_path)) == 32768


def test_evaluate_config_refuses_a_decoding_budget_beyond_the_context(tmp_path):
    from evaluation.config import EvaluateConfig
    from jobkit.config import ConfigError, validate_config

    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    data = {"model": {"path": str(tmp_path)}, "benchmark": {"paths": ["x.jsonl"]},
            "backend": {"max_new_tokens": 600}}
    with pytest.raises(ConfigError, match="backend.max_new_tokens: 600 leaves no room"):
        validate_config(EvaluateConfig, data)
    validate_config(EvaluateConfig, {**data, "backend": {"max_new_tokens": 64}})


def test_decoding_budgets_follow_the_trained_lengths(tmp_path):
    path = tmp_path / "ehr_ins.jsonl"
    recs = [{"output": " ".join(["x"] * n), "task_info": {"task": "labevents"}} for n in range(1, 101)]
    recs += [{"output": "yes", "task_info": {"task": "Inpatient_Mortality"}}]
    recs += [{"output": "a b", "reasoning": " ".join(["r"] * 50), "task_info": {"task": "diagnoses_icd"}}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    off = target_length_quantiles([str(path)], words, thinking=False, quantile=0.99)
    on = target_length_quantiles([str(path)], words, thinking=True, quantile=0.99)
    assert off["labevents"] == 101 and off["Inpatient_Mortality"] == 2 and off["diagnoses_icd"] == 3
    assert on["diagnoses_icd"] > 50  # the think block counts when the model thinks
    budgets = per_sample_budgets(["labevents", "Inpatient_Mortality", "Inpatient_Mortality", "unseen"],
                                 ["decision", "risk", "risk", "decision"], [False, False, True, False],
                                 {False: off, True: on}, margin=8, cap=64)
    assert budgets == [64, 1, 12, 64]  # capped; one forced token; thinking risk = trained + margin; unseen = cap
