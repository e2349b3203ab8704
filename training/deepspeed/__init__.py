"""DeepSpeed configs for the HF Trainer (``TrainingArguments(deepspeed=...)``); the JSON files sit next to this file.

``zero3.json`` is the GPU-cluster config of the reference: ZeRO-3 with the optimizer offloaded to CPU, "auto" values
filled in by HF from the TrainingArguments. On CPU-only workers (CI, laptops) :func:`load_deepspeed_config` adapts the
same file: no optimizer offload (it would JIT-build ``cpu_adam``, ~70 s), ``torch_adam: true`` (FusedAdam needs CUDA),
no pinned memory or comm overlap, and bf16/fp16 off. DeepSpeed itself needs ``DS_ACCELERATOR=cpu`` and JIT-builds
its shared-memory comm op once (~1 min), cached under ``TORCH_EXTENSIONS_DIR``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

CONFIG_DIR = Path(__file__).parent
ZERO3 = CONFIG_DIR / "zero3.json"
REPO_ROOT = CONFIG_DIR.parents[1]


def resolve_config_path(path: str | Path) -> Path:
    """As given if it exists (relative to the cwd), else relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_file() or path.is_absolute() else REPO_ROOT / path


def load_deepspeed_config(path: str | Path, on_cpu: bool) -> dict:
    """Read a DeepSpeed JSON; with ``on_cpu`` return the CPU variant described in the module doc."""
    path = resolve_config_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train.deepspeed: {path} does not exist; e.g. use {ZERO3.relative_to(REPO_ROOT)}")
    cfg = json.loads(path.read_text())
    if not on_cpu:
        return cfg
    cfg = copy.deepcopy(cfg)
    zero = cfg.setdefault("zero_optimization", {})
    zero["offload_optimizer"] = {"device": "none"}
    zero["offload_param"] = {"device": "none"}
    zero["overlap_comm"] = False
    cfg.setdefault("optimizer", {"type": "AdamW", "params": {}}).setdefault("params", {})["torch_adam"] = True
    cfg["bf16"] = {"enabled": False}
    cfg["fp16"] = {"enabled": False}
    return cfg
