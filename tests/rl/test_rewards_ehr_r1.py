"""EHR-R1 rewards: tables of (completion, label) -> expected score, adversarial outputs included."""

from __future__ import annotations

import builtins
import json

import pytest

from rl.rewards import get_reward, reward_names, score_labelled
from rl.rewards.ehr_r1 import ehr_format, ehr_rouge1, ehr_set_f1, ehr_yes_no
from tests.rl.adversarial import ADVERSARIAL_OUTPUTS

GOLD = ["Sepsis", "Pneumonia"]
WELL_FORMED = "<think>\n## Extraction\nfever\n## Reasoning\ninfection\n## Final Results\nSepsis\n</think>\n\n"


@pytest.mark.parametrize("completion, expected", [
    ("<think>\nlabs\n</think>\n\nSepsis\nPneumonia", 1.0),
    ("<think>\nlabs\n</think>\n\n  sepsis \nPNEUMONIA\n", 1.0),  # case and whitespace
    ("Sepsis\nPneumonia", 1.0),  # no think block: the whole text is the answer
    ("<think>\nlabs\n</think>\n\nSepsis", 2 / 3),  # P=1, R=1/2
    ("<think>\nlabs\n</think>\n\nSepsis\nAKI\nStroke\nPneumonia", 2 / 3),  # P=1/2, R=1
    ("<think>\nlabs\n</think>\n\nSepsis\\nPneumonia", 1.0),  # literal backslash-n separates
    ("<think>\nlabs\n</think>\n\nSepsis\nSepsis\nSepsis", 2 / 3),  # repeated items count once
    ("<think>\nSepsis\nPneumonia", 0.0),  # truncated inside the think block: no answer
    ("<think>x</think>\n\n", 0.0),  # empty answer
    ("", 0.0),
    ("<think>a</think>Sepsis</think>\n\nAKI", 0.0),  # the answer is after the LAST </think>
    ("Sepsis, Pneumonia", 0.0),  # one item per line, not comma-separated
])
def test_set_f1_table(completion, expected):
    assert ehr_set_f1([completion], [{"target": GOLD}]) == [pytest.approx(expected)]


@pytest.mark.parametrize("completion, target, expected", [
    ("</think>\n\nyes", "yes", 1.0),  # the reference scored this 0 (unstripped startswith)
    ("<think>\n\n</think>\n\nyes", "yes", 1.0),
    ("  YES  ", "yes", 1.0),
    ("No.", "no", 1.0),
    ("**no**", "no", 1.0),
    ("yes", "no", 0.0),
    ("yes, probably", "yes", 0.0),  # not a yes/no answer
    ("yesterday", "yes", 0.0),  # the reference's startswith would have said 1
    ("no\nyes", "no", 0.0),
    ("<think>yes", "yes", 0.0),  # never finished thinking
    ("", "no", 0.0),
    ("yes", " Yes ", 1.0),  # label normalised too
])
def test_yes_no_table(completion, target, expected):
    assert ehr_yes_no([completion], [{"target": target}]) == [expected]


@pytest.mark.parametrize("completion, thinking, expected", [
    (WELL_FORMED + "Sepsis\nPneumonia", True, 1.0),
    (WELL_FORMED.removeprefix("<think>") + "Sepsis", True, 1.0),  # <think> pre-filled by the chat template
    (WELL_FORMED + "Sepsis\nsepsis", True, 0.0),  # duplicate items
    (WELL_FORMED + "", True, 0.0),  # no answer
    ("<think>\n## Reasoning\n## Extraction\n## Final Results\n</think>\n\nSepsis", True, 0.0),  # wrong order
    ("<think>\n## Extraction\n## Reasoning\n</think>\n\nSepsis", True, 0.0),  # section missing
    ("<think>\nfree text\n</think>\n\nSepsis", True, 0.0),
    (WELL_FORMED + "Sepsis</think>", True, 0.0),  # two closing tags
    ("<think>" + WELL_FORMED + "Sepsis", True, 0.0),  # two think blocks
    ("pre " + WELL_FORMED + "Sepsis", True, 0.0),  # text before <think>
    ("Sepsis", True, 0.0),  # thinking asked, none given
    ("<think>\n## Extraction\n## Reasoning\n## Final Results\nSepsis", True, 0.0),  # truncated
    ("<think>\n\n</think>\n\nyes", False, 1.0),  # /no_think: empty think block
    ("yes", False, 1.0),  # /no_think with the empty block pre-filled by the template
    ("</think>\n\nno", False, 1.0),
    ("<think>\nI think so\n</think>\n\nyes", False, 0.0),  # reasoning although thinking was off
    ("", False, 0.0),
    ("yes\nyes", False, 0.0),
])
def test_format_table(completion, thinking, expected):
    assert ehr_format([completion], [{"thinking": thinking}]) == [expected]


