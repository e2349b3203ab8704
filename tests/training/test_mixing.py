"""Stage-2 dataset mixing: every item once, seeded, and a linear curriculum ramp of the second set."""

from __future__ import annotations

import pytest

from training.mixing import mix_order


@pytest.mark.parametrize("mode", ["shuffle", "curriculum"])
@pytest.mark.parametrize(("n1", "n2"), [(10, 10), (7, 3), (1, 0), (0, 4)])
def test_every_item_once_and_seeded(mode, n1, n2):
    order = mix_order(n1, n2, mode, seed=3)
    assert sorted(order) == [(0, i) for i in range(n1)] + [(1, i) for i in range(n2)]
    assert order == mix_order(n1, n2, mode, seed=3)


def test_curriculum_ramps_second_set_linearly():
    order = mix_order(400, 400, "curriculum", seed=0)
    quarters = [order[k * 200:(k + 1) * 200] for k in range(4)]
    share = [sum(src for src, _ in q) / len(q) for q in quarters]
    # expected share of the second set in each quarter for a linear ramp: 1/8, 3/8, 5/8, 7/8
    assert share == pytest.approx([0.125, 0.375, 0.625, 0.875], abs=0.03)


def test_shuffle_is_not_a_ramp():
    order = mix_order(400, 400, "shuffle", seed=0)
    first_half_share = sum(src for src, _ in order[:400]) / 400
    assert first_half_share == pytest.approx(0.5, abs=0.1)


def test_unknown_mode():
    with pytest.raises(ValueError, match="mix mode"):
        mix_order(1, 1, "zip", seed=0)
