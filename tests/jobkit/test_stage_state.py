"""Stage state: a run directory is done, resumable or stale for a config, and a stale run is moved aside, never lost."""

from __future__ import annotations

import json
import os

import pytest

from jobkit.stage_state import StageChanged, begin_stage, changed_keys, finish_stage, path_fingerprint, stage_key


@pytest.mark.parametrize(("old", "new", "expected"), [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}, ["b.c"]),
    ({"a": 1}, {"a": 1, "d": 0}, ["d"]),
    ({"t": {"lr": 1e-3, "bs": 4}}, {"t": {"lr": 2e-3, "bs": 8}}, ["t.bs", "t.lr"]),
])
def test_changed_keys(old, new, expected):
    assert changed_keys(old, new) == expected


def test_volatile_keys_do_not_count(tmp_path):
    base = {"train": {"lr": 1}, "run": {"max_failures": 1}, "log_level": "INFO"}
    other = {"train": {"lr": 1}, "run": {"max_failures": 5}, "log_level": "DEBUG"}
    volatile = ("run.max_failures", "log_level")
    assert stage_key(base, {}, volatile) == stage_key(other, {}, volatile)
    assert stage_key(base, {}, ()) != stage_key(other, {}, ())


def test_input_fingerprint_follows_a_rewritten_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = path_fingerprint(model)
    st = (model / "config.json").stat()
    os.utime(model / "config.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # retrained: a new file
    assert path_fingerprint(model) != before
    assert path_fingerprint(tmp_path / "absent") == "missing"


def _finish(run):
    (run / "final_model").mkdir()
    (run / "final_model" / "config.json").write_text("{}")
    finish_stage(run)


def test_fresh_resume_done_then_rerun_on_change(tmp_path):
    run = tmp_path / "s1"
    key = stage_key({"lr": 1}, {})
    assert begin_stage(run, key) == "fresh"
    (run / "checkpoint_000").mkdir()
    assert begin_stage(run, key) == "resume"  # interrupted: same config resumes from its checkpoint
    _finish(run)
    assert begin_stage(run, key) == "done"
    assert begin_stage(run, stage_key({"lr": 2}, {})) == "fresh"
    aside = tmp_path / "s1.replaced-1"
    assert (aside / "final_model" / "config.json").is_file()  # the stale run is kept, not deleted
    assert json.loads((run / "stage.json").read_text())["key"]["config"] == {"lr": 2}
    assert not (run / "final_model").exists()


def test_refuse_names_the_changed_keys(tmp_path):
    run = tmp_path / "s1"
    begin_stage(run, stage_key({"train": {"lr": 1}}, {}))
    with pytest.raises(StageChanged, match=r"changed: config\.train\.lr.*run\.on_change: rerun"):
        begin_stage(run, stage_key({"train": {"lr": 2}}, {}), on_change="refuse")
    assert (run / "stage.json").is_file()  # nothing moved


def test_a_run_without_state_is_not_taken_for_this_config(tmp_path):
    run = tmp_path / "legacy"
    (run / "final_model").mkdir(parents=True)
    (run / "final_model" / "config.json").write_text("{}")
    assert begin_stage(run, stage_key({"lr": 1}, {})) == "fresh"
    assert (tmp_path / "legacy.replaced-1" / "final_model").is_dir()


@pytest.mark.parametrize("finished", [True, False])
def test_a_longer_max_steps_goes_on_from_the_checkpoint(tmp_path, finished):
    run = tmp_path / "rl"
    begin_stage(run, stage_key({"grpo": {"max_steps": 2, "lr": 1}}, {}))
    if finished:
        _finish(run)
    longer = stage_key({"grpo": {"max_steps": 4, "lr": 1}}, {})
    assert begin_stage(run, longer, extendable=("grpo.max_steps",)) == "resume"
    assert not (tmp_path / "rl.replaced-1").exists()
    assert json.loads((run / "stage.json").read_text()) == {"key": longer, "done": False}
    # another key changing with it is a different run, not an extension
    assert begin_stage(run, stage_key({"grpo": {"max_steps": 6, "lr": 2}}, {}), extendable=("grpo.max_steps",)) == "fresh"
