#!/usr/bin/env bash
# Training throughput and peak memory, ours against PyTorch + PEFT, on the same GGUF file,
# alternately, `ALTERNATIONS` times each, 2 threads both sides, each side in its own process (so
# that peak memory is that side's alone): 4 x 256 tokens a step, the loss on every token, LoRA
# rank 16 on all seven projections. Run it on an otherwise idle machine.
#
#   python/bench/train_side_by_side.sh MODEL.gguf [ALTERNATIONS] [STEPS]
#
# PEFT_PYTHON names a Python with torch, transformers, peft and gguf (default: `python3`); they
# are not part of the worker's lock: `python3 -m venv V && V/bin/pip install torch transformers
# peft gguf`.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:?usage: train_side_by_side.sh MODEL.gguf [ALTERNATIONS] [STEPS]}
alternations=${2:-2}
steps=${3:-3}
python=${PEFT_PYTHON:-python3}
"$python" -c "import torch, peft, transformers, gguf" 2>/dev/null || { echo "error: $python lacks torch, peft, transformers or gguf; set PEFT_PYTHON (see the comment at the top of $0)" >&2; exit 1; }
bench=$(python/bench/bench_executable.sh ibert-train train_step "$python")
for round in $(seq 1 "$alternations"); do
    echo "== $round: ours (quantized base)"
    RAYON_NUM_THREADS=2 "$bench" "$model" quantized "$steps" 2>/dev/null
    echo "== $round: PyTorch + PEFT"
    "$python" python/bench/peft_train_step.py "$model" --threads 2 --steps "$steps" 2>/dev/null
done