def test_rouge1_scores_overlap():
    scores = ehr_rouge1(["<think>x</think>\n\npatient discharged home", "", "unrelated words"],
                        [{"target": "patient discharged home"}] * 3)
    assert scores[0] == pytest.approx(1.0) and scores[1] == 0.0 and scores[2] == 0.0


@pytest.mark.parametrize("name, label", [
    ("ehr_set_f1", {"target": GOLD}), ("ehr_yes_no", {"target": "yes"}), ("ehr_format", {"thinking": True}),
    ("ehr_format", {"thinking": False}), ("ehr_rouge1", {"target": "discharged home"}),
])
def test_adversarial_outputs_never_raise_or_execute(name, label):
    fn = get_reward(name)
    scores = fn(ADVERSARIAL_OUTPUTS, [label] * len(ADVERSARIAL_OUTPUTS), prompts=["p"] * len(ADVERSARIAL_OUTPUTS))
    assert len(scores) == len(ADVERSARIAL_OUTPUTS)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert not hasattr(builtins, "EHR_R1_PWNED")


def test_batched_and_kwargs_tolerant():
    comps = ["</think>\n\nyes", "</think>\n\nno", "maybe"]
    labels = [{"target": "yes"}, {"target": "yes"}, {"target": "no"}]
    assert ehr_yes_no(comps, labels, prompts=["a"] * 3, trainer_state=object(), completion_ids=[[1]] * 3) == [1, 0, 0]


def test_bad_labels_are_clear_errors():
    with pytest.raises(ValueError, match="completions but"):
        ehr_yes_no(["yes"], [])
    with pytest.raises(ValueError, match="has no 'target'"):
        ehr_yes_no(["yes"], [{}])
    with pytest.raises(ValueError, match="set metrics"):
        ehr_set_f1(["a"], [{"target": ["a"], "metric": "aucroc"}])


def test_score_labelled_routes_by_label_and_adds_components():
    comps = [WELL_FORMED + "Sepsis\nPneumonia", "<think>\n\n</think>\n\nno", "</think>\n\nSepsis"]
    labels = [json.dumps({"reward": "ehr_set_f1", "target": GOLD}),
              {"reward": "ehr_yes_no", "target": "no", "thinking": False},
              json.dumps({"reward": "ehr_set_f1", "target": GOLD})]
    out = score_labelled(comps, labels, {"task": 1.0, "ehr_format": 0.5})
    assert out.components["task"] == pytest.approx([1.0, 1.0, 2 / 3])
    assert out.components["ehr_format"] == [1.0, 1.0, 0.0]
    assert out.total == pytest.approx([1.5, 1.5, 2 / 3])


@pytest.mark.parametrize("label, fragment", [
    ("not json", "not JSON"), (json.dumps({"target": "yes"}), "no 'reward'"), (42, "neither"),
    (json.dumps({"reward": "nope", "target": "yes"}), "unknown reward 'nope'"),
])
def test_score_labelled_bad_labels(label, fragment):
    with pytest.raises((ValueError, KeyError), match=fragment):
        score_labelled(["yes"], [label])


def test_every_builtin_reward_is_listed():
    assert {"ehr_set_f1", "ehr_yes_no", "ehr_format", "ehr_rouge1", "medcalc", "trial_match",
            "ehrshot_yes_no"} <= set(reward_names())
