"""Every shipped cluster config loads, has the shape its consumer (KubeRay, the Ray cluster launcher, Ray's
runtime-env and Serve schemas) accepts, and names job entrypoints that exist in the repository.

No Kubernetes or cloud access: KubeRay's admission rules that matter here are restated from its
``validation.go``; the launcher configs go through Ray's own schema and config preparation; runtime envs and the
Serve config through Ray's own validators.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"

# Every config that should ship; a file added, renamed or lost must show up here.
EXPECTED_CONFIGS = {
    "kuberay/shared-storage.yaml",
    "kuberay/raycluster.yaml",
    "kuberay/rayjob-build-timelines.yaml",
    "kuberay/rayjob-build-datasets.yaml",
    "kuberay/rayjob-train-sft-stage1.yaml",
    "kuberay/rayjob-train-sft-stage2.yaml",
    "kuberay/rayjob-thinking-graph.yaml",
    "kuberay/rayjob-train-rl.yaml",
    "kuberay/rayjob-evaluate.yaml",
    "kuberay/rayservice.yaml",
    "launcher/aws-gpu.yaml",
    "launcher/local.yaml",
    "runtime_env/default.yaml",
    "runtime_env/openrlhf.yaml",
}
RAY_VERSION = "2.60.0"
# The project images (cluster/Dockerfile.<kind>); tests/cluster/test_stage_contracts.py checks their content.
CPU_IMAGE = "ghcr.io/your-org/ehr-r1-ray:0.1.0-cpu"
GPU_IMAGE = "ghcr.io/your-org/ehr-r1-ray:0.1.0-cuda"
RL_IMAGE = "ghcr.io/your-org/ehr-r1-ray:0.1.0-openrlhf"
SHARED_MOUNT = "/mnt/shared"
SERVE_IMPORT_PATH = "serving.app:build_app"
REQUIRED_JOB_ENV = {"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
# KubeRay: metadata.name must be a DNS-1035 label; RayJob names are further capped (the submitter Job and the
# generated cluster name derive from it).
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_RAYJOB_NAME = 47


def _all_yaml() -> list[Path]:
    return sorted(p for pattern in ("*.yaml", "*.yml") for p in CLUSTER.rglob(pattern))


def _load(path: Path) -> dict:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert len(docs) == 1, f"{path}: expected one YAML document, found {len(docs)}"
    assert isinstance(docs[0], dict), f"{path}: the top level must be a mapping"
    return docs[0]


def _rel(path: Path) -> str:
    return path.relative_to(CLUSTER).as_posix()


CONFIGS = {_rel(p): _load(p) for p in _all_yaml()}
KUBERAY = {name: cfg for name, cfg in CONFIGS.items() if cfg.get("apiVersion") == "ray.io/v1"}
RAYJOBS = {name: cfg for name, cfg in KUBERAY.items() if cfg["kind"] == "RayJob"}
LAUNCHERS = {name: cfg for name, cfg in CONFIGS.items() if name.startswith("launcher/")}


def _ray_cluster_specs() -> list[tuple[str, dict]]:
    """(label, RayClusterSpec) for every Ray cluster the KubeRay files would create."""
    specs = []
    for name, cfg in KUBERAY.items():
        spec = {"RayCluster": lambda s: s, "RayJob": lambda s: s.get("rayClusterSpec"),
                "RayService": lambda s: s["rayClusterConfig"]}[cfg["kind"]](cfg["spec"])
        if spec is not None:
            specs.append((name, spec))
    return specs


CLUSTER_SPECS = _ray_cluster_specs()
SPEC_IDS = [label for label, _ in CLUSTER_SPECS]


def _pod_templates(spec: dict) -> list[tuple[str, dict, dict]]:
    """(group, rayStartParams, pod spec) for the head and every worker group."""
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    return [(name, g.get("rayStartParams", {}), g["template"]["spec"]) for name, g in groups]


def _gpu_limit(container: dict) -> int:
    return int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


# ---- discovery -----------------------------------------------------------------------------------------------

def test_every_shipped_config_is_found_and_loads():
    found = set(CONFIGS)
    assert found == EXPECTED_CONFIGS, f"missing {EXPECTED_CONFIGS - found}, unexpected {found - EXPECTED_CONFIGS}"
    assert len(CONFIGS) == 14
    assert len(KUBERAY) == 9 and len(RAYJOBS) == 7 and len(LAUNCHERS) == 2
    assert len(CLUSTER_SPECS) == 9  # raycluster + 7 embedded RayJob clusters + the RayService cluster


# ---- KubeRay -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(KUBERAY))
def test_kuberay_resource_identity(name):
    cfg = KUBERAY[name]
    assert cfg["apiVersion"] == "ray.io/v1"
    kind = cfg["kind"]
    expected_kind = {"raycluster": "RayCluster", "rayjob": "RayJob", "rayservice": "RayService"}
    assert kind == expected_kind[Path(name).stem.split("-")[0]]
    assert DNS1035.match(cfg["metadata"]["name"]), cfg["metadata"]["name"]
    if kind == "RayJob":
        assert len(cfg["metadata"]["name"]) <= MAX_RAYJOB_NAME


def test_shared_storage_is_a_read_write_many_claim():
    pvc = CONFIGS["kuberay/shared-storage.yaml"]
    assert (pvc["apiVersion"], pvc["kind"]) == ("v1", "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("label,spec", CLUSTER_SPECS, ids=SPEC_IDS)
def test_ray_cluster_spec_shape(label, spec):
    assert spec["rayVersion"] == RAY_VERSION
    # KubeRay >= 1.5.1 token auth (requires rayVersion >= 2.52).
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["enableInTreeAutoscaling"] is True
    head_params = spec["headGroupSpec"]["rayStartParams"]
    assert head_params["dashboard-host"] == "0.0.0.0"
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"] in {CPU_IMAGE, GPU_IMAGE, RL_IMAGE}
    ports = {p["containerPort"]: p["name"] for p in head["ports"]}
    assert ports[6379] and ports[8265] == "dashboard" and ports[10001] == "client"
    assert int(head_params["metrics-export-port"]) in ports, "the metrics port must be exposed on the head"
    for group, params, pod in _pod_templates(spec):
        # rayStartParams become `ray start` flags and must be strings (KubeRay's CRD types them so).
        assert all(isinstance(v, str) for v in params.values()), (group, params)
        # Autoscaler v2 rejects Ray pods that restart in place.
        assert pod.get("restartPolicy", "Never") == "Never", group
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v}
        assert claims[mounts[SHARED_MOUNT]] == CONFIGS["kuberay/shared-storage.yaml"]["metadata"]["name"], group


@pytest.mark.parametrize("label,spec", CLUSTER_SPECS, ids=SPEC_IDS)
def test_gpu_groups_request_gpus_and_cpu_groups_do_not(label, spec):
    for group in spec.get("workerGroupSpecs", []):
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
        pod = group["template"]["spec"]
        container = pod["containers"][0]
        gpus = _gpu_limit(container)
        requests = container["resources"]["requests"]
        if gpus:
            assert container["image"] in {GPU_IMAGE, RL_IMAGE}, f"{label}/{group['groupName']}: GPUs need a CUDA image"
            assert int(requests["nvidia.com/gpu"]) == gpus
            assert any(t["key"] == "nvidia.com/gpu" for t in pod.get("tolerations", []))
        else:
            # CPU pods run the CPU image, or the cluster's CUDA image when one image serves the whole cluster.
            assert container["image"] in {CPU_IMAGE, GPU_IMAGE, RL_IMAGE}, f"{label}/{group['groupName']}"


def test_the_long_lived_cluster_has_cpu_and_gpu_groups_that_scale_from_zero():
    groups = {g["groupName"]: g for g in CONFIGS["kuberay/raycluster.yaml"]["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    assert all(g["minReplicas"] == 0 and g["maxReplicas"] >= 1 for g in groups.values())
    assert _gpu_limit(groups["gpu"]["template"]["spec"]["containers"][0]) >= 1


def _runtime_env_is_valid(env: dict) -> None:
    from ray.runtime_env import RuntimeEnv

    unknown = set(env) - RuntimeEnv.known_fields
    assert not unknown, f"not runtime_env fields: {unknown}"  # RuntimeEnv(**env) would accept them silently
    RuntimeEnv(**env)  # raises on wrong types, e.g. a non-string env var


@pytest.mark.parametrize("name", sorted(RAYJOBS))
def test_rayjob_lifecycle_and_runtime_env(name):
    spec = RAYJOBS[name]["spec"]
    assert spec["submissionMode"] == "K8sJobMode"
    assert isinstance(spec["shutdownAfterJobFinishes"], bool)
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    assert spec.get("activeDeadlineSeconds", 1) > 0
    assert ("clusterSelector" in spec) != ("rayClusterSpec" in spec), "exactly one of clusterSelector/rayClusterSpec"
    if "rayClusterSpec" in spec:
        assert spec["shutdownAfterJobFinishes"] is True, "a cluster made for one job must go away with it"
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    _runtime_env_is_valid(env)
    assert REQUIRED_JOB_ENV.items() <= env["env_vars"].items()
    # The code is baked into the project image; nothing is fetched or installed when the pods start.
    assert "working_dir" not in env and "pip" not in env, env


def test_rayjobs_cover_every_pipeline_stage():
    argvs = [shlex.split(job["spec"]["entrypoint"]) for job in RAYJOBS.values()]
    assert sorted(argv[2] for argv in argvs) == ["ray_jobs.build_datasets", "ray_jobs.build_timelines",
                                                 "ray_jobs.evaluate", "ray_jobs.thinking_graph",
                                                 "ray_jobs.train_rl", "ray_jobs.train_sft", "ray_jobs.train_sft"]
    sft_stages = sorted(_load(REPO / argv[4])["stage"] for argv in argvs if argv[2] == "ray_jobs.train_sft")
    assert sft_stages == [1, 2]


@pytest.mark.parametrize("name", sorted(n for n in RAYJOBS if "train-sft" in n))
def test_training_jobs_get_gpu_workers(name):
    groups = RAYJOBS[name]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert any(_gpu_limit(g["template"]["spec"]["containers"][0]) >= 1 and g["maxReplicas"] >= 1 for g in groups)


def _serve_config() -> dict:
    return yaml.safe_load(CONFIGS["kuberay/rayservice.yaml"]["spec"]["serveConfigV2"])


def test_rayservice_serve_config_is_valid_for_ray_serve():
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(_serve_config())
    [app] = schema.applications
    assert app.import_path == SERVE_IMPORT_PATH
    assert app.route_prefix == "/"
    assert "config_path" in app.args and set(app.args) <= {"config_path", "overrides"}  # build_app's contract
    _runtime_env_is_valid(app.runtime_env)
    assert REQUIRED_JOB_ENV.items() <= app.runtime_env["env_vars"].items()
    assert schema.http_options.port in {p["containerPort"] for p in CONFIGS["kuberay/rayservice.yaml"]["spec"][
        "rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}


def test_rayservice_pods_all_get_the_api_keys_secret():
    """The serve preset listens on 0.0.0.0, which serving.config refuses without API keys (env EHR_SERVE_API_KEYS);
    the app is built on the head and runs on workers, so every pod needs the variable."""
    spec = CONFIGS["kuberay/rayservice.yaml"]["spec"]["rayClusterConfig"]
    for group, _, pod in _pod_templates(spec):
        env = {e["name"]: e for e in pod["containers"][0].get("env", [])}
        assert env["EHR_SERVE_API_KEYS"]["valueFrom"]["secretKeyRef"]["name"] == "ehr-r1-api-keys", group


def test_rayservice_has_gpu_replicas_always_up():
    groups = CONFIGS["kuberay/rayservice.yaml"]["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    gpu_groups = [g for g in groups if _gpu_limit(g["template"]["spec"]["containers"][0]) >= 1]
    assert gpu_groups and all(g["minReplicas"] >= 1 for g in gpu_groups), "a cold GPU pod would stall requests"


# ---- cluster launcher ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_config_passes_rays_schema_and_preparation(name):
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(LAUNCHERS[name], schema)
    prepared = prepare_config(LAUNCHERS[name])  # fills provider defaults; no cloud calls
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_start_commands_expose_dashboard_metrics_and_auth(name):
    cfg = LAUNCHERS[name]
    head = " ".join(cfg["head_start_ray_commands"])
    workers = " ".join(cfg["worker_start_ray_commands"])
    assert "ray start --head" in head and "--dashboard-host 0.0.0.0" in head
    assert "--metrics-export-port 8080" in head and "--metrics-export-port 8080" in workers
    assert "--address=$RAY_HEAD_IP:6379" in workers
    # Token auth on every node, from the token file every node receives.
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in workers
    assert cfg["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert cfg["file_mounts"]["~/ehr-r1-ray"] == "."


def _torch_then_project(commands: list[str]) -> None:
    text = "\n".join(commands)
    torch_at, project_at = text.find('"torch==2.13.0"'), text.find("pip install -q -e")
    assert 0 <= torch_at < project_at, "install torch before the project, or pip pulls the default CUDA build"


def test_aws_launcher_installs_nothing_at_node_start():
    """The project images carry torch and the project; only the autoscaler's boto3 is added on the head."""
    cfg = LAUNCHERS["launcher/aws-gpu.yaml"]
    commands = cfg["head_setup_commands"] + cfg["worker_setup_commands"] + cfg["setup_commands"] + [
        c for node in cfg["available_node_types"].values() for c in node.get("worker_setup_commands", [])]
    assert all("torch" not in c and "ehr-r1-ray" not in c for c in commands), commands


