"""Stored predictions are reused only for the same weights, settings and prompt: a changed prompt is predicted
again, retrained weights refuse (or, as the pipeline sets, replace) the stale run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evaluation.backends import PREDICTION_COLUMNS
from evaluation.inference import read_predictions, run_inference
from evaluation.run import _check_fingerprint


class EchoBackend:
    """Answers every sample with its own messages, so a test sees which prompt each stored prediction came from."""

    def __init__(self):
        self.calls = 0

    def _predict(self, batch: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({c: [None] * len(batch) for c in PREDICTION_COLUMNS})
        out["sample_id"], out["completion"], out["status"] = batch["sample_id"].values, batch["messages"].values, "ok"
        out["p_yes"] = float("nan")
        out["error"], out["finish_reason"] = "", "stop"
        for c in ("prompt_tokens", "completion_tokens", "dropped_events"):
            out[c] = 0
        return out

    def apply(self, ds):
        self.calls += 1
        return ds.map_batches(self._predict, batch_format="pandas", batch_size=None)


def _samples(prompts):
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(prompts))], "task": "t", "kind": "decision",
                         "input": "x", "prompt_instruction": "i", "messages": prompts, "thinking": False,
                         "max_new_tokens": 8})


def test_only_samples_whose_prompt_changed_are_predicted_again(ray_session, tmp_path):
    backend = EchoBackend()
    first = run_inference(_samples(["a", "b", "c"]), backend, tmp_path, batch_size=2, progress=False)
    assert (first.ran, first.reused) == (3, 0)
    same = run_inference(_samples(["a", "b", "c"]), backend, tmp_path, batch_size=2, progress=False)
    assert (same.ran, same.reused) == (0, 3)
    changed = run_inference(_samples(["a", "B", "c"]), backend, tmp_path, batch_size=2, progress=False)
    assert (changed.ran, changed.reused) == (1, 2)
    stored = read_predictions(tmp_path / "predictions").set_index("sample_id")["completion"]
    assert stored.to_dict() == {"s0": "a", "s1": "B", "s2": "c"}  # the new prompt's answer supersedes the old


def test_retrained_weights_refuse_or_replace_the_stale_run(tmp_path):
    run = tmp_path / "stage1"
    run.mkdir()
    old = {"model": "stage1", "weights": "model.safetensors=10:1", "prompts_sha256": "p", "samples_sha256": "s",
           "budgets_sha256": "b"}
    _check_fingerprint(run, old)
    (run / "predictions").mkdir()
    new = {**old, "weights": "model.safetensors=10:2"}
    with pytest.raises(ValueError, match="different weights.*on_change: replace"):
        _check_fingerprint(run, new)
    assert _check_fingerprint(run, new, "replace") == run
    assert json.loads((run / "run.json").read_text())["weights"] == new["weights"]
    assert not (run / "predictions").exists() and (tmp_path / "stage1.replaced-1" / "predictions").is_dir()
