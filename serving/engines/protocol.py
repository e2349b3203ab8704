"""The small interface every inference engine implements (transformers in-replica, vLLM via Ray Serve LLM).

Engines take *token ids*: the ingress owns the tokenizer and the chat template, so prompt rendering, token limits
and p(yes) scoring are the same code whatever runs the model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1  # -1 = off
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class Generation:
    text: str
    completion_tokens: int
    finish_reason: FinishReason


@dataclass
class Delta:
    """One streamed piece: new text, and on the last piece the finish reason and token count."""

    text: str
    finish_reason: FinishReason | None = None
    completion_tokens: int = 0
    extra: dict = field(default_factory=dict)


class EngineError(RuntimeError):
    """An engine refused or failed a request; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 500, err_type: str = "engine_error"):
        super().__init__(message)
        self.status = status
        self.err_type = err_type


@runtime_checkable
class Engine(Protocol):
    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> Generation: ...

    def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]: ...

    async def next_token_logprobs(self, prompt_ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        """log p(next token = c | prompt) for each candidate id, from the raw (unprocessed) distribution."""
        ...

    async def token_logprobs(self, prompt_ids: Sequence[int], completion_ids: Sequence[int],
                             top_k: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """Per completion token: its log-prob given everything before it, and the ``top_k`` (id, log-prob) pairs
        of that position (the OpenAI ``logprobs`` / ``top_logprobs``), from the raw distribution."""
        ...

    async def check_health(self) -> None: ...


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; returns (text, stopped).

    >>> apply_stop("ab<END>cd", ["<END>"])
    ('ab', True)
    """
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