def test_aws_launcher_gpu_worker_type_has_gpus_and_the_gpu_image():
    cfg = LAUNCHERS["launcher/aws-gpu.yaml"]
    gpu = cfg["available_node_types"]["gpu_worker"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["max_workers"] >= 1
    assert cfg["docker"]["worker_image"] == GPU_IMAGE and cfg["docker"]["head_image"] == CPU_IMAGE
    assert cfg["available_node_types"]["cpu_worker"]["docker"]["worker_image"] == CPU_IMAGE
    assert cfg["available_node_types"]["head"]["resources"] == {"CPU": 0}


def test_local_launcher_lists_its_machines_and_installs_torch_first():
    cfg = LAUNCHERS["launcher/local.yaml"]
    assert cfg["provider"]["type"] == "local"
    assert isinstance(cfg["provider"]["head_ip"], str) and cfg["provider"]["worker_ips"]
    assert "available_node_types" not in cfg, "the local provider rejects node types"
    _torch_then_project(cfg["setup_commands"])


# ---- runtime env ---------------------------------------------------------------------------------------------

def test_default_runtime_env_is_valid_and_excludes_the_venv():
    env = CONFIGS["runtime_env/default.yaml"]
    _runtime_env_is_valid(env)
    assert ".venv/" in env["excludes"]
    assert "working_dir" not in env, "`ray job submit --working-dir .` names it"
    assert REQUIRED_JOB_ENV.items() <= env["env_vars"].items()


def test_default_runtime_env_excludes_really_drop_heavy_files(tmp_path):
    """Package a fake checkout the way `ray job submit --working-dir` does and look inside the zip."""
    from ray._private.runtime_env.packaging import create_package

    files = {
        "ray_jobs/build_timelines.py": "keep", "ray_jobs/configs/x/demo.yaml": "keep", "README.md": "keep",
        ".venv/lib/python3.11/site-packages/torch/__init__.py": "drop", "outputs/run1/model.safetensors": "drop",
        "mlruns/0/meta.yaml": "drop", "data_pipeline/__pycache__/render.cpython-311.pyc": "drop",
        "timelines/shard-0.parquet": "drop", ".git/HEAD": "drop",
    }
    checkout = tmp_path / "checkout"
    for rel, text in files.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    package = tmp_path / "pkg.zip"
    # include_gitignore=False: prove the excludes alone do the job, whatever .gitignore a user's checkout has.
    create_package(str(checkout), package, include_gitignore=False, include_parent_dir=False,
                   excludes=CONFIGS["runtime_env/default.yaml"]["excludes"])
    shipped = {n for n in zipfile.ZipFile(package).namelist() if not n.endswith("/")}
    assert shipped == {rel for rel, text in files.items() if text == "keep"}


# ---- entrypoints named by the configs --------------------------------------------------------------------------

# `\s+` also spans the line breaks of a folded YAML entrypoint; `<x>.yaml` placeholders in prose do not match.
ENTRYPOINT = re.compile(r"python -m (ray_jobs\.[a-z_]+)\s+--config\s+([\w./-]+\.ya?ml)")


def _referenced_jobs() -> set[tuple[str, str]]:
    texts = [p.read_text() for p in _all_yaml()] + [(CLUSTER / "README.md").read_text()]
    jobs = {m.groups() for text in texts for m in ENTRYPOINT.finditer(text)}
    jobs.add(("ray_jobs.serve", _serve_config()["applications"][0]["args"]["config_path"]))
    return jobs


def _defines_function(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


def test_configs_reference_the_expected_jobs():
    modules = {module for module, _ in _referenced_jobs()}
    assert modules == {"ray_jobs.build_timelines", "ray_jobs.build_datasets", "ray_jobs.train_sft",
                       "ray_jobs.serve", "ray_jobs.thinking_graph", "ray_jobs.evaluate", "ray_jobs.train_rl"}


REFERENCED_JOBS = sorted(_referenced_jobs())
# Stages whose entrypoints other branches add (issues 12-14); their manifests ship here first.
PENDING_MODULES = {"ray_jobs.thinking_graph", "ray_jobs.evaluate", "ray_jobs.train_rl"}


@pytest.mark.parametrize("module,config", REFERENCED_JOBS, ids=[f"{m.split('.')[-1]}:{Path(c).name}"
                                                               for m, c in REFERENCED_JOBS])
def test_referenced_job_module_and_config_exist(module, config):
    if module in PENDING_MODULES and not (REPO / (module.replace(".", "/") + ".py")).is_file():
        pytest.skip(f"{module} is added on another branch; rerun after merging it")
    assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"{module} has no module file"
    assert (REPO / config).is_file(), f"{config} does not exist"


def test_serve_import_path_resolves_to_a_builder():
    module, _, function = SERVE_IMPORT_PATH.partition(":")
    # Parsed, not imported: importing the app pulls in Ray Serve and the engines.
    assert _defines_function(REPO / (module.replace(".", "/") + ".py"), function)


def _invocations() -> list[tuple[str, str, str, list[str]]]:
    """(label, job module, config file, key=value overrides) of every job the KubeRay files run."""
    out = []
    for name, job in sorted(RAYJOBS.items()):
        argv = shlex.split(job["spec"]["entrypoint"])  # what the submitter's shell hands to Python
        assert argv[:2] == ["python", "-m"] and argv[3] == "--config", argv
        overrides = [a for i, a in enumerate(argv[5:]) if not a.startswith("--") and not
                     (i and argv[5:][i - 1].startswith("--"))]  # `--backend openrlhf` is a flag, not an override
        out.append((name, argv[2], argv[4], overrides))
    args = _serve_config()["applications"][0]["args"]
    out.append(("kuberay/rayservice.yaml", "ray_jobs.serve", args["config_path"], list(args.get("overrides", []))))
    return out


INVOCATIONS = _invocations()


def _job_config_class(module: str) -> type:
    """The pydantic class the job module passes to ``parse_job_args``, found in its source and imported."""
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "parse_job_args"]
    assert len(calls) == 1 and isinstance(calls[0].args[0], ast.Name), f"{module}: no parse_job_args(ConfigClass)"
    class_name = calls[0].args[0].id
    [source] = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and any(a.name == class_name for a in n.names)]
    return getattr(importlib.import_module(source), class_name)


