"""The vectorised bucket markdown is exactly ``data_pipeline.render.render_timeline`` of every timeline."""

from __future__ import annotations

import pytest

from data_pipeline.events import PatientTimeline
from data_pipeline.render import render_timeline
from tests.data_pipeline.tiny_mimic import P1, build_local_full, write_tiny_root


def _check(events: dict[int, str], markdown: dict[int, str]) -> None:
    assert markdown.keys() == events.keys()
    for sid, ev in events.items():
        assert markdown[sid] == render_timeline(PatientTimeline.from_row({"subject_id": sid, "events": ev})), sid


def test_tiny_root_markdown_equals_render_timeline(tmp_path):
    events, markdown = build_local_full(write_tiny_root(tmp_path / "src"), tmp_path / "work")
    _check(events, markdown)
    text = markdown[P1]
    assert text.startswith("## Patient Demographics [None]\n- Anchor_Age: 52\n- Gender: F\n\n## EDstays [")
    assert "## ICUstays [2180-06-27 10:00:00]\n\n\n## Chart Events" in text  # keyless one-item event
    assert "Drgcodes" not in text and "HCFA" not in text  # silent events dropped


@pytest.mark.parametrize("modules", [("hosp", "icu", "ed", "note"), ("hosp",)])
def test_synthetic_cohort_markdown_equals_render_timeline(tmp_path, modules):
    from data_pipeline.mimic.synthetic import generate_cohort

    root = generate_cohort(tmp_path / "mimic", num_patients=12, seed=7, modules=modules)
    events, markdown = build_local_full(root, tmp_path / "work", num_buckets=3)
    assert len(events) == 12
    _check(events, markdown)


def test_large_text_path_gives_the_same_bytes(tmp_path, monkeypatch):
    """Buckets whose text passes 2 GiB are assembled with 64-bit offsets; force that path on a tiny one."""
    import data_pipeline.timeline.assemble as assemble

    root = write_tiny_root(tmp_path / "src")
    small = build_local_full(root, tmp_path / "w1")
    monkeypatch.setattr(assemble, "MAX_STRING_BYTES", 0)
    assert build_local_full(root, tmp_path / "w2") == small
