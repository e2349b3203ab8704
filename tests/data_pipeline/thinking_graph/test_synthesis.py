"""Endpoint-written chains: nothing leaves the machine without the opt-in; errors and timeouts cost retries, not
the run; a re-run requests only unfinished samples; tokens and cost are counted."""

from __future__ import annotations

import pytest

from data_pipeline.thinking_graph.config import SynthesisSpec, is_local_or_trusted
from data_pipeline.thinking_graph.synthesis import ThirdPartyRefused, check_destination, synthesise
from tests.engines import require_engine

require_engine("openai", "pip install -e '.[umls]'")


def jobs(n: int):
    return [(i, f"# Patient EHR Context #\nSAMPLE-{i}\n\n# Ground Truth #\nGlucose\nSodium\n\n# Task #\nx", ["Glucose",
                                                                                                     "Sodium"])
            for i in range(n)]


def spec(url: str, **kw) -> SynthesisSpec:
    base = dict(mode="llm", base_url=url, api_key_env=None, candidates_per_sample=1, max_retries=2,
                backoff_seconds=0.01, timeout_seconds=1.0, max_concurrency=3,
                price_per_million_prompt_tokens=2.0, price_per_million_completion_tokens=10.0)
    return SynthesisSpec(**{**base, **kw})


@pytest.mark.parametrize("url, allowed", [
    ("http://127.0.0.1:8000/v1", True), ("http://localhost:8000/v1", True), ("http://[::1]:8000/v1", True),
    ("http://127.8.9.1/v1", True), ("https://api.openai.com/v1", False), ("http://10.0.0.5:8000/v1", False),
    ("http://serve-svc.ray:8000/v1", False),
])
def test_no_request_leaves_the_machine_without_the_opt_in(url, allowed, monkeypatch):
    import openai

    def no_client(*a, **k):
        raise AssertionError("a client was created for a refused host")

    monkeypatch.setattr(openai, "AsyncOpenAI", no_client)
    if allowed:
        spec(url)
    else:
        with pytest.raises(ValueError, match="allow_ehr_to_third_party_api"):
            spec(url)
        # a spec built without validation (e.g. model_construct) is refused again before any request
        unchecked = SynthesisSpec.model_construct(**{**spec("http://127.0.0.1/v1").model_dump(), "base_url": url})
        with pytest.raises(ThirdPartyRefused):
            synthesise(jobs(1), unchecked, __import__("pathlib").Path("/nonexistent/never-written.jsonl"))
        assert spec(url, allow_ehr_to_third_party_api=True).allow_ehr_to_third_party_api
        host = url.split("//")[1].split(":")[0].split("/")[0]
        check_destination(spec(url, trusted_hosts=[host]))
    assert is_local_or_trusted("serve-svc.ray", ["serve-svc.ray"])


def test_errors_and_timeouts_cost_retries_not_the_run(tmp_path, fake_openai):
    # sample 0: two 500s then fine; sample 1: too slow every time (fails after the retries); others fine
    def script(sample, attempt):
        if sample == 0 and attempt < 2:
            return "error"
        if sample == 1:
            return "slow"
        return "ok"

    out = tmp_path / "responses.jsonl"
    with fake_openai(script, slow_seconds=2.0) as fake:
        chosen, summary = synthesise(jobs(5), spec(fake.base_url), out)
        assert sorted(chosen) == [0, 2, 3, 4]
        assert summary["retries"] == 2 + 2 and summary["failed_requests"] == 1
        assert summary["samples_unfinished"] == 1 and summary["samples_accepted"] == 4
        assert summary["prompt_tokens"] == 100 * 4 and summary["completion_tokens"] == 20 * 4
        assert summary["cost"] == pytest.approx((400 * 2.0 + 80 * 10.0) / 1e6)
        first = list(fake.requests)

        # resume: only the unfinished sample is requested again; it now answers
        fake.script = lambda sample, attempt: "ok"
        chosen, summary = synthesise(jobs(5), spec(fake.base_url), out)
        assert fake.requests[len(first):] == ["1"]
        assert sorted(chosen) == [0, 1, 2, 3, 4] and summary["samples_resumed"] == 4

        # a third run requests nothing
        synthesise(jobs(5), spec(fake.base_url), out)
        assert len(fake.requests) == len(first) + 1


