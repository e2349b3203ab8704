"""Which of data mix, loss mask, prompt switch, vocabulary and capacity keeps the demo's SFT model from learning.

    .venv/bin/python -m benchmarks.bench_demo_learning NAME --demo-dir outputs/demo --vocab 512 --hidden 64 \
        --layers 2 --mix first|stratified --loss full|completion --switch none|no_think --samples 512 --seq 1024 \
        --epochs 2 --lr 3e-3 --batch 4 --eval-input 1792

One factor at a time, on a finished demo run's EHR-Ins / EHR-Bench: builds a tiny model (BPE on the chosen
records), tokenizes with ``training.data`` (the SFT code; ``--switch none`` renders stage-1 prompts without the
``/no_think`` switch, as before issue 20), trains in-process (plain torch loop over packed rows, cosine schedule
with 5% warmup, as the Ray Train worker's Trainer does) and evaluates with the chain's own code on the chain's
354 EHR-Bench samples (thinking off, per-task budgets, ``--eval-input`` prompt tokens). Prints one RESULT line.
"""
import argparse, json, math, random, sys, time, collections
from pathlib import Path

import torch

p = argparse.ArgumentParser()
p.add_argument("name")
p.add_argument("--demo-dir", default="outputs/demo")
p.add_argument("--switch", default="no_think", choices=["none", "no_think"])
p.add_argument("--eval-input", type=int, default=1792)
p.add_argument("--vocab", type=int, default=512)
p.add_argument("--hidden", type=int, default=64)
p.add_argument("--inter", type=int, default=0)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--heads", type=int, default=2)
p.add_argument("--mix", default="first")
p.add_argument("--loss", default="full")
p.add_argument("--samples", type=int, default=512)
p.add_argument("--seq", type=int, default=1024)
p.add_argument("--epochs", type=float, default=2)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--eval-every", type=int, default=0)
a = p.parse_args()
DEMO = Path(a.demo_dir).resolve()
torch.set_num_threads(2)
torch.manual_seed(0)

import training.data as data_module
from training.data import read_records, tokenize_examples, PrepStats
from training.config import DataSpec
from training.sequences import pack_first_fit_decreasing
from training.tiny_model import build_tiny_model

ins = DEMO / "datasets/ehr_ins/ehr_ins.jsonl"
records = read_records(ins)
if a.mix == "first":
    chosen = records[: a.samples]
else:
    by = collections.defaultdict(list)
    for r in records:
        by[r["task_info"]["task"]].append(r)
    rng = random.Random(0)
    per = max(1, a.samples // len(by))
    chosen = []
    for t in sorted(by):
        rng.shuffle(by[t])
        chosen += by[t][:per]
    rng.shuffle(chosen)
if a.switch == "none":  # stage-1 prompts as before issue 20: no thinking switch in the user turn
    _build = data_module.build_messages
    data_module.build_messages = lambda inp, instr, thinking=None: _build(inp, instr, None)
out = Path(f"/tmp/bench_demo_learning/{a.name}")
import shutil
shutil.rmtree(out, ignore_errors=True)
corpus = []
for r in chosen:
    for k in ("input", "instruction"):
        corpus += str(r[k]).splitlines()
    corpus += str(r["output"]).splitlines()
model_dir = build_tiny_model(out / "model0", corpus=corpus, vocab_size=a.vocab, hidden_size=a.hidden,
                             intermediate_size=a.inter or 2 * a.hidden, num_hidden_layers=a.layers,
                             num_attention_heads=a.heads)
from transformers import AutoTokenizer, AutoModelForCausalLM
tok = AutoTokenizer.from_pretrained(model_dir)
spec = DataSpec(paths=[str(ins)], max_seq_length=a.seq, completion_only_loss=a.loss == "completion")
examples = tokenize_examples(tok, chosen, spec, PrepStats())
groups = pack_first_fit_decreasing([len(i) for i, _ in examples], a.seq)
rows = []
for g in groups:
    ids, labels, pos = [], [], []
    for i in g:
        ids += examples[i][0]; labels += examples[i][1]; pos += list(range(len(examples[i][0])))
    rows.append((ids, labels, pos))
model = AutoModelForCausalLM.from_pretrained(model_dir, use_cache=False)
print(f"{a.name}: params {model.num_parameters():,} rows {len(rows)} examples {len(examples)}", flush=True)
steps = int(math.ceil(len(rows) * a.epochs / a.batch))
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps * 0.05)) *
                                          0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def evaluate(model_path):
    import pandas as pd
    from evaluation.samples import load_ehr_bench, select_samples, add_prompts
    from evaluation.budget import target_length_quantiles, per_sample_budgets
    from evaluation.backends import TransformersPredictor
    from evaluation.scores import score_frame, aggregate
    from data_pipeline.datasets.truncation import hf_token_counter
    frame = add_prompts(select_samples(load_ehr_bench([str(DEMO / "datasets/ehr_bench/ehr_bench.jsonl")]), 8),
                        thinking="off")
    q = target_length_quantiles([str(ins)], hf_token_counter(str(model_path)), thinking=False)
    frame["max_new_tokens"] = per_sample_budgets(list(frame.task), list(frame.kind), [False] * len(frame), {False: q},
                                                 margin=8, cap=256)
    pred = TransformersPredictor(str(model_path), max_new_tokens=256, max_input_tokens=a.eval_input)
    parts = [pred(frame.iloc[i:i + 8]) for i in range(0, len(frame), 8)]
    scored = score_frame(frame, pd.concat(parts, ignore_index=True))
    m = aggregate(scored, n_bootstrap=0)
    o = m["overall"]
    return o["decision"]["f1"], o["risk"]["auroc"], int((scored.outcome == "truncated").sum())


t0 = time.time()
seen = 0
order = list(range(len(rows)))
step = 0
model.train()
while step < steps:
    random.Random(step).shuffle(order)
    for b in range(0, len(order), a.batch):
        if step >= steps:
            break
        loss_sum, n_tok = 0.0, 0
        opt.zero_grad()
        for i in order[b:b + a.batch]:
            ids, labels, pos = rows[i]
            outp = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]),
                         position_ids=torch.tensor([pos]))
            (outp.loss / a.batch).backward()
            loss_sum += float(outp.loss); seen += len(ids)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step(); step += 1
        if step % 20 == 0 or step == steps:
            print(f"  step {step}/{steps} loss {loss_sum / a.batch:.3f} tokens {seen:,} {time.time() - t0:.0f}s", flush=True)
        if a.eval_every and step % a.eval_every == 0 and step < steps:
            model.save_pretrained(out / "ckpt"); tok.save_pretrained(out / "ckpt")
            print(f"  eval@{step} tokens {seen:,}: F1/AUROC/trunc", evaluate(out / "ckpt"), flush=True)
train_s = time.time() - t0
model.save_pretrained(out / "final"); tok.save_pretrained(out / "final")
t1 = time.time()
f1, auc, trunc = evaluate(out / "final")
print(f"RESULT {a.name}: F1 {f1:.3f} AUROC {auc:.3f} truncated {trunc} train {train_s:.0f}s eval {time.time() - t1:.0f}s "
      f"tokens {seen:,}", flush=True)
