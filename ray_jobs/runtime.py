"""Kept for existing imports: Ray connection and logging setup live in :mod:`jobkit.ray_runtime`."""

from jobkit.ray_runtime import init_ray, setup_logging

__all__ = ["init_ray", "setup_logging"]
