"""The whole chain as one job (``ray_jobs.pipeline``): its config (:mod:`orchestration.config`), the run
(:mod:`orchestration.chain`) and the closing summary (:mod:`orchestration.summary`)."""
