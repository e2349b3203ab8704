"""Generation mechanics: determinism, chunk-size independence, module selection, idempotence, atomic
replacement, config validation, CLI and the realistic volume preset (small cohorts)."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from data_pipeline.mimic.synthetic import (MANIFEST, SyntheticCohortConfig, generate_cohort,
                                           generate_cohort_from_config, is_complete)
from data_pipeline.mimic.synthetic.__main__ import main as cli_main

N = 25


def _files(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return generate_cohort(tmp_path_factory.mktemp("gen") / "base", num_patients=N, seed=3)


def test_same_seed_gives_identical_bytes(base, tmp_path):
    again = generate_cohort(tmp_path / "again", num_patients=N, seed=3)
    assert _files(again) == _files(base)


def test_gzip_header_has_no_timestamp(base):
    data = (base / "hosp" / "patients.csv.gz").read_bytes()
    assert data[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field
    with gzip.open(base / "hosp" / "patients.csv.gz", "rt") as fh:
        assert fh.readline().startswith("subject_id,")


def test_different_seed_gives_different_cohort(base, tmp_path):
    other = generate_cohort(tmp_path / "other", num_patients=N, seed=4)
    a, b = _files(base), _files(other)
    assert a.keys() == b.keys()
    assert a["hosp/patients.csv.gz"] != b["hosp/patients.csv.gz"]
    assert a["hosp/labevents.csv.gz"] != b["hosp/labevents.csv.gz"]
    # dictionaries and mappings do not depend on the seed (apart from provider/caregiver pools)
    assert a["mappings/ndc_atc.csv.gz"] == b["mappings/ndc_atc.csv.gz"]


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_chunk_size_does_not_change_output(base, tmp_path, chunk_size):
    chunked = generate_cohort(tmp_path / "chunked", num_patients=N, seed=3, chunk_size=chunk_size)
    assert _files(chunked) == _files(base)


def test_hosp_only_cohort_has_no_other_modules_and_same_hosp(base, tmp_path):
    hosp = generate_cohort(tmp_path / "hosp_only", num_patients=N, seed=3, modules=("hosp",))
    assert sorted(p.name for p in hosp.iterdir()) == [MANIFEST, "hosp", "mappings"]
    full, only = _files(base), _files(hosp)
    for rel in only:
        if rel.startswith("hosp/"):
            assert only[rel] == full[rel], rel


def test_modules_without_icu(tmp_path):
    root = generate_cohort(tmp_path / "no_icu", num_patients=5, seed=0, modules=("hosp", "ed", "note"))
    assert not (root / "icu").exists()
    assert (root / "ed" / "edstays.csv.gz").is_file() and (root / "note" / "discharge.csv.gz").is_file()


def test_second_call_with_same_config_returns_at_once(tmp_path):
    out = generate_cohort(tmp_path / "c", num_patients=5, seed=1)
    stamp = (out / MANIFEST).stat().st_mtime_ns
    again = generate_cohort(tmp_path / "c", num_patients=5, seed=1)
    assert again == out and (out / MANIFEST).stat().st_mtime_ns == stamp
    cfg = SyntheticCohortConfig(num_patients=5, seed=1)
    assert is_complete(out, cfg)
    assert not is_complete(out, cfg.model_copy(update={"seed": 2}))


def test_changed_config_regenerates_in_place(tmp_path):
    out = generate_cohort(tmp_path / "c", num_patients=5, seed=1)
    out2 = generate_cohort(tmp_path / "c", num_patients=6, seed=1)
    assert out2 == out
    assert len(pd.read_csv(out / "hosp" / "patients.csv.gz")) == 6
    assert json.loads((out / MANIFEST).read_text())["config"]["num_patients"] == 6
    assert not list(tmp_path.glob(".c.tmp-*"))


def test_incomplete_cohort_is_regenerated(tmp_path):
    out = generate_cohort(tmp_path / "c", num_patients=4, seed=0)
    (out / "hosp" / "labevents.csv.gz").unlink()
    assert not is_complete(out, SyntheticCohortConfig(num_patients=4, seed=0))
    generate_cohort(tmp_path / "c", num_patients=4, seed=0)
    assert (out / "hosp" / "labevents.csv.gz").is_file()


def test_interrupted_run_leaves_no_partial_cohort(tmp_path, monkeypatch):
    from data_pipeline.mimic.synthetic import generate as gen

    real = gen.write_patient_rows

    def failing(ctx, idx):
        if idx == 3:
            raise KeyboardInterrupt("simulated interruption")
        real(ctx, idx)

    monkeypatch.setattr(gen, "write_patient_rows", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_cohort(tmp_path / "c", num_patients=6, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="precious.txt"):
        generate_cohort(target, num_patients=2)
    assert (target / "precious.txt").read_text() == "keep me"


def test_refuses_to_replace_a_mimic_like_folder_without_manifest(tmp_path):
    target = tmp_path / "mimic-iv"
    (target / "hosp").mkdir(parents=True)
    (target / "hosp" / "patients.csv.gz").write_bytes(b"real data")
    with pytest.raises(FileExistsError, match="not a synthetic cohort"):
        generate_cohort(target, num_patients=2)
    assert (target / "hosp" / "patients.csv.gz").read_bytes() == b"real data"


def test_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    out = generate_cohort(tmp_path / "empty", num_patients=2)
    assert (out / MANIFEST).is_file()


@pytest.mark.parametrize("kwargs,message", [
    ({"modules": ("icu", "note")}, "hosp"),
    ({"modules": ("hosp", "lab")}, "unknown module"),
    ({"volume": "huge"}, "volume"),
    ({"num_patients": 0}, "num_patients"),
    ({"num_patients": 10_000_000}, "num_patients"),
    ({"patients": 3}, "patients"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticCohortConfig(**kwargs)


def test_config_embeds_and_canonicalises_modules():
    cfg = SyntheticCohortConfig.model_validate({"num_patients": 10, "modules": ["note", "hosp"]})
    assert cfg.modules == ("hosp", "note")
    assert cfg.manifest_key()["modules"] == ["hosp", "note"]
    assert "chunk_size" not in cfg.manifest_key()


def test_generate_from_config(tmp_path):
    cfg = SyntheticCohortConfig(num_patients=3, seed=5, modules=("hosp", "icu"))
    out = generate_cohort_from_config(cfg, tmp_path / "cfg", progress=False)
    assert (out / "icu" / "icustays.csv.gz").is_file() and not (out / "ed").exists()


def test_cli_writes_cohort(tmp_path, capsys):
    rc = cli_main(["--out", str(tmp_path / "cli"), "--patients", "4", "--seed", "2", "--modules", "hosp,note"])
    assert rc == 0
    assert (tmp_path / "cli" / "note" / "discharge.csv.gz").is_file()
    assert "rows/s" in capsys.readouterr().out
    assert cli_main(["--out", str(tmp_path / "bad"), "--patients", "0"]) == 2


def test_realistic_volume_is_denser(tmp_path):
    demo = generate_cohort(tmp_path / "demo", num_patients=12, seed=0)
    real = generate_cohort(tmp_path / "real", num_patients=12, seed=0, volume="realistic")

    def per(root, rel, key, denom_rel):
        return len(pd.read_csv(root / rel)) / max(len(pd.read_csv(root / denom_rel)), 1)

    demo_labs = per(demo, "hosp/labevents.csv.gz", "hadm_id", "hosp/admissions.csv.gz")
    real_labs = per(real, "hosp/labevents.csv.gz", "hadm_id", "hosp/admissions.csv.gz")
    assert 10 <= demo_labs <= 40 and real_labs >= 100
    demo_chart = per(demo, "icu/chartevents.csv.gz", "stay_id", "icu/icustays.csv.gz")
    real_chart = per(real, "icu/chartevents.csv.gz", "stay_id", "icu/icustays.csv.gz")
    assert demo_chart <= 300 and real_chart >= 1000
    # same patients and stays, only denser measurements
    assert (real / "hosp" / "admissions.csv.gz").read_bytes() == (demo / "hosp" / "admissions.csv.gz").read_bytes()
