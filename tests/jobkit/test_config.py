"""The strict config loader every job shares: YAML + dotted overrides, all problems reported together."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from jobkit.config import ConfigError, apply_override, load_config, parse_job_args


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_patients: int = 10
    seed: int = 0


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "demo"
    inner: Inner = Field(default_factory=Inner)
    tags: list[str] = Field(default_factory=list)


@pytest.mark.parametrize(
    "start, override, expected",
    [
        ({}, "a=1", {"a": 1}),
        ({}, "a.b.c=x", {"a": {"b": {"c": "x"}}}),
        ({"a": {"b": 1}}, "a.c=[1, 2]", {"a": {"b": 1, "c": [1, 2]}}),
        ({"a": 1}, "a=", {"a": None}),
        ({}, "flag=true", {"flag": True}),
        ({}, "path=/data/mimic", {"path": "/data/mimic"}),
    ],
)
def test_apply_override(start, override, expected):
    apply_override(start, override)
    assert start == expected


@pytest.mark.parametrize("bad", ["novalue", "=3", "a.b=1"])
def test_apply_override_rejects(bad):
    data = {"a": 5}
    with pytest.raises(ConfigError, match="override"):
        apply_override(data, bad)


def test_load_defaults_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: run1\ninner:\n  num_patients: 50\n")
    cfg = load_config(Outer, path, ["inner.seed=3", "tags=[a, b]"])
    assert (cfg.name, cfg.inner.num_patients, cfg.inner.seed, cfg.tags) == ("run1", 50, 3, ["a", "b"])
    assert load_config(Outer, None) == Outer()


def test_every_problem_is_reported_with_its_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("nme: typo\ninner:\n  num_patients: many\n  extra_key: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Outer, path)
    msg = str(exc.value)
    assert str(path) in msg and "3 problem(s)" in msg
    assert "nme: unknown key" in msg
    assert "inner.extra_key: unknown key" in msg
    assert "inner.num_patients" in msg


@pytest.mark.parametrize("content, fragment", [("- a\n- b\n", "top level must be a mapping"),
                                               ("a: [unclosed\n", "not valid YAML")])
def test_bad_yaml_files(tmp_path, content, fragment):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load_config(Outer, path)


def test_missing_file_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(Outer, tmp_path / "absent.yaml")


def test_parse_job_args_exits_2_with_message(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("bogus: 1\n")
    with pytest.raises(SystemExit) as exc:
        parse_job_args(Outer, ["--config", str(path)])
    assert exc.value.code == 2
    assert "bogus: unknown key" in capsys.readouterr().err
    assert parse_job_args(Outer, ["inner.num_patients=7"]).inner.num_patients == 7


def test_validate_config_inline_does_not_mutate_input():
    from jobkit.config import validate_config

    data = {"inner": {"num_patients": 3}}
    cfg = validate_config(Outer, data, "args.config", ["inner.seed=9"])
    assert (cfg.inner.num_patients, cfg.inner.seed) == (3, 9) and data == {"inner": {"num_patients": 3}}
    with pytest.raises(ConfigError, match=r"args\.config: 1 problem\(s\).*\n  - oops: unknown key"):
        validate_config(Outer, {"oops": 1}, "args.config")


def test_relative_config_paths_resolve_from_any_cwd(tmp_path, monkeypatch):
    """A job's cwd is not always the checkout (a pod's WORKDIR, a Ray worker's): shipped presets still load."""
    from pydantic import BaseModel, ConfigDict

    from jobkit.config import PROJECT_ROOT, resolve_config_path

    class Any_(BaseModel):
        model_config = ConfigDict(extra="allow")

    monkeypatch.chdir(tmp_path)
    rel = "ray_jobs/configs/build_timelines/demo.yaml"
    assert resolve_config_path(rel) == PROJECT_ROOT / rel
    assert load_config(Any_, rel).model_dump()
    (tmp_path / "ray_jobs/configs/build_timelines").mkdir(parents=True)
    (tmp_path / rel).write_text("local: 1\n")  # a file in the cwd wins
    assert load_config(Any_, rel).model_dump() == {"local": 1}
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Any_, "no/such.yaml")


@pytest.mark.parametrize(("data", "expected"), [
    ({"output_dir": "outputs/x"}, ["output_dir"]),
    ({"output_dir": "/mnt/shared/x", "run": {"storage_path": "~/ray_results"}}, []),
    ({"run": {"storage_path": "runs", "mlflow_tracking_uri": "http://mlflow:5000"}}, ["run.storage_path"]),
    ({"run": {"mlflow_tracking_uri": "mlruns"}}, ["run.mlflow_tracking_uri"]),
    ({"data": {"paths": ["relative/input.jsonl"]}}, []),  # inputs may stay relative (they come with the upload)
    ({"stages": [{"output_dir": "a"}, {"output_dir": "/b"}]}, ["stages[0].output_dir"]),
    ({"tiny_model": {"output_dir": None}}, []),
])
def test_relative_outputs(data, expected):
    from jobkit.config import relative_outputs

    assert relative_outputs(data) == expected


def test_a_submitted_job_refuses_a_relative_output_before_any_work(tmp_path, monkeypatch, capsys):
    from jobkit.config import parse_job_args
    from training.config import SFTJobConfig

    job_cwd = tmp_path / "session" / "runtime_resources" / "working_dir_files" / "_ray_pkg_x"
    job_cwd.mkdir(parents=True)
    monkeypatch.chdir(job_cwd)
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", '{"runtime_env": {"working_dir": "gcs://_ray_pkg_x.zip"}}')
    args = ["data.paths=[x.jsonl]", "tiny_model.output_dir=/tmp/t", "run.name=s1"]
    with pytest.raises(SystemExit):
        parse_job_args(SFTJobConfig, [*args, "run.storage_path=runs"])
    err = capsys.readouterr().err
    assert "run.storage_path" in err and "Ray deletes" in err and "/mnt/shared" in err
    cfg = parse_job_args(SFTJobConfig, [*args, f"run.storage_path={tmp_path / 'runs'}"])
    assert cfg.run.storage_path == str(tmp_path / "runs")
    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR")  # a plain local run may write relative paths
    assert parse_job_args(SFTJobConfig, [*args, "run.storage_path=runs"]).run.storage_path == "runs"
