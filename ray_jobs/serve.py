"""Serve a model (OpenAI-compatible API + /v1/ehr/predict) on Ray Serve.

    python -m ray_jobs.serve --config ray_jobs/configs/serve/demo.yaml [http.port=8001 ...]
    ray job submit --working-dir . -- python -m ray_jobs.serve --config ray_jobs/configs/serve/demo.yaml
"""

from jobkit.config import parse_job_args
from serving.config import ServeConfig
from serving.launch import run

if __name__ == "__main__":
    run(parse_job_args(ServeConfig, description=__doc__))
