"""OpenAI-compatible request schemas and response / SSE chunk builders (pure; no FastAPI, no engine).

Requests ignore OpenAI parameters we do not implement (the official client sends only what the caller set), except
those whose silent omission would change the result: ``n > 1``, ``logprobs``/``tools`` are rejected with 422.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


#: Seeds must fit a signed 64-bit integer (torch's and vLLM's generators); a larger one failed in the engine.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


def check_unicode(data: Any, where: str = "body") -> Any:
    """Raise ``ValueError`` naming the field if any string in ``data`` is not valid Unicode.

    JSON can escape a lone UTF-16 surrogate (``"\\ud800"``); Python decodes it into a ``str`` that no tokenizer
    or UTF-8 writer accepts, so it must be refused as input (422), not fail inside the engine (500).
    """
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{where}: not valid Unicode (lone surrogate at character {exc.start}); send UTF-8 "
                             "text") from None
    elif isinstance(data, dict):
        for k, v in data.items():
            check_unicode(k, where)
            check_unicode(v, f"{where}.{k}" if isinstance(k, str) and k.isprintable() else where)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            check_unicode(v, f"{where}.{i}")
    return data


class _Req(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        return check_unicode(data)

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = Field(1, ge=1, le=1, description="only n=1 is supported")
    logprobs: Any = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: Any = None

    #: chat completions answer ``logprobs`` (non-streaming); the legacy completions route does not
    _supports_logprobs = False

    @model_validator(mode="after")
    def _unsupported(self) -> "_Req":
        wants = self.logprobs not in (None, False, 0)
        if wants and not self._supports_logprobs:
            raise ValueError("logprobs is not supported on this route; use /v1/chat/completions (or "
                             "/v1/ehr/predict for p(yes))")
        if wants and not isinstance(self.logprobs, bool):
            raise ValueError("logprobs must be true or false")
        if wants and self.stream:
            raise ValueError("logprobs with stream=true is not supported; ask without streaming")
        if self.top_logprobs and not wants:
            raise ValueError("top_logprobs needs logprobs=true")
        if self.tools:
            raise ValueError("tools are not supported by this server; remove them")
        return self

    @property
    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None
    reasoning_content: str | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, v):
        if isinstance(v, list):
            bad = [p.get("type") for p in v if p.get("type") != "text"]
            if bad:
                raise ValueError(f"only text content parts are supported, got {bad}")
            return "".join(str(p.get("text", "")) for p in v)
        return v

    def to_template(self) -> dict[str, Any]:
        role = "system" if self.role == "developer" else self.role
        msg: dict[str, Any] = {"role": role, "content": self.content or ""}
        if self.reasoning_content is not None:
            msg["reasoning_content"] = self.reasoning_content
        return msg


class ChatCompletionRequest(_Req):
    _supports_logprobs = True
    messages: list[ChatMessage] = Field(min_length=1)
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="vLLM extension, e.g. {'enable_thinking': false}; sent via extra_body")


class CompletionRequest(_Req):
    prompt: str | list[str] = Field(description="one prompt (a list must hold exactly one string)")
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _single_prompt(cls, v):
        if isinstance(v, list):
            if len(v) != 1:
                raise ValueError("batched prompts are not supported; send one prompt per request")
            return v[0]
        return v


# -- responses ---------------------------------------------------------------------------------------------------

def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_response(rid: str, model: str, content: str, finish_reason: str, prompt_tokens: int,
                  completion_tokens: int, reasoning: str | None = None,
                  logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    choice_logprobs = None if logprobs is None else {"content": logprobs}
    return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason,
                         "logprobs": choice_logprobs}],
            "usage": usage(prompt_tokens, completion_tokens)}


def logprob_entry(token: str, logprob: float, top: list[tuple[str, float]]) -> dict[str, Any]:
    """One ``choices[0].logprobs.content`` item in the OpenAI shape."""
    def one(t: str, lp: float) -> dict[str, Any]:
        return {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))}

    return {**one(token, logprob), "top_logprobs": [one(t, lp) for t, lp in top]}


def completion_response(rid: str, model: str, text: str, finish_reason: str, prompt_tokens: int,
                        completion_tokens: int) -> dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage(prompt_tokens, completion_tokens)}


def chat_chunk(rid: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
               usage_block: dict | None = None, with_choice: bool = True) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                          "logprobs": None}] if with_choice else []}
    if usage_block is not None:
        chunk["usage"] = usage_block
    return chunk


def completion_chunk(rid: str, model: str, created: int, text: str, finish_reason: str | None = None,
                     usage_block: dict | None = None, with_choice: bool = True) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": rid, "object": "text_completion", "created": created, "model": model,
                             "choices": [{"index": 0, "text": text, "finish_reason": finish_reason,
                                          "logprobs": None}] if with_choice else []}
    if usage_block is not None:
        chunk["usage"] = usage_block
    return chunk


def sse(obj: dict[str, Any] | str) -> str:
    """One server-sent event in the OpenAI framing (``data: {...}\\n\\n``; ``[DONE]`` ends the stream)."""
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)}\n\n"


def error_body(message: str, err_type: str = "invalid_request_error", param: str | None = None,
               code: str | int | None = None) -> dict[str, Any]:
    """The OpenAI error JSON shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def models_response(model_id: str, created: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": model_id, "object": "model", "created": created,
                                        "owned_by": "ehr-r1-ray"}]}
