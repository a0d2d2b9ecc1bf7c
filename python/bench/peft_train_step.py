"""PyTorch + PEFT in the training benchmark's setting of `cargo bench -p ibert-train --bench
train_step`: the same GGUF file (transformers dequantizes it to f32 itself), 4 sequences of 256
tokens a step, the loss on every token, LoRA rank 16 (alpha 32) on all seven projections, AdamW,
the threads of `--threads`. Prints tokens/s over the timed steps (after one untimed step) and the
process's peak resident memory, in the bench's words.

Not part of the locked worker environment: run it from a venv with `pip install torch
transformers peft gguf` (see `python/bench/train_side_by_side.sh`).
    python python/bench/peft_train_step.py MODEL.gguf [--steps 3] [--threads 2]
"""

import argparse
import os
import resource
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

SEQUENCES = 4
LENGTH = 256
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", help="a GGUF file")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)

    started = time.perf_counter()
    base = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(args.model)), gguf_file=os.path.basename(args.model), torch_dtype=torch.float32
    )
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    model.train()
    load = time.perf_counter() - started
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocabulary = base.config.vocab_size
    tokens = torch.randint(0, vocabulary, (SEQUENCES, LENGTH))

    def step() -> float:
        optimizer.zero_grad()
        loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        return loss.item()

    step()
    timed = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - timed
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model            {args.model} (PyTorch {torch.__version__} + PEFT, f32, {args.threads} threads, load {load:.1f} s)")
    print(f"throughput       {SEQUENCES * LENGTH * args.steps / seconds:.1f} tokens/s ({args.steps} steps of {SEQUENCES} x {LENGTH} tokens)")
    print(f"peak memory      {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
