"""p(yes) from yes/no log-probabilities: renormalised over {yes, no} (EHR-R1 risk inference)."""

from __future__ import annotations

import math

import pytest

from serving.scoring import binary_answer, p_yes_from_logprobs, p_yes_from_top_logprobs

L = math.log


@pytest.mark.parametrize("lp_yes, lp_no, expected", [
    (L(0.3), L(0.1), 0.75),            # renormalised: 0.3 / (0.3 + 0.1)
    (L(0.5), L(0.5), 0.5),
    (L(0.01), L(0.04), 0.2),
    (0.0, -math.inf, 1.0),             # "no" impossible
    (-math.inf, -2.0, 0.0),            # "yes" impossible
    (-1000.0, -1001.0, 1 / (1 + math.exp(-1))),  # tiny absolute probs, no underflow
    (-1001.0, -1000.0, 1 / (1 + math.exp(1))),
    (-5.0, 700.0, 0.0),                # huge gap: no overflow
])
def test_p_yes_from_logprobs(lp_yes, lp_no, expected):
    assert p_yes_from_logprobs(lp_yes, lp_no) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("lp_yes, lp_no", [(-math.inf, -math.inf), (math.nan, 0.0), (0.0, math.nan)])
def test_p_yes_rejects_undefined(lp_yes, lp_no):
    with pytest.raises(ValueError):
        p_yes_from_logprobs(lp_yes, lp_no)


@pytest.mark.parametrize("top, expected", [
    ({"yes": L(0.6), "no": L(0.2), "maybe": L(0.2)}, 0.75),
    ({"yes": L(0.6), "the": L(0.3)}, 1.0),
    ({"no": L(0.6)}, 0.0),
    ({"the": L(0.9)}, None),
])
def test_p_yes_from_top_logprobs(top, expected):
    got = p_yes_from_top_logprobs(top)
    assert got == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("p, answer", [(0.5, "yes"), (0.51, "yes"), (0.49, "no"), (0.0, "no"), (1.0, "yes")])
def test_binary_answer(p, answer):
    assert binary_answer(p) == answer
