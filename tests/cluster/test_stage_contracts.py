"""Each shipped cluster file runs as shipped: the job it submits imports only what its image (or runtime env, or
the launcher's virtualenv) installs, and every path a stage reads is one an earlier stage writes (or the data owner
provides). Static: configs are loaded through each job's own config class; no image is built, nothing runs.

Entrypoints that are not in this checkout (stages added on other branches) are reported as skipped with their
name; rerun after merging them.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest

from tests.cluster.manifests import (CLUSTER, GPU_ONLY, REPO, SHARED_MOUNT, Invocation, closure, distributions_of,
                                     existing_stage_modules, image_requirements, kuberay_invocations, load_yaml,
                                     pip_install_requirements)
from tests.project_imports import third_party_imports

# The order a team applies the RayJobs in (cluster/README.md), then the endpoint.
PIPELINE_ORDER = [
    "kuberay/rayjob-build-timelines.yaml",
    "kuberay/rayjob-build-datasets.yaml",
    "kuberay/rayjob-thinking-graph.yaml",
    "kuberay/rayjob-train-sft-stage1.yaml",
    "kuberay/rayjob-train-sft-stage2.yaml",
    "kuberay/rayjob-train-rl.yaml",
    "kuberay/rayjob-evaluate.yaml",
    "kuberay/rayservice.yaml",
]
# Provided by the data owner / operator before any job runs (cluster/README.md "Kubernetes"), never written by one.
# UMLS is licensed (a UTS account per user): the operator copies a release under umls/, no job writes it.
EXTERNAL_INPUTS = [f"{SHARED_MOUNT}/physionet.org/", f"{SHARED_MOUNT}/models/", f"{SHARED_MOUNT}/hf-cache/",
                   f"{SHARED_MOUNT}/umls/"]


# ---- what each stage reads and writes, from its validated config ----------------------------------------------

def _timelines_io(cfg):
    reads = [cfg.mimic_root, *cfg.module_roots.values(), cfg.mappings_dir]
    return [str(p) for p in reads if p], [str(Path(cfg.output_dir) / "timelines")], set()


def _datasets_io(cfg):
    reads = [cfg.timelines_dir, cfg.tokenizer_path]
    out = Path(cfg.output_dir)
    writes = [str(out / name / f"{name}.{ext}") for name in cfg.presets for ext in ("parquet", "jsonl")]
    writes += [str(out / name / "provenance.parquet") for name in cfg.presets]  # which patient/time a sample cut
    return [str(p) for p in reads if p], writes, {"transformers"} if cfg.tokenizer_path else set()


def _thinking_graph_io(cfg):
    # data_pipeline.thinking_graph.pipeline.resolve_inputs: the timeline shards, EHR-Ins records + provenance; the
    # UMLS release (None = the made-up UMLS the job writes itself, demos only).
    ins = Path(cfg.ehr_ins_dir)
    reads = [cfg.timelines_dir, str(ins / "ehr_ins.parquet"), str(ins / "provenance.parquet")]
    reads += [cfg.umls.path] if cfg.umls.path else []
    return reads, [str(Path(cfg.output_dir) / cfg.output_name)], set()


def _sft_io(cfg):
    run = Path(cfg.run.storage_path) / cfg.run.name
    # HF Trainer's report_to=["mlflow"] imports mlflow inside transformers, out of sight of a static scan.
    imports = {"mlflow"} if cfg.run.mlflow_tracking_uri else set()
    return [p for p in [cfg.model_path, *cfg.data.paths] if p], [str(run / "final_model")], imports


def _rl_io(cfg):
    # rl.grpo.run: prompts exported to data.prompts_path (default <run dir>/prompts.jsonl), the policy to
    # <run dir>/final_model (OpenRLHF's --ckpt.output_dir, TRL's final save alike).
    run = Path(cfg.run.storage_path).expanduser() / cfg.run.name
    reads = [cfg.model_path]
    for source in cfg.data.sources:
        reads += [source.path] + ([source.labels] if source.labels else [])
    prompts = cfg.data.prompts_path or str(run / "prompts.jsonl")
    if cfg.backend == "openrlhf":
        imports = {"openrlhf"}  # the submitted `python -m openrlhf.cli.train_ppo_ray`
    else:
        imports = ({"mlflow"} if cfg.run.mlflow_tracking_uri else set()) | ({"vllm"} if cfg.trl.use_vllm else set())
    return reads, [str(prompts), str(run / "final_model")], imports


def _evaluate_io(cfg):
    b = cfg.benchmark
    reads = [cfg.model.path] if cfg.backend.kind != "http" and cfg.model.path else []
    reads += list(b.paths) + ([b.ehrshot.labels] if b.kind == "ehrshot" and b.ehrshot.labels else [])
    reads += list(cfg.compare_with)
    # ray.data.llm imports vllm inside Ray Data's engine actors, out of sight of a static scan.
    imports = {"vllm"} if cfg.backend.kind == "vllm" else set()
    return reads, [str(Path(cfg.output_dir) / cfg.run_name)], imports


def _serve_io(cfg):
    return [cfg.model.path] if cfg.model.path else [], [], set()


#: entrypoint module -> (config class import path, reads/writes/extra imports of a validated config).
#: A stage added on another branch is listed here by whoever merges it.
STAGE_IO = {
    "ray_jobs.build_timelines": ("data_pipeline.timeline.config:TimelineConfig", _timelines_io),
    "ray_jobs.build_datasets": ("data_pipeline.datasets.config:BuildDatasetsConfig", _datasets_io),
    "ray_jobs.thinking_graph": ("data_pipeline.thinking_graph.config:ThinkingGraphConfig", _thinking_graph_io),
    "ray_jobs.train_sft": ("training.config:SFTJobConfig", _sft_io),
    "ray_jobs.train_rl": ("rl.config:RLJobConfig", _rl_io),
    "ray_jobs.evaluate": ("evaluation.config:EvaluateConfig", _evaluate_io),
    "serving.app": ("serving.config:ServeConfig", _serve_io),
}

INVOCATIONS = {inv.label: inv for inv in kuberay_invocations()}


def _module_file(module: str) -> Path:
    base = REPO / module.replace(".", "/")
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"


def _pending(inv: Invocation) -> str | None:
    module_file = _module_file(inv.module)
    if not module_file.exists():
        module_file = REPO / (inv.module.replace(".", "/") + ".py")
    missing = [p for p in [module_file, inv.config and REPO / inv.config] if p and not p.exists()]
    if missing:
        return (f"{inv.label}: {', '.join(str(p.relative_to(REPO)) for p in missing)} not in this checkout "
                f"(entrypoint {inv.module}, added on another branch); rerun after merging it")
    return None


def _load(inv: Invocation, shared: Path):
    """The job's validated config with the shared volume stood up under ``shared`` (some config classes check
    that inputs exist); paths in the result are mapped back to /mnt/shared."""
    from jobkit.config import load_config

    class_path, _ = STAGE_IO[inv.module]
    module, _, name = class_path.partition(":")
    moved = [ov.replace(SHARED_MOUNT, str(shared)) for ov in inv.overrides]
    # ray_jobs.train_rl's --backend X is the config's backend=X (ray_jobs/train_rl.py _split_flags).
    flags = dict(zip(inv.flags[::2], inv.flags[1::2]))
    if inv.module == "ray_jobs.train_rl" and "--backend" in flags:
        moved.append(f"backend={flags['--backend']}")
    for path in re.findall(re.escape(str(shared)) + r"[^\s,\]}]*", " ".join(moved)):
        target = Path(path)
        if target.suffix in {".parquet", ".jsonl", ".json"}:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
    cfg = load_config(getattr(importlib.import_module(module), name), REPO / inv.config, moved)
    return _Remapped(cfg, str(shared))


class _Remapped:
    """Attribute access on a config whose string/Path values under the fake shared root read as /mnt/shared."""

    def __init__(self, obj, shared: str):
        self._obj, self._shared = obj, shared

    def __getattr__(self, name):
        value = getattr(self._obj, name)
        return _remap(value, self._shared)


def _remap(value, shared: str):
    if isinstance(value, (str, Path)):
        text = str(value)
        return type(value)(text.replace(shared, SHARED_MOUNT)) if shared in text else value
    if isinstance(value, list):
        return [_remap(v, shared) for v in value]
    if isinstance(value, dict):
        return {k: _remap(v, shared) for k, v in value.items()}
    if hasattr(value, "model_fields"):
        return _Remapped(value, shared)
    return value


def stage_io(inv: Invocation, tmp_path: Path):
    assert inv.module in STAGE_IO, (f"{inv.label}: no I/O contract for {inv.module}; add its config class and "
                                    "reads/writes to STAGE_IO in tests/cluster/test_stage_contracts.py")
    monkey_env = {"EHR_SERVE_API_KEYS": "test-key"}  # the serve preset refuses 0.0.0.0 without API keys
    old = {k: os.environ.get(k) for k in monkey_env}
    os.environ.update(monkey_env)
    try:
        cfg = _load(inv, tmp_path / "mnt-shared")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return STAGE_IO[inv.module][1](cfg)


# ---- imports are installed where the job runs -----------------------------------------------------------------

def missing_imports(module: str, extra_imports: set[str], environments) -> list[str]:
    """One line per (environment, import) the environment does not install."""
    needed = third_party_imports(module)
    for name in extra_imports:
        needed.setdefault(name, set()).add("(config-driven)")
    problems = []
    for env_label, requirements, has_gpu in environments:
        installed = closure(requirements)
        for top, importers in sorted(needed.items()):
            dists = distributions_of(top)
            if not dists:
                problems.append(f"{env_label}: cannot tell which distribution provides `import {top}` "
                                f"(imported by {sorted(importers)[0]}); install it here or add it to KNOWN_MODULES")
            elif not dists & installed and not (dists & GPU_ONLY and not has_gpu):
                problems.append(f"{env_label}: `import {top}` ({'/'.join(sorted(dists))}, imported by "
                                f"{sorted(importers)[0]}) is not installed")
    return problems


@pytest.mark.parametrize("label", sorted(INVOCATIONS))
def test_kuberay_job_imports_are_installed_in_its_images(label, tmp_path):
    inv = INVOCATIONS[label]
    reason = _pending(inv)
    if reason:
        pytest.skip(reason)
    extra = stage_io(inv, tmp_path)[2] if inv.module in STAGE_IO else set()
    problems = missing_imports(inv.module, extra, inv.environments)
    assert not problems, "\n".join(problems)


def test_the_long_lived_cluster_can_run_every_stage():
    """Jobs submitted to raycluster.yaml run on its head (driver) and its CPU and GPU groups."""
    from tests.cluster.manifests import cluster_environments

    spec = load_yaml(CLUSTER / "kuberay/raycluster.yaml")["spec"]
    envs = cluster_environments(spec, load_yaml(CLUSTER / "runtime_env/default.yaml"))
    problems = [p for m in existing_stage_modules() if m != "ray_jobs.train_rl"
                for p in missing_imports(m, {"mlflow"} if m == "ray_jobs.train_sft" else set(), envs)]
    assert not problems, "\n".join(problems)


def _launcher_environments(name: str) -> list[tuple[str, list[str], bool]]:
    cfg = load_yaml(CLUSTER / "launcher" / name)
    if "docker" in cfg:
        docker = cfg["docker"]
        envs = [("head", image_requirements(docker["head_image"]), False)]
        for node, node_cfg in cfg.get("available_node_types", {}).items():
            if node == cfg["head_node_type"]:
                continue
            image = node_cfg.get("docker", {}).get("worker_image", docker["worker_image"])
            setup = node_cfg.get("worker_setup_commands", cfg.get("worker_setup_commands", []))
            reqs = image_requirements(image) + [r for c in setup for r in pip_install_requirements(c)]
            envs.append((f"{node} ({image})", reqs, node_cfg.get("resources", {}).get("GPU", 0) > 0))
        return envs
    # no Docker: what setup_commands pip-install into the nodes' Python (a virtualenv)
    reqs = [r for c in cfg["setup_commands"] for r in pip_install_requirements(c)]
    return [("every node (setup_commands)", reqs, True)]


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "local.yaml"])
def test_launcher_nodes_install_what_every_stage_imports(name):
    envs = _launcher_environments(name)
    problems = [p for m in existing_stage_modules() if m != "ray_jobs.train_rl"
                for p in missing_imports(m, {"mlflow"} if m == "ray_jobs.train_sft" else set(), envs)]
    assert not problems, "\n".join(problems)


def test_local_launcher_starts_ray_with_the_virtualenv_python():
    """A job's entrypoint is a shell command run with the PATH of `ray start`: `python` must be the venv's."""
    cfg = load_yaml(CLUSTER / "launcher/local.yaml")
    venvs = {m.group(1) for c in cfg["setup_commands"] for m in re.finditer(r"(~/[\w.-]+)/bin/pip install", c)}
    assert len(venvs) == 1, f"setup_commands should install into one virtualenv, found {venvs}"
    venv_bin = venvs.pop().replace("~", "$HOME") + "/bin"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in cfg[key] if "ray start" in c]
        assert start, key
        for command in start:
            path_at = command.find(f"export PATH={venv_bin}:$PATH")
            assert 0 <= path_at < command.find("ray start"), (
                f"{key}: put {venv_bin} first on PATH before `ray start`, or jobs run the system python")


def test_runtime_envs_install_nothing_the_images_lack():
    """Runtime-env pip installs run on every pod at start (multi-GB for CUDA torch): the images carry it all."""
    import yaml

    docs = [load_yaml(p) for p in sorted((CLUSTER / "kuberay").glob("rayjob-*.yaml"))]
    for doc in docs:
        env = yaml.safe_load(doc["spec"].get("runtimeEnvYAML") or "{}")
        assert not env.get("pip") and "working_dir" not in env, (
            f"{doc['metadata']['name']}: code and libraries come from the project image, not the runtime env")


# ---- every read is an earlier write -----------------------------------------------------------------------------

def _covered(path: str, writes: list[str]) -> bool:
    return any(path == w or path.startswith(w.rstrip("/") + "/") for w in writes)


def test_pipeline_order_lists_every_kuberay_job():
    assert sorted(PIPELINE_ORDER) == sorted(INVOCATIONS), "add new RayJobs to PIPELINE_ORDER in pipeline order"


def test_every_path_a_stage_reads_is_written_by_an_earlier_stage(tmp_path):
    written: list[str] = []
    pending: list[str] = []
    problems: list[str] = []
    for i, label in enumerate(PIPELINE_ORDER):
        inv = INVOCATIONS[label]
        reason = _pending(inv)
        if reason:
            pending.append(reason)
            continue
        reads, writes, _ = stage_io(inv, tmp_path / str(i))
        for path in reads:
            path = str(path)
            if _covered(path, EXTERNAL_INPUTS) or _covered(path, written):
                continue
            problems.append(f"{label} ({inv.module}) reads {path}, which no earlier stage writes "
                            f"(earlier writes: {written or 'none'})")
        written += writes
    if problems and pending:
        pytest.skip("unresolved reads while stages are missing from this checkout:\n" + "\n".join(problems + pending))
    assert not problems, "\n".join(problems)
    if pending:
        pytest.skip("reads connect for the stages present; not checked: " + "; ".join(pending))


def test_read_write_check_catches_a_broken_chain():
    """The check itself: a read nobody wrote is a problem, a read under a written folder is not."""
    assert _covered("/mnt/shared/timelines/timelines", ["/mnt/shared/timelines/timelines"])
    assert _covered("/mnt/shared/timelines/timelines/part-0.parquet", ["/mnt/shared/timelines/timelines"])
    assert not _covered("/mnt/shared/datasets/ehr_ins_reasoning/ehr_ins_reasoning.parquet",
                        ["/mnt/shared/datasets/ehr_ins/ehr_ins.parquet"])
    assert not _covered("/mnt/shared/timelines2", ["/mnt/shared/timelines"])


def test_import_check_catches_the_plain_ray_image():
    """The check itself: the official Ray image lacks numba (timelines) and transformers/deepspeed (SFT)."""
    env = [("plain", image_requirements("rayproject/ray:2.60.0-py311"), False)]
    assert any("numba" in p for p in missing_imports("ray_jobs.build_timelines", set(), env))
    sft = missing_imports("ray_jobs.train_sft", {"mlflow"}, env)
    assert any("transformers" in p for p in sft) and any("mlflow" in p for p in sft)


@pytest.mark.parametrize("label", [label for label in sorted(INVOCATIONS) if INVOCATIONS[label].config])
def test_shipped_jobs_write_only_to_absolute_paths(label, tmp_path, monkeypatch):
    """A submitted job refuses relative output paths (they land in Ray's per-job copy of the working dir, which Ray
    deletes): every shipped RayJob / RayService must name absolute ones."""
    from jobkit.config import relative_outputs

    inv = INVOCATIONS[label]
    if _pending(inv):
        pytest.skip(_pending(inv))
    if inv.module not in STAGE_IO:
        pytest.skip(f"{inv.module}: no config class registered in STAGE_IO")
    monkeypatch.setenv("EHR_SERVE_API_KEYS", "test-key")  # the RayService's key comes from a Kubernetes secret
    cfg = _load(inv, tmp_path)._obj
    assert relative_outputs(cfg.model_dump(mode="json")) == []
