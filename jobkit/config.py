"""Load one strict pydantic config from YAML plus ``dotted.key=value`` overrides, validated before any work.

Every problem is collected and reported together, each naming the file, the field and how to fix it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config that cannot be used; the message lists every problem with its fix."""


def apply_override(data: dict[str, Any], dotted: str) -> None:
    """Apply ``a.b.c=value`` to nested ``data``; the value is parsed as YAML (``3`` -> int, ``[1,2]`` -> list)."""
    key, sep, raw = dotted.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {dotted!r}: expected key=value, e.g. synthetic.num_patients=200")
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: {err.error_count()} problem(s) in the config:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            fix = "unknown key; remove it or check its spelling against the config class"
        elif e["type"] == "missing":
            fix = "required; add it"
        else:
            fix = e["msg"]
        lines.append(f"  - {where}: {fix}")
    return "\n".join(lines)


def validate_config(model: type[M], data: dict[str, Any], source: str = "<inline config>",
                    overrides: list[str] | tuple[str, ...] = ()) -> M:
    """Validate an in-memory mapping (e.g. Serve's inline ``args.config``) with the same overrides and messages."""
    import copy

    data = copy.deepcopy(data)
    for ov in overrides:
        apply_override(data, ov)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


#: The checkout (or the project image's /home/ray/ehr-r1-ray) that holds ``ray_jobs/configs/``.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_config_path(path: str | Path) -> Path:
    """``path`` as given when it exists (relative to the cwd); a relative path that does not is looked up in the
    project root, so ``--config ray_jobs/configs/...`` works from any cwd (a Ray worker's, a pod's)."""
    path = Path(path).expanduser()
    if path.is_file() or path.is_absolute() or not (PROJECT_ROOT / path).is_file():
        return path
    return PROJECT_ROOT / path


def load_config(model: type[M], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> M:
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = resolve_config_path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass --config with a path to a YAML file")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of config keys")
        data = loaded
    return validate_config(model, data, source, overrides)


#: config keys (at any depth) a job WRITES to; inputs may stay relative (they resolve against the uploaded code)
OUTPUT_KEYS = frozenset({"output_dir", "storage_path", "prompts_path", "report_path", "index_cache_dir",
                         "mlflow_tracking_uri"})


def relative_outputs(data: Any, prefix: str = "") -> list[str]:
    """Dotted keys of :data:`OUTPUT_KEYS` whose value is a relative filesystem path (a URI with a scheme is not)."""
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}{key}"
            if key in OUTPUT_KEYS and isinstance(value, (str, Path)) and str(value) and "://" not in str(value) \
                    and not str(value).startswith(("/", "~", "file:", "sqlite:")):
                out.append(name)
            else:
                out += relative_outputs(value, name + ".")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += relative_outputs(value, f"{prefix[:-1]}[{i}].")
    return out


def in_submitted_job() -> bool:
    """True in the driver of a ``ray job submit`` job whose code came as a ``--working-dir`` upload: its cwd is
    Ray's per-job copy of that directory, which Ray deletes."""
    return bool(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")) and "runtime_resources" in os.getcwd()


def refuse_relative_outputs(cfg: BaseModel) -> None:
    """In a submitted job, a relative output path is refused before any work, naming the keys."""
    if not in_submitted_job():
        return
    keys = relative_outputs(cfg.model_dump(mode="json"))
    if keys:
        raise ConfigError(
            f"{', '.join(keys)}: relative output path(s) in a submitted job would be written into Ray's copy of the "
            f"working dir ({os.getcwd()}), which Ray deletes; give absolute paths on shared storage, e.g. "
            f"{keys[0]}=/mnt/shared/... (or $PWD/outputs/... for a local head)")


def parse_job_args(model: type[M], argv: list[str] | None = None, description: str = "") -> M:
    """The argv shape every ``ray_jobs`` entrypoint shares: ``--config FILE [key=value ...]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="YAML config file; omitted keys take the config class defaults")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. synthetic.num_patients=200")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(model, args.config, args.overrides)
        refuse_relative_outputs(cfg)
        return cfg
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
