"""The chat format every stage shares (SFT, RL, evaluation, serving): pure string functions, no torch.

The reference (EHR-R1, Qwen3 base) uses ChatML with

- system: ``"You are a helpful assistant."``
- user: ``"{input}\\n{instruction}"`` plus an optional Qwen3 soft switch ``"\\n/think"`` or ``"\\n/no_think"``
- assistant: ``"<think>\\n{reasoning}\\n</think>\\n\\n{answer}"``

Qwen3 convention (its ``chat_template``): the final assistant turn is always rendered with a think block,
``<think>\\n`` + reasoning.strip("\\n") + ``\\n</think>\\n\\n`` + answer, so an answer without reasoning becomes
``<think>\\n\\n</think>\\n\\n{answer}`` (the "empty think block" that ``enable_thinking=False`` also pre-fills
in the generation prompt). :func:`format_assistant` produces exactly that string, so rendering it through the
Qwen3 template (which splits on ``</think>`` and re-assembles) or through our tiny model's template gives the same
text, and stage-1 (no reasoning) and stage-2 ``/no_think`` samples teach the model the empty block.

>>> build_messages("EHR", "Predict.", thinking=True)[1]["content"]
'EHR\\nPredict.\\n/think'
>>> format_assistant("yes", None)
'<think>\\n\\n</think>\\n\\nyes'
>>> split_reasoning("<think>\\nwhy\\n</think>\\n\\nA\\nB")
('why', 'A\\nB')
>>> parse_answer_items(" A \\nB\\nA\\n\\n")
['A', 'B']
"""

from __future__ import annotations

SYSTEM_PROMPT = "You are a helpful assistant."
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
THINK_SWITCH = "/think"
NO_THINK_SWITCH = "/no_think"
EMPTY_THINK_BLOCK = f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n"


def build_user_content(input: str, instruction: str, thinking: bool | None = None) -> str:
    """``{input}\\n{instruction}`` plus ``\\n/think`` (True), ``\\n/no_think`` (False) or nothing (None)."""
    content = f"{input}\n{instruction}"
    if thinking is True:
        content += f"\n{THINK_SWITCH}"
    elif thinking is False:
        content += f"\n{NO_THINK_SWITCH}"
    return content


def build_messages(input: str, instruction: str, thinking: bool | None = None,
                   system_prompt: str = SYSTEM_PROMPT) -> list[dict]:
    """System + user messages for one sample (no assistant turn); see :func:`build_user_content`."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": build_user_content(input, instruction, thinking)},
    ]


def format_assistant(answer: str, reasoning: str | None = None) -> str:
    """The assistant turn: ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}``.

    ``reasoning=None`` (or empty) gives the Qwen3 empty think block ``<think>\\n\\n</think>\\n\\n{answer}``.
    Surrounding newlines of ``reasoning`` are stripped like the Qwen3 template does, so the result is a fixed point
    of that template's split/re-assemble.
    """
    body = (reasoning or "").strip("\n")
    if not body:
        return f"{EMPTY_THINK_BLOCK}{answer}"
    return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n\n{answer}"


def split_reasoning(completion: str) -> tuple[str | None, str]:
    """Split a completion into ``(reasoning, answer)`` at the LAST ``</think>``.

    - ``</think>`` present: reasoning = the text before it (after the last ``<think>`` if any), whitespace-stripped
      (``""`` for an empty think block); answer = the text after it, stripped.
    - only ``<think>`` (generation cut off while thinking): ``(partial reasoning, "")`` -- there is no answer.
    - no tags: ``(None, completion.strip())``.
    """
    head, sep, tail = completion.rpartition(THINK_CLOSE)
    if sep:
        return head.split(THINK_OPEN)[-1].strip(), tail.strip()
    if THINK_OPEN in completion:
        return completion.split(THINK_OPEN)[-1].strip(), ""
    return None, completion.strip()


def parse_answer_items(answer: str) -> list[str]:
    """One item per line, stripped, empty lines dropped, duplicates (case-insensitive) removed keeping the first.

    The project's one answer parser, :func:`evaluation.answers.split_items`, with the model's own spelling kept;
    a literal backslash-n (``"A\\\\nB"``, a model imitating an escaped label list) also separates items, as in
    the reference scorer.
    """
    from evaluation.answers import split_items

    return split_items(answer, lowercase=False)
