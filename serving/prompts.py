"""The ingress-side tokenizer: chat template rendering, token limits and the yes/no token ids.

Both engines get token ids from here, so the prompt a request turns into does not depend on the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)

ANSWER_TOKENS = ("yes", "no")


class PromptTooLong(ValueError):
    def __init__(self, n_tokens: int, limit: int):
        super().__init__(f"the prompt has {n_tokens} tokens, more than limits.max_input_tokens={limit}; shorten the "
                         "input (e.g. fewer EHR events) or raise limits.max_input_tokens")
        self.n_tokens = n_tokens
        self.limit = limit


def single_token_id(tokenizer, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {word!r} into {len(ids)} tokens {ids}; risk scoring needs `yes` and "
                         "`no` to be single tokens (true for Qwen3 and for training.tiny_model)")
    return ids[0]


class PromptCodec:
    def __init__(self, model_path: str, max_input_tokens: int):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(f"the tokenizer at {model_path} has no chat template; serve a chat checkpoint")
        self.max_input_tokens = max_input_tokens
        self.yes_id = single_token_id(self.tokenizer, ANSWER_TOKENS[0])
        self.no_id = single_token_id(self.tokenizer, ANSWER_TOKENS[1])

    def render_chat(self, messages: list[dict], enable_thinking: bool | None = None, **template_kwargs) -> str:
        if enable_thinking is not None:
            template_kwargs["enable_thinking"] = enable_thinking
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                                  **template_kwargs)

    def encode(self, text: str, check_limit: bool = True) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if check_limit and len(ids) > self.max_input_tokens:
            raise PromptTooLong(len(ids), self.max_input_tokens)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
