"""MedCalc-Bench grading (ncbi-nlp/MedCalc-Bench ``evaluation/evaluate.py``), re-implemented without ``eval``.

The published rules, by calculator id (``check_correctness``):

- 13, 68 (estimated due date, conception date): the date ``MM/DD/YYYY`` must be equal;
- 69 (gestational age): ``(weeks, days)`` must be equal;
- integer calculators (scores: CHA2DS2-VASc, HEART, GCS, SOFA, ...): ``round(answer) == ground truth``;
- decimal calculators (lab values, BMI, QTc, doses, ...): ``lower_limit <= answer <= upper_limit`` (the released
  test split sets the window to 0.95-1.05 x the ground truth).

The answer is read from the model's final answer: after the last ``</think>``, from an ``<answer>`` block or a
JSON ``"answer"`` value if there is one (the MedCalc-Bench / EHRMIND output format), else from an ``answer is`` /
``answer:`` phrase, else from the whole answer text. Numbers are parsed with a regular expression and ``float``,
never ``eval`` (the published script and EHRMIND's reward copy call ``eval`` on model output). A malformed or
missing answer scores 0.0; :func:`grade_medcalc` never raises on model output (it raises only on a malformed
ground truth or tolerance window, which is a data error).

Deliberate, documented differences: an answer that is an unevaluated expression (``str(70 / 1.75 ** 2)``, which
the published extractor ``eval``-uates) scores 0; dates are also accepted as ``YYYY-MM-DD``; without an explicit
answer span the *last* number of the text is taken (a reasoning trace ends with its result) where the published
extractor, which always has a JSON answer, takes the first number of that answer.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date

from evaluation.answers import answer_text

DATE_IDS = frozenset({13, 68})
WEEKS_DAYS_IDS = frozenset({69})
INTEGER_IDS = frozenset({4, 15, 16, 17, 18, 20, 21, 25, 27, 28, 29, 32, 33, 36, 43, 45, 48, 51})
DECIMAL_IDS = frozenset({2, 3, 5, 6, 7, 8, 9, 10, 11, 19, 22, 23, 24, 26, 30, 31, 38, 39, 40, 44, 46, 49,
                         56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67})
#: calculator family (the dataset's ``Category``) per id, for per-family reports
CATEGORY_BY_ID = {
    **{i: "lab" for i in (2, 3, 7, 9, 19, 23, 26, 30, 31, 38, 39, 40, 44, 46, 63, 64, 65, 66, 67)},
    **{i: "physical" for i in (5, 6, 10, 11, 56, 57, 58, 59, 22, 60, 61, 62)},
    **{i: "dosage" for i in (24, 49)},
    **{i: "date" for i in (13, 68, 69)},
    **{i: "risk" for i in (4, 8, 16, 17, 18, 25, 27, 28, 32, 36, 43, 45)},
    **{i: "severity" for i in (15, 20, 21, 29)},
    **{i: "diagnosis" for i in (33, 48, 51)},
}

_NUMBER = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|(?<![\w.])[-+]?\.\d+")
_OUT_OF = re.compile(r"(-?\d+)\s*out of", re.IGNORECASE)
_MDY = re.compile(r"(?<!\d)(0?[1-9]|1[0-2])/(0?[1-9]|[12]\d|3[01])/(\d{4})(?!\d)")
_ISO = re.compile(r"(?<!\d)(\d{4})-(0?[1-9]|1[0-2])-(0?[1-9]|[12]\d|3[01])(?!\d)")
# the published gestational-age pattern: "(16 weeks, 1 days)", "('16 weeks', '1 days')", "(16, 1)", "16 weeks 1 day"
_WEEKS_DAYS = re.compile(r"\(?[\"']?(\d+)\s*(?:weeks?)?[\"']?,?\s*[\"']?(\d+)\s*(?:days?)?[\"']?\s*\)?")
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_JSON_ANSWER = re.compile(r"[\"']answer[\"']\s*:\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|\[[^\]]*\]|\([^)]*\)|[^,}\n]+)",
                          re.IGNORECASE)
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is|=|:)\s*(.+)", re.IGNORECASE)


def answer_span(prediction: str) -> tuple[str, bool] | None:
    """The part of a completion that holds the answer, and whether it was marked explicitly; None if none."""
    text = answer_text(prediction)
    if text is None:
        return None
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        text = tagged[-1]
    json_values = _JSON_ANSWER.findall(text)
    if json_values:
        value = json_values[-1].strip()
        if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) >= 2:
            try:
                value = json.loads(value) if value[0] == '"' else value[1:-1]
            except ValueError:
                value = value[1:-1]
        return str(value).strip(), True
    phrases = _ANSWER_PHRASE.findall(text)
    if phrases:
        return phrases[-1].strip(), True
    if tagged:
        return text.strip(), True
    return text.strip(), False


def parse_number(text: str, *, last: bool = False) -> float | None:
    """The first (or last) number in ``text``: thousands separators, signs, decimals, exponents; no eval.

    >>> parse_number("BMI is 1,234.5 kg/m^2"), parse_number("from 3 to -4.5", last=True), parse_number("n/a")
    (1234.5, -4.5, None)
    """
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    token = (matches[-1] if last else matches[0]).replace(",", "").replace("−", "-")
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_date(text: str) -> date | None:
    """The first ``MM/DD/YYYY`` (or ``YYYY-MM-DD``) date in ``text`` that is a real calendar date."""
    for pattern, order in ((_MDY, (2, 0, 1)), (_ISO, (0, 1, 2))):
        for match in pattern.finditer(text):
            y, m, d = (int(match.group(i + 1)) for i in order)
            try:
                return date(y, m, d)
            except ValueError:
                continue
    return None


def parse_weeks_days(text: str) -> tuple[int, int] | None:
    """``(weeks, days)`` by the published gestational-age pattern."""
    match = _WEEKS_DAYS.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _rule(output_type: str, calculator_id: int | None, ground_truth: str) -> str:
    if calculator_id is not None:
        cid = int(calculator_id)
        for ids, rule in ((DATE_IDS, "date"), (WEEKS_DAYS_IDS, "weeks_days"), (INTEGER_IDS, "integer"),
                          (DECIMAL_IDS, "decimal")):
            if cid in ids:
                return rule
    kind = output_type.strip().lower()
    if kind == "date":
        return "date"
    if kind == "integer" and ("week" in ground_truth.lower() or "," in ground_truth):
        return "weeks_days"
    if kind in ("integer", "decimal"):
        return kind
    raise ValueError(f"unknown MedCalc-Bench output type {output_type!r} (calculator {calculator_id}); expected "
                     "'decimal', 'integer' or 'date' (the dataset's `Output Type` column)")


def _limit(value: str | float | None, name: str) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    number = parse_number(str(value))
    if number is None:
        raise ValueError(f"MedCalc-Bench {name} {value!r} is not a number; fix the `{name.title()}` column")
    return number


def grade_medcalc(prediction: str, *, ground_truth: str, output_type: str, lower_limit: str | float | None = None,
                  upper_limit: str | float | None = None, calculator_id: int | None = None) -> float:
    """1.0 if the model's answer is correct by MedCalc-Bench's rule for this calculator, else 0.0.

    Decimal answers without a given window use the released test split's window, 0.95-1.05 x ground truth.
    """
    rule = _rule(output_type, calculator_id, str(ground_truth))
    gt = str(ground_truth).strip()
    span = answer_span(prediction)
    if span is None:
        return 0.0
    text, explicit = span
    if rule == "date":
        expected = parse_date(gt)
        if expected is None:
            raise ValueError(f"MedCalc-Bench ground truth {gt!r} is not a MM/DD/YYYY date")
        return float(parse_date(text) == expected)
    if rule == "weeks_days":
        expected_wd = parse_weeks_days(gt)
        if expected_wd is None:
            raise ValueError(f"MedCalc-Bench ground truth {gt!r} is not a (weeks, days) pair")
        return float(parse_weeks_days(text) == expected_wd)
    expected_value = parse_number(gt)
    if expected_value is None:
        raise ValueError(f"MedCalc-Bench ground truth {gt!r} is not a number")
    if rule == "integer":
        out_of = _OUT_OF.search(text)
        value = float(out_of.group(1)) if out_of else parse_number(text, last=not explicit)
        return float(value is not None and round(value) == expected_value)
    value = parse_number(text, last=not explicit)
    if value is None:
        return 0.0
    lower, upper = _limit(lower_limit, "lower limit"), _limit(upper_limit, "upper limit")
    if lower is None or upper is None:
        lower, upper = sorted((expected_value * 0.95, expected_value * 1.05))
    return float(lower <= value <= upper)