def test_filter_picks_the_first_passing_candidate(tmp_path, fake_openai):
    with fake_openai(lambda sample, attempt: "garbage" if attempt == 0 else "ok") as fake:
        chosen, summary = synthesise(jobs(2), spec(fake.base_url, candidates_per_sample=2), tmp_path / "r.jsonl")
    assert sorted(chosen) == [0, 1] and all(text.startswith("## Extraction") for text, _ in chosen.values())
    assert chosen[0][1] == "fake-model" and summary["rejections"] == {"missing section '## Extraction'": 2}
    with fake_openai(lambda sample, attempt: "garbage") as fake:
        chosen, summary = synthesise(jobs(2), spec(fake.base_url), tmp_path / "r2.jsonl")
    assert chosen == {} and summary["samples_accepted"] == 0


def test_a_permanent_failure_is_recorded_and_never_requested_again(tmp_path, fake_openai):
    out = tmp_path / "responses.jsonl"
    with fake_openai(lambda sample, attempt: "bad" if sample == 2 else "ok") as fake:
        chosen, summary = synthesise(jobs(4), spec(fake.base_url), out)
        assert fake.requests.count("2") == 1  # a 400 is not retried
        assert sorted(chosen) == [0, 1, 3] and summary["samples_unfinished"] == 0  # the run counts as done
        assert summary["samples_failed"] == 1 and summary["failures"] == {"HTTP 400": 1}
        assert 2 in summary["finished"]
        before = len(fake.requests)
        synthesise(jobs(4), spec(fake.base_url), out)
        assert len(fake.requests) == before  # the re-run asks nothing: the failure was recorded with its reason


def test_transient_failures_are_retried_by_later_runs_then_given_up(tmp_path, fake_openai):
    out = tmp_path / "responses.jsonl"
    with fake_openai(lambda sample, attempt: "error" if sample == 0 else "ok") as fake:
        for run in range(1, 4):
            _, summary = synthesise(jobs(2), spec(fake.base_url, max_retries=0, give_up_after_runs=3), out)
            assert fake.requests.count("0") == run
            assert summary["samples_unfinished"] == (1 if run < 3 else 0)
        assert summary["failures"] == {"HTTP 500 in 3 runs": 1}
        synthesise(jobs(2), spec(fake.base_url, max_retries=0, give_up_after_runs=3), out)
        assert fake.requests.count("0") == 3  # given up: not asked a fourth time


def test_prompts_are_read_lazily_with_bounded_requests_in_flight(tmp_path, fake_openai):
    read, ahead = [], []
    out = tmp_path / "r.jsonl"

    def lazy(n):
        for job in jobs(n):
            done = len(out.read_text().splitlines()) if out.is_file() else 0
            ahead.append(len(read) - done)  # prompts read but not yet answered, when the next one is read
            read.append(job[0])
            yield job

    with fake_openai(lambda sample, attempt: "slow", slow_seconds=0.05) as fake:
        chosen, summary = synthesise(lazy(40), spec(fake.base_url, max_concurrency=3), out)
        assert len(chosen) == 40 and read == list(range(40))
        assert 1 <= fake.max_in_flight <= 3
        assert max(ahead) <= 3  # never more than max_concurrency prompts held at once


def test_a_rerun_with_nothing_left_does_not_contact_the_endpoint(tmp_path, fake_openai):
    out = tmp_path / "responses.jsonl"
    with fake_openai() as fake:
        url = fake.base_url
        synthesise(jobs(3), spec(url, model=None), out)
    # the server is gone; every sample is settled, so the re-run asks nothing (not even GET /v1/models)
    chosen, summary = synthesise(jobs(3), spec(url, model=None), out)
    assert sorted(chosen) == [0, 1, 2] and summary["requests"] == 0 and summary["samples_resumed"] == 3
