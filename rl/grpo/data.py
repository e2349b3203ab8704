"""Fit exported RL prompts to the actor: rendered with its chat template, too-long prompts cut from the front.

TRL 1.16 does not truncate prompts, and a prompt longer than the model's context fails mid-run. The user turn is
``{EHR}\\n{instruction}\\n/think``: cutting its first tokens drops the oldest EHR events and keeps the instruction,
as the dataset builder's history cut does. Done once on the driver; every worker reads the result.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class FitStats:
    prompts: int = 0
    truncated: int = 0
    dropped: int = 0
    max_prompt_tokens: int = 0


def fit_prompts(prompts_path: str | Path, tokenizer, max_prompt_length: int, out_path: str | Path) -> FitStats:
    """Write ``out_path`` (jsonl, same records) with every prompt at most ``max_prompt_length`` tokens."""
    stats = FitStats()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    try:
        with os.fdopen(fd, "w") as out, Path(prompts_path).open() as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                n = _length(tokenizer, rec["prompt"])
                if n > max_prompt_length:
                    user = rec["prompt"][-1]["content"]
                    ids = tokenizer(user, add_special_tokens=False)["input_ids"]
                    keep = len(ids) - (n - max_prompt_length)
                    if keep < max_prompt_length // 2:  # the chat scaffolding eats the budget: drop, do not mangle
                        stats.dropped += 1
                        continue
                    rec["prompt"][-1]["content"] = tokenizer.decode(ids[-keep:])
                    n = _length(tokenizer, rec["prompt"])
                    while n > max_prompt_length and keep > 1:  # decode/re-encode may merge differently
                        keep -= n - max_prompt_length
                        rec["prompt"][-1]["content"] = tokenizer.decode(ids[-keep:])
                        n = _length(tokenizer, rec["prompt"])
                    stats.truncated += 1
                stats.prompts += 1
                stats.max_prompt_tokens = max(stats.max_prompt_tokens, n)
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if not stats.prompts:
            raise ValueError(f"{prompts_path}: every prompt is longer than grpo.max_prompt_length="
                             f"{max_prompt_length} tokens even after cutting the EHR text; raise it")
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    (out_path.parent / f"{out_path.stem}.stats.json").write_text(json.dumps(asdict(stats), indent=1))
    return stats


def _length(tokenizer, messages) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return len(ids)
