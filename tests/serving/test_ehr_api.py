"""/v1/ehr/predict request validation and prompt assembly (same code as training: chat_format + render)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from data_pipeline.render import render_events
from data_pipeline.events import Event
from serving.ehr_api import (PredictRequest, answer_prefix, effective_thinking, ehr_text, parse_prediction,
                             predict_messages, resolve_task, UnknownTaskError)
from training.chat_format import SYSTEM_PROMPT, build_messages

EVENT = {"file_name": "labevents", "starttime": "2180-06-27 05:10:00", "endtime": "2180-06-27 05:10:00",
         "hadm_id": "1", "items": [{"item_name": "Creatinine", "valuenum": "2.1", "valueuom": "mg/dL"}]}


@pytest.mark.parametrize("body, message", [
    ({"instruction": "x"}, "exactly one of `ehr`"),
    ({"ehr": "e", "events": [EVENT], "instruction": "x"}, "exactly one of `ehr`"),
    ({"ehr": "e"}, "exactly one of `task`"),
    ({"ehr": "e", "task": "Readmission_30day", "instruction": "x"}, "exactly one of `task`"),
    ({"ehr": "e", "task": "Readmission_30day", "kind": "risk"}, "`kind` comes from the task"),
    ({"ehr": "e", "instruction": "x", "kind": "maybe"}, "kind"),
    ({"ehr": "e", "instruction": "x", "temperatur": 0.1}, "temperatur"),
    ({"events": [], "instruction": "x"}, "events"),
    ({"events": [{"starttime": "t"}], "instruction": "x"}, "file_name"),
    ({"ehr": "", "instruction": "x"}, "ehr"),
])
def test_predict_request_validation(body, message):
    with pytest.raises(ValidationError, match=message):
        PredictRequest.model_validate(body)


@pytest.mark.parametrize("task, kind", [("Readmission_30day", "risk"), ("ICU_Mortality_7day", "risk"),
                                        ("diagnoses_icd", "decision"), ("labevents", "decision"),
                                        ("ED_ICU_Tranfer_12hour", "risk")])  # the reference's misspelt alias
def test_resolve_task_from_registry(task, kind):
    from data_pipeline.tasks import get_task

    resolved = resolve_task(PredictRequest(ehr="e", task=task))
    assert resolved.kind == kind
    assert resolved.instruction == get_task(task).instruction and resolved.name == get_task(task).name


def test_unknown_task_and_free_instruction():
    with pytest.raises(UnknownTaskError, match="unknown task 'nope'"):
        resolve_task(PredictRequest(ehr="e", task="nope"))
    free = resolve_task(PredictRequest(ehr="e", instruction="Will it rain?", kind="risk"))
    assert (free.name, free.instruction, free.kind) == (None, "Will it rain?", "risk")
    assert resolve_task(PredictRequest(ehr="e", instruction="List drugs.")).kind == "decision"


@pytest.mark.parametrize("thinking, kind, expected", [
    (None, "decision", True), (None, "risk", False), (True, "risk", True), (False, "decision", False)])
def test_effective_thinking(thinking, kind, expected):
    assert effective_thinking(PredictRequest(ehr="e", instruction="i", thinking=thinking), kind) is expected


def test_events_render_like_training():
    req = PredictRequest(events=[EVENT, {**EVENT, "items": [{"item_name": "Na", "valuenum": 140, "flag": None}]}],
                         instruction="i")
    expected = render_events([Event.from_dict(EVENT),
                              Event.from_dict({**EVENT, "items": [{"item_name": "Na", "valuenum": "140",
                                                                   "flag": "nan"}]})])
    assert ehr_text(req) == expected
    assert "## Labotary Test Events [2180-06-27 05:10:00]" in expected


@pytest.mark.parametrize("thinking", [True, False, None])
def test_predict_messages_are_training_messages(thinking):
    req = PredictRequest(ehr="## EHR", task="Readmission_30day", thinking=thinking)
    task = resolve_task(req)
    messages, on = predict_messages(req, task)
    assert on is effective_thinking(req, "risk")
    assert messages == build_messages("## EHR", task.instruction, thinking=on)
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}


@pytest.mark.parametrize("completion, prefix", [
    ("<think>\nbecause\n</think>\n\nyes", "<think>\nbecause\n</think>\n\n"),
    ("<think>\ncut off", "<think>\ncut off\n</think>\n\n"),
    ("no tags", "<think>\n\n</think>\n\n"),
    ("<think>\n\n</think>\n\nno", "<think>\n\n</think>\n\n"),
])
def test_answer_prefix(completion, prefix):
    assert answer_prefix(completion) == prefix


@pytest.mark.parametrize("completion, reasoning, answer, items", [
    ("<think>\nr\n</think>\n\nSepsis\nPneumonia\nSepsis", "r", "Sepsis\nPneumonia\nSepsis", ["Sepsis", "Pneumonia"]),
    ("A\\nB", None, "A\\nB", ["A", "B"]),
    ("<think>\nunfinished", "unfinished", "", []),
])
def test_parse_prediction(completion, reasoning, answer, items):
    assert parse_prediction(completion) == (reasoning, answer, items)
