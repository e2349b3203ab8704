"""Left truncation keeps the demographics, the admission header and the latest whole events."""

from __future__ import annotations

import pytest

from data_pipeline.datasets.truncation import approx_token_count, cached_counter, truncate_parts
from data_pipeline.tasks.assembly import SampleParts


def words(text: str) -> int:
    """A non-additive toy counter (one token per whitespace-separated word, +1 per blank line)."""
    return len(text.split()) + text.count("\n\n")


def parts(n_events: int = 5, prev: str = "previous note w w w") -> SampleParts:
    ctx = [f"## Event {k} x x x" for k in range(n_events)]  # 6 words each
    return SampleParts("## Patient Demographics", prev, "## Admissions a", ctx, list(range(10, 10 + n_events)))


@pytest.mark.parametrize("count", [approx_token_count, words], ids=["approx", "words"])
@pytest.mark.parametrize("budget", [10, 25, 40, 60, 1000])
def test_keeps_latest_whole_events_within_budget(count, budget):
    p = parts()
    got = truncate_parts(p, budget, count, instruction="please predict")
    text = got.parts.text()
    assert got.parts.demographics == p.demographics and got.parts.admission == p.admission
    kept = got.parts.context
    assert kept == p.context[len(p.context) - len(kept):]          # a suffix: the most recent events
    assert got.parts.context_ids == p.context_ids[len(p.context) - len(kept):]
    assert all(c in text for c in kept)                            # whole events, never cut inside
    assert got.dropped_events == len(p.context) - len(kept)
    if got.fits:
        assert count(text + "\n" + "please predict") <= budget
        if kept != p.context:  # one more event would not have fitted
            bigger = SampleParts(p.demographics, "", p.admission, p.context[-len(kept) - 1:], [])
            assert count(bigger.text() + "\n" + "please predict") > budget


def test_previous_discharge_note_goes_before_any_event():
    p = parts(3, prev="a " * 50)
    got = truncate_parts(p, approx_token_count(parts(3, prev="").text()) + 5, approx_token_count)
    assert got.dropped_previous_discharge and got.parts.previous_discharge == ""
    assert got.parts.context == p.context and got.fits


def test_nothing_dropped_when_it_fits():
    p = parts()
    got = truncate_parts(p, 10_000, approx_token_count)
    assert got.parts.text() == p.text() and got.dropped_events == 0 and not got.dropped_previous_discharge
    assert got.n_tokens == approx_token_count(p.text() + "\n")


def test_header_over_budget_is_reported_not_cut():
    p = SampleParts("demo " * 100, "", "adm", ["## E 1"], [1])
    got = truncate_parts(p, 20, approx_token_count)
    assert not got.fits and got.parts.demographics == p.demographics and got.parts.context == []


@pytest.mark.parametrize("text,expected", [("abc def", 2), ("1.5", 3), ("| Heart_Rate |", 5), ("", 0),
                                           ("Ödem", 1)])
def test_approx_counter(text, expected):
    assert approx_token_count(text) == expected


def test_approx_counter_is_additive_over_blank_lines():
    a, b = "## Labotary Test Events [2180-01-01 10:00:00]", "| INR(PT) | 1.5 |"
    assert approx_token_count(a + "\n\n" + b) == approx_token_count(a) + approx_token_count(b)


def test_cached_counter_counts_once_and_keeps_additivity():
    calls = []

    def count(text):
        calls.append(text)
        return len(text)

    c = cached_counter(count)
    assert c("abc") == c("abc") == 3 and calls == ["abc"] and not c.additive
    assert cached_counter(approx_token_count).additive


