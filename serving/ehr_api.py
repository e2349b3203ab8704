"""``/v1/ehr/predict``: request schema, task resolution and prompt assembly (pure, same code as training).

The EHR text is either given as markdown or rendered from structured events with
``data_pipeline.render.render_events``; the chat messages come from ``training.chat_format.build_messages`` and
the answer is split / parsed with ``training.chat_format``. Instructions and task kinds come from the task suite
registry (``data_pipeline.tasks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from serving.openai_schema import SEED_MAX, SEED_MIN, check_unicode

Kind = Literal["decision", "risk"]


class EventIn(BaseModel):
    """Same fields as ``data_pipeline.events.Event``."""

    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1)
    starttime: str | None = None
    endtime: str | None = None
    hadm_id: str | None = None
    items: list[dict[str, str | int | float | None]] = Field(default_factory=list)

    @field_validator("file_name")
    @classmethod
    def _event_table(cls, v: str) -> str:
        from data_pipeline.render import EVENT_DISPLAY, SILENT_FILE_NAMES

        if v not in EVENT_DISPLAY and v not in SILENT_FILE_NAMES:
            raise ValueError(f"{v[:64]!r} is not a MIMIC-IV event table; use one of "
                             f"{sorted(EVENT_DISPLAY) + sorted(SILENT_FILE_NAMES)}")
        return v


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data):
        return check_unicode(data)

    model: str | None = None
    ehr: str | None = Field(None, min_length=1, description="markdown EHR text (as rendered by data_pipeline.render)")
    events: list[EventIn] | None = Field(None, min_length=1, description="structured events, rendered server-side")
    task: str | None = Field(None, description="a task name of the task suite (gives instruction and kind)")
    instruction: str | None = Field(None, min_length=1, description="a free instruction instead of a task")
    kind: Kind | None = Field(None, description="with a free instruction: decision (default) or risk")
    thinking: bool | None = Field(None, description="None = the EHR-R1 default: on for decision, off for risk")
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)

    @model_validator(mode="after")
    def _one_of_each(self) -> "PredictRequest":
        if (self.ehr is None) == (self.events is None):
            raise ValueError("give exactly one of `ehr` (markdown text) or `events` (structured events)")
        if (self.task is None) == (self.instruction is None):
            raise ValueError("give exactly one of `task` (a task-suite name) or `instruction` (free text)")
        if self.task is not None and self.kind is not None:
            raise ValueError("`kind` comes from the task; remove it or use `instruction` instead of `task`")
        return self


@dataclass(frozen=True)
class ResolvedTask:
    name: str | None
    instruction: str
    kind: Kind


class UnknownTaskError(ValueError):
    pass


def resolve_task(req: PredictRequest) -> ResolvedTask:
    """The instruction and kind of a request: from the task registry, or the free instruction."""
    if req.instruction is not None:
        return ResolvedTask(None, req.instruction, req.kind or "decision")
    import data_pipeline.tasks  # noqa: F401 - registers the 46 tasks
    from data_pipeline.tasks.spec import TaskRegistryError, get_task

    try:
        spec = get_task(req.task)
    except TaskRegistryError as exc:
        raise UnknownTaskError(str(exc.args[0] if exc.args else exc)) from None
    return ResolvedTask(spec.name, spec.instruction, "risk" if spec.is_risk else "decision")


def ehr_text(req: PredictRequest) -> str:
    if req.ehr is not None:
        return req.ehr
    from data_pipeline.events import Event
    from data_pipeline.render import render_events

    events = [Event.from_dict({**e.model_dump(),
                               "items": [{k: ("nan" if v is None else str(v)) for k, v in item.items()}
                                         for item in e.items]}) for e in req.events or []]
    return render_events(events)


def effective_thinking(req: PredictRequest, kind: Kind) -> bool:
    """EHR-R1 defaults: decision tasks think, risk tasks answer with one forced token."""
    return req.thinking if req.thinking is not None else kind == "decision"


def predict_messages(req: PredictRequest, task: ResolvedTask) -> tuple[list[dict], bool]:
    """The chat messages (system + user, training's format) and whether thinking is on."""
    from training.chat_format import build_messages

    thinking = effective_thinking(req, task.kind)
    return build_messages(ehr_text(req), task.instruction, thinking=thinking), thinking


def answer_prefix(completion: str) -> str:
    """The assistant text up to the answer (the closed think block), to score the yes/no token after it.

    >>> answer_prefix("<think>\\nbecause\\n</think>\\n\\nyes")
    '<think>\\nbecause\\n</think>\\n\\n'
    >>> answer_prefix("<think>\\ncut off")   # generation ended while thinking: close the block
    '<think>\\ncut off\\n</think>\\n\\n'
    """
    from training.chat_format import format_assistant, split_reasoning

    reasoning, _ = split_reasoning(completion)
    return format_assistant("", reasoning)


def parse_prediction(completion: str) -> tuple[str | None, str, list[str]]:
    """(reasoning, answer, items) of a generated assistant turn; items by the shared parser
    (``evaluation.answers.split_items``, the one evaluation and the RL rewards use), in the model's spelling."""
    from evaluation.answers import split_items
    from training.chat_format import split_reasoning

    reasoning, answer = split_reasoning(completion)
    return reasoning, answer, split_items(answer, lowercase=False)
