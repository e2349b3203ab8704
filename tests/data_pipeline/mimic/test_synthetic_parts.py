"""The synthetic generator's pure parts: value model, id scheme, time formatting, CSV writer, vocabulary links
and the per-patient clinical story."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from data_pipeline.mimic.synthetic import clock, writer
from data_pipeline.mimic.synthetic.care_plan import make_plan
from data_pipeline.mimic.synthetic.clinical_course import build_patient, hadm_id_for, stay_id_for
from data_pipeline.mimic.synthetic.config import MAX_PATIENTS
from data_pipeline.mimic.synthetic.drugs import DRUGS
from data_pipeline.mimic.synthetic.hosp_labs import _POS, lab_values
from data_pipeline.mimic.synthetic.measurements import EXAMS, LABS, SPECIMENS, VITALS, values_for
from data_pipeline.mimic.synthetic.vocabulary import CHRONIC, CONDITIONS, DIAGNOSES, PROCEDURES

# ---- value model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key,shift,expected", [
    ("wbc", 0.0, "normal"), ("wbc", 3.0, "high"), ("wbc", -3.0, "low"),
    ("cr", 4.0, "high"), ("hgb", -4.5, "low"), ("na", -2.5, "low"), ("k", 2.2, "high"),
    ("lactate", 0.0, "normal"), ("lactate", 3.5, "high"),
    ("trop", 0.0, "normal"), ("trop", 4.0, "high"), ("bnp", 3.5, "high"),
    ("ph", -3.0, "low"), ("glu", 20.0, "high"), ("alt", 0.0, "normal"),
    ("plt", -6.0, "low"), ("hgb", -12.0, "low"), ("hco3", -8.0, "low"), ("uwbc", 20.0, "high"),
])
def test_lab_values_move_in_the_condition_direction(key, shift, expected):
    m = LABS[key]
    value = lab_values(np.array([_POS[key]]), np.array([shift]), np.array([0.0]))[0]
    single = values_for(m, np.array([shift]), np.array([0.0]))[0]
    assert value == pytest.approx(single)
    state = "high" if value > m.hi else ("low" if value < m.lo else "normal")
    assert state == expected
    assert value > 0 or m.lo == 0


@pytest.mark.parametrize("key,shift,low,high", [
    ("plt", -2.3, 30, 120),  # septic thrombocytopenia, not a negative count
    ("hgb", -5.9, 5.5, 9.0),  # GI bleed
    ("glu", 21.0, 300, 500),  # DKA
    ("lactate", 2.2, 3.0, 8.0),  # septic shock
    ("bnp", 2.2, 1_500, 10_000),  # decompensated heart failure
])
def test_lab_values_stay_clinically_plausible(key, shift, low, high):
    value = values_for(LABS[key], np.array([shift]), np.array([0.0]))[0]
    assert low <= value <= high


@pytest.mark.parametrize("key", sorted(LABS))
def test_lab_values_are_rounded_to_the_item_precision(key):
    m = LABS[key]
    rng = np.random.default_rng(0)
    values = lab_values(np.full(200, _POS[key]), rng.normal(0, 2, 200), rng.standard_normal(200))
    assert np.all(values >= 0)
    assert np.allclose(values, np.round(values, m.decimals))


# ---- ids and time formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("idx", [0, 1, 12_345, MAX_PATIENTS - 1])
def test_id_blocks_are_eight_digit_and_in_range(idx):
    hadms = [hadm_id_for(idx, k) for k in range(16)]
    stays = [stay_id_for(idx, k) for k in range(32)]
    assert all(20_000_000 <= h < 30_000_000 for h in hadms)
    assert all(30_000_000 <= s < 40_000_000 for s in stays)
    assert len(set(hadms)) == 16 and len(set(stays)) == 32


def test_ids_unique_across_patients():
    hadms = {hadm_id_for(i, k) for i in range(0, MAX_PATIENTS, 997) for k in range(16)}
    assert len(hadms) == len(range(0, MAX_PATIENTS, 997)) * 16


@pytest.mark.parametrize("seconds,ts,date", [
    (0, "2100-01-01 00:00:00", "2100-01-01"),
    (59, "2100-01-01 00:00:00", "2100-01-01"),
    (3_661, "2100-01-01 01:01:00", "2100-01-01"),
    (clock.year_start(2150) + 86_399, "2150-01-01 23:59:00", "2150-01-01"),
    (clock.year_start(2208) + 40 * 86_400 + 7_200, "2208-02-10 02:00:00", "2208-02-10"),
])
def test_time_formatting(seconds, ts, date):
    assert clock.ts(seconds) == ts
    assert clock.date(seconds) == date
    assert clock.ts_array(np.array([seconds, seconds]))[1] == ts


@pytest.mark.parametrize("values,decimals,expected", [
    ([88.4, 88.6, 100.0], 0, ["88", "89", "100"]),
    ([36.74, 1.0, 0.3], 1, ["36.7", "1.0", "0.3"]),
    ([0.0123, 7.35], 3, ["0.012", "7.35"]),
])
def test_number_formatting(values, decimals, expected):
    assert clock.num_array(np.array(values), decimals).tolist() == expected
    assert [clock.num(v, decimals) for v in values] == expected


# ---- CSV writer ------------------------------------------------------------------------------------------------


def _read(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return fh.read()


@pytest.mark.parametrize("value,expected", [
    ("plain", "plain"), ("a,b", '"a,b"'), ('say "hi"', '"say ""hi"""'), ("two\nlines", '"two\nlines"'),
    (None, ""), ("", ""),
])
def test_writer_quotes_like_csv(tmp_path, value, expected):
    w = writer.TableWriter(tmp_path / "t.csv.gz", ("a", "b"), 5)
    w.add(a=value, b="x")
    arr = np.array(["" if value is None else value], dtype=object)
    w.add_columns(1, {"a": arr, "b": "x"})
    w.close()
    assert _read(tmp_path / "t.csv.gz") == f"a,b\n{expected},x\n{expected},x\n"


