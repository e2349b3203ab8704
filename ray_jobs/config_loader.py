"""Kept for existing imports: the config loader lives in :mod:`jobkit.config` (below the libraries)."""

from jobkit.config import ConfigError, apply_override, load_config, parse_job_args, validate_config

__all__ = ["ConfigError", "apply_override", "load_config", "parse_job_args", "validate_config"]
