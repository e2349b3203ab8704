"""The request logic behind every route, independent of HTTP and of the engine.

``InferenceService`` turns validated requests into token-id prompts (``PromptCodec``), calls the ``Engine`` and
shapes OpenAI / EHR responses. Failures are raised as :class:`ApiError` with the HTTP status to answer with.
EHR text and prompts are logged only at DEBUG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from serving import ehr_api, openai_schema as oai
from serving.config import LimitsConfig
from serving.engines.protocol import Engine, EngineError, Sampling
from serving.metrics import Metrics
from serving.prompts import PromptCodec, PromptTooLong
from serving.scoring import binary_answer, p_yes_from_logprobs

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, err_type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.err_type, self.param, self.code = status, message, err_type, param, code


class InferenceService:
    def __init__(self, engine: Engine, codec: PromptCodec, model_id: str, limits: LimitsConfig,
                 metrics: Metrics | None = None):
        self.engine = engine
        self.codec = codec
        self.model_id = model_id
        self.limits = limits
        self.metrics = metrics or Metrics(enabled=False)
        self.created = int(time.time())

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check_model(self, model: str | None) -> None:
        if model not in (None, "", self.model_id):
            raise ApiError(404, f"model {model!r} is not served here; use {self.model_id!r} (see /v1/models)",
                           param="model", code="model_not_found")

    def _sampling(self, req: oai._Req) -> Sampling:
        max_tokens = req.requested_max_tokens or self.limits.default_max_tokens
        if max_tokens > self.limits.max_new_tokens:
            raise ApiError(422, f"max_tokens={max_tokens} exceeds the server limit limits.max_new_tokens="
                           f"{self.limits.max_new_tokens}; ask for fewer tokens", param="max_tokens")
        return Sampling(max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
                        seed=req.seed, stop=req.stop_list)

    def _encode(self, text: str) -> list[int]:
        try:
            ids = self.codec.encode(text)
        except PromptTooLong as exc:
            raise ApiError(413, str(exc), param="messages", code="context_length_exceeded") from None
        if not ids:  # nothing to continue from: the engines fail on an empty input
            raise ApiError(422, "the prompt is empty (it encodes to no tokens); send some text", param="prompt",
                           code="empty_prompt")
        return ids

    async def _generate(self, ids: list[int], sampling: Sampling):
        try:
            return await self.engine.generate(ids, sampling)
        except EngineError as exc:
            raise ApiError(exc.status, str(exc), err_type=exc.err_type) from None

    def models(self) -> dict[str, Any]:
        return oai.models_response(self.model_id, self.created)

    # -- OpenAI routes ----------------------------------------------------------------------------------------
    def chat_prompt(self, req: oai.ChatCompletionRequest) -> list[int]:
        messages = [m.to_template() for m in req.messages]
        try:
            text = self.codec.render_chat(messages, **(req.chat_template_kwargs or {}))
        except Exception as exc:  # noqa: BLE001 - a template error is the caller's input
            raise ApiError(422, f"the chat template rejected the messages: {exc}", param="messages") from None
        log.debug("chat prompt: %r", text)
        return self._encode(text)

    async def chat(self, req: oai.ChatCompletionRequest) -> dict[str, Any]:
        self._check_model(req.model)
        ids, sampling = self.chat_prompt(req), self._sampling(req)
        gen = await self._generate(ids, sampling)
        self.metrics.tokens(len(ids), gen.completion_tokens)
        logprobs = await self._logprobs(ids, gen.text, req.top_logprobs or 0) if req.logprobs else None
        return oai.chat_response(oai.new_id("chatcmpl"), self.model_id, gen.text, gen.finish_reason, len(ids),
                                 gen.completion_tokens, logprobs=logprobs)

    async def _logprobs(self, prompt_ids: list[int], text: str, top_k: int) -> list[dict[str, Any]]:
        """OpenAI ``logprobs.content`` of a completion: its text re-encoded (the tokens the engine emitted, as
        the ingress's tokenizer reads them) and scored in one pass, so every engine answers the same way."""
        completion = self.codec.encode(text, check_limit=False)
        try:
            scored = await self.engine.token_logprobs(prompt_ids, completion, top_k)
        except EngineError as exc:
            raise ApiError(exc.status, str(exc), err_type=exc.err_type) from None
        piece = self.codec.tokenizer.decode
        return [oai.logprob_entry(piece([tok]), lp, [(piece([i]), v) for i, v in top])
                for tok, (lp, top) in zip(completion, scored)]

    async def chat_stream(self, req: oai.ChatCompletionRequest) -> AsyncIterator[str]:
        self._check_model(req.model)
        ids, sampling = self.chat_prompt(req), self._sampling(req)
        return self._sse(ids, sampling, chat=True, include_usage=req.include_usage)

    async def completions(self, req: oai.CompletionRequest) -> dict[str, Any]:
        self._check_model(req.model)
        ids, sampling = self._encode(req.prompt), self._sampling(req)
        gen = await self._generate(ids, sampling)
        self.metrics.tokens(len(ids), gen.completion_tokens)
        text = (req.prompt + gen.text) if req.echo else gen.text
        return oai.completion_response(oai.new_id("cmpl"), self.model_id, text, gen.finish_reason, len(ids),
                                       gen.completion_tokens)

    async def completions_stream(self, req: oai.CompletionRequest) -> AsyncIterator[str]:
        self._check_model(req.model)
        ids, sampling = self._encode(req.prompt), self._sampling(req)
        return self._sse(ids, sampling, chat=False, include_usage=req.include_usage,
                         prefix=req.prompt if req.echo else "")

    async def _sse(self, ids: list[int], sampling: Sampling, chat: bool, include_usage: bool,
                   prefix: str = "") -> AsyncIterator[str]:
        rid, created = oai.new_id("chatcmpl" if chat else "cmpl"), int(time.time())

        def chunk(text: str | None, finish: str | None = None, usage_block=None, with_choice=True) -> str:
            if chat:
                delta = {} if text is None else {"content": text}
                return oai.sse(oai.chat_chunk(rid, self.model_id, created, delta, finish, usage_block, with_choice))
            return oai.sse(oai.completion_chunk(rid, self.model_id, created, text or "", finish, usage_block,
                                                with_choice))

        if chat:
            yield oai.sse(oai.chat_chunk(rid, self.model_id, created, {"role": "assistant", "content": ""}))
        if prefix:
            yield chunk(prefix)
        n_tokens = 0
        try:
            async for delta in self.engine.stream(ids, sampling):
                if delta.text:
                    yield chunk(delta.text)
                if delta.finish_reason is not None:
                    n_tokens = delta.completion_tokens
                    yield chunk(None, delta.finish_reason)
        except EngineError as exc:  # headers are sent: report in-band, as OpenAI does
            log.warning("stream failed: %s", exc)
            yield oai.sse(oai.error_body(str(exc), exc.err_type, code=exc.status))
        self.metrics.tokens(len(ids), n_tokens)
        if include_usage:
            yield chunk(None, usage_block=oai.usage(len(ids), n_tokens), with_choice=False)
        yield oai.sse("[DONE]")

    # -- EHR prediction ---------------------------------------------------------------------------------------
    def tasks(self) -> dict[str, Any]:
        """The task suite as the predict route sees it: name, kind (decision / risk) and instruction."""
        from data_pipeline.tasks import all_tasks

        return {"object": "list", "data": [{"name": t.name, "kind": "risk" if t.is_risk else "decision",
                                            "metric": t.metric, "instruction": t.instruction}
                                           for t in all_tasks()]}

    async def predict(self, req: ehr_api.PredictRequest) -> dict[str, Any]:
        self._check_model(req.model)
        try:
            task = ehr_api.resolve_task(req)
        except ehr_api.UnknownTaskError as exc:
            raise ApiError(422, str(exc), param="task", code="unknown_task") from None
        try:
            messages, thinking = ehr_api.predict_messages(req, task)
        except ValueError as exc:  # events the renderer refuses are the caller's input, not a server fault
            raise ApiError(422, f"cannot render the events: {exc}", param="events", code="invalid_events") from None
        prompt = self.codec.render_chat(messages, enable_thinking=thinking)
        log.debug("predict prompt: %r", prompt)
        ids = self._encode(prompt)
        max_tokens = req.max_tokens or self.limits.predict_max_new_tokens
        if max_tokens > self.limits.max_new_tokens:
            raise ApiError(422, f"max_tokens={max_tokens} exceeds limits.max_new_tokens="
                           f"{self.limits.max_new_tokens}", param="max_tokens")
        completion, n_completion = "", 0
        if task.kind == "decision" or thinking:
            gen = await self._generate(ids, Sampling(max_tokens=max_tokens, temperature=req.temperature,
                                                     seed=req.seed))
            completion, n_completion = gen.text, gen.completion_tokens
        result: dict[str, Any] = {"model": self.model_id, "task": task.name, "kind": task.kind,
                                  "thinking": thinking, "p_yes": None}
        if task.kind == "risk":
            score_ids = ids
            if thinking:  # score the answer token after the generated think block
                score_ids = ids + self.codec.encode(ehr_api.answer_prefix(completion), check_limit=False)
            try:
                lp_yes, lp_no = await self.engine.next_token_logprobs(score_ids,
                                                                      [self.codec.yes_id, self.codec.no_id])
            except EngineError as exc:
                raise ApiError(exc.status, str(exc), err_type=exc.err_type) from None
            p_yes = p_yes_from_logprobs(lp_yes, lp_no)
            reasoning, _, _ = ehr_api.parse_prediction(completion) if thinking else (None, "", [])
            answer = binary_answer(p_yes)
            result |= {"p_yes": p_yes, "answer": answer, "items": [answer], "reasoning": reasoning}
        else:
            reasoning, answer, items = ehr_api.parse_prediction(completion)
            result |= {"answer": answer, "items": items, "reasoning": reasoning}
        self.metrics.tokens(len(ids), n_completion)
        result["usage"] = oai.usage(len(ids), n_completion)
        return result
