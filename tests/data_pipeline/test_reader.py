"""MIMIC-IV reader: formats, header case, header validation and the errors users see."""

from __future__ import annotations

import gzip
import logging

import pytest

from data_pipeline.mimic.reader import MimicDataError, SourceLayout, iter_batches, plan_source, read_header
from data_pipeline.timeline.buckets import Buckets
from data_pipeline.timeline.partition import StageTask, stage_table
from tests.data_pipeline.tiny_mimic import ROWS, build_local, csv_text, write_table, write_tiny_root

TWO_BUCKETS = Buckets((0,))  # every (positive) subject id in bucket 1


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_formats_with_upper_case_headers_give_identical_timelines(tmp_path, fmt):
    reference = build_local(write_tiny_root(tmp_path / "ref"), tmp_path / "ref_work")
    root = write_tiny_root(tmp_path / "src", fmt=fmt, upper=True)
    plan = plan_source(SourceLayout(root))
    labs = plan.get("hosp/labevents")
    assert labs.path.name == f"labevents.{fmt}"
    assert labs.names[0] == "LABEVENT_ID" and labs.columns[0] == "labevent_id"
    _, batch = next(iter_batches(labs, ["subject_id", "charttime"]))
    assert batch.schema.names == ["subject_id", "charttime"]
    assert build_local(root, tmp_path / "work") == reference
    assert len(reference) == 2


