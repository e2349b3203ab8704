"""Instruction wording, following the reference's prefix for every task.

Decision making: "Given the sequence of events that have occurred in a hospital, please give the next <X>
suggestion for the patients." Risk prediction: "Given the sequence of events that have occurred in a hospital,
please predict whether <outcome>." The reference's per-task <X>/<outcome> phrases are not published, so the
phrases below name the predicted item in plain clinical words.
"""

from __future__ import annotations

PREFIX = "Given the sequence of events that have occurred in a hospital,"


def dm_instruction(what: str) -> str:
    return f"{PREFIX} please give the next {what} suggestion for the patients."


def rp_instruction(outcome: str) -> str:
    return f"{PREFIX} please predict whether {outcome}."


DISCHARGE_INSTRUCTION = (f"{PREFIX} please write the discharge summary (the discharge note text) for the "
                         "patients.")
