"""The embedded engine: a Hugging Face causal LM running inside the Serve replica (no vLLM, CPU friendly).

HF ``generate`` has no continuous batching: each request runs in its own thread, bounded by the deployment's
``max_ongoing_requests``. Fine for demos, CI and low QPS; use the vLLM engine for throughput.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence

from serving.engines.protocol import Delta, EngineError, Generation, Sampling, apply_stop

log = logging.getLogger(__name__)


class TransformersEngine:
    def __init__(self, model_path: str, dtype: str = "float32", torch_threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self._seed_lock = threading.Lock()
        log.info("transformers engine ready: %s (%s, eos ids %s)", model_path, dtype, self.eos_ids)

    # -- generation -------------------------------------------------------------------------------------------
    def _generate_kwargs(self, prompt_ids: Sequence[int], sampling: Sampling) -> dict:
        torch = self._torch
        kwargs = dict(input_ids=torch.tensor([list(prompt_ids)]), max_new_tokens=sampling.max_tokens,
                      eos_token_id=self.eos_ids, pad_token_id=self.pad_id,
                      attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long))
        if sampling.temperature > 0:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                          top_k=sampling.top_k if sampling.top_k > 0 else None)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def _run_generate(self, kwargs: dict, seed: int | None):
        torch = self._torch
        with torch.inference_mode():
            if seed is not None:
                with self._seed_lock:  # torch's global RNG: serialise seeded requests
                    torch.manual_seed(seed)
                    return self.model.generate(**kwargs)
            return self.model.generate(**kwargs)

    def _finish(self, new_ids: list[int], text: str, sampling: Sampling) -> tuple[str, str]:
        text, stopped = apply_stop(text, sampling.stop)
        hit_eos = bool(new_ids) and new_ids[-1] in self.eos_ids
        reason = "stop" if stopped or hit_eos or len(new_ids) < sampling.max_tokens else "length"
        return text, reason

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> Generation:
        kwargs = self._generate_kwargs(prompt_ids, sampling)
        try:
            out = await asyncio.to_thread(self._run_generate, kwargs, sampling.seed)
        except Exception as exc:  # noqa: BLE001 - surfaced as an OpenAI error
            raise EngineError(f"generation failed: {type(exc).__name__}: {exc}") from exc
        new_ids = out[0, len(prompt_ids):].tolist()
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        text, reason = self._finish(new_ids, text, sampling)
        return Generation(text=text, completion_tokens=len(new_ids), finish_reason=reason)

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = self._generate_kwargs(prompt_ids, sampling) | {"streamer": streamer}
        result: dict = {}

        def run() -> None:
            try:
                result["out"] = self._run_generate(kwargs, sampling.seed)
            except Exception as exc:  # noqa: BLE001
                result["error"] = exc
                streamer.end()

        thread = threading.Thread(target=run, daemon=True, name="hf-generate-stream")
        thread.start()
        emitted, buffer, hold = "", "", max((len(s) for s in sampling.stop), default=1) - 1
        stopped = False
        iterator = iter(streamer)
        while True:
            piece = await asyncio.to_thread(next, iterator, None)
            if piece is None:
                break
            buffer += piece
            cut, stopped = apply_stop(buffer, sampling.stop)
            safe = cut if stopped else cut[: len(cut) - hold] if hold else cut
            if len(safe) > len(emitted):
                yield Delta(text=safe[len(emitted):])
                emitted = safe
            if stopped:
                break
        await asyncio.to_thread(thread.join)
        if "error" in result:
            raise EngineError(f"generation failed: {type(result['error']).__name__}: {result['error']}")
        new_ids = result["out"][0, len(prompt_ids):].tolist()
        final, reason = self._finish(new_ids, buffer, sampling)
        yield Delta(text=final[len(emitted):], finish_reason=reason, completion_tokens=len(new_ids))

    # -- scoring ----------------------------------------------------------------------------------------------
    def _logprobs(self, prompt_ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        torch = self._torch
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([list(prompt_ids)])).logits[0, -1].float()
            logp = torch.log_softmax(logits, dim=-1)
        return [float(logp[c]) for c in candidates]

    async def next_token_logprobs(self, prompt_ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        try:
            return await asyncio.to_thread(self._logprobs, prompt_ids, candidates)
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"scoring failed: {type(exc).__name__}: {exc}") from exc

    def _token_logprobs(self, prompt_ids: Sequence[int], completion_ids: Sequence[int],
                        top_k: int) -> list[tuple[float, list[tuple[int, float]]]]:
        torch = self._torch
        ids = list(prompt_ids) + list(completion_ids)
        with torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0].float()
            logp = torch.log_softmax(logits[len(prompt_ids) - 1:len(ids) - 1], dim=-1)
        out = []
        for row, chosen in zip(logp, completion_ids):
            top = torch.topk(row, top_k) if top_k else None
            pairs = list(zip(top.indices.tolist(), top.values.tolist())) if top is not None else []
            out.append((float(row[chosen]), [(int(i), float(v)) for i, v in pairs]))
        return out

    async def token_logprobs(self, prompt_ids: Sequence[int], completion_ids: Sequence[int],
                             top_k: int) -> list[tuple[float, list[tuple[int, float]]]]:
        if not completion_ids:
            return []
        try:
            return await asyncio.to_thread(self._token_logprobs, prompt_ids, completion_ids, top_k)
        except Exception as exc:  # noqa: BLE001
            raise EngineError(f"scoring failed: {type(exc).__name__}: {exc}") from exc

    async def check_health(self) -> None:
        return None
