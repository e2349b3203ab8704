"""p(yes) for risk-prediction tasks: pure functions of log-probabilities (EHR-R1 inference, reference §5).

A risk answer is one token, ``yes`` or ``no``. We read both tokens' log-probabilities at the answer position
(raw distribution, no sampling transforms) and renormalise over {yes, no}:
``p(yes) = e^lp_yes / (e^lp_yes + e^lp_no) = 1 / (1 + e^(lp_no - lp_yes))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def p_yes_from_logprobs(lp_yes: float, lp_no: float) -> float:
    """Renormalised probability of ``yes`` over {yes, no}; numerically stable for any finite or -inf inputs.

    >>> round(p_yes_from_logprobs(math.log(0.3), math.log(0.1)), 6)
    0.75
    """
    if math.isnan(lp_yes) or math.isnan(lp_no):
        raise ValueError("log-probabilities must not be NaN")
    if lp_yes == -math.inf and lp_no == -math.inf:
        raise ValueError("both yes and no have probability 0; the model cannot answer this prompt with yes/no")
    diff = lp_no - lp_yes
    if diff >= 0:
        e = math.exp(-diff)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(diff))


def p_yes_from_top_logprobs(top: Mapping[str, float], yes: str = "yes", no: str = "no") -> float | None:
    """p(yes) from an OpenAI-style ``top_logprobs`` mapping (token text -> log-prob); None if neither is there.

    A missing token counts as probability 0 (it fell outside the top-k), which is only exact when the other one
    is present; callers that can should ask the engine for both log-probs instead.
    """
    lp_yes = top.get(yes, -math.inf)
    lp_no = top.get(no, -math.inf)
    if lp_yes == -math.inf and lp_no == -math.inf:
        return None
    return p_yes_from_logprobs(lp_yes, lp_no)


def binary_answer(p_yes: float, threshold: float = 0.5) -> str:
    """The answer the forced single token would be under greedy decoding (ties go to ``yes``)."""
    return "yes" if p_yes >= threshold else "no"
