"""End-to-end timeline builds on Ray: completeness, order, markdown, and resuming an interrupted build."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from data_pipeline.timeline import store
from data_pipeline.timeline.config import TimelineConfig
from data_pipeline.timeline.partition import INDEX, table_dir
from tests.data_pipeline.tiny_mimic import P1, P2, ROWS, write_table, write_tiny_root

pytestmark = pytest.mark.slow


def _read_all(folder):
    return {p.name: pq.read_table(p) for p in store.list_shards(folder)}


def test_synthetic_cohort_end_to_end(ray_session, tmp_path):
    from data_pipeline.mimic.synthetic import generate_cohort, read_manifest
    from data_pipeline.timeline.pipeline import build_timelines

    root = generate_cohort(tmp_path / "mimic", num_patients=24, seed=3)
    cfg = TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=3)
    result = build_timelines(cfg)

    timelines = list(store.iter_timelines(result.timelines_dir))
    sids = [t.subject_id for t in timelines]
    assert len(sids) == len(set(sids)) == result.num_patients == 24
    assert len(store.list_shards(result.timelines_dir)) == 3
    for tl in timelines:
        assert tl.events[0].file_name == "patients"
        starts = [e.start for e in tl.events if e.start is not None]
        assert starts == sorted(starts)
        for e in tl.events:
            if e.start is not None:
                assert e.end is not None and e.end >= e.start
    md = dict(store.iter_markdown(result.markdown_dir))
    assert sorted(md) == sorted(sids)
    assert all(text.startswith("## Patient Demographics [None]") for text in md.values())
    manifest = json.loads((result.output_dir / store.MANIFEST).read_text())
    expected_rows = read_manifest(root)["rows"]
    assert manifest["rows_per_table"] == {rp: expected_rows[f"{rp}.csv.gz"] for rp in manifest["rows_per_table"]}
    assert manifest["source_rows"] == sum(manifest["rows_per_table"].values())
    assert manifest["events"] == result.num_events == sum(len(t.events) for t in timelines)
    assert not (result.output_dir / store.STAGING).exists()


def test_resume_skips_finished_buckets_and_matches_a_clean_run(ray_session, tmp_path):
    from data_pipeline.timeline.pipeline import build_timelines

    root = write_tiny_root(tmp_path / "src")
    clean = build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "clean", num_buckets=4))

    out = tmp_path / "resumed"
    cfg = TimelineConfig(mimic_root=root, output_dir=out, num_buckets=4, keep_staging=True)
    build_timelines(cfg)
    # simulate a crash: bucket of P1 never finished, a stale temp file, a half-written phase-1 table, no manifest
    broken = P1 % 4
    for sub in (store.TIMELINES, store.MARKDOWN):
        (out / sub / store.part_name(broken)).unlink()
    stale = out / store.TIMELINES / f"{store.TMP_PREFIX}dead-{store.part_name(broken)}"
    stale.write_bytes(b"partial")
    (table_dir(out / store.STAGING, "hosp/labevents") / INDEX).unlink()
    (out / store.MANIFEST).unlink()
    kept = {p: p.stat().st_mtime_ns for sub in (store.TIMELINES, store.MARKDOWN)
            for p in (out / sub).glob("part-*.parquet")}
    assert len(kept) == 6

    again = build_timelines(cfg)
    assert (again.buckets_built, again.buckets_skipped) == (1, 3)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished buckets were not rewritten
    assert not stale.exists()
    assert (out / store.MANIFEST).is_file()
    for sub in (store.TIMELINES, store.MARKDOWN):
        got, want = _read_all(out / sub), _read_all(clean.output_dir / sub)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].equals(want[name]), (sub, name)
    assert {t.subject_id for t in store.iter_timelines(out / store.TIMELINES)} == {P1, P2}

    third = build_timelines(cfg)  # everything finished: nothing rebuilt, Ray not even needed
    assert (third.buckets_built, third.num_patients) == (0, 2)


def test_changed_settings_refuse_to_resume(ray_session, tmp_path):
    from data_pipeline.mimic.reader import MimicDataError
    from data_pipeline.timeline.pipeline import build_timelines

    root = write_tiny_root(tmp_path / "src")
    build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=2))
    with pytest.raises(MimicDataError, match="different settings .*num_buckets.*new output_dir"):
        build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=3))
    assert os.path.isdir(tmp_path / "out" / store.TIMELINES)


def test_changed_patient_list_refuses_to_resume(ray_session, tmp_path):
    """Buckets are subject ranges taken from ``patients``: a resumed build must not mix two bucketings."""
    from data_pipeline.mimic.reader import MimicDataError
    from data_pipeline.timeline.pipeline import build_timelines

    root = write_tiny_root(tmp_path / "src")
    build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=2))
    rows = [dict(r) for r in ROWS["hosp/patients"]]
    rows.insert(0, {**rows[0], "subject_id": "1"})  # moves the split point between the two buckets
    write_table(root, "hosp/patients", rows)
    with pytest.raises(MimicDataError, match="different settings .*bucket_bounds.*new output_dir"):
        build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=2))


def test_phase2_leaves_the_ray_data_context_as_it_found_it(ray_session, tmp_path):
    import ray.data

    from data_pipeline.timeline.pipeline import build_timelines

    ctx = ray.data.DataContext.get_current()
    before = ctx.op_resource_reservation_enabled, ctx.downstream_capacity_backpressure_ratio
    build_timelines(TimelineConfig(mimic_root=write_tiny_root(tmp_path / "src"), output_dir=tmp_path / "out",
                                   num_buckets=2))
    assert (ctx.op_resource_reservation_enabled, ctx.downstream_capacity_backpressure_ratio) == before


def test_streamed_tables_give_the_same_timelines(ray_session, tmp_path, monkeypatch):
    """The driver-streamed path (for a table that would outlast the phase) stages exactly what a table task does."""
    from data_pipeline.timeline import pipeline

    root = write_tiny_root(tmp_path / "src")
    whole = pipeline.build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "whole", num_buckets=2))
    streamed: list[str] = []

    def stream_the_event_tables(sizes, cpus, spill_bytes):
        streamed.extend(rp for rp in sizes if rp in ("hosp/labevents", "icu/chartevents", "note/radiology"))
        return list(streamed)

    monkeypatch.setattr(pipeline, "tables_to_stream", stream_the_event_tables)
    chunked = pipeline.build_timelines(TimelineConfig(mimic_root=root, output_dir=tmp_path / "chunked",
                                                      num_buckets=2))
    assert sorted(streamed) == ["hosp/labevents", "icu/chartevents", "note/radiology"]
    assert chunked.source_rows == whole.source_rows
    # every table is staged, including whole-table tasks left over once the driver stops streaming
    tables = json.loads((tmp_path / "chunked" / store.MANIFEST).read_text())["rows_per_table"]
    assert tables == json.loads((tmp_path / "whole" / store.MANIFEST).read_text())["rows_per_table"]
    assert "ed/pyxis" in tables
    for kind in (store.TIMELINES, store.MARKDOWN):
        parts = sorted((tmp_path / "whole" / kind).glob("part-*.parquet"))
        assert len(parts) == 2
        for part in parts:
            assert pq.read_table(part).equals(pq.read_table(tmp_path / "chunked" / kind / part.name)), part


@pytest.mark.timeout(180)
def test_a_bad_value_stops_the_ray_build_with_its_message_and_a_rerun_after_the_fix_finishes(ray_session, tmp_path):
    """Phase 2 may already be waiting for phase 1 when a phase-1 task fails: the build must stop, not hang."""
    from data_pipeline.mimic.reader import MimicDataError
    from data_pipeline.timeline.pipeline import build_timelines

    root = write_tiny_root(tmp_path / "src")
    rows = [dict(r) for r in ROWS["hosp/labevents"]]
    rows[1]["charttime"] = "2180-02-30 10:00:00"
    path = write_table(root, "hosp/labevents", rows)
    cfg = TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=2)
    with pytest.raises(MimicDataError) as err:
        build_timelines(cfg)
    assert str(path) in str(err.value) and "data row 2" in str(err.value) and "'charttime'" in str(err.value)
    assert not list((tmp_path / "out" / store.TIMELINES).glob("*.parquet"))
    write_table(root, "hosp/labevents", ROWS["hosp/labevents"])
    result = build_timelines(cfg)
    assert result.buckets_built == 2 and result.num_patients == 2
