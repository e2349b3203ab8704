# GPU image for the OpenRLHF RL job (see cluster/runtime_env/openrlhf.yaml for why it is separate).
#   docker build -f cluster/docker/openrlhf.Dockerfile -t <registry>/ehr-r1-openrlhf:0.11.2 .
# Ray stays at the platform's 2.60.0; OpenRLHF is installed --no-deps with its upstream-tested engine set;
# rouge-score is what the ehr_rouge1 reward imports (the other rewards are standard library only).
FROM rayproject/ray:2.60.0-py311-cu128

RUN pip install --no-cache-dir "torch==2.13.0" "vllm==0.29.0" "transformers==5.15.0" "deepspeed==0.19.6" \
        accelerate datasets peft pylatexenc jsonlines loralib "optree>=0.15.0" torchmetrics torchdata einops \
        tensorboard aiohttp sympy rouge-score "ray[default]==2.60.0" \
 && pip install --no-cache-dir --no-build-isolation "flash-attn==2.8.3" \
 && pip install --no-cache-dir --no-deps "openrlhf==0.11.2" \
 && rm -rf "$(python -c 'import site; print(site.getsitepackages()[0])')/tests" \
 && python -c "import openrlhf.trainer.ray, flash_attn, vllm, ray; print('openrlhf stack ok', ray.__version__, vllm.__version__)"