def test_writer_rejects_unknown_columns_and_bad_shapes(tmp_path):
    w = writer.TableWriter(tmp_path / "t.csv.gz", ("a",), 5)
    with pytest.raises(KeyError, match="no column 'b'"):
        w.add(b="1")
    with pytest.raises(ValueError, match="expected 2 values"):
        w.add_columns(2, {"a": np.array(["1", "2", "3"], dtype=object)})
    with pytest.raises(TypeError, match="strings"):
        w.add_columns(2, {"a": np.array([1, 2])})
    w.close()


def test_writer_bytes_do_not_depend_on_flush_points(tmp_path, monkeypatch):
    rows = [(str(i), f"v{i % 7}") for i in range(5_000)]

    def write(folder, flush_every):
        folder.mkdir()
        path = folder / "t.csv.gz"  # the name is part of the gzip header
        w = writer.TableWriter(path, ("a", "b"), 5)
        for i, (a, b) in enumerate(rows):
            w.add(a=a, b=b)
            if flush_every and i % flush_every == 0:
                w.flush()
        w.close()
        return path.read_bytes()

    once = write(tmp_path / "x", 0)
    assert write(tmp_path / "y", 13) == once
    monkeypatch.setattr(writer, "FLUSH_CHARS", 64)
    assert write(tmp_path / "z", 0) == once


def test_writer_buffer_stays_bounded(tmp_path, monkeypatch):
    """Memory does not grow with the number of rows: the text buffer is compressed past FLUSH_CHARS."""
    monkeypatch.setattr(writer, "FLUSH_CHARS", 2_000)
    w = writer.TableWriter(tmp_path / "t.csv.gz", ("a", "b"), 5)
    block = {"a": np.array([f"{i:06d}" for i in range(100)], dtype=object), "b": "constant"}
    sizes = []
    for _ in range(300):
        w.add_columns(100, block)
        w.add(a="x", b="y")
        sizes.append(w._buf.tell())
    w.close()
    assert max(sizes) <= 2_000 + 100 * 16
    assert w.rows == 300 * 101
    assert _read(tmp_path / "t.csv.gz").count("\n") == 300 * 101 + 1


# ---- vocabulary -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(CONDITIONS))
def test_condition_links_resolve(key):
    c = CONDITIONS[key]
    assert all(lab in LABS for lab, _ in c.labs)
    assert all(v in VITALS or v == "gcs" for v, _ in c.vitals)
    assert all(d in DRUGS for d in c.drugs + c.ed_meds)
    assert all(p in PROCEDURES for p in c.procedures)
    assert all(e in EXAMS for e in c.exams)
    assert all(s in SPECIMENS for s in c.micro)
    assert all(d in DIAGNOSES for d in c.secondary)
    assert c.complaints and all(c.complaints)
    assert "." not in c.code.icd10 and "." not in c.code.icd9


@pytest.mark.parametrize("chronic", CHRONIC, ids=lambda c: c.key)
def test_chronic_links_resolve(chronic):
    assert chronic.key in DIAGNOSES
    assert all(d in DRUGS for d in chronic.home_drugs)
    assert all(lab in LABS for lab, _ in chronic.labs)


def test_drug_ndcs_unique_per_drug_name_and_atc():
    by_ndc = {}
    for d in DRUGS.values():
        assert len(d.ndc) == 11 and d.ndc.isdigit()
        by_ndc.setdefault(d.ndc, set()).add(d.atc_code)
    assert all(len(v) == 1 for v in by_ndc.values())


# ---- clinical story -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("idx", range(0, 60, 3))
def test_patient_story_is_chronological(idx):
    p = build_patient(7, idx)
    assert build_patient(7, idx) == p  # deterministic
    assert 10_000_000 <= p.subject_id < 20_000_000 and 18 <= p.anchor_age <= 91
    last = None
    for k, adm in enumerate(p.admissions):
        start = adm.ed.intime if adm.ed else adm.admittime
        if last is not None:
            assert start > last
        assert adm.dischtime > adm.admittime
        segs = adm.segments
        assert all(s.outtime > s.intime for s in segs)
        assert all(a.outtime <= b.intime for a, b in zip(segs, segs[1:]))
        assert segs[-1].outtime == adm.dischtime
        if adm.ed:
            # boarding: admitted before the ED stay ends; the first unit may take the patient before ED outtime
            assert adm.ed.intime < adm.admittime < adm.ed.outtime and adm.admittime <= segs[0].intime
        if adm.died:
            assert k == len(p.admissions) - 1 and p.dod == adm.dischtime
        plan = make_plan(7, p, k)
        assert all(adm.admittime <= o.start < o.stop <= adm.dischtime for o in plan.orders)
        assert plan.diagnoses[0] == adm.condition.key
        last = adm.dischtime
    ends = [a.dischtime for a in p.admissions] + [e.outtime for e in p.ed_visits]
    if p.dod is not None:
        assert p.dod >= max(ends)