@pytest.mark.parametrize("label,module,config,overrides", INVOCATIONS, ids=[i[0] for i in INVOCATIONS])
def test_every_kuberay_job_config_validates_with_its_overrides(label, module, config, overrides, monkeypatch,
                                                                 tmp_path):
    """A misspelt override key or a preset that drifted from its config class fails here, not hours into a run."""
    from jobkit.config import load_config

    if not (REPO / (module.replace(".", "/") + ".py")).is_file() and module in PENDING_MODULES:
        pytest.skip(f"{label}: {module} is added on another branch; rerun after merging it")
    monkeypatch.chdir(REPO)  # the job's cwd is the unpacked working_dir
    # The serve preset listens on 0.0.0.0 and refuses to load without API keys (the pods get them from a Secret).
    monkeypatch.setenv("EHR_SERVE_API_KEYS", "test-key")
    # Some config classes check at load time that input paths exist: stand the shared volume up under tmp_path.
    shared = tmp_path / "mnt-shared"
    moved = [ov.replace(SHARED_MOUNT, str(shared)) for ov in overrides]
    for path in re.findall(re.escape(str(shared)) + r"[^\s,\]}]*", " ".join(moved)):
        target = Path(path)
        if target.suffix in {".parquet", ".jsonl", ".json"}:  # data files; "2.2" is a folder
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        else:
            target.mkdir(parents=True, exist_ok=True)
    cfg = load_config(_job_config_class(module), config, moved)
    dumped = json.dumps(cfg.model_dump(mode="json"))
    for override in moved:
        for path in re.findall(re.escape(str(shared)) + r"[^\s,\]}]*", override):
            assert path in dumped, f"{override} did not reach the config"


