"""MedCalc-Bench grading: right, near-miss and wrong answers for every calculator family and output type, on the
fixture rows whose ground truth the `medcalc-bench` calculators computed (tests/evaluation/fixtures/medcalc)."""

from __future__ import annotations

import csv
import doctest
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from evaluation import medcalc
from evaluation.medcalc import CATEGORY_BY_ID, DATE_IDS, DECIMAL_IDS, INTEGER_IDS, WEEKS_DAYS_IDS, grade_medcalc
from tests.engines import require_engine

FIXTURE = Path(__file__).parent / "fixtures" / "medcalc" / "medcalc_bench_test.csv"
ROWS = list(csv.DictReader(FIXTURE.open()))


def test_doctests():
    assert doctest.testmod(medcalc).failed == 0


def test_every_calculator_has_one_rule_and_a_family():
    ids = [DATE_IDS, WEEKS_DAYS_IDS, INTEGER_IDS, DECIMAL_IDS]
    all_ids = set().union(*ids)
    assert len(all_ids) == sum(map(len, ids)) == 55
    assert set(CATEGORY_BY_ID) == all_ids


def test_fixture_covers_every_family_and_output_type():
    assert {r["Category"] for r in ROWS} == set(CATEGORY_BY_ID.values())
    assert {r["Output Type"] for r in ROWS} == {"decimal", "integer", "date"}
    assert any(int(r["Calculator ID"]) in WEEKS_DAYS_IDS for r in ROWS)


def _variants(row: dict) -> list[tuple[str, str, float]]:
    """(label, prediction, expected grade) derived from the row's ground truth."""
    cid, gt = int(row["Calculator ID"]), row["Ground Truth Answer"]
    if cid in DATE_IDS:
        d = datetime.strptime(gt, "%m/%d/%Y")
        return [("right", f'{{"step_by_step_thinking": "...", "answer": "{gt}"}}', 1.0),
                ("right-unpadded", f"The answer is {d.month}/{d.day}/{d.year}.", 1.0),
                ("right-iso", f"<answer>{d:%Y-%m-%d}</answer>", 1.0),
                ("near-miss", f"Answer: {(d + timedelta(days=1)):%m/%d/%Y}", 0.0),
                ("wrong", "Answer: 13/45/2020", 0.0)]
    if cid in WEEKS_DAYS_IDS:
        w, dd = medcalc.parse_weeks_days(gt)
        return [("right", f"<think>\ncount\n</think>\n\n({w} weeks, {dd} days)", 1.0),
                ("right-tuple", f'{{"answer": "({w}, {dd})"}}', 1.0),
                ("right-quoted", f"Answer: ('{w} weeks', '{dd} days')", 1.0),
                ("near-miss", f"Answer: ({w} weeks, {dd + 1} days)", 0.0),
                ("wrong", "Answer: unknown", 0.0)]
    value = float(gt)
    if cid in INTEGER_IDS:
        n = int(value)
        return [("right", f'{{"answer": "{n}"}}', 1.0), ("right-out-of", f"The score is {n} out of 9.", 1.0),
                ("right-rounds", f"Answer: {n + 0.4}", 1.0), ("near-miss", f"Answer: {n + 1}", 0.0),
                ("wrong", f"Answer: {n - 3}", 0.0), ("no-number", "Answer: high risk", 0.0)]
    lower, upper = float(row["Lower Limit"]), float(row["Upper Limit"])
    return [("right", f'{{"answer": {value}}}', 1.0),
            ("right-in-window", f"Answer: {round(value * 1.04, 3)} units", 1.0),
            ("right-trace", f"<think>\nformula ... = {value}\n</think>\n\nSo it is {value}", 1.0),
            ("near-miss-above", f"Answer: {upper * 1.01:.4f}", 0.0),
            ("near-miss-below", f"Answer: {lower * 0.99:.4f}", 0.0),
            ("wrong", f"Answer: {-value}", 0.0),
            ("eval-injection", "Answer: __import__('os').system('true')", 0.0),
            ("unfinished-think", f"<think>\n{value}", 0.0)]


CASES = [(f'{row["Category"]}-{row["Calculator ID"]}-{label}', row, pred, expected)
         for row in ROWS for label, pred, expected in _variants(row)]


@pytest.mark.parametrize("case_id, row, prediction, expected", CASES, ids=[c[0] for c in CASES])
def test_grade_table(case_id, row, prediction, expected):
    kwargs = dict(ground_truth=row["Ground Truth Answer"], output_type=row["Output Type"],
                  lower_limit=row["Lower Limit"], upper_limit=row["Upper Limit"])
    assert grade_medcalc(prediction, calculator_id=int(row["Calculator ID"]), **kwargs) == expected
    # without the id, the output type (and the ground truth's shape) selects the same rule
    assert grade_medcalc(prediction, **kwargs) == expected


@pytest.mark.parametrize("prediction", ["", "   ", "{", '{"answer": }', "\x00", "1e999", "NaN", "<answer>",
                                        "answer: " + "9" * 400, "-", "∞"])
def test_never_raises_on_model_output(prediction):
    for row in ROWS:
        assert grade_medcalc(prediction, ground_truth=row["Ground Truth Answer"], output_type=row["Output Type"],
                             lower_limit=row["Lower Limit"], upper_limit=row["Upper Limit"],
                             calculator_id=int(row["Calculator ID"])) in (0.0, 1.0)


def test_decimal_without_window_uses_the_test_split_window():
    assert grade_medcalc("Answer: 104", ground_truth="100", output_type="decimal") == 1.0
    assert grade_medcalc("Answer: 106", ground_truth="100", output_type="decimal") == 0.0


def test_bad_ground_truth_is_a_clear_data_error():
    with pytest.raises(ValueError, match="not a MM/DD/YYYY date"):
        grade_medcalc("01/01/2020", ground_truth="soon", output_type="date")
    with pytest.raises(ValueError, match="unknown MedCalc-Bench output type"):
        grade_medcalc("1", ground_truth="1", output_type="fraction")


def test_fixture_ground_truth_matches_the_medcalc_bench_calculators():
    require_engine("medcalc", "pip install -e '.[eval]'")  # medcalc-bench computes the fixture labels
    import sys
    sys.path.insert(0, str(FIXTURE.parent))
    try:
        import make_fixture
    finally:
        sys.path.pop(0)
    regenerated = make_fixture.rows()
    assert [(r["Calculator ID"], r["Ground Truth Answer"], r["Lower Limit"], r["Upper Limit"]) for r in regenerated] \
        == [(r["Calculator ID"], r["Ground Truth Answer"], r["Lower Limit"], r["Upper Limit"]) for r in ROWS]
