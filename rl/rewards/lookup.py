"""Looking rewards up by name: the built-in rewards (registered on import) or a function given by import path.

Kept apart from :mod:`rl.rewards.registry` because the built-in reward modules import the registry to register
themselves; importing them here, not there, keeps the module graph acyclic.
"""

from __future__ import annotations

import importlib

from rl.rewards import ehr_r1, ehrmind  # noqa: F401  (registers the built-in rewards)
from rl.rewards.registry import _REGISTRY, RewardFn


def reward_names() -> list[str]:
    """Names of the registered rewards, sorted."""
    return sorted(_REGISTRY)


def get_reward(name: str) -> RewardFn:
    """The registered reward ``name``, or the function at import path ``package.module:function``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" not in name:
        raise KeyError(f"unknown reward {name!r}; registered rewards: {', '.join(sorted(_REGISTRY))} "
                       "(or give an import path 'package.module:function')")
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise KeyError(f"reward {name!r}: cannot import module {module_name!r} ({exc}); check the import path "
                       "and that the module is on PYTHONPATH of every worker") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise KeyError(f"reward {name!r}: module {module_name!r} has no callable {attr!r}")
    return fn