def test_rl_image_installs_a_flash_attn_wheel_built_for_its_own_torch():
    """OpenRLHF imports flash_attn at module level; PyPI has only its sdist, which needs nvcc and a compiler. The
    final image must install a wheel (no source build there), built in a stage with the same torch pin."""
    import re

    from tests.cluster.manifests import CLUSTER, dockerfile_requirements

    text = (CLUSTER / "Dockerfile.openrlhf").read_text().replace("\\\n", " ")
    builder, final = re.split(r"^(?=FROM\s)", text, flags=re.M)[1:]
    torch_pins = {stage: re.findall(r'"(torch==[^"]+)"', stage) for stage in (builder, final)}
    assert torch_pins[builder] == torch_pins[final] == ["torch==2.13.0"]
    assert "pip wheel" in builder and "FLASH_ATTENTION_FORCE_BUILD=TRUE" in builder
    assert "COPY --from=flash-attn" in final and '"flash-attn==' not in final  # the wheel, never the sdist
    assert "flash-attn" in dockerfile_requirements(CLUSTER / "Dockerfile.openrlhf")


@pytest.mark.parametrize("path", ["training/__pycache__/x.pyc", "outputs/demo/runs/a.safetensors",
                                  "tests/fixtures/outputs/x.parquet", "data_pipeline/x/y.csv.gz"])