def test_hf_tokenizer_counter(tmp_path):
    """A tiny local word-level tokenizer (no download) drives exact counts through ``tokenizer_path``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from data_pipeline.datasets.truncation import make_token_counter

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "##": 1, "Event": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path)
    count = make_token_counter(str(tmp_path))
    assert count("## Event 1 x") == 4 and not getattr(count, "additive", False)
    got = truncate_parts(parts(), 20, count, instruction="go")
    assert got.fits and got.n_tokens == count(got.parts.text() + "\n" + "go") <= 20
    assert got.parts.context == parts().context[-len(got.parts.context):] and got.dropped_events > 0


@pytest.mark.parametrize("count", [approx_token_count, words], ids=["approx", "words"])
def test_a_pinned_anchor_note_is_never_dropped_and_a_too_long_one_does_not_fit(count):
    p = parts(3)
    p.context[-1] = "## Discharge " + "word " * 200  # the readmission sample's own note, alone over budget
    got = truncate_parts(p, 60, count, pinned_from=2)
    assert got.parts.context == [p.context[-1]] and not got.fits  # dropped by the caller, never emptied
    # a pinned note followed by later events: only events before the note may go
    q = parts(4)
    q.context[1] = "## Discharge " + "word " * 200
    got = truncate_parts(q, 60, count, pinned_from=1)
    assert got.parts.context == q.context[1:] and not got.fits and got.dropped_events == 1
    small = parts(3)
    got = truncate_parts(small, 22, count, pinned_from=2)
    assert got.parts.context[-1] == small.context[-1]


def test_no_budget_keeps_everything():
    p = parts(50)
    got = truncate_parts(p, None, approx_token_count)
    assert got.parts.context == p.context and got.fits and got.dropped_events == 0
    assert got.n_tokens == approx_token_count(p.text() + "\n")


def _render_one(task: str, anchor: int, max_tokens: int, datasets: dict):
    from data_pipeline.datasets.stages import RenderWorker
    from data_pipeline.tasks import get_task
    from data_pipeline.tasks.examples import example_timeline
    from data_pipeline.tasks.history import TimelineIndex

    ix = TimelineIndex(example_timeline())
    inst = next(i for i in get_task(task).generate(ix) if i.anchor == anchor)
    worker = RenderWorker({}, {}, max_tokens, None, 0, 10, datasets=datasets)
    return worker.render(ix, {**inst.to_row(), "dataset": "d", "idx": 0}, None, TimelineIndex(example_timeline()))


def test_render_drops_a_sample_truncation_would_leave_empty():
    from data_pipeline.tasks.examples import IDX

    # ICU_Stay_7day shows several events; a budget that fits the header only would empty the context
    row = _render_one("ICU_Stay_7day", IDX["icustays"], 120, {"d": {"truncate": True, "min_context": -1}})
    assert row["context_ids"] == [] and not row["fits"] and row["drop_reason"] == "context_after_truncation"
    # the context-size filter is applied again after truncation
    row = _render_one("ICU_Stay_7day", IDX["icustays"], 400, {"d": {"truncate": True, "min_context": -1}})
    kept = len(row["context_ids"])
    assert row["dropped_events"] > 0 and kept > 0 and row["fits"]
    row = _render_one("ICU_Stay_7day", IDX["icustays"], 400, {"d": {"truncate": True, "min_context": kept}})
    assert row["drop_reason"] == "context_after_truncation" and not row["fits"]
    # untruncated dataset (EHR-Bench default): everything kept whatever the budget
    row = _render_one("ICU_Stay_7day", IDX["icustays"], 120, {"d": {"truncate": False, "min_context": -1}})
    assert row["fits"] and row["dropped_events"] == 0 and len(row["context_ids"]) > 5
    assert row["leaks"] == ""


def test_render_drops_a_readmission_sample_whose_note_alone_is_over_budget():
    from data_pipeline.tasks.examples import IDX

    row = _render_one("Readmission_30day", IDX["note"], 64, {"d": {"truncate": True, "min_context": -1}})
    assert not row["fits"] and row["drop_reason"] == "too_long"
    assert row["context_ids"][-1] == IDX["note"]  # the note was never dropped to make it "fit"
