"""Reasoning chains from an OpenAI-compatible endpoint: bounded concurrency, retries with backoff, resumable.

* Where: the project's own Ray Serve endpoint (``python -m ray_jobs.serve``) or a local vLLM server by default.
  :func:`check_destination` refuses any host that is neither loopback nor listed in ``trusted_hosts`` unless
  ``allow_ehr_to_third_party_api`` is set (checked at config load and again before the first request), and the
  HTTP client (:mod:`egress`) checks every request's host, follows no redirect and ignores proxy variables.
* Streamed: samples are pulled from an iterator (the prepared records, read from parquet batch by batch) and at
  most ``max_concurrency`` are in flight; no prompt list is held in memory.
* Resumable: every finished sample (all its candidates) is appended to ``responses.jsonl`` and flushed; a re-run
  reads it and requests only the others. A permanent failure (a 4xx other than 408/409/429: a prompt too long, an
  unknown model) is recorded with its reason and never requested again; a sample whose requests keep failing
  for other reasons is retried by the next run, up to ``give_up_after_runs`` runs, then recorded as failed. One
  failing sample never stops the run, and the summary lists what failed and why.
* Counted: requests, retries, failures, prompt/completion tokens and their cost, logged (never the EHR text).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import time
from pathlib import Path
from urllib.parse import urlparse

from data_pipeline.thinking_graph.egress import EgressRefused, guarded_async_client, host_allowed, refusal
from data_pipeline.thinking_graph.reasoning import rejection_reason

log = logging.getLogger(__name__)
SYSTEM = "You are a helpful assistant."


class ThirdPartyRefused(EgressRefused):
    """The configured base URL itself is not an allowed destination."""


def check_destination(spec) -> None:
    host = urlparse(spec.base_url).hostname or ""
    if not host_allowed(host, list(spec.trusted_hosts)) and not spec.allow_ehr_to_third_party_api:
        raise ThirdPartyRefused(refusal(host))


def _rows(path: Path):
    """The records of ``responses.jsonl``, in order; a line cut by an interruption is skipped (that sample is
    requested again)."""
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def load_finished(path: Path, give_up_after_runs: int | None = None) -> dict[int, dict]:
    """idx -> its last record in ``responses.jsonl``: answered (``candidates``), failed permanently (``failed``),
    or failed for now (``transient_failures``: runs that failed it; it counts as finished once it reaches
    ``give_up_after_runs``)."""
    done = {int(row["idx"]): row for row in _rows(path)}
    return {i: r for i, r in done.items() if "transient_failures" not in r or (
        give_up_after_runs is not None and r["transient_failures"] >= give_up_after_runs)}


def _transient_counts(path: Path) -> dict[int, int]:
    return {int(row["idx"]): int(row["transient_failures"]) for row in _rows(path) if "transient_failures" in row}


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


class RequestFailed(Exception):
    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


def _reason(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


async def _complete(client, spec, model: str, prompt: str, counters: Counters) -> str:
    """One candidate, with retries and exponential backoff (plus jitter); raises :class:`RequestFailed` after the
    last failure (``permanent`` when retrying cannot help)."""
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
                log.warning("request failed after %d attempts: %s", attempt + 1, _reason(exc))
                raise RequestFailed(_reason(exc), permanent=not _retriable(exc)) from exc
            counters.retries += 1
            delay = spec.backoff_seconds * (2 ** attempt) * (0.5 + random.random())
            log.info("request failed (%s), retry %d in %.1fs", type(exc).__name__, attempt + 1, delay)
            await asyncio.sleep(delay)
    raise RequestFailed("no attempt", permanent=False)  # max_retries >= 0: not reached


async def _run(jobs, spec, responses: Path, counters: Counters, earlier_failures: dict[int, int]) -> None:
    """Request every job of the iterator ``jobs``, at most ``max_concurrency`` samples in flight."""
    import openai

    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    client = openai.AsyncOpenAI(base_url=spec.base_url, api_key=key or "none", max_retries=0,
                                timeout=spec.timeout_seconds, http_client=guarded_async_client(spec))
    model = spec.model
    if model is None:
        models = await client.models.list()
        model = models.data[0].id
    slots = asyncio.Semaphore(spec.max_concurrency)
    lock = asyncio.Lock()
    t0, done = time.time(), 0

    async def record(row: dict) -> None:
        nonlocal done
        async with lock:
            with responses.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            done += 1
            if done % 50 == 0:
                log.info("synthesis: %d samples recorded, %s, %.1f samples/s", done, counters.as_dict(spec),
                         done / max(time.time() - t0, 1e-9))

    async def one(idx: int, prompt: str) -> None:
        try:
            texts = [await _complete(client, spec, model, prompt, counters)
                     for _ in range(spec.candidates_per_sample)]
            await record({"idx": idx, "model": model, "candidates": texts})
        except RequestFailed as failed:
            if failed.permanent:
                await record({"idx": idx, "model": model, "candidates": [], "failed": failed.reason})
            else:  # requested again by the next run, up to give_up_after_runs runs
                await record({"idx": idx, "model": model, "reason": failed.reason,
                              "transient_failures": earlier_failures.get(idx, 0) + 1})
        finally:
            slots.release()

    pending: set[asyncio.Task] = set()
    try:
        for idx, prompt in jobs:
            await slots.acquire()  # bounded: the next prompt is read only when a slot is free
            task = asyncio.create_task(one(idx, prompt))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    finally:
        for task in pending:
            task.cancel()
        await client.close()


def synthesise(jobs, spec, responses: Path) -> tuple[dict, dict]:
    """Request the samples of ``jobs`` (an iterable of ``(idx, prompt, labels)``, read lazily) not yet in
    ``responses``; returns ({idx: (chosen text, model)}, summary). The summary's ``finished`` is the set of samples
    settled (answered, failed permanently, or given up after ``give_up_after_runs`` runs); the others are requested
    by the next run."""
    check_destination(spec)
    responses.parent.mkdir(parents=True, exist_ok=True)
    finished = load_finished(responses, spec.give_up_after_runs)
    earlier = _transient_counts(responses)
    labels_of: dict[int, list[str]] = {}
    skipped = 0

    def todo():
        nonlocal skipped
        for idx, prompt, labels in jobs:
            labels_of[idx] = labels
            if idx in finished:
                skipped += 1
                continue
            yield idx, prompt

    log.info("synthesis: %d samples already settled; requesting the others from %s", len(finished), spec.base_url)
    counters = Counters()
    pending = todo()
    first = next(pending, None)
    if first is not None:  # nothing left to ask: the endpoint is not contacted at all (it may be down by now)
        asyncio.run(_run(itertools.chain([first], pending), spec, responses, counters, earlier))
    finished = load_finished(responses, spec.give_up_after_runs)
    chosen: dict[int, tuple[str, str]] = {}
    reasons: dict[str, int] = {}
    failed: dict[str, int] = {}
    for idx, row in finished.items():
        if idx not in labels_of:
            continue
        if row.get("failed") or "transient_failures" in row:
            why = row.get("failed") or f"{row.get('reason')} in {row['transient_failures']} runs"
            failed[why] = failed.get(why, 0) + 1
            continue
        for text in row["candidates"]:
            why = rejection_reason(text, labels_of[idx], spec.min_label_recall)
            if why is None:
                chosen[idx] = (text, row["model"])
                break
            key = why.split(" ")[0] if not why.startswith("missing") else why
            reasons[key] = reasons.get(key, 0) + 1
    unfinished = sum(1 for idx in labels_of if idx not in finished)
    summary = {"mode": "llm", **counters.as_dict(spec), "samples_requested": len(labels_of) - skipped,
               "samples_resumed": skipped, "samples_unfinished": unfinished,
               "samples_failed": sum(failed.values()), "failures": failed,
               "samples_accepted": len(chosen), "rejections": reasons}
    log.info("synthesis done: %s", summary)
    return chosen, {**summary, "finished": set(finished)}
