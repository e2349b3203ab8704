"""Checks every trained model of a comparison must pass before its numbers mean anything, each met or not with
the measurement: completions that reach an answer, decision F1 at least the frequency prior's, a paired gain over
the untrained model, a risk AUROC interval above chance, and RL that differs from the model it started from.

Pure: reads the comparison's headline (``metrics["overall"]`` per run) and paired differences; the rows go into
``comparison.{md,html,json}`` (:mod:`evaluation.compare`), so a run that misses a target says so where its
numbers are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MAX_TRUNCATED = 0.05
PRIOR, UNTRAINED, START_OF_RL, RL = "baseline_prior", "untrained", "stage2", "rl"


def _interval(o: Mapping, key: str) -> str:
    return f"{o[key]:.3f} [{o[key + '_lo']:.3f}, {o[key + '_hi']:.3f}]"


def _diff(d: Mapping) -> str:
    return f"{d['diff']:+.3f} [{d['diff_lo']:+.3f}, {d['diff_hi']:+.3f}]"


def target_rows(headline: Mapping[str, Mapping], differences: Mapping[str, Mapping],
                models: list[str]) -> list[dict]:
    """One row per (target, model): ``{"target", "run", "measured", "met"}`` (``met`` None: cannot be judged).

    ``headline``: run name -> ``metrics["overall"]``; ``differences``: ``"b - a"`` -> paired difference;
    ``models``: the runs to judge (trained models, not baselines or the untrained model).

    >>> h = {"m": {"decision": {"f1": 0.5, "f1_lo": 0.4, "f1_hi": 0.6, "n": 100, "truncated": 2}},
    ...      "baseline_prior": {"decision": {"f1": 0.4, "f1_lo": 0.3, "f1_hi": 0.5}}}
    >>> [(r["target"], r["met"]) for r in target_rows(h, {}, ["m"])]
    [('decision completions truncated < 5%', True), ('decision F1 >= frequency prior', True)]
    """
    rows: list[dict] = []
    prior = headline.get(PRIOR, {}).get("decision")
    for name in models:
        overall = headline.get(name, {})
        dec, risk = overall.get("decision"), overall.get("risk")
        if dec and dec.get("n"):
            frac = dec.get("truncated", 0.0) / dec["n"]
            rows.append({"target": f"decision completions truncated < {MAX_TRUNCATED:.0%}", "run": name,
                         "measured": f"{int(dec.get('truncated', 0))} of {int(dec['n'])} ({frac:.1%})",
                         "met": frac < MAX_TRUNCATED})
        if dec and prior and not math.isnan(dec.get("f1", math.nan)):
            rows.append({"target": "decision F1 >= frequency prior", "run": name,
                         "measured": f"{_interval(dec, 'f1')} vs {prior['f1']:.3f}", "met": dec["f1"] >= prior["f1"]})
        gain = differences.get(f"{name} - {UNTRAINED}", {}).get("overall", {}).get("decision")
        if gain and not math.isnan(gain.get("diff", math.nan)):
            rows.append({"target": "decision F1 above the untrained model (paired interval > 0)", "run": name,
                         "measured": _diff(gain), "met": gain["diff_lo"] > 0})
        if risk and not math.isnan(risk.get("auroc", math.nan)):
            rows.append({"target": "risk AUROC interval above 0.5", "run": name, "measured": _interval(risk, "auroc"),
                         "met": risk["auroc_lo"] > 0.5})
    rl = differences.get(f"{RL} - {START_OF_RL}", {}).get("overall", {})
    if RL in models and rl:
        moved = [k for k, d in rl.items() if d.get("excludes_zero")]
        rows.append({"target": "RL differs from stage 2 (paired interval excludes 0)", "run": RL,
                     "measured": "; ".join(f"{k} {_diff(d)}" for k, d in rl.items()
                                           if not math.isnan(d.get("diff", math.nan))),
                     "met": bool(moved)})
    return rows


def summary(rows: list[dict]) -> str:
    """``"4 of 9 targets met; not met: <target> (<runs>); ..."`` (the measurements are in the Targets table)."""
    missed: dict[str, list[str]] = {}
    for r in rows:
        if r["met"] is False:
            missed.setdefault(r["target"], []).append(r["run"])
    met = sum(r["met"] is True for r in rows)
    text = "; ".join(f"{t} ({', '.join(runs)})" for t, runs in missed.items())
    return f"{met} of {len(rows)} targets met" + (f"; not met: {text} (see Targets)" if missed else "")
