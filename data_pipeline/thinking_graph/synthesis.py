"""Reasoning chains from an OpenAI-compatible endpoint: bounded concurrency, retries with backoff, resumable.

* Where: the project's own Ray Serve endpoint (``python -m ray_jobs.serve``) or a local vLLM server by default.
  :func:`check_destination` refuses any host that is neither loopback nor listed in ``trusted_hosts`` unless
  ``allow_ehr_to_third_party_api`` is set (checked at config load and again before the first request), and the
  HTTP client (:mod:`egress`) checks every request's host, follows no redirect and ignores proxy variables.
* Resumable: every finished sample (all its candidates) is appended to ``responses.jsonl`` and flushed; a re-run
  reads it and requests only the others. A sample whose requests keep failing is not written, so the next run
  retries it; one failing sample never stops the run.
* Counted: requests, retries, failures, prompt/completion tokens and their cost, logged (never the EHR text).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from pathlib import Path
from urllib.parse import urlparse

from data_pipeline.thinking_graph.egress import EgressRefused, guarded_async_client
from data_pipeline.thinking_graph.reasoning import rejection_reason

log = logging.getLogger(__name__)
SYSTEM = "You are a helpful assistant."


class ThirdPartyRefused(EgressRefused):
    """The configured base URL itself is not an allowed destination."""


def check_destination(spec) -> None:
    from data_pipeline.thinking_graph.config import is_local_or_trusted

    host = urlparse(spec.base_url).hostname or ""
    if not is_local_or_trusted(host, list(spec.trusted_hosts)) and not spec.allow_ehr_to_third_party_api:
        raise ThirdPartyRefused(
            f"refusing to send EHR text to {host!r}: not this machine and not in synthesis.trusted_hosts; set "
            "synthesis.allow_ehr_to_third_party_api: true only if your data use agreement allows it")


def load_finished(path: Path) -> dict[int, dict]:
    done: dict[int, dict] = {}
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption: that sample is requested again
                done[int(row["idx"])] = row
    return done


class Counters:
    def __init__(self) -> None:
        self.requests = self.retries = self.failures = self.prompt_tokens = self.completion_tokens = 0

    def cost(self, spec) -> float:
        return (self.prompt_tokens * spec.price_per_million_prompt_tokens
                + self.completion_tokens * spec.price_per_million_completion_tokens) / 1e6

    def as_dict(self, spec) -> dict:
        return {"requests": self.requests, "retries": self.retries, "failed_requests": self.failures,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": round(self.cost(spec), 6)}


def _retriable(exc: Exception) -> bool:
    """Timeouts, connection errors, 408/409/429 and 5xx are retried; other 4xx (a prompt too long, a bad key,
    an unknown model) would fail again."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return not isinstance(exc, EgressRefused) and not isinstance(exc.__cause__, EgressRefused)


async def _complete(client, spec, model: str, prompt: str, counters: Counters) -> str | None:
    """One candidate, with retries and exponential backoff (plus jitter); None after the last failure."""
    for attempt in range(spec.max_retries + 1):
        counters.requests += 1
        try:
            resp = await client.chat.completions.create(
                model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
                temperature=spec.temperature, max_tokens=spec.max_tokens)
            if resp.usage is not None:
                counters.prompt_tokens += resp.usage.prompt_tokens or 0
                counters.completion_tokens += resp.usage.completion_tokens or 0
            return resp.choices[0].message.content or ""
        except Exception as exc:  # noqa: BLE001 - HTTP errors, timeouts, bad bodies
            if attempt == spec.max_retries or not _retriable(exc):
                counters.failures += 1
                log.warning("request failed after %d attempts: %s", attempt + 1, type(exc).__name__)
                return None
            counters.retries += 1
            delay = spec.backoff_seconds * (2 ** attempt) * (0.5 + random.random())
            log.info("request failed (%s), retry %d in %.1fs", type(exc).__name__, attempt + 1, delay)
            await asyncio.sleep(delay)
    return None


async def _run(jobs, spec, responses: Path, counters: Counters) -> None:
    import openai

    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    client = openai.AsyncOpenAI(base_url=spec.base_url, api_key=key or "none", max_retries=0,
                                timeout=spec.timeout_seconds, http_client=guarded_async_client(spec))
    model = spec.model
    if model is None:
        models = await client.models.list()
        model = models.data[0].id
    sem = asyncio.Semaphore(spec.max_concurrency)
    lock = asyncio.Lock()
    t0, done = time.time(), 0

    async def one(idx: int, prompt: str, labels: list[str]) -> None:
        nonlocal done
        async with sem:
            texts = []
            for _ in range(spec.candidates_per_sample):
                text = await _complete(client, spec, model, prompt, counters)
                if text is None:
                    return  # not recorded: requested again by the next run
                texts.append(text)
        async with lock:
            with responses.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"idx": idx, "model": model, "candidates": texts}, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            done += 1
            if done % 50 == 0 or done == len(jobs):
                log.info("synthesis: %d/%d samples, %s, %.1f samples/s", done, len(jobs),
                         counters.as_dict(spec), done / max(time.time() - t0, 1e-9))

    try:
        await asyncio.gather(*(one(*job) for job in jobs))
    finally:
        await client.close()


def synthesise(jobs: list[tuple[int, str, list[str]]], spec, responses: Path) -> tuple[dict, dict]:
    """Request the samples not yet in ``responses``; returns ({idx: (chosen text, model)}, summary). The summary's
    ``finished`` is the set of samples with all their candidates (the others are requested by the next run)."""
    check_destination(spec)
    responses.parent.mkdir(parents=True, exist_ok=True)
    finished = load_finished(responses)
    todo = [j for j in jobs if j[0] not in finished]
    log.info("synthesis: %d samples, %d already finished, %d to request from %s", len(jobs),
             len(jobs) - len(todo), len(todo), spec.base_url)
    counters = Counters()
    if todo:
        asyncio.run(_run(todo, spec, responses, counters))
    finished = load_finished(responses)
    chosen: dict[int, tuple[str, str]] = {}
    reasons: dict[str, int] = {}
    labels_of = {idx: labels for idx, _, labels in jobs}
    for idx, row in finished.items():
        if idx not in labels_of:
            continue
        for text in row["candidates"]:
            why = rejection_reason(text, labels_of[idx], spec.min_label_recall)
            if why is None:
                chosen[idx] = (text, row["model"])
                break
            key = why.split(" ")[0] if not why.startswith("missing") else why
            reasons[key] = reasons.get(key, 0) + 1
    unfinished = sum(1 for j in jobs if j[0] not in finished)
    summary = {"mode": "llm", **counters.as_dict(spec), "samples_requested": len(todo),
               "samples_resumed": len(jobs) - len(todo), "samples_unfinished": unfinished,
               "samples_accepted": len(chosen), "rejections": reasons}
    log.info("synthesis done: %s", summary)
    return chosen, {**summary, "finished": set(finished)}
