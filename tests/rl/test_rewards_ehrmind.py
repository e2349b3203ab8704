"""EHRMIND task rewards: trial matching, EHRSHOT (and MedCalc in test_rewards_medcalc.py)."""

from __future__ import annotations

import builtins

import pytest

from rl.rewards.ehrmind import (class_weights, ehrshot_yes_no, normalise_trial_label, parse_trial_label,
                                trial_match)
from tests.rl.adversarial import ADVERSARIAL_OUTPUTS


@pytest.mark.parametrize("completion, gold, expected", [
    ("<think>criteria met</think>\n\neligible", "eligible", 1.0),
    ("</think>\n\n  Eligible.", "eligible", 1.0),
    ("</think>\n\nLabel: excluded", "excluded", 1.0),
    ("</think>\n\n**Not relevant**", "not relevant", 1.0),
    ("</think>\n\nirrelevant", "not relevant", 1.0),
    ("</think>\n\n2", "eligible", 1.0),  # the TREC qrel code
    ("</think>\n\nexcluded", 1, 1.0),  # gold given as a TREC qrel score
    ("</think>\n\nnot relevant", 0, 1.0),
    ('<answer>{"prediction": "eligible", "idx": 2}</answer>', "eligible", 1.0),  # EHRMIND's JSON format
    ('{"label": "excluded"}', "excluded", 1.0),
    ("</think>\n\neligible", "excluded", 0.0),
    ("</think>\n\neligible or excluded", "eligible", 0.0),  # ambiguous
    ("</think>\n\nThe patient is eligible", "eligible", 0.0),  # one label word, not a sentence
    ("<think>eligible", "eligible", 0.0),  # unfinished thinking
    ("", "eligible", 0.0),
    ('{"prediction": true}', "eligible", 0.0),
])
def test_trial_match_table(completion, gold, expected):
    assert trial_match([completion], [{"target": gold}]) == [expected]


@pytest.mark.parametrize("value, name", [(2, "eligible"), (1, "excluded"), (0, "not relevant"), (2.0, "eligible"),
                                         ("Eligible", "eligible"), ("not_relevant", "not relevant")])
def test_normalise_trial_label(value, name):
    assert normalise_trial_label(value) == name


@pytest.mark.parametrize("value", [3, -1, True, "maybe", None])
def test_normalise_trial_label_rejects(value):
    with pytest.raises(ValueError, match="trial label"):
        normalise_trial_label(value)


def test_parse_trial_label_first_line_only():
    assert parse_trial_label("eligible\nbecause the criteria are met") == "eligible"
    assert parse_trial_label(None) is None and parse_trial_label("  \n ") is None


@pytest.mark.parametrize("completion, gold, weight, expected", [
    ("</think>\n\nyes", "yes", None, 1.0),
    ("<think>\n\n</think>\n\nNo", "no", None, 1.0),
    (" YES\n", "yes", 7.5, 7.5),  # reweighted class
    ("no", "yes", 7.5, 0.0),
    ('<answer>{"prediction": "yes"}</answer>', "yes", None, 1.0),
    ("yes, the patient will", "yes", None, 0.0),
    ("<think>yes", "yes", None, 0.0),
    ("", "no", 0.6, 0.0),
])
def test_ehrshot_table(completion, gold, weight, expected):
    label = {"target": gold} | ({"class_weight": weight} if weight is not None else {})
    assert ehrshot_yes_no([completion], [label]) == [expected]


def test_class_weights_make_mean_reward_balanced_accuracy():
    targets = ["no"] * 90 + ["yes"] * 10
    w = class_weights(targets)
    assert w == {"no": pytest.approx(100 / 180), "yes": pytest.approx(5.0)}
    labels = [{"target": t, "class_weight": w[t]} for t in targets]
    always_no = ehrshot_yes_no(["no"] * 100, labels)
    assert sum(always_no) / len(always_no) == pytest.approx(0.5)  # majority guess = chance, not 90%
    perfect = ehrshot_yes_no(targets, labels)
    assert sum(perfect) / len(perfect) == pytest.approx(1.0)


def test_ehrshot_rejects_non_binary_gold():
    with pytest.raises(ValueError, match="must be 'yes' or 'no'"):
        ehrshot_yes_no(["yes"], [{"target": "maybe"}])


@pytest.mark.parametrize("fn, label, top", [
    (trial_match, {"target": "eligible"}, 1.0),
    (ehrshot_yes_no, {"target": "yes", "class_weight": 2.0}, 2.0),
])
def test_adversarial_outputs_never_raise_or_execute(fn, label, top):
    scores = fn(ADVERSARIAL_OUTPUTS, [label] * len(ADVERSARIAL_OUTPUTS), extra="ignored")
    assert len(scores) == len(ADVERSARIAL_OUTPUTS) and all(0.0 <= s <= top for s in scores)
    assert not hasattr(builtins, "EHR_R1_PWNED")
