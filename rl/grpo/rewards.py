"""The reward spec as TRL reward functions: one named callable per component, so TRL logs each one
(``rewards/<name>/mean``) and sums them with ``reward_weights``."""

from __future__ import annotations

from collections.abc import Mapping

from rl.prompts.schema import LABEL_KEY
from rl.rewards.combine import component_fn


def trl_reward_funcs(spec: Mapping[str, float]) -> tuple[list, list[float]]:
    """``(reward_funcs, reward_weights)`` for ``GRPOTrainer`` / ``GRPOConfig``."""
    funcs = []
    for name in spec:
        fn = component_fn(name)

        def call(prompts=None, completions=None, _fn=fn, **kwargs):
            labels = kwargs.pop(LABEL_KEY)
            return [float(x) for x in _fn(completions, labels, prompts=prompts, **kwargs)]

        call.__name__ = name.replace(":", ".")  # TRL names the logged metric after the function
        funcs.append(call)
    return funcs, [float(w) for w in spec.values()]
