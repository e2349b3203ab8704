"""The RL prompt record shared by every source and both backends (OpenRLHF, TRL).

``{"id": str, "source": str, "task": str, "prompt": [{"role", "content"}, ...], "label": "<json>"}``

- ``prompt``: system + user messages, no assistant turn. The user turn ends with Qwen3's ``/think`` (tasks answered
  after a reasoning chain) or ``/no_think`` (yes/no risk tasks), as the reference's RL data does.
- ``label``: a JSON *string* (OpenRLHF passes ``--data.label_key`` through untouched; a string keeps the Arrow
  schema uniform across sources) holding ``reward`` (a registered reward name), ``target`` and what that reward
  needs (``metric``, ``thinking``, ``output_type``, ``class_weight`` ...). It is validated here, at export, so a
  reward never meets a malformed label during training.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rl.rewards.combine import parse_label
from rl.rewards.lookup import get_reward

PROMPT_KEY = "prompt"
LABEL_KEY = "label"


@dataclass(frozen=True)
class RLPrompt:
    id: str
    source: str
    task: str
    prompt: list[dict[str, str]]
    label: str

    @classmethod
    def make(cls, id: str, source: str, task: str, messages: list[dict[str, str]], **label: Any) -> RLPrompt:
        rec = cls(id=id, source=source, task=task, prompt=messages, label=json.dumps(label, ensure_ascii=False))
        rec.validate()
        return rec

    def validate(self) -> None:
        if not self.prompt or self.prompt[-1].get("role") != "user" or not all(
                isinstance(m.get("content"), str) for m in self.prompt):
            raise ValueError(f"prompt {self.id}: messages must end with a user turn and hold text contents")
        label = parse_label(self.label)
        get_reward(label["reward"])  # the reward exists (KeyError names the registered ones)
        if "target" not in label:
            raise ValueError(f"prompt {self.id}: label has no target")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def write_prompts(records: Iterable[RLPrompt], path: str | Path) -> int:
    """Write records as jsonl atomically (temp file + rename); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    n = 0
    try:
        with os.fdopen(fd, "w") as fh:
            for rec in records:
                fh.write(rec.to_json() + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def read_prompts(path: str | Path) -> Iterator[RLPrompt]:
    path = Path(path)
    with path.open() as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = RLPrompt(**json.loads(line))
                rec.validate()
            except (TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{n}: not an RL prompt record ({exc}); export it with rl.prompts") from None
            yield rec
