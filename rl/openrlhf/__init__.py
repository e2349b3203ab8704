"""OpenRLHF 0.11 on Ray, the scale-out path: argv from the RL config (:mod:`.argv`, the only code that knows
OpenRLHF's flag names), the reward hook (``reward_func.py``), OpenRLHF's own parser as a preflight
(:mod:`.cli_check`) and submission to a GPU Ray cluster (:mod:`.submit`)."""
