"""The comparison's targets: each met or not, with the measurement, from the headline and paired differences."""

from __future__ import annotations

import math

import pytest

from evaluation.targets import summary, target_rows


def _dec(f1, lo, hi, n=100, truncated=0):
    return {"f1": f1, "f1_lo": lo, "f1_hi": hi, "n": n, "truncated": truncated}


def _risk(auc, lo, hi):
    return {"auroc": auc, "auroc_lo": lo, "auroc_hi": hi}


def _d(diff, lo, hi):
    return {"diff": diff, "diff_lo": lo, "diff_hi": hi, "excludes_zero": lo > 0 or hi < 0}


PRIOR = {"decision": _dec(0.38, 0.34, 0.43)}


@pytest.mark.parametrize("model, diffs, expect", [
    # everything met
    ({"decision": _dec(0.40, 0.35, 0.45, truncated=4), "risk": _risk(0.62, 0.55, 0.70)},
     {"stage1 - untrained": {"overall": {"decision": _d(0.4, 0.35, 0.45)}}},
     {"decision completions truncated < 5%": True, "decision F1 >= frequency prior": True,
      "decision F1 above the untrained model (paired interval > 0)": True, "risk AUROC interval above 0.5": True}),
    # 5 of 100 truncated is not under 5%; below the prior; gain interval touches zero; AUROC interval spans 0.5
    ({"decision": _dec(0.09, 0.07, 0.10, truncated=5), "risk": _risk(0.55, 0.45, 0.66)},
     {"stage1 - untrained": {"overall": {"decision": _d(0.09, 0.0, 0.1)}}},
     {"decision completions truncated < 5%": False, "decision F1 >= frequency prior": False,
      "decision F1 above the untrained model (paired interval > 0)": False, "risk AUROC interval above 0.5": False}),
    # no risk scores (NaN) and no pair with the untrained model: those rows are left out
    ({"decision": _dec(0.5, 0.4, 0.6), "risk": _risk(math.nan, math.nan, math.nan)}, {},
     {"decision completions truncated < 5%": True, "decision F1 >= frequency prior": True}),
])
def test_target_rows(model, diffs, expect):
    rows = target_rows({"stage1": model, "baseline_prior": PRIOR}, diffs, ["stage1"])
    assert {r["target"]: r["met"] for r in rows} == expect
    assert all(r["run"] == "stage1" and r["measured"] for r in rows)


@pytest.mark.parametrize("rl_diff, met", [(_d(0.02, 0.01, 0.03), True), (_d(-0.002, -0.008, 0.003), False)])
def test_rl_must_differ_from_stage2(rl_diff, met):
    rows = target_rows({"rl": {}, "stage2": {}}, {"rl - stage2": {"overall": {"decision": rl_diff}}}, ["rl"])
    assert [(r["target"], r["met"]) for r in rows] == [("RL differs from stage 2 (paired interval excludes 0)", met)]


def test_summary_names_what_is_not_met():
    rows = [{"target": "a", "run": "x", "measured": "1", "met": True},
            {"target": "b", "run": "y", "measured": "0.1 vs 0.4", "met": False}]
    rows.append({"target": "b", "run": "z", "measured": "0.2 vs 0.4", "met": False})
    assert summary(rows) == "1 of 3 targets met; not met: b (y, z) (see Targets)"
