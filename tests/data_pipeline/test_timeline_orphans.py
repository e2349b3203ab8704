"""Rows whose subject_id has no hosp/patients row: counted per table in the manifest and the log, kept by default
(timelines without demographics) or dropped with ``orphan_rows: drop``."""

from __future__ import annotations

import json
import logging

import pytest

from data_pipeline.timeline import store
from data_pipeline.timeline.config import TimelineConfig
from data_pipeline.timeline.worker import split_orphans
from tests.data_pipeline.tiny_mimic import P1, P2, ROWS, staged, write_table, write_tiny_root

ORPHAN = 10000099  # no hosp/patients row


def _with_orphans() -> dict:
    labs = [{**r, "subject_id": ORPHAN, "labevent_id": 90 + i} for i, r in enumerate(ROWS["hosp/labevents"][:2])]
    adm = [{**ROWS["hosp/admissions"][1], "subject_id": ORPHAN, "hadm_id": 29999999}]
    return {"hosp/labevents": ROWS["hosp/labevents"] + labs, "hosp/admissions": ROWS["hosp/admissions"] + adm}


@pytest.mark.parametrize("drop", [False, True])
def test_split_orphans_counts_per_table_and_drops_only_when_asked(drop):
    rows = _with_orphans()
    tables = {"hosp/patients": staged("patients", ROWS["hosp/patients"]),
              "hosp/labevents": staged("labevents", rows["hosp/labevents"]),
              "hosp/admissions": staged("admissions", rows["hosp/admissions"]),
              "hosp/services": staged("services", [])}
    out, counts, subjects = split_orphans(tables, drop)
    assert counts == {"hosp/labevents": 2, "hosp/admissions": 1} and subjects == 1
    sids = {rp: set(t.column("_sid").to_pylist()) for rp, t in out.items()}
    if drop:
        assert sids["hosp/labevents"] == sids["hosp/admissions"] == {P1, P2}
    else:
        assert ORPHAN in sids["hosp/labevents"] and out["hosp/labevents"].num_rows == len(rows["hosp/labevents"])
    assert out["hosp/patients"] is tables["hosp/patients"]


def test_a_bucket_without_patients_rows_makes_every_row_an_orphan():
    labs = staged("labevents", ROWS["hosp/labevents"])
    out, counts, subjects = split_orphans({"hosp/labevents": labs}, drop=True)
    assert counts == {"hosp/labevents": labs.num_rows} and subjects == 2 and out["hosp/labevents"].num_rows == 0


def test_no_orphans_no_counts():
    tables = {"hosp/patients": staged("patients", ROWS["hosp/patients"]),
              "hosp/labevents": staged("labevents", ROWS["hosp/labevents"])}
    assert split_orphans(tables, drop=True)[1:] == ({}, 0)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["keep", "drop"])
def test_orphan_rows_in_the_manifest_and_the_log(ray_session, tmp_path, caplog, policy):
    from data_pipeline.timeline.pipeline import build_timelines

    root = write_tiny_root(tmp_path / "src")
    for rp, rows in _with_orphans().items():
        write_table(root, rp, rows)
    cfg = TimelineConfig(mimic_root=root, output_dir=tmp_path / "out", num_buckets=2, orphan_rows=policy)
    with caplog.at_level(logging.WARNING, logger="data_pipeline.timeline.pipeline"):
        result = build_timelines(cfg)
    manifest = json.loads((result.output_dir / store.MANIFEST).read_text())
    assert manifest["orphan_rows"] == {"policy": policy, "subjects": 1, "rows": 3,
                                       "rows_per_table": {"hosp/admissions": 1, "hosp/labevents": 2}}
    timelines = {t.subject_id: t for t in store.iter_timelines(result.timelines_dir)}
    if policy == "keep":
        assert sorted(timelines) == [P1, P2, ORPHAN] and result.num_patients == 3
        assert {e.file_name for e in timelines[ORPHAN].events} == {"admissions", "labevents"}  # no demographics
    else:
        assert sorted(timelines) == [P1, P2] and result.num_patients == 2
    warning = [r.getMessage() for r in caplog.records if "hosp/patients" in r.getMessage()]
    assert len(warning) == 1 and "3 rows of 1 subjects" in warning[0]
    assert "hosp/labevents: 2" in warning[0] and "hosp/admissions: 1" in warning[0]
    assert ("kept" if policy == "keep" else "dropped") in warning[0]
    assert str(ORPHAN) not in warning[0]  # counts only, no patient identifiers in the log


def test_the_orphan_policy_is_part_of_the_build_fingerprint(tmp_path):
    keep = TimelineConfig(mimic_root=tmp_path, output_dir=tmp_path / "o")
    drop = TimelineConfig(mimic_root=tmp_path, output_dir=tmp_path / "o", orphan_rows="drop")
    assert "orphan_rows" not in keep.fingerprint()  # builds made before the option existed still resume
    assert keep.fingerprint() != drop.fingerprint()
    with pytest.raises(ValueError, match="orphan_rows"):
        TimelineConfig(mimic_root=tmp_path, output_dir=tmp_path / "o", orphan_rows="ignore")