def test_only_needed_columns_are_read_and_extra_columns_ignored(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    path = root / "hosp" / "omr.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",extra_col"] + [ln + ",zzz" for ln in lines[1:]]) + "\n")
    events = build_local(root, tmp_path / "work")
    assert "extra_col" not in events[10000002] and "zzz" not in events[10000002]


def test_missing_column_names_file_column_and_fix(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    path = root / "hosp" / "labevents.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    i = header.index("valuenum")
    path.write_text("\n".join(",".join(c for j, c in enumerate(ln.split(",")) if j != i) for ln in lines[:1]) + "\n")
    with pytest.raises(MimicDataError) as err:
        plan_source(SourceLayout(root))
    msg = str(err.value)
    assert str(path) in msg and "'valuenum'" in msg and "re-export or re-download" in msg


def test_missing_required_table_is_an_error_with_the_fix(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    (root / "hosp" / "diagnoses_icd.csv").unlink()
    with pytest.raises(MimicDataError, match=r"diagnoses_icd\.csv\.gz: required table hosp/diagnoses_icd is missing"):
        plan_source(SourceLayout(root))


def test_missing_icu_dictionary_is_an_error_when_icu_is_present(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    (root / "icu" / "d_items.csv").unlink()
    with pytest.raises(MimicDataError, match="icu/d_items is missing"):
        plan_source(SourceLayout(root))


def test_malformed_timestamp_names_file_row_column_and_value(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    rows = [dict(r) for r in ROWS["hosp/labevents"]]
    rows[2]["charttime"] = "2180-13-45 10:00:00"
    path = write_table(root, "hosp/labevents", rows)
    plan = plan_source(SourceLayout(root))  # headers are fine: the error comes while streaming
    with pytest.raises(MimicDataError) as err:
        stage_table(StageTask("hosp/labevents", plan.get("hosp/labevents"), tmp_path / "w", TWO_BUCKETS, 1 << 20,
                              1 << 20), plan)
    msg = str(err.value)
    assert str(path) in msg and "data row 3" in msg and "'charttime'" in msg and "'2180-13-45 10:00:00'" in msg
    assert "YYYY-MM-DD HH:MM:SS" in msg


def test_truncated_gzip_names_file_and_says_redownload(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    (root / "hosp" / "labevents.csv").unlink()
    row = ROWS["hosp/labevents"][0]
    rows = [{**row, "labevent_id": i, "comments": f"comment {i} " * 5} for i in range(40_000)]
    data = gzip.compress(csv_text("hosp/labevents", rows).encode())
    path = root / "hosp" / "labevents.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    plan = plan_source(SourceLayout(root))
    with pytest.raises(MimicDataError) as err:
        stage_table(StageTask("hosp/labevents", plan.get("hosp/labevents"), tmp_path / "w", TWO_BUCKETS, 1 << 16,
                              1 << 20), plan)
    msg = str(err.value)
    assert str(path) in msg and "truncated or corrupt" in msg and "re-download" in msg


def test_bad_number_names_file_row_and_column_but_not_the_value(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    rows = [dict(r) for r in ROWS["hosp/labevents"]]
    rows[1]["valuenum"] = "positive"
    path = write_table(root, "hosp/labevents", rows)
    plan = plan_source(SourceLayout(root))
    with pytest.raises(MimicDataError) as err:
        stage_table(StageTask("hosp/labevents", plan.get("hosp/labevents"), tmp_path / "w", TWO_BUCKETS, 1 << 20,
                              1 << 20), plan)
    msg = str(err.value)
    assert str(path) in msg and "data row 2" in msg and "'valuenum'" in msg and "positive" not in msg


def test_not_a_gzip_file_fails_at_header_check(tmp_path):
    path = tmp_path / "patients.csv.gz"
    path.write_bytes(b"subject_id,gender\n1,F\n")
    with pytest.raises(MimicDataError, match="re-download"):
        read_header(path)


def test_missing_optional_module_warns_once_naming_module(tmp_path, caplog):
    root = write_tiny_root(tmp_path / "src", modules=("hosp", "icu", "note"))
    with caplog.at_level(logging.WARNING, logger="data_pipeline.mimic.reader"):
        plan = plan_source(SourceLayout(root))
    ed_warnings = [r.getMessage() for r in caplog.records if "module 'ed'" in r.getMessage()]
    assert len(ed_warnings) == 1
    assert "edstays" in ed_warnings[0] and "unavailable tasks" in ed_warnings[0]
    assert "ED_Hospitalization" in ed_warnings[0] and "diagnosis_ccs" in ed_warnings[0]
    assert plan.missing_modules == ["ed"]
    assert build_local(root, tmp_path / "w")  # still builds without the module


def test_missing_mappings_warn_naming_ccs_and_atc_tasks(tmp_path, caplog):
    root = write_tiny_root(tmp_path / "src", mappings=False)
    with caplog.at_level(logging.WARNING, logger="data_pipeline.mimic.reader"):
        plan_source(SourceLayout(root))
    (msg,) = [r.getMessage() for r in caplog.records if "code mappings" in r.getMessage()]
    for task in ("diagnoses_ccs", "procedures_ccs", "prescriptions_atc", "medrecon_atc", "diagnosis_ccs"):
        assert task in msg
    events = build_local(root, tmp_path / "w")
    assert '"CCS Type": "None"' in events[10000001]


def test_module_root_override(tmp_path):
    root = write_tiny_root(tmp_path / "src", modules=("hosp", "icu", "ed"))
    note_root = write_tiny_root(tmp_path / "elsewhere", modules=("note",), mappings=False) / "note"
    plan = plan_source(SourceLayout(root, {"note": note_root}))
    assert plan.get("note/discharge").path.parent == note_root
    assert plan.missing_modules == []


def test_hosp_folder_missing_says_what_mimic_root_must_be(tmp_path):
    with pytest.raises(MimicDataError, match="must be the folder that contains hosp/"):
        plan_source(SourceLayout(tmp_path))


def test_quoted_newlines_across_read_blocks(tmp_path):
    root = write_tiny_root(tmp_path / "src")
    note = ROWS["note/discharge"][0]
    rows = [{**note, "note_id": f"n{i}", "text": f"line one {i}\n\nChief Complaint:\ncc {i}\n" + "x" * 50}
            for i in range(300)]
    write_table(root, "note/discharge", rows)
    plan = plan_source(SourceLayout(root))
    texts = [t for _, b in iter_batches(plan.get("note/discharge"), ["text"], block_bytes=1 << 12)
             for t in b.column("text").to_pylist()]
    assert texts == [r["text"] for r in rows]
