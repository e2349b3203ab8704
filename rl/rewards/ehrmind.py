"""EHRMIND task rewards (MedCalc-Bench, TREC clinical-trial matching, EHRSHOT), on this project's answer format.

Answers come after the last ``</think>`` (:func:`evaluation.answers.answer_text`), like the EHR-R1 tasks. EHRMIND's
own format (``<answer>{"answer": ...}</answer>``, JSON keys ``answer`` / ``prediction``) is accepted too, parsed
with ``json.loads`` only: nothing a model writes is ever evaluated (EHRMIND's MedCalc check called ``eval``).

- ``medcalc``: MedCalc-Bench's published grading rules, via :func:`evaluation.medcalc.grade_medcalc` (which
  parses the answer span itself, numbers without ``eval``).
- ``trial_match``: three-way label of a (patient, trial) pair: eligible / excluded / not relevant (TREC 2021 qrels
  2 / 1 / 0). EHRMIND's reward mapped labels 0/1 the opposite way from its prompt; here the label names are the
  only currency, so the prompt, the export and the reward cannot disagree.
- ``ehrshot_yes_no``: the EHRSHOT binary tasks as yes/no, optionally reweighted per class with the weight the
  export stores in the label (``0.5 * N / N_class``, EHRMIND's test reward, which makes the mean reward the
  balanced accuracy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.answers import answer_text, parse_yes_no
from evaluation.medcalc import grade_medcalc
from rl.rewards.registry import as_text, check_lengths, label_field, register

TRIAL_LABELS = ("eligible", "excluded", "not relevant")
#: TREC 2021 clinical-trials qrels: 2 eligible, 1 excluded, 0 not relevant.
TREC_QREL_LABELS = {2: "eligible", 1: "excluded", 0: "not relevant"}
_TRIAL_SYNONYMS = {
    "eligible": "eligible", "2": "eligible", "included": "eligible",
    "excluded": "excluded", "1": "excluded", "ineligible": "excluded", "not eligible": "excluded",
    "not relevant": "not relevant", "not_relevant": "not relevant", "irrelevant": "not relevant",
    "0": "not relevant", "no relevant information": "not relevant",
}
_STRIP = " \t\r\n.,;:!?\"'`*_()[]{}"
_PREFIX = re.compile(r"^(?:final\s+)?(?:answer|label|prediction|eligibility)\s*[:=-]\s*", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_JSON_MAX_CHARS = 4096  # an answer object is a few dozen characters; never parse a megabyte of model output
_JSON_KEYS = ("answer", "prediction", "label")


def _final_answer(completion: Any) -> str | None:
    """The answer text of a completion: after the last ``</think>``; inside the last ``<answer>`` tag if any;
    the value of an ``{"answer"|"prediction"|"label": ...}`` JSON object if it is one."""
    answer = answer_text(as_text(completion))
    if answer is None:
        return None
    tagged = _ANSWER_TAG.findall(answer)
    if tagged:
        answer = tagged[-1]
    stripped = answer.strip()
    if stripped.startswith("{") and stripped.endswith("}") and len(stripped) <= _JSON_MAX_CHARS:
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            for key in _JSON_KEYS:
                if key in obj and isinstance(obj[key], (str, int, float)) and not isinstance(obj[key], bool):
                    return str(obj[key])
    return answer


@register("medcalc")
def medcalc(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """1.0 when the answer passes MedCalc-Bench's rule for the calculator (tolerance window, exact integer, date,
    (weeks, days)), else 0.0: :func:`evaluation.medcalc.grade_medcalc`, which also finds the answer span."""
    check_lengths(completions, labels)
    out = []
    for i, (completion, label) in enumerate(zip(completions, labels)):
        out.append(float(grade_medcalc(as_text(completion), ground_truth=str(label_field(label, "target", i)),
                                       output_type=str(label_field(label, "output_type", i)),
                                       lower_limit=label.get("lower_limit"), upper_limit=label.get("upper_limit"),
                                       calculator_id=label.get("calculator_id"))))
    return out


def parse_trial_label(text: str | None) -> str | None:
    """``eligible`` / ``excluded`` / ``not relevant`` from an answer, or None when it is none or ambiguous.

    >>> [parse_trial_label(t) for t in ["Eligible", " **Not relevant**.", "Label: excluded", "2", "eligible or not"]]
    ['eligible', 'not relevant', 'excluded', 'eligible', None]
    """
    if text is None:
        return None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    word = _PREFIX.sub("", lines[0].strip(_STRIP)).strip(_STRIP).lower()
    word = re.sub(r"\s+", " ", word)
    return _TRIAL_SYNONYMS.get(word)


def normalise_trial_label(value: Any) -> str:
    """A data label (a TREC qrel score 0/1/2 or a label name) -> its name; ValueError otherwise (export time)."""
    if isinstance(value, bool):
        raise ValueError(f"trial label {value!r}: expected 0/1/2 or one of {TRIAL_LABELS}")
    if isinstance(value, (int, float)) and int(value) == value and int(value) in TREC_QREL_LABELS:
        return TREC_QREL_LABELS[int(value)]
    name = parse_trial_label(str(value))
    if name is None:
        raise ValueError(f"trial label {value!r}: expected 0/1/2 (TREC qrels) or one of {TRIAL_LABELS}")
    return name


@register("trial_match")
def trial_match(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """1.0 when the predicted eligibility class equals the gold one."""
    check_lengths(completions, labels)
    out = []
    for i, (completion, label) in enumerate(zip(completions, labels)):
        gold = normalise_trial_label(label_field(label, "target", i))
        out.append(float(parse_trial_label(_final_answer(completion)) == gold))
    return out


@register("ehrshot_yes_no")
def ehrshot_yes_no(completions: Sequence[Any], labels: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[float]:
    """``class_weight`` (1.0 unless the export reweighted classes) when the yes/no answer is right, else 0.0."""
    check_lengths(completions, labels)
    out = []
    for i, (completion, label) in enumerate(zip(completions, labels)):
        gold = str(label_field(label, "target", i)).strip().lower()
        if gold not in ("yes", "no"):
            raise ValueError(f"sample {i}: ehrshot_yes_no label target {gold!r} must be 'yes' or 'no'")
        weight = float(label.get("class_weight", 1.0))
        answer = _final_answer(completion)
        out.append(weight if answer is not None and parse_yes_no(answer) == gold else 0.0)
    return out


def class_weights(targets: Sequence[str]) -> dict[str, float]:
    """EHRMIND's balanced-accuracy weights ``0.5 * N / N_class`` for yes/no targets (export time)."""
    counts = {t: targets.count(t) for t in set(targets)}
    n = len(targets)
    return {t: 0.5 * n / c for t, c in counts.items()}
