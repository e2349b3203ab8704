"""The MedCalc reward is the evaluation grader (evaluation.medcalc.grade_medcalc) on the model's completion."""

from __future__ import annotations

import builtins

import pytest

from evaluation.medcalc import grade_medcalc
from rl.rewards.ehrmind import medcalc
from tests.rl.adversarial import ADVERSARIAL_OUTPUTS

BMI = {"target": "22.857", "output_type": "decimal", "lower_limit": "21.71415", "upper_limit": "23.99985",
       "calculator_id": 6}
CHA2DS2 = {"target": "3", "output_type": "integer", "calculator_id": 4}
DUE_DATE = {"target": "03/15/2024", "output_type": "date", "calculator_id": 13}
GEST_AGE = {"target": "(16 weeks, 1 days)", "output_type": "integer", "calculator_id": 69}


@pytest.mark.parametrize("completion, label, expected", [
    ("<think>70 / 1.75^2</think>\n\n22.86", BMI, 1.0),
    ("<think>x</think>\n\nThe BMI is 22.9 kg/m²", BMI, 1.0),
    ('<think>x</think>\n\n<answer>{"answer": "22.0"}</answer>', BMI, 1.0),  # EHRMIND format, inside the window
    ("<think>x</think>\n\n25.0", BMI, 0.0),  # near miss outside the 5% window
    ("<think>x</think>\n\nstr(70 / 1.75 ** 2)", BMI, 0.0),  # an expression is not evaluated
    ("<think>x</think>\n\n3", CHA2DS2, 1.0),
    ("<think>x</think>\n\n3.2", CHA2DS2, 1.0),  # round(answer) == truth, the published rule
    ("<think>x</think>\n\n4", CHA2DS2, 0.0),
    ("<think>x</think>\n\n03/15/2024", DUE_DATE, 1.0),
    ("<think>x</think>\n\n03/16/2024", DUE_DATE, 0.0),
    ("<think>x</think>\n\n(16 weeks, 1 days)", GEST_AGE, 1.0),
    ("<think>x</think>\n\n(16 weeks, 2 days)", GEST_AGE, 0.0),
    ("<think>22.86", BMI, 0.0),  # never finished thinking
    ("", BMI, 0.0),
])
def test_medcalc_table(completion, label, expected):
    assert medcalc([completion], [label]) == [expected]


def test_reward_equals_the_evaluation_grader():
    comps = ["<think>a</think>\n\n22.5", "<think>a</think>\n\n30", "22.857"]
    expected = [grade_medcalc(c, ground_truth=BMI["target"], output_type="decimal", lower_limit=BMI["lower_limit"],
                              upper_limit=BMI["upper_limit"], calculator_id=6) for c in comps]
    assert medcalc(comps, [BMI] * 3) == expected


@pytest.mark.parametrize("label", [BMI, CHA2DS2, DUE_DATE, GEST_AGE])
def test_adversarial_outputs_never_raise_or_execute(label):
    scores = medcalc(ADVERSARIAL_OUTPUTS, [label] * len(ADVERSARIAL_OUTPUTS), prompts=None)
    assert len(scores) == len(ADVERSARIAL_OUTPUTS) and set(scores) <= {0.0, 1.0}
    assert not hasattr(builtins, "EHR_R1_PWNED")


def test_bad_label_is_a_clear_error():
    with pytest.raises(ValueError, match="has no 'output_type'"):
        medcalc(["1"], [{"target": "1"}])
