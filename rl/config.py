"""The strict config of one RL job (GRPO with verifiable rewards), shared by both backends.

``backend: trl`` runs TRL's GRPOTrainer under Ray Train here (CPU workers, or GPUs with vLLM generation);
``backend: openrlhf`` builds OpenRLHF 0.11 argv (:mod:`rl.openrlhf.argv`) and submits it to a GPU Ray cluster.
The data, reward and algorithm sections mean the same thing for both. Defaults live here only; presets under
``ray_jobs/configs/train_rl/`` set what differs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from training.config import RunSpec, ScalingSpec  # the same run and scaling settings as the SFT stages


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptSourceSpec(_Strict):
    """One input of the RL prompt export (:mod:`rl.prompts.sources`)."""

    kind: Literal["ehr_ins", "medcalc", "trial_matching", "ehrshot"]
    path: str
    """ehr_ins: EHR-Ins jsonl/parquet; medcalc: MedCalc-Bench CSV; trial_matching: a TrialGPT-style directory;
    ehrshot: the EHRSHOT MEDS release (data/, metadata/, labels/<task>/)."""
    tasks: list[str] | None = None
    """ehr_ins and ehrshot: keep these task names (all when None)."""
    labels: str | None = None
    """ehrshot only: the MEDS label folder (default {path}/labels)."""
    split: str | None = "train"
    """ehrshot only: the subject split to take prompts from (metadata/subject_splits.parquet; null = all).
    Evaluation uses held_out: never train on it."""
    qrels: str = "qrels/test.tsv"
    """trial_matching only: the qrels file inside the directory."""
    reweight_classes: bool = False
    """ehrshot only: reward weight 0.5 * N / N_class (EHRMIND's balanced-accuracy reward)."""
    max_samples: int | None = Field(None, ge=1)
    """At most this many prompts: a seeded sample with an equal share per task (the files run task by task)."""
    thinking: Literal["task_default", "off"] = "task_default"
    """ehr_ins: task_default thinks on decision and text tasks (EHR-R1); off answers every task after the empty
    think block, the mode a model trained without reasoning chains can finish within a short completion budget."""


class PassRateSpec(_Strict):
    """Keep the prompts the start model sometimes solves (:mod:`rl.grpo.pass_rate`): GRPO learns nothing from a
    group whose completions all get the same reward. Backend trl only (OpenRLHF filters online:
    ``--algo.dynamic_filtering_enable`` in ``openrlhf.extra_args``)."""

    keep: int = Field(16, ge=1)
    """At most this many prompts, those whose pass rate is nearest half-way first, one task at a time."""
    samples: int = Field(4, ge=2)
    """Completions sampled per candidate prompt (with grpo's temperature, top_p, top_k, max_completion_length)."""
    recheck_samples: int = Field(8, ge=1)
    """After training: completions per kept prompt, from the start model and the final policy on fresh seeds
    (``pass_rate_start`` / ``pass_rate_final`` in ``rl_check.json``)."""


class DataSpec(_Strict):
    sources: list[PromptSourceSpec] = Field(min_length=1)
    prompts_path: str | None = None
    """Where the exported prompt jsonl goes; default ``{run.storage_path}/{run.name}/prompts.jsonl``."""
    seed: int = 0
    """Shuffle seed of the mixed sources."""
    select_by_pass_rate: PassRateSpec | None = None
    """Export candidates from ``sources``, keep those the start model sometimes solves; None keeps them all."""


class GRPOSpec(_Strict):
    """The algorithm, in both backends' terms (TRL GRPOTrainer / OpenRLHF group_norm)."""

    num_generations: int = Field(8, ge=2)
    """Completions per prompt (the group); the reference used 16, EHRMIND 8-12."""
    prompts_per_step: int = Field(4, ge=1)
    """Prompts per optimizer step (the reference: 4 prompts x 16 = 64 completions per step)."""
    max_completion_length: int = Field(2048, ge=1)
    max_prompt_length: int = Field(10000, ge=16)
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(20, ge=0)
    """TRL only (OpenRLHF 0.11 has no top-k flag)."""
    learning_rate: float = Field(2e-6, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    kl_coef: float = Field(0.001, ge=0)
    """KL-to-reference loss coefficient (TRL beta; OpenRLHF --algo.kl.init_coef with the k3 loss). 0 drops the
    reference model."""
    clip_epsilon: float = Field(0.2, gt=0, lt=1)
    advantage_estimator: Literal["group_norm", "dr_grpo", "reinforce_baseline", "rloo"] = "group_norm"
    """OpenRLHF's estimator; group_norm is GRPO. TRL always normalises per group (scale_rewards=group)."""
    num_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    """> 0 overrides num_epochs."""
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(300, ge=1)
    seed: int = 42


class TRLSpec(_Strict):
    gradient_accumulation_steps: int = Field(1, ge=1)
    use_vllm: bool = False
    """Generate with vLLM (GPU; colocated with training, TRL's vllm_mode=colocate)."""
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    bf16: bool = False
    gradient_checkpointing: bool = False


class OpenRLHFSpec(_Strict):
    """Placement and engine settings of the OpenRLHF run (GPUs)."""

    actor_num_nodes: int = Field(1, ge=1)
    actor_gpus_per_node: int = Field(8, ge=1)
    ref_num_nodes: int = Field(1, ge=1)
    ref_gpus_per_node: int = Field(8, ge=1)
    vllm_num_engines: int = Field(8, ge=1)
    vllm_tensor_parallel_size: int = Field(1, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    colocate_all: bool = True
    """Actor, reference and vLLM engines share the GPUs (hybrid engine, with sleep mode)."""
    zero_stage: Literal[0, 1, 2, 3] = 3
    bf16: bool = True
    packing_samples: bool = True
    gradient_checkpointing: bool = True
    rollout_micro_batch_size: int = Field(8, ge=1)
    train_micro_batch_size: int = Field(4, ge=1)
    launch: Literal["in_job", "submit"] = "in_job"
    """in_job: this process runs ``python -m openrlhf.cli.train_ppo_ray`` and exits with its status (the RL RayJob's
    entrypoint: the job is the RL run, its logs and status are the run's). submit: submit it as a separate Ray job
    to the dashboard at ``address``, follow its logs, and exit non-zero unless it SUCCEEDED (from a laptop)."""
    reward_file: str | None = None
    """A custom reward hook (a path every vLLM node can read); None writes the run's own hook to
    ``{run}/reward_func.py``, which scores with this config's ``reward`` weights."""
    address: str | None = None
    """launch submit: the Ray dashboard (http://head:8265); default RAY_API_SERVER_ADDRESS, or RAY_ADDRESS when it
    is an http(s) address (inside a Ray job RAY_ADDRESS is the GCS, which cannot take job submissions)."""
    runtime_env: str = "cluster/runtime_env/openrlhf.yaml"
    """launch submit: the submitted job's runtime env (working_dir = this repository is added)."""
    submission_id: str | None = None
    extra_args: list[str] = Field(default_factory=list)
    """Verbatim extra OpenRLHF flags (checked by OpenRLHF's own parser before submission)."""


class RLJobConfig(_Strict):
    backend: Literal["trl", "openrlhf"] = "trl"
    model_path: str
    """The stage-2 (reasoning SFT) final_model: an HF checkpoint with a chat template."""
    data: DataSpec
    reward: dict[str, float] = Field(default_factory=lambda: {"task": 1.0})
    """Reward components and weights: ``task`` is each sample's own metric (named by its label), anything else a
    registered reward applied to every sample (e.g. ehr_format)."""
    grpo: GRPOSpec = GRPOSpec()
    trl: TRLSpec = TRLSpec()
    openrlhf: OpenRLHFSpec = OpenRLHFSpec()
    scaling: ScalingSpec = ScalingSpec()
    run: RunSpec
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _cross_field(self) -> RLJobConfig:
        from rl.rewards import reward_names

        errors: list[str] = []
        known = set(reward_names())
        for name in self.reward:
            if name != "task" and name not in known and ":" not in name:
                errors.append(f"reward.{name}: unknown reward; use 'task', one of {sorted(known)} or an import "
                              "path 'package.module:function'")
        if not self.reward:
            errors.append("reward: needs at least one component, e.g. {task: 1.0}")
        g = self.grpo
        if self.backend == "trl":
            per_step = g.prompts_per_step * g.num_generations
            denom = self.scaling.num_workers * self.trl.gradient_accumulation_steps
            if per_step % denom:
                errors.append(f"grpo.prompts_per_step x grpo.num_generations = {per_step} completions per step must "
                              f"be a multiple of scaling.num_workers x trl.gradient_accumulation_steps = {denom}")
            if self.trl.use_vllm and not self.scaling.use_gpu:
                errors.append("trl.use_vllm: vLLM generation inside the trainer needs GPUs; set scaling.use_gpu: "
                              "true or trl.use_vllm: false")
            if self.trl.bf16 and not self.scaling.use_gpu:
                errors.append("trl.bf16: not supported on CPU workers; set it false or scaling.use_gpu: true")
            if g.save_steps % g.logging_steps:
                errors.append(f"grpo.save_steps ({g.save_steps}) must be a multiple of grpo.logging_steps "
                              f"({g.logging_steps})")
        if self.data.select_by_pass_rate is not None and self.backend != "trl":
            errors.append("data.select_by_pass_rate: runs the start model before a trl run; OpenRLHF filters groups "
                          "online instead (openrlhf.extra_args: ['--algo.dynamic_filtering_enable'])")
        if self.backend == "openrlhf":
            if g.max_steps > 0:
                errors.append("grpo.max_steps: OpenRLHF 0.11 has no step limit; set grpo.num_epochs (episodes over "
                              "the prompts) and cap the prompts with data.sources[].max_samples")
            if "top_k" in g.model_fields_set and g.top_k != 0:
                errors.append("grpo.top_k: OpenRLHF 0.11 samples without top-k; remove it (or set 0)")
        if g.num_epochs != int(g.num_epochs) and g.max_steps <= 0:
            errors.append("grpo.num_epochs: fractional epochs need grpo.max_steps; use a whole number")
        o = self.openrlhf
        if self.backend == "openrlhf" and o.colocate_all:
            actors = o.actor_num_nodes * o.actor_gpus_per_node
            if actors != o.vllm_num_engines * o.vllm_tensor_parallel_size:
                errors.append(f"openrlhf.colocate_all: actor GPUs ({actors}) must equal vllm_num_engines x "
                              f"vllm_tensor_parallel_size ({o.vllm_num_engines * o.vllm_tensor_parallel_size})")
            if g.kl_coef > 0 and (o.ref_num_nodes, o.ref_gpus_per_node) != (o.actor_num_nodes, o.actor_gpus_per_node):
                errors.append("openrlhf.ref_*: a colocated reference model needs the actor's nodes and GPUs")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def completions_per_step(self) -> int:
        return self.grpo.prompts_per_step * self.grpo.num_generations