def test_dockerignore_excludes_artefacts_at_any_depth(path):
    """Docker matches .dockerignore patterns from the context root (Go filepath.Match, ``**`` = any directories):
    nested caches, outputs and data files stay out of the image."""
    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    patterns = [regex(line.strip().rstrip("/")) for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def excluded(p: str) -> bool:  # a pattern that matches a directory excludes everything under it
        parts = p.split("/")
        return any(rx.fullmatch("/".join(parts[:k])) for rx in patterns for k in range(1, len(parts) + 1))

    assert excluded(path)
    assert not excluded("training/sft.py")


def _pod_specs(node):
    """Every pod spec (a mapping with ``containers``) anywhere in a manifest."""
    if isinstance(node, dict):
        if "containers" in node:
            yield node
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pod_specs(value)


@pytest.mark.parametrize("manifest", sorted(p.name for p in (REPO / "cluster" / "kuberay").glob("*.yaml")))
def test_every_pod_on_the_shared_volume_can_write_to_it(manifest):
    """The image runs as uid 1000 (group 100): a fresh EBS volume is handed over by fsGroup, a fresh NFS/EFS volume
    (which ignores fsGroup) by a root init container, before any Ray process writes."""
    pods = [pod for doc in yaml.safe_load_all((REPO / "cluster" / "kuberay" / manifest).read_text()) if doc
            for pod in _pod_specs(doc)
            if any(v.get("persistentVolumeClaim") for v in pod.get("volumes", []))]
    assert pods or manifest == "shared-storage.yaml"  # the claim itself has no pod
    for pod in pods:
        assert pod["securityContext"]["fsGroup"] == 100
        [init] = [c for c in pod.get("initContainers", []) if c["name"] == "shared-volume-owner"]
        assert init["securityContext"]["runAsUser"] == 0
        assert "chown 1000:100 /mnt/shared" in " ".join(init["command"])
        assert {"name": "shared", "mountPath": "/mnt/shared"} in init["volumeMounts"]
        assert init["image"] == pod["containers"][0]["image"]
