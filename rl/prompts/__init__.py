"""RL prompt export: EHR-Ins and the EHRMIND task data -> one schema of (chat prompt, label) records.

Every source becomes jsonl records ``{"id", "source", "task", "prompt", "label"}``: ``prompt`` is the chat messages
(system + user, built by :mod:`training.chat_format` like SFT, evaluation and serving), which OpenRLHF
(``--data.apply_chat_template``) and TRL render with the actor's own chat template; ``label`` is a JSON string
naming the reward and its target (:mod:`rl.rewards` routes on it). See :mod:`rl.prompts.schema`.
"""

from rl.prompts.export import export_prompts
from rl.prompts.schema import RLPrompt, read_prompts, write_prompts

__all__ = ["RLPrompt", "export_prompts", "read_prompts", "write_prompts"]
