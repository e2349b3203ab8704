"""What every job and library shares to start work: strict YAML configs and the connection to Ray.

- ``jobkit.config``       load one strict pydantic config from YAML + ``key=value`` overrides (``ConfigError``)
- ``jobkit.ray_runtime``  join the cluster a job was submitted to, or start a private local Ray; logging setup

It sits below the libraries (``data_pipeline``, ``training``, ``serving``, ``evaluation``, ``rl``) and the thin
``ray_jobs`` entrypoints, and imports none of them, so the layering stays one-way:
``ray_jobs`` -> libraries -> ``jobkit``.
"""
