"""The build_timelines job: its shipped configs, config validation and one run through the entrypoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipeline.timeline.config import TimelineConfig
from ray_jobs.config_loader import ConfigError, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "ray_jobs" / "configs" / "build_timelines"


def test_every_shipped_config_loads():
    found = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert [p.name for p in found] == ["demo.yaml", "real_mimic.yaml"]
    demo, real = (load_config(TimelineConfig, p) for p in found)
    assert demo.synthetic.num_patients == 200 and demo.mimic_root is None
    assert real.mimic_root == Path("/data/physionet.org/files/mimiciv/2.2")
    assert set(real.module_roots) == {"note", "ed"}


@pytest.mark.parametrize("data,message", [
    ({"output_dir": "/tmp/x"}, "neither is set"),
    ({"output_dir": "/tmp/x", "mimic_root": "/m", "synthetic": {"num_patients": 2}}, "both are set"),
    ({"output_dir": "/tmp/x", "mimic_root": "/m", "module_roots": {"notes": "/n"}}, "unknown module"),
    ({"output_dir": "/tmp/x", "synthetic": {}, "mappings_dir": "/m"}, "only apply to mimic_root"),
    ({"output_dir": "/tmp/x", "mimic_root": "/m", "num_bucket": 3}, "unknown key"),
    ({"mimic_root": "/m"}, "output_dir: required"),
])
def test_invalid_configs_are_rejected_before_any_work(tmp_path, data, message):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message):
        load_config(TimelineConfig, path)


@pytest.mark.slow
def test_job_entrypoint_builds_the_demo_config(ray_session, tmp_path, capsys):
    from ray_jobs.build_timelines import main

    main(["--config", str(CONFIG_DIR / "demo.yaml"), f"output_dir={tmp_path}", "synthetic.num_patients=12",
          "num_buckets=2"])
    printed = capsys.readouterr().out
    assert f"timelines: {tmp_path / 'timelines'} (12 patients" in printed
    assert len(list((tmp_path / "markdown").glob("part-*.parquet"))) == 2


def test_bad_source_exits_with_the_message_before_starting_ray(tmp_path, capsys):
    from ray_jobs.build_timelines import main

    (tmp_path / "mimic").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([f"mimic_root={tmp_path / 'mimic'}", f"output_dir={tmp_path / 'out'}"])
    assert exit_info.value.code == 2
    assert "must be the folder that contains hosp/" in capsys.readouterr().err
